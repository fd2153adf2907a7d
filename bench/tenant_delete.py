"""Deleting a tenant: how long the DELETE takes to answer at two sizes, and the background purge meanwhile.

    .venv/bin/python -m bench.tenant_delete [--sizes 50000,500000] [--repeats 3]

One API process and one arq worker. For each size (run events; the tenant also has one run per 50 events, each with
its delivery and retrying the one before, and one Cards learning event per 10), `--repeats` tenants are filled with
SQL and deleted through the API: reported are the DELETE's answer time (median and slowest), how long the worker's
purge took to remove every row, and how long a neighbour tenant's `GET …/runs` took while it ran (against before).
For comparison, one more tenant of each size is deleted the way the DELETE used to do it, in one statement (with the
foreign keys indexed). Exit status 0 when the slowest answer at the largest size is within twice the slowest at the
smallest plus 50 ms, every purge left no row, and no neighbour read took over a second; 1 otherwise.
"""

import argparse
import asyncio
import dataclasses
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from bench.harness import (
    BenchError,
    Check,
    Processes,
    ServiceConfig,
    exit_on_sigterm,
    expect,
    finish,
    prepare_state,
    print_table,
    say,
    start_api,
    start_worker,
)

BENCH = "tenant_delete"
DATABASE = "lucca_connectors_bench_delete"
REDIS_DB = 7
EVENTS_PER_RUN = 50
EVENTS_PER_CARDS_EVENT = 10
PURGE_TIMEOUT_SECONDS = 600
POLL_SECONDS = 0.1
LUCCA = {"base_url": "https://acme.ilucca.net", "api_key": "lucca-key"}
ROWS_LEFT = """
    SELECT (SELECT count(*) FROM runs WHERE tenant_id = $1) + (SELECT count(*) FROM cards_events WHERE tenant_id = $1)
        + (SELECT count(*) FROM tenants WHERE id = $1)
"""

# A big tenant, written straight into the tables (tests/api/test_tenants.py fills its tenants with these too): runs
# that retry each other, their deliveries and events, and Cards learning events.
INSERT_RUNS = """
    INSERT INTO runs (id, tenant_id, connector, operation, trigger, status, counts, input, state, created_at, retry_at)
    SELECT gen_random_uuid(), $1, 'softgarden', 'hire', 'webhook', 'succeeded', '{}', '{}', '{}', now(), now()
    FROM generate_series(1, $2)
"""
CHAIN_RETRIES = """
    WITH numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM runs WHERE tenant_id = $1)
    UPDATE runs SET retry_of = earlier.id FROM numbered AS this, numbered AS earlier
    WHERE runs.id = this.id AND earlier.n = this.n - 1
"""
INSERT_DELIVERIES = """
    INSERT INTO deliveries (id, tenant_id, source, external_id, run_id, payload, received_at)
    SELECT gen_random_uuid(), $1, 'softgarden', id::text, id, '{}', now() FROM runs WHERE tenant_id = $1
"""
INSERT_EVENTS = """
    INSERT INTO run_events (run_id, tenant_id, at, level, subject, action, message)
    SELECT id, tenant_id, now(), 'info', 'Zoë Müller', 'created', 'Created in Lucca.' FROM runs, generate_series(1, $2)
    WHERE tenant_id = $1
"""
INSERT_CARDS_EVENTS = """
    INSERT INTO cards_events (tenant_id, event_id, type, payload, received_at)
    SELECT $1, 'event-' || number, 'chapter-complete', '{}', now() FROM generate_series(1, $2) AS number
"""


async def fill_tenant(database_url: str, tenant_id: uuid.UUID, runs: int, events_per_run: int, cards: int) -> None:
    """Give the tenant `runs` runs with their deliveries and `events_per_run` events each, and `cards` Cards events."""
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        await connection.execute(INSERT_RUNS, tenant_id, runs)
        await connection.execute(CHAIN_RETRIES, tenant_id)
        await connection.execute(INSERT_DELIVERIES, tenant_id)
        await connection.execute(INSERT_EVENTS, tenant_id, events_per_run)
        await connection.execute(INSERT_CARDS_EVENTS, tenant_id, cards)
    finally:
        await connection.close()


