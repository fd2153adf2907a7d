"""Many tenants' nightly jobs due at the same hour: when their runs are queued, and a small tenant's hire meanwhile.

    .venv/bin/python -m bench.nightly_spread [--tenants 10000] [--minutes 5] [--workers 2] [--timeout 900]

`--tenants` tenants whose Cards statistics push is set for 02:00 (Europe/Paris).

Phase 1, the database alone (no worker): the scheduler's tick claims their runs, called with the clock of one night
from 00:59 to 02:00 UTC: first the code before the offsets (commit 26ff3df's app/services/schedules.py, read from
git: a tick a minute, every job due at hour:00) as the baseline, then today's (a tick every 5 s, each job at its
offset). Reported: runs queued in the busiest second, per minute of the hour, and the ticks' time.

Phase 2, real processes (the sandbox, an API, `--workers` arq workers, a Redis of its own): a small tenant's hire
(Softgarden, its own Lucca account) from webhook to succeeded: alone; right after the old rule's 02:00, i.e. with
every tenant's run queued at once ahead of it (what the old tick did after claiming them all); and every 10 s over
`--minutes` real minutes of today's hour (the tenants' hours set so that their offsets fall in the hour starting now),
their runs claimed by the workers' own ticks. The tenants' runs are the cheapest a run can be (their Cards connectors
are disabled, so each ends failed with one event): the old rule's wait is a floor. Exit status 0 when the hire
during the spread hour always finished within 60 s and the tenants' runs never came more than 60 in one second,
1 otherwise.
"""

import argparse
import asyncio
import importlib.util
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType

import asyncpg
import httpx
from arq import create_pool
from arq.connections import RedisSettings
from sqlalchemy import select

from app.db import Sessionmaker, create_engine, create_sessionmaker
from app.models import Tenant as TenantRow
from app.queue import enqueue_run
from app.services import schedules
from app.services.runs import new_run
from bench.fairness import post_hire, seed_account, time_to_finish
from bench.harness import (
    ROOT,
    SOFTGARDEN_SETTINGS,
    BenchError,
    Check,
    Processes,
    ServiceConfig,
    Tenant,
    create_softgarden_tenant,
    create_tenant,
    exit_on_sigterm,
    finish,
    percentile,
    print_table,
    private_state,
    say,
    start_api,
    start_sandbox,
    start_worker,
    worker_started,
)

BENCH = "nightly_spread"
DATABASE = "lucca_connectors_bench_spread"
# The code before the offsets, the same run's baseline.
BASELINE_COMMIT = "26ff3df"
PARIS = "Europe/Paris"
HOUR = 2
# A night of the simulated clock: 02:00 in Paris is 01:00 UTC; the jobs were enabled the afternoon before.
NIGHT = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
ENABLED = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
OLD_TICK, NEW_TICK = timedelta(minutes=1), timedelta(seconds=5)
HIRE_EVERY_SECONDS = 10.0
TARGET_WAIT_SECONDS, TARGET_PER_SECOND = 60.0, 60
REQUESTS_PER_WINDOW, WINDOW_SECONDS = 600, 60
NIGHT_SLUG = "night-"

