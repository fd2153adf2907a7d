"""A run's bookkeeping per item at 2,000 and 20,000 items: the item ledger against the map in the run's state.

    .venv/bin/python -m bench.run_ledger [--sizes 2000,20000] [--window 500] [--rounds 3]

In one process, on a database of its own: for each size N, a run whose first N - `--window` items are already
recorded (written in one statement), then the last `--window` items recorded one by one, each in its own
transaction as a job records them, and timed: the cost of recording an item when the run holds about N. Two
ways, alternated in rounds on the same database (the median round is reported):
- **ledger**: `RunLog.item` as it is (a `run_items` row, the run's count moved by one);
- **state map** (the baseline): `RunLog.item` of main before the ledger, copied below: the run's row locked, its
  whole `done_items` map read, copied with the item added, and written back.
Each item also writes its event, as a job does. Target: the ledger's cost per item at the largest size / at the smallest <= 1.2.
Exit status 0 when the target holds, 1 otherwise.
"""

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select, text

from app.db import Sessionmaker, create_engine, create_sessionmaker
from app.models import Run, Tenant
from app.services.run_log import RunLog, _event
from bench.harness import Check, Processes, exit_on_sigterm, finish, print_table, private_state, say

BENCH = "run_ledger"
DATABASE = "lucca_connectors_bench_run_ledger"
TARGET_RATIO = 1.2

Record = Callable[[Sessionmaker, uuid.UUID, str], Awaitable[None]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run_ledger", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000", help="items per run, comma-separated (default 2000,20000)")
    parser.add_argument("--window", type=int, default=500, help="items timed at the end of each run (default 500)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both ways (default 3)")
    args = parser.parse_args(argv)
    args.sizes = sorted(int(size) for size in args.sizes.split(","))
    if args.sizes[0] <= args.window or args.rounds < 1:
        parser.error("each size must exceed --window, and --rounds be >= 1")
    return args


async def state_map_item(sessionmaker: Sessionmaker, run_id: uuid.UUID, item_id: str) -> None:
    """The baseline: RunLog.item of main before the ledger (outcome 'created')."""
    async with sessionmaker.begin() as session:
        run = await session.scalar(select(Run).where(Run.id == run_id).with_for_update())
        assert run is not None
        done: dict[str, str] = run.state.get("done_items", {})
        if item_id in done:
            return
        run.state = {**run.state, "done_items": {**done, item_id: "created"}}
        run.counts = {**run.counts, "created": run.counts.get("created", 0) + 1}
        session.add(_event(run_id, run.tenant_id, "create", item_id, "Created in Cards.", None))


async def ledger_item(sessionmaker: Sessionmaker, run_id: uuid.UUID, item_id: str) -> None:
    await RunLog(sessionmaker, run_id, {}).item(item_id, "created", "create", item_id, "Created in Cards.")


WAYS: dict[str, Record] = {"state map": state_map_item, "ledger": ledger_item}
PREFILL = {
    # The first items as the baseline held them: one map in the run's state.
    "state map": """UPDATE runs SET state = jsonb_build_object('done_items',
                        (SELECT jsonb_object_agg('p' || i, 'created') FROM generate_series(1, :n) AS i)),
                    counts = jsonb_build_object('total', CAST(:total AS int), 'created', CAST(:n AS int)) WHERE id = :run""",
    "ledger": """INSERT INTO run_items (run_id, item_id, outcome, at)
                 SELECT CAST(:run AS uuid), 'p' || i, 'created', now() FROM generate_series(1, :n) AS i;
                 UPDATE runs SET counts = jsonb_build_object('total', CAST(:total AS int), 'created', CAST(:n AS int))
                 WHERE id = :run""",
}


async def new_run(sessionmaker: Sessionmaker, tenant_id: uuid.UUID, total: int) -> uuid.UUID:
    async with sessionmaker.begin() as session:
        run = Run(tenant_id=tenant_id, connector="cards", operation="users_import", trigger="api", status="running")
        run.counts = {"total": total}
        session.add(run)
    return run.id


async def timed_items(sessionmaker: Sessionmaker, record: Record, run_id: uuid.UUID, first: int, last: int) -> float:
    """Milliseconds per item to record items `first`..`last` one by one."""
    started = time.perf_counter()
    for index in range(first, last + 1):
        await record(sessionmaker, run_id, f"p{index}")
    return (time.perf_counter() - started) * 1000 / (last - first + 1)


async def end_of_run(sessionmaker: Sessionmaker, tenant_id: uuid.UUID, way: str, size: int, window: int) -> float:
    run_id = await new_run(sessionmaker, tenant_id, size)
    async with sessionmaker.begin() as session:
        for statement in PREFILL[way].split(";"):
            await session.execute(text(statement), {"run": run_id, "n": size - window, "total": size})
    return await timed_items(sessionmaker, WAYS[way], run_id, size - window + 1, size)


async def measure(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker.begin() as session:
            tenant = Tenant(slug="ledger", name="Ledger SAS", timezone="Europe/Paris", key_hash=uuid.uuid4().hex,
                            lucca_base_url="https://ledger.ilucca.net", lucca_api_key_encrypted="x",
                            rate_limit_requests=50, rate_limit_per_seconds=60)  # fmt: skip
            session.add(tenant)
        rounds: dict[str, dict[int, list[float]]] = {way: {size: [] for size in args.sizes} for way in WAYS}
        for round_number in range(1, args.rounds + 1):
            for size in args.sizes:
                for way in WAYS:
                    per_item = await end_of_run(sessionmaker, tenant.id, way, size, args.window)
                    rounds[way][size].append(per_item)
                    say(f"round {round_number}: {way}, run of {size}: {per_item:.3f} ms per item (last {args.window})")
        return {"rounds": rounds}
    finally:
        await engine.dispose()


def evaluate(args: argparse.Namespace, measured: dict[str, Any]) -> list[Check]:
    small, large = args.sizes[0], args.sizes[-1]
    median = {way: {size: statistics.median(values) for size, values in sizes.items()}
              for way, sizes in measured["rounds"].items()}  # fmt: skip
    checks = [
        Check(f"{way}: ms per item at {size} (median of {args.rounds})", f"{median[way][size]:.3f}")
        for way in WAYS
        for size in args.sizes
    ]
    baseline = median["state map"][large] / median["state map"][small]
    ledger = median["ledger"][large] / median["ledger"][small]
    return [
        *checks,
        Check(f"state map (baseline): {large} / {small}", f"{baseline:.2f}"),
        Check(f"ledger: {large} / {small}", f"{ledger:.2f}", f"<= {TARGET_RATIO}", ledger <= TARGET_RATIO),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    with Processes(BENCH) as processes:
        config = private_state(processes, DATABASE, {})
        measured = asyncio.run(measure(args, config.database_url))
    checks = evaluate(args, measured)
    print_table(f"Bookkeeping per item, runs of {', '.join(map(str, args.sizes))} items", checks)
    return finish(BENCH, checks, {"args": vars(args), **measured})


if __name__ == "__main__":
    sys.exit(main())
