"""Retention's purge of old runs while webhooks arrive: the webhooks' answer time during the purge and without it.

    .venv/bin/python -m bench.retention [--events 1000000] [--events-per-run 500] [--rate 200] [--duration 10]
                                        [--rounds 3] [--connections 100]

One API process (no worker: webhooks are stored and queued, nothing runs them) on a database and a Redis server of
the benchmark's own. Tenant `old` is filled with SQL (one INSERT … SELECT generate_series per table): `--events` run
events in runs of `--events-per-run`, each run with its delivery, all finished 200 days ago. Tenant `hiring`
receives new hires from `bench.webhook_ingest`'s wrk script (each request a new applicationId), paced to about
`--rate` a second (each of `--connections` waits connections / rate seconds before each request, so the rate
reached is a little lower, by the answer time: it is reported), in rounds of `--duration` seconds after one round
of warm-up:

- `--rounds` **quiet** rounds: webhooks alone;
- **purge** rounds, for as long as retention's purge lasts (`app.services.retention.purge_expired_runs`, the
  worker's daily job's own code with its batches and pauses, in a process of its own started with the first);
- `--rounds` quiet rounds again (this VM's speed drifts: a baseline on both sides).

Reported: each round's webhook p99, the purge's duration and rate, what is left. Targets: the median p99 of the
purge rounds within 20 % of the quiet rounds', every webhook a 2xx, no old run or event left, every old delivery
kept without its payload. Exit status 0 when every target holds, 1 otherwise; needs `wrk`.
"""

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from bench.harness import (
    SOFTGARDEN_SETTINGS,
    BenchError,
    Check,
    Processes,
    ServiceConfig,
    Tenant,
    create_softgarden_tenant,
    exit_on_sigterm,
    finish,
    print_table,
    private_state,
    say,
    start_api,
)
from bench.webhook_ingest import UNUSED_LUCCA, WEBHOOK_PATH, WrkResult, run_wrk, wrk_script

BENCH = "retention"
DATABASE = "lucca_connectors_bench_retention"
RETENTION_DAYS = 90
TARGET_P99_RATIO = 1.2
PURGE_TIMEOUT_SECONDS = 1800
PHASES = ("quiet before", "purge", "quiet after")

INSERT_RUNS = """
    INSERT INTO runs (id, tenant_id, connector, operation, trigger, status, counts, input, state, created_at,
                      started_at, finished_at, retry_at)
    SELECT gen_random_uuid(), $1, 'softgarden', 'candidate_hired', 'webhook', 'succeeded', '{}', '{}', '{}',
           now() - interval '200 days', now() - interval '200 days', now() - interval '200 days', now()
    FROM generate_series(1, $2)
"""
INSERT_DELIVERIES = """
    INSERT INTO deliveries (id, tenant_id, source, external_id, run_id, payload, received_at)
    SELECT gen_random_uuid(), $1, 'softgarden', 'old-' || id, id, '{"firstName": "Zoë"}', created_at
    FROM runs WHERE tenant_id = $1
"""
INSERT_EVENTS = """
    INSERT INTO run_events (run_id, tenant_id, at, level, subject, action, message)
    SELECT id, tenant_id, created_at, 'info', 'zoe.muller' || n || '@personal.example', 'create', 'Created in Lucca.'
    FROM runs, generate_series(1, $2) AS n WHERE tenant_id = $1
"""
LEFT = """
    SELECT (SELECT count(*) FROM runs WHERE tenant_id = $1), (SELECT count(*) FROM run_events),
           (SELECT count(*) FROM deliveries WHERE tenant_id = $1 AND payload = '{}'),
           (SELECT count(*) FROM deliveries WHERE tenant_id = $1)
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.retention", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="old run events (default 1000000)")
    parser.add_argument("--events-per-run", type=int, default=500, help="events of each old run (default 500)")
    parser.add_argument("--rate", type=float, default=200.0, help="webhooks per second (default 200)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk round (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="quiet rounds before the purge, and after (default 3)")
    parser.add_argument("--connections", type=int, default=100, help="wrk connections (default 100)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--timeout", type=int, default=10, help="wrk per-request timeout in seconds (default 10)")
    parser.add_argument("--purge-only", action="store_true", help=argparse.SUPPRESS)  # the purge's own process
    args = parser.parse_args(argv)
    if not 1 <= args.events_per_run <= args.events <= 10_000_000:
        parser.error("--events-per-run must be 1..--events, and --events at most 10000000")
    if not 1 <= args.rate <= 1000 or not 1 <= args.duration <= 600 or not 1 <= args.rounds <= 20:
        parser.error("--rate must be 1..1000, --duration 1..600 and --rounds 1..20")
    if not 1 <= args.connections <= args.rate:
        parser.error("--connections must be 1..--rate (each sends at most one request a second)")
    return args


async def purge_now() -> None:
    """The purge, as the worker's daily job runs it, on the database of DATABASE_URL; prints what it did."""
    from app.config import get_settings
    from app.db import create_engine, create_sessionmaker
    from app.services.retention import purge_expired_runs

    engine = create_engine(get_settings().database_url, pool_size=2)
    try:
        started = time.monotonic()
        deleted = await purge_expired_runs(create_sessionmaker(engine), RETENTION_DAYS)
        say(json.dumps({"deleted_runs": deleted, "seconds": time.monotonic() - started}))
    finally:
        await engine.dispose()