async def delete_in_one_statement(database_url: str, tenant_id: uuid.UUID) -> float:
    """Seconds the DELETE used to spend: the tenant's row and everything that cascades from it, in one statement."""
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        started = time.monotonic()
        await connection.execute("DELETE FROM tenants WHERE id = $1", tenant_id)
        return time.monotonic() - started
    finally:
        await connection.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.tenant_delete", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,500000", help="run events per tenant (default 50000,500000)")
    parser.add_argument("--repeats", type=int, default=3, help="tenants deleted per size (default 3)")
    args = parser.parse_args(argv)
    args.sizes = [int(size) for size in args.sizes.split(",")]
    if not 1 <= args.repeats <= 10 or not all(EVENTS_PER_RUN <= size <= 5_000_000 for size in args.sizes):
        parser.error(f"--repeats must be 1..10 and each size {EVENTS_PER_RUN}..5000000")
    return args


@dataclass
class SizeOutcome:
    events: int
    answer_seconds: list[float] = field(default_factory=list)
    purge_seconds: list[float] = field(default_factory=list)
    rows_left: int = 0
    one_statement_seconds: float = 0.0


@dataclass
class Outcome:
    sizes: list[SizeOutcome]
    neighbour_before_ms: list[float]
    neighbour_during_ms: list[float]


