"""1,000 tenants polling Lucca every 60 s on one worker: the worker's CPU share and each tenant's poll interval.

    .venv/bin/python -m bench.directory_polling [--tenants 1000] [--seconds 180] [--warmup 75]

A sandbox with one Lucca account per tenant (the demo's directory), the API, a Redis of the benchmark's own, and
one worker (`WORKER_MAX_JOBS` 10). The tenants are made through the API with an API key and `poll_seconds` 60; their
copy is marked as filled by a full sync (the polls only need that), so the poller's first pass gives each its place
in the minute. Baseline, same run: the worker's CPU share while it has nothing to poll (its 2-second passes alone).
After `--warmup` seconds (every tenant has polled once), the worker's CPU is measured for `--seconds`, and every
tenant's polls are read from the sandbox's call log (`GET /api/v3/users`): the intervals between a tenant's polls
(target 60 ± 10 s, every one), and how many seconds of the minute the polls spread over.
"""

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from collections import Counter
from typing import Any

import asyncpg
import httpx

from app.sandbox.demo import DEMO_API_KEY, demo_seed_payload
from bench.harness import (
    BenchError,
    Check,
    CpuSnapshot,
    CpuUse,
    Processes,
    ServiceConfig,
    exit_on_sigterm,
    finish,
    print_table,
    private_state,
    run_reporting_failure,
    say,
    start_api,
    start_lucca_sandbox,
    start_worker,
)