Tick = Callable[[Sessionmaker, datetime], Awaitable[list[uuid.UUID]]]
# A schedule's (hour, timezone, enabled_at, due_at), from its tenant's id.
Due = Callable[[uuid.UUID], tuple[int, str, datetime, datetime | None]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.nightly_spread", description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000, help="tenants due at the same hour (default 10000)")
    parser.add_argument("--minutes", type=float, default=5, help="real minutes of the spread hour (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="arq worker processes (default 2)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds to wait for a hire or a burst (default 900)")
    args = parser.parse_args(argv)
    if not 100 <= args.tenants <= 50_000 or not 0.5 <= args.minutes <= 60 or not 1 <= args.workers <= 8:
        parser.error("--tenants must be 100..50000, --minutes 0.5..60 and --workers 1..8")
    return args


def baseline_schedules() -> ModuleType:
    """app/services/schedules.py as it was before the offsets, from git, as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{BASELINE_COMMIT}:app/services/schedules.py"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    spec = importlib.util.spec_from_loader("baseline_schedules", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    exec(compile(source, f"{BASELINE_COMMIT}:app/services/schedules.py", "exec"), module.__dict__)  # noqa: S102
    return module


async def add_night_tenants(config: ServiceConfig, count: int) -> None:
    """`count` copies of the template tenant, each with a disabled Cards connector and its push set for 02:00."""
    connection = await asyncpg.connect(config.postgres_url)
    try:
        salt = secrets.token_hex(8)
        await connection.execute(
            "INSERT INTO tenants SELECT (jsonb_populate_record(NULL::tenants, to_jsonb(t) || jsonb_build_object("
            "'id', gen_random_uuid(), 'slug', $1::text || i, 'name', 'Night ' || i, 'timezone', $4::text,"
            "'key_hash', encode(sha256(convert_to($2::text || i, 'UTF8')), 'hex')))).* "
            "FROM tenants t, generate_series(1, $3::int) i WHERE t.slug = $1::text || 'template'",
            NIGHT_SLUG, salt, count, PARIS,
        )  # fmt: skip
        await connection.execute(
            "INSERT INTO connectors (id, tenant_id, kind, enabled, settings) "
            "SELECT gen_random_uuid(), id, 'cards', false, '{}' FROM tenants WHERE slug LIKE $1 || '%' "
            "AND slug <> $1 || 'template'",
            NIGHT_SLUG,
        )
        await connection.execute(
            "INSERT INTO schedules (id, tenant_id, connector_id, operation, hour, timezone, enabled_at) "
            "SELECT gen_random_uuid(), tenant_id, id, 'stats_sync', $1, $2, $3 FROM connectors WHERE kind = 'cards'",
            HOUR, PARIS, ENABLED,
        )  # fmt: skip
    finally:
        await connection.close()


async def set_due(config: ServiceConfig, due: Due) -> None:
    """Each schedule's (hour, timezone, enabled_at, due_at) from its tenant's id, never run; no run kept."""
    connection = await asyncpg.connect(config.postgres_url)
    try:
        await connection.execute("DELETE FROM runs WHERE trigger = 'schedule'")
        rows = await connection.fetch("SELECT id, tenant_id FROM schedules WHERE operation = 'stats_sync'")
        await connection.executemany(
            "UPDATE schedules SET hour = $2, timezone = $3, enabled_at = $4, due_at = $5, last_run_at = NULL, "
            "last_run_id = NULL WHERE id = $1",
            [(row["id"], *due(row["tenant_id"])) for row in rows],
        )
        await connection.execute(
            "UPDATE tenants SET timezone = s.timezone FROM schedules s WHERE s.tenant_id = tenants.id"
        )
    finally:
        await connection.close()


async def claimed_at(config: ServiceConfig) -> list[datetime]:
    connection = await asyncpg.connect(config.postgres_url)
    try:
        rows = await connection.fetch("SELECT last_run_at FROM schedules WHERE last_run_at IS NOT NULL")
    finally:
        await connection.close()
    return [row["last_run_at"] for row in rows]


@dataclass(frozen=True)
class Spread:
    """When one rule's tick queued the tenants' runs over the hour."""

    queued: int
    busiest_second: int
    minutes_with_runs: int
    per_minute_min: int
    per_minute_max: int
    # Claimed by the tick at the hour's end (offsets in its last 5 s): the minute after it.
    at_the_hours_end: int
    by_minute: dict[int, int]
    ticks_seconds: float


def spread_of(times: Sequence[datetime], start: datetime, ticks_seconds: float) -> Spread:
    by_minute = Counter(int((moment - start).total_seconds()) // 60 for moment in times)
    within = [count for minute, count in by_minute.items() if minute < 60]
    by_second = Counter(moment.replace(microsecond=0) for moment in times)
    return Spread(
        queued=len(times),
        busiest_second=max(by_second.values(), default=0),
        minutes_with_runs=len(within),
        per_minute_min=min(within, default=0),
        per_minute_max=max(within, default=0),
        at_the_hours_end=by_minute[60],
        by_minute=dict(sorted(by_minute.items())),
        ticks_seconds=ticks_seconds,
    )


async def simulate_night(config: ServiceConfig, tick: Tick, every: timedelta) -> Spread:
    """The tick called at its cadence from a minute before 02:00 to 03:00 Paris time; when each run was queued."""
    engine = create_engine(config.database_url, pool_size=2)
    try:
        sessionmaker = create_sessionmaker(engine)
        now, started = NIGHT - timedelta(minutes=1), time.monotonic()
        while now <= NIGHT + timedelta(hours=1):
            await tick(sessionmaker, now)
            now += every
        ticks_seconds = time.monotonic() - started
    finally:
        await engine.dispose()
    return spread_of(await claimed_at(config), NIGHT, ticks_seconds)


baseline = baseline_schedules()


def old_due(tenant_id: uuid.UUID) -> tuple[int, str, datetime, datetime | None]:
    return HOUR, PARIS, ENABLED, baseline.next_due(ENABLED, PARIS, HOUR)


def new_due(tenant_id: uuid.UUID) -> tuple[int, str, datetime, datetime | None]:
    offset = schedules.hour_offset(tenant_id, "stats_sync")
    return HOUR, PARIS, ENABLED, schedules.next_due(ENABLED, PARIS, HOUR, offset)


def due_within_the_hour_from(start: datetime) -> Due:
    """Each tenant's hour (UTC) such that its offset falls in the hour from `start`: today's rule, shifted to now."""

    def due(tenant_id: uuid.UUID) -> tuple[int, str, datetime, datetime | None]:
        offset = schedules.hour_offset(tenant_id, "stats_sync")
        moment = start.replace(minute=0, second=0, microsecond=0) + offset
        moment += timedelta(hours=1) if moment < start else timedelta(0)
        enabled = start - timedelta(seconds=1)
        assert schedules.next_due(enabled, "UTC", moment.hour, offset) == moment
        return moment.hour, "UTC", enabled, moment

    return due


async def queue_all_at_once(config: ServiceConfig) -> int:
    """The old rule's 02:00: a run for every night tenant, stored and queued in one go, as its tick did."""
    engine = create_engine(config.database_url, pool_size=2)
    redis = await create_pool(RedisSettings.from_dsn(config.redis_url))
    try:
        async with create_sessionmaker(engine)() as session:
            night = TenantRow.slug.like(f"{NIGHT_SLUG}%") & (TenantRow.slug != f"{NIGHT_SLUG}template")
            tenants = (await session.scalars(select(TenantRow).where(night))).all()
            due = {"due_at": datetime.now(UTC).isoformat()}
            runs = [new_run(tenant, "cards", "stats_sync", "schedule", due) for tenant in tenants]
            session.add_all(runs)
            await session.commit()
        for run in runs:
            await enqueue_run(redis, run.id)
    finally:
        await redis.aclose()
        await engine.dispose()
    return len(runs)


def unfinished_night_runs(config: ServiceConfig) -> int:
    async def count() -> int:
        connection = await asyncpg.connect(config.postgres_url)
        try:
            value = await connection.fetchval(
                "SELECT count(*) FROM runs WHERE trigger = 'schedule' AND status IN ('queued', 'running')"
            )
        finally:
            await connection.close()
        return int(value)

    return asyncio.run(count())


@dataclass(frozen=True)
class Waits:
    alone_seconds: float
    burst_runs: int
    behind_burst_seconds: float
    burst_drained_seconds: float
    spread_waits: list[float]
    spread: Spread
    unfinished_at_end: int


def run_processes(
    args: argparse.Namespace, processes: Processes, config: ServiceConfig, client: httpx.Client, small: Tenant
) -> Waits:
    """Phase 2: the workers started, the small tenant's hires alone, behind the old rule's 02:00, and meanwhile
    today's hour."""
    for index in range(args.workers):
        worker_started(start_worker(processes, config, f"worker-{index + 1}"))

    def hire(name: str) -> float:
        posted = time.monotonic()
        seconds, status = time_to_finish(client, small, post_hire(client, small, name), posted, args.timeout)
        if status != "succeeded":
            raise BenchError(f"the small tenant's hire {name} ended {status}")
        return seconds

    hire("Warmup")
    alone = hire("Alone")
    say(f"the old rule's 02:00: {args.tenants} runs queued at once, then the small tenant's hire")
    burst_started = time.monotonic()
    burst = asyncio.run(queue_all_at_once(config))
    behind_burst = hire("Behind")
    while unfinished_night_runs(config):
        if time.monotonic() - burst_started > args.timeout:
            raise BenchError(f"the {burst} runs queued at once were not done within {args.timeout} s")
        time.sleep(1.0)
    drained = time.monotonic() - burst_started

    start = datetime.now(UTC) + timedelta(seconds=10)
    say(f"today's rule: the tenants' offsets over the hour from {start:%H:%M:%S} UTC; a hire every 10 s")
    asyncio.run(set_due(config, due_within_the_hour_from(start)))
    waits: list[float] = []
    window_end = time.monotonic() + args.minutes * 60
    while time.monotonic() < window_end:
        began = time.monotonic()
        waits.append(hire(f"Spread{len(waits)}"))
        time.sleep(max(0.0, HIRE_EVERY_SECONDS - (time.monotonic() - began)))
    unfinished = unfinished_night_runs(config)
    claimed = asyncio.run(claimed_at(config))
    return Waits(alone, burst, behind_burst, drained, waits, spread_of(claimed, start, 0.0), unfinished)


def evaluate(args: argparse.Namespace, old: Spread, new: Spread, waits: Waits) -> list[Check]:
    def spread_line(spread: Spread) -> str:
        return (
            f"{spread.queued} queued; busiest second {spread.busiest_second}; {spread.minutes_with_runs} minute(s) "
            f"with runs, {spread.per_minute_min}–{spread.per_minute_max} a minute (+{spread.at_the_hours_end} at "
            f"the hour's end); ticks took {spread.ticks_seconds:.1f} s"
        )

    window = waits.spread
    worst = max(waits.spread_waits, default=float("inf"))
    return [
        Check(f"old rule (baseline, {BASELINE_COMMIT}): {args.tenants} due at 02:00", spread_line(old)),
        Check(
            f"offsets: {args.tenants} due at 02:00",
            spread_line(new),
            f"all 60 minutes, busiest second <= {TARGET_PER_SECOND}",
            new.queued == args.tenants and new.minutes_with_runs == 60 and new.busiest_second <= TARGET_PER_SECOND,
        ),
        Check("small tenant's hire alone", f"{waits.alone_seconds:.2f} s"),
        Check(
            f"its hire right after the old rule's 02:00 ({waits.burst_runs} runs queued at once)",
            f"{waits.behind_burst_seconds:.1f} s (all done after {waits.burst_drained_seconds:.1f} s)",
        ),
        Check(
            f"its hire every {HIRE_EVERY_SECONDS:g} s over {args.minutes:g} min of the spread hour",
            f"p50 {percentile(waits.spread_waits, 0.5):.2f} s, max {worst:.2f} s over {len(waits.spread_waits)}",
            f"< {TARGET_WAIT_SECONDS:g} s",
            worst < TARGET_WAIT_SECONDS,
        ),
        Check(
            "tenants' runs claimed by the workers' ticks meanwhile",
            f"{window.queued}; busiest second {window.busiest_second}; {waits.unfinished_at_end} unfinished at the end",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    with Processes(BENCH) as processes:
        config = private_state(processes, DATABASE, {})
        sandbox = start_sandbox(processes, WINDOW_SECONDS, REQUESTS_PER_WINDOW)
        api = start_api(processes, config)
        with (
            httpx.Client(base_url=f"{sandbox.url}/_sandbox/", timeout=30.0) as control,
            httpx.Client(base_url=api.url, timeout=30.0) as client,
        ):
            account = seed_account(control, sandbox.url, f"bench-spread-{secrets.token_hex(3)}")
            small = create_softgarden_tenant(client, config, "small", account, SOFTGARDEN_SETTINGS)
            # The night tenants are copies of this one; their runs never call Lucca (their connectors are disabled).
            create_tenant(client, config, f"{NIGHT_SLUG}template", account, timezone=PARIS)
            say(f"{args.tenants} tenants whose statistics push is set for 02:00 (Paris)")
            asyncio.run(add_night_tenants(config, args.tenants))
            say("phase 1: the tick over one night, the old rule then the offsets (no worker)")
            asyncio.run(set_due(config, old_due))
            old = asyncio.run(simulate_night(config, baseline.claim_due_runs, OLD_TICK))
            asyncio.run(set_due(config, new_due))
            new = asyncio.run(simulate_night(config, schedules.claim_due_runs, NEW_TICK))
            # Nothing due and no run of phase 1 left for the workers' ticks and sweep.
            asyncio.run(set_due(config, lambda tenant_id: (HOUR, PARIS, ENABLED, None)))
            say("phase 2: real workers")
            waits = run_processes(args, processes, config, client, small)
    checks = evaluate(args, old, new, waits)
    print_table(f"Nightly jobs of {args.tenants} tenants due at the same hour, {args.workers} worker(s)", checks)
    results = {"options": vars(args), "old_rule": old.__dict__, "offsets": new.__dict__, "real": waits.__dict__}
    return finish(BENCH, checks, results)


if __name__ == "__main__":
    sys.exit(main())