def new_tenant(api: httpx.Client, config: ServiceConfig, slug: str, events: int) -> tuple[str, uuid.UUID]:
    """A tenant made through the API, then filled with SQL; its key and id."""
    body = {"slug": slug, "name": f"{slug} SAS", "lucca": LUCCA}
    key = str(expect(api.post("/api/v1/tenants", json=body, headers=config.admin_auth), 201, "create")["api_key"])
    tenant_id: uuid.UUID = value(config, "SELECT id FROM tenants WHERE slug = $1 AND deleted_at IS NULL", slug)
    runs = events // EVENTS_PER_RUN
    asyncio.run(fill_tenant(config.database_url, tenant_id, runs, EVENTS_PER_RUN, events // EVENTS_PER_CARDS_EVENT))
    return key, tenant_id


def value(config: ServiceConfig, query: str, *arguments: object) -> Any:
    """The single value a SQL query returns."""

    async def fetch() -> Any:
        connection = await asyncpg.connect(config.database_url.replace("+asyncpg", ""))
        try:
            return await connection.fetchval(query, *arguments)
        finally:
            await connection.close()

    return asyncio.run(fetch())


def rows_left(config: ServiceConfig, tenant_id: uuid.UUID) -> int:
    """The deleted tenant's rows still there: its runs, Cards events and its own row."""
    count: int = value(config, ROWS_LEFT, tenant_id)
    return count


def neighbour_read_ms(api: httpx.Client, auth: dict[str, str]) -> float:
    started = time.monotonic()
    expect(api.get("/api/v1/tenants/neighbour/runs", headers=auth), 200, "the neighbour's runs")
    return (time.monotonic() - started) * 1000


def wait_for_purge(api: httpx.Client, config: ServiceConfig, tenant_id: uuid.UUID, auth: dict[str, str]) -> list[float]:
    """Poll until the tenant's row is gone, reading the neighbour's runs meanwhile; those reads' times (ms)."""
    deadline = time.monotonic() + PURGE_TIMEOUT_SECONDS
    reads = []
    while value(config, "SELECT count(*) FROM tenants WHERE id = $1", tenant_id):
        if time.monotonic() > deadline:
            raise BenchError(f"tenant {tenant_id} still there after {PURGE_TIMEOUT_SECONDS} s")
        reads.append(neighbour_read_ms(api, auth))
        time.sleep(POLL_SECONDS)
    return reads


def run_benchmark(args: argparse.Namespace, config: ServiceConfig) -> Outcome:
    with Processes(BENCH) as processes:
        api = start_api(processes, config)
        start_worker(processes, config)
        with httpx.Client(base_url=api.url, timeout=60.0) as client:
            neighbour_key, _ = new_tenant(client, config, "neighbour", 5_000)
            neighbour = {"Authorization": f"Bearer {neighbour_key}"}
            # A first purge, so that the figures do not include the worker's start-up.
            _, warm_up = new_tenant(client, config, "warm-up", EVENTS_PER_RUN)
            expect(client.delete("/api/v1/tenants/warm-up", headers=config.admin_auth), 204, "delete")
            wait_for_purge(client, config, warm_up, neighbour)
            outcome = Outcome([], [neighbour_read_ms(client, neighbour) for _ in range(20)], [])
            for events in args.sizes:
                size = SizeOutcome(events)
                for repeat in range(args.repeats):
                    slug = f"big-{events}-{repeat}"
                    _, tenant_id = new_tenant(client, config, slug, events)
                    started = time.monotonic()
                    expect(client.delete(f"/api/v1/tenants/{slug}", headers=config.admin_auth), 204, "delete")
                    size.answer_seconds.append(time.monotonic() - started)
                    outcome.neighbour_during_ms += wait_for_purge(client, config, tenant_id, neighbour)
                    size.purge_seconds.append(time.monotonic() - started)
                    size.rows_left += rows_left(config, tenant_id)
                    say(f"{events:,} events: answered in {size.answer_seconds[-1] * 1000:.1f} ms, "
                        f"purged in {size.purge_seconds[-1]:.1f} s")  # fmt: skip
                _, tenant_id = new_tenant(client, config, f"sync-{events}", events)
                size.one_statement_seconds = asyncio.run(delete_in_one_statement(config.database_url, tenant_id))
                outcome.sizes.append(size)
    return outcome


def evaluate(outcome: Outcome) -> list[Check]:
    checks = []
    for size in outcome.sizes:
        answers = ", ".join(f"{seconds * 1000:.1f}" for seconds in size.answer_seconds)
        purges = ", ".join(f"{seconds:.1f}" for seconds in size.purge_seconds)
        one_statement = size.one_statement_seconds * 1000
        checks += [
            Check(f"{size.events:,} events: DELETE answered in", f"{answers} ms"),
            Check(f"{size.events:,} events: purged in the background in", f"{purges} s"),
            Check(f"{size.events:,} events: rows left after the purges", str(size.rows_left), "0", size.rows_left == 0),
            Check(f"{size.events:,} events: one-statement delete (the DELETE before)", f"{one_statement:.0f} ms"),
        ]
    smallest, largest = max(outcome.sizes[0].answer_seconds), max(outcome.sizes[-1].answer_seconds)
    allowed = 2 * smallest + 0.05
    checks.append(
        Check(
            "slowest answer, largest vs smallest size",
            f"{largest * 1000:.1f} vs {smallest * 1000:.1f} ms",
            f"<= 2 x smallest + 50 ms = {allowed * 1000:.0f} ms",
            largest <= allowed,
        )
    )
    before, during = outcome.neighbour_before_ms, outcome.neighbour_during_ms
    checks.append(
        Check(
            "neighbour's GET …/runs, median / slowest: idle, during purges",
            f"{statistics.median(before):.1f} / {max(before):.1f} ms, "
            f"{statistics.median(during or [0.0]):.1f} / {max(during, default=0.0):.1f} ms ({len(during)} reads)",
            "slowest < 1000 ms",
            max(during, default=0.0) < 1000,
        )
    )
    return checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    config = ServiceConfig(database=DATABASE, redis_db=REDIS_DB)
    prepare_state(config)
    outcome = run_benchmark(args, config)
    checks = evaluate(outcome)
    print_table(f"Deleting a tenant: {args.repeats} tenant(s) per size, 1 API process, 1 worker", checks)
    return finish(BENCH, checks, {"options": vars(args), "outcome": dataclasses.asdict(outcome)})


if __name__ == "__main__":
    sys.exit(main())