BENCH = "directory_polling"
DATABASE = "lucca_connectors_bench_polling"
POLL_SECONDS = 60
TOLERANCE_SECONDS = 10
IDLE_SECONDS = 15
CONCURRENT_SETUP = 16
SERVICE_SETTINGS = {"API_DATABASE_POOL_SIZE": "10", "WORKER_MAX_JOBS": "10"}
FILLED = """
    INSERT INTO directory_states (tenant_id, sync_progress, webhook_status, notices, updated_at, last_full_sync_at,
                                  fresh_at)
    SELECT id, 0, 'none', '[]', now(), now(), now() FROM tenants WHERE deleted_at IS NULL
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.directory_polling", description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=180, help="measured this long after the warm-up")
    parser.add_argument("--warmup", type=int, default=75, help="seconds for every tenant to poll once first")
    return parser.parse_args(argv)


async def set_up(api_url: str, sandbox_url: str, config: ServiceConfig, tenants: int) -> None:
    """The sandbox accounts and the tenants, `CONCURRENT_SETUP` at a time."""
    limit = asyncio.Semaphore(CONCURRENT_SETUP)
    seed = demo_seed_payload()
    async with httpx.AsyncClient(timeout=30) as http:

        async def one(number: int) -> None:
            name = f"poll-{number:04d}"
            async with limit:
                seeded = await http.put(f"{sandbox_url}/_sandbox/lucca/accounts/{name}", json=seed)
                lucca = {"base_url": f"{sandbox_url}/{name}", "api_key": DEMO_API_KEY, "poll_seconds": POLL_SECONDS}
                body = {"slug": name, "name": name, "lucca": lucca}
                created = await http.post(f"{api_url}/api/v1/tenants", json=body, headers=config.admin_auth)
            if seeded.status_code != 204 or created.status_code != 201:
                raise BenchError(
                    f"setting up {name}: {seeded.status_code} / {created.status_code} {created.text[:200]}"
                )

        await asyncio.gather(*(one(number) for number in range(tenants)))


async def mark_filled(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(FILLED)
    finally:
        await connection.close()


async def poll_times(sandbox_url: str, tenants: int) -> dict[str, list[float]]:
    """Each account's `GET /api/v3/users` times, from the sandbox's call log."""
    limit = asyncio.Semaphore(CONCURRENT_SETUP)
    found: dict[str, list[float]] = {}
    async with httpx.AsyncClient(timeout=30) as http:

        async def one(number: int) -> None:
            name = f"poll-{number:04d}"
            async with limit:
                answer = await http.get(f"{sandbox_url}/_sandbox/lucca/accounts/{name}/calls")
            calls = answer.json()["items"]
            found[name] = sorted(call["at"] for call in calls if call["path"] == "/api/v3/users")

        await asyncio.gather(*(one(number) for number in range(tenants)))
    return found


def cpu_over(pid: int, seconds: float) -> CpuUse:
    before = CpuSnapshot.take(pid)
    time.sleep(seconds)
    return CpuUse.between(before, CpuSnapshot.take(pid))


def run(args: argparse.Namespace) -> int:
    exit_on_sigterm()
    with Processes(BENCH) as processes:
        config = private_state(processes, DATABASE, SERVICE_SETTINGS)
        sandbox = start_lucca_sandbox(processes, 60, 50)
        api = start_api(processes, config)
        say(f"setting up {args.tenants} tenants and sandbox accounts")
        asyncio.run(set_up(api.url, sandbox.url, config, args.tenants))
        worker = start_worker(processes, config)
        time.sleep(5)  # its start-up
        idle = cpu_over(worker.process.pid, IDLE_SECONDS)
        asyncio.run(mark_filled(config.postgres_url))
        started = time.time()
        say(f"polling every {POLL_SECONDS} s: {args.warmup} s of warm-up, then {args.seconds} s measured")
        time.sleep(args.warmup)
        measured_from = time.time()
        busy = cpu_over(worker.process.pid, args.seconds)
        times = asyncio.run(poll_times(sandbox.url, args.tenants))
        if not worker.alive():
            raise BenchError(f"the worker died:\n{worker.tail()}")
    checks, results = report(args, idle, busy, times, started, measured_from)
    print_table(f"{args.tenants} tenants polling every {POLL_SECONDS} s on one worker", checks)
    return finish(BENCH, checks, results)


def report(
    args: argparse.Namespace,
    idle: CpuUse,
    busy: CpuUse,
    times: dict[str, list[float]],
    started: float,
    measured_from: float,
) -> tuple[list[Check], dict[str, Any]]:
    intervals = [later - earlier for polls in times.values() for earlier, later in itertools.pairwise(polls)]
    steady = [
        later - earlier
        for polls in times.values()
        for earlier, later in itertools.pairwise(polls)
        if earlier >= measured_from
    ]
    never = sum(1 for polls in times.values() if not polls)
    phases = Counter(int((polls[0] - started) % POLL_SECONDS) for polls in times.values() if polls)
    within = [value for value in steady if abs(value - POLL_SECONDS) <= TOLERANCE_SECONDS]
    share = busy.process_core_share
    checks = [
        Check("worker CPU share, idle baseline", f"{(idle.process_core_share or 0) * 100:.1f} % of a core"),
        Check("worker CPU share, polling", f"{(share or 0) * 100:.1f} % of a core"),
        Check("machine busy while polling", f"{(busy.machine_busy_share or 0) * 100:.0f} %"),
        Check("tenants that never polled", f"{never}", "0", never == 0),
        Check("poll intervals measured", f"{len(steady)}"),
        Check(
            "poll interval min / p50 / max",
            f"{min(steady, default=0):.1f} / {statistics.median(steady) if steady else 0:.1f} / {max(steady, default=0):.1f} s",
            f"{POLL_SECONDS} ± {TOLERANCE_SECONDS} s",
            bool(steady) and len(within) == len(steady),
        ),
        Check(
            "seconds of the minute the first polls fell in",
            f"{len(phases)} of 60 (busiest: {max(phases.values(), default=0)} tenants)",
        ),
    ]
    results = {
        "tenants": args.tenants,
        "seconds": args.seconds,
        "idle_cpu": idle.__dict__,
        "polling_cpu": busy.__dict__,
        "intervals_all": intervals,
        "intervals_measured": steady,
        "phases": dict(phases),
    }
    return checks, results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_reporting_failure(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