async def fill_old_tenant(config: ServiceConfig, slug: str, runs: int, events_per_run: int) -> None:
    connection = await asyncpg.connect(config.postgres_url)
    try:
        tenant_id = await connection.fetchval("SELECT id FROM tenants WHERE slug = $1", slug)
        await connection.execute(INSERT_RUNS, tenant_id, runs)
        await connection.execute(INSERT_DELIVERIES, tenant_id)
        await connection.execute(INSERT_EVENTS, tenant_id, events_per_run)
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


async def rows_left(config: ServiceConfig, slug: str) -> tuple[int, int, int, int]:
    connection = await asyncpg.connect(config.postgres_url)
    try:
        tenant_id = await connection.fetchval("SELECT id FROM tenants WHERE slug = $1", slug)
        row = await connection.fetchrow(LEFT, tenant_id)
        return tuple(row)
    finally:
        await connection.close()


# wrk's hook: each connection waits this long before each request, so `connections` of them send about `rate` a second.
PACING_LUA = """
function delay()
  return %(delay_ms)d
end
"""


@dataclass(frozen=True)
class Round:
    """One wrk run of paced hires, and the phase it belongs to."""

    phase: str
    wrk: WrkResult


def paced_hires(url: str, args: argparse.Namespace, tenant: Tenant, phase: str, number: int) -> Round:
    """`bench.webhook_ingest`'s wrk run of new hires, paced to `--rate` a second."""
    delay_ms = round(args.connections * 1000 / args.rate)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-retention-") as script:
        script.write(wrk_script(tenant, f"{phase.split()[0]}{number}") + PACING_LUA % {"delay_ms": delay_ms})
        script.flush()
        result = run_wrk(f"{url}{WEBHOOK_PATH}", args, Path(script.name))
    say(f"{phase} {number}: {result.requests} webhooks, {result.rps:.0f}/s, p50 {result.p50_ms:.1f} ms, "
        f"p99 {result.p99_ms:.1f} ms")  # fmt: skip
    return Round(phase, result)


@dataclass(frozen=True)
class Measured:
    rounds: list[Round]
    purge: dict[str, float]
    left: tuple[int, int, int, int]

    def p99s(self, phase: str) -> list[float]:
        return [one.wrk.p99_ms for one in self.rounds if one.phase == phase]


def measure(args: argparse.Namespace) -> Measured:
    runs = args.events // args.events_per_run
    with Processes(BENCH) as processes:
        config = private_state(processes, DATABASE, {"RUN_RETENTION_DAYS": str(RETENTION_DAYS)})
        api = start_api(processes, config)
        with httpx.Client(base_url=api.url, timeout=30.0) as client:
            create_softgarden_tenant(client, config, "old", UNUSED_LUCCA, SOFTGARDEN_SETTINGS)
            hiring = create_softgarden_tenant(client, config, "hiring", UNUSED_LUCCA, SOFTGARDEN_SETTINGS)
        started = time.monotonic()
        asyncio.run(fill_old_tenant(config, "old", runs, args.events_per_run))
        say(f"filled: {runs:,} runs, {runs * args.events_per_run:,} events in {time.monotonic() - started:.1f} s")
        paced_hires(api.url, args, hiring, "warm-up", 0)  # the API's first connections and queries: not counted
        rounds = [paced_hires(api.url, args, hiring, "quiet", number) for number in range(args.rounds)]
        purge = processes.start("purge", [sys.executable, "-m", "bench.retention", "--purge-only"], config.environ())
        deadline = time.monotonic() + PURGE_TIMEOUT_SECONDS
        # At least one round during the purge, and rounds for as long as it lasts.
        for number in itertools.count():
            rounds.append(paced_hires(api.url, args, hiring, "purge", number))
            if not purge.alive() or time.monotonic() > deadline:
                break
        if purge.process.wait(timeout=max(1.0, deadline - time.monotonic())) != 0:
            raise BenchError(f"the purge did not end well:\n{purge.tail()}")
        rounds += [paced_hires(api.url, args, hiring, "quiet", args.rounds + number) for number in range(args.rounds)]
        outcome = json.loads((processes.log_dir / "purge.log").read_text().strip().splitlines()[-1])
        left = asyncio.run(rows_left(config, "old"))
    return Measured(rounds, outcome, left)


def evaluate(args: argparse.Namespace, measured: Measured) -> list[Check]:
    quiet, purge = measured.p99s("quiet"), measured.p99s("purge")
    quiet_p99, purge_p99 = statistics.median(quiet), statistics.median(purge)
    answered = [one.wrk for one in measured.rounds]
    statuses = sum(one.lua.get("non2xx", 0) + one.socket_error_count for one in answered)
    runs_left, events_left, emptied, deliveries = measured.left
    runs = args.events // args.events_per_run
    seconds = measured.purge["seconds"]
    events = runs * args.events_per_run
    rounds_text = {phase: ", ".join(f"{p99:.1f}" for p99 in measured.p99s(phase)) for phase in ("quiet", "purge")}
    checks = [
        Check("webhook p99 of each quiet round (before, then after)", f"{rounds_text['quiet']} ms"),
        Check("webhook p99 of each round during the purge", f"{rounds_text['purge']} ms"),
        Check("webhooks/s, all rounds", f"{min(one.rps for one in answered):.0f}..{max(one.rps for one in answered):.0f}"),
        Check("purge: runs and events deleted, time", f"{measured.purge['deleted_runs']:,.0f} runs, {events:,} "
              f"events, {seconds:.1f} s ({events / seconds:,.0f} events/s)"),
        Check("webhook p99 during the purge / without it (medians of rounds)", f"{purge_p99:.1f} / {quiet_p99:.1f} ms "
              f"({purge_p99 / quiet_p99:.2f})", f"<= {TARGET_P99_RATIO:.2f}", purge_p99 <= quiet_p99 * TARGET_P99_RATIO),
        Check("webhook answers other than 2xx, socket errors", str(statuses), "0", statuses == 0),
        Check("old runs and events left", f"{runs_left} runs, {events_left} events (all tenants)", "0, 0",
              runs_left == 0 and events_left == 0),
        Check("old deliveries kept, payload emptied", f"{deliveries:,} kept, {emptied:,} emptied", f"{runs:,} both",
              deliveries == emptied == runs),
    ]  # fmt: skip
    return checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.purge_only:
        asyncio.run(purge_now())
        return 0
    exit_on_sigterm()
    measured = measure(args)
    checks = evaluate(args, measured)
    title = (
        f"Retention's purge of {args.events:,} old run events while webhooks arrive at {args.rate:g}/s "
        f"({args.rounds} quiet rounds of {args.duration} s before and after, {args.connections} connections)"
    )
    print_table(title, checks)
    rounds = [{"phase": one.phase, "requests": one.wrk.requests, "rps": one.wrk.rps, "p50_ms": one.wrk.p50_ms,
               "p99_ms": one.wrk.p99_ms} for one in measured.rounds]  # fmt: skip
    return finish(BENCH, checks, {"options": vars(args), "rounds": rounds, "purge": measured.purge})


if __name__ == "__main__":
    sys.exit(main())
