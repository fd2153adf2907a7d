"""The Cards users listing of 20,000 employees: from the directory's copy, against the listing that read Lucca.

    .venv/bin/python -m bench.directory_listing [--employees 20000] [--rounds 10] [--per-round 5]

A Lucca sandbox account holds `--employees` generated employees besides the demo's three (one in nine has left); a
tenant on it has a Cards connector, whose enabling starts the directory's first full sync (a worker runs it). Then,
in `--rounds` alternating rounds (this machine's speed drifts from one minute to the next), the same listing
`GET …/cards/users` is asked `--per-round` times of this code (the copy) and once of **the code before the copy**
(commit 30db6bc, extracted with `git archive` into a temporary directory and served by a second uvicorn process on
the same database and Redis: it reads Lucca while the caller waits). The tenant's Lucca rate limit is raised far
above the sandbox's traffic here, so the old listing's time is Lucca's pages, not the budget's waits (at Lucca's
real 50 calls a minute, a listing of 20,000 costs 21 of them).

Reported: p50 and p99 answer time of each (target: p99 < 300 ms from the copy), the Lucca calls each made (target:
0 from the copy), the rows returned (both the same). Exit status 0 when every target holds, 1 otherwise.
"""

import argparse
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx

from app.sandbox.demo import DEMO_API_KEY, directory_seed_payload
from bench.harness import (
    HOST,
    ROOT,
    Check,
    CpuSnapshot,
    CpuUse,
    Endpoint,
    Processes,
    ServiceConfig,
    Tenant,
    create_connector_tenant,
    exit_on_sigterm,
    expect,
    finish,
    first_full_sync,
    free_port,
    percentile,
    print_table,
    private_state,
    sandbox_calls,
    say,
    seed_lucca,
    start_api,
    start_lucca_sandbox,
    start_worker,
    wait_ready,
)

BENCH = "directory_listing"
DATABASE = "lucca_connectors_bench_listing"
BEFORE_THE_COPY = "30db6bc"
ACCOUNT = "bench-listing"
MAX_P99_MS = 300.0
# Far above what the rounds use: the old listing is timed without waiting on the budget.
LUCCA_LIMIT = {"requests": 100_000, "per_seconds": 60}
CARDS = {"api_base_url": "http://127.0.0.1:9/cards", "api_token": "cards-token", "space_id": "bench-space"}
SERVICE_SETTINGS = {"API_DATABASE_POOL_SIZE": "5", "WORKER_MAX_JOBS": "4"}
FULL_SYNC_TIMEOUT_SECONDS = 600


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.directory_listing", description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=20_000, help="generated employees (default 20000)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds (default 10)")
    parser.add_argument("--per-round", type=int, default=5, help="listings from the copy per round (default 5)")
    args = parser.parse_args(argv)
    if not 1 <= args.employees <= 100_000 or not 1 <= args.rounds <= 100 or not 1 <= args.per_round <= 100:
        parser.error("--employees must be 1..100000, --rounds and --per-round 1..100")
    return args


@dataclass(frozen=True)
class Listings:
    """One way of answering the listing: each answer's time, the rows, and the Lucca calls they made."""

    label: str
    milliseconds: list[float]
    rows: int
    lucca_calls: int
    # CPU time of the API process answering, per listing (the machine's other load does not change it much).
    cpu_ms_per_listing: float
    # How busy the whole machine was while these were measured.
    machine_busy: float

    def percentile(self, share: float) -> float:
        return percentile(self.milliseconds, share)


def code_before_the_copy(target: Path) -> Path:
    """The service as it was before the copy (its `app` package), extracted read-only from git."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", BEFORE_THE_COPY, "app"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def start_old_api(processes: Processes, config: ServiceConfig, code: Path) -> Endpoint:
    """uvicorn serving the old code (`--app-dir` puts it first on the path) on the same database and Redis."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "app.main:app", "--app-dir", str(code), "--host", HOST,
            "--port", str(port), "--no-access-log"]  # fmt: skip
    service = processes.start("api-before-the-copy", argv, config.environ())
    endpoint = Endpoint(service, f"http://{HOST}:{port}")
    wait_ready(service, f"{endpoint.url}/readyz")
    return endpoint


def timed_listing(api: httpx.Client, tenant: Tenant) -> tuple[float, int]:
    started = time.perf_counter()
    body = expect(api.get(f"/api/v1/tenants/{tenant.slug}/cards/users", headers=tenant.auth), 200, "the listing")
    return (time.perf_counter() - started) * 1000, len(body["items"])


def measure(args: argparse.Namespace, old_code: Path) -> tuple[Listings, Listings, dict[str, Any]]:
    with Processes(BENCH) as processes:
        config = private_state(processes, DATABASE, SERVICE_SETTINGS)
        sandbox = start_lucca_sandbox(processes, 60, 100_000)
        api = start_api(processes, config)
        old_api = start_old_api(processes, config, old_code)
        start_worker(processes, config)
        with (
            httpx.Client(base_url=sandbox.url, timeout=300.0) as control,
            httpx.Client(base_url=api.url, timeout=120.0) as new,
            httpx.Client(base_url=old_api.url, timeout=120.0) as old,
        ):
            seed_lucca(control, ACCOUNT, directory_seed_payload(args.employees))
            lucca = {"base_url": f"{sandbox.url}/{ACCOUNT}", "api_key": DEMO_API_KEY, "rate_limit": LUCCA_LIMIT}
            tenant = create_connector_tenant(new, config, "listing", lucca, "cards", CARDS)
            say(f"{args.employees:,} employees: waiting for the first full sync")
            sync = first_full_sync(new, tenant, FULL_SYNC_TIMEOUT_SECONDS).run
            times: dict[str, list[float]] = {"copy": [], "lucca": []}
            calls = {"copy": 0, "lucca": 0}
            rows = {"copy": 0, "lucca": 0}
            uses: dict[str, list[CpuUse]] = {"copy": [], "lucca": []}
            sides = (("copy", new, api, args.per_round), ("lucca", old, old_api, 1))
            for round_number in range(args.rounds):
                for label, client, endpoint, repeat in sides:
                    before = len(sandbox_calls(control, "lucca", ACCOUNT)["items"])
                    cpu = CpuSnapshot.take(endpoint.service.process.pid)
                    for _ in range(repeat):
                        milliseconds, rows[label] = timed_listing(client, tenant)
                        times[label].append(milliseconds)
                    uses[label].append(CpuUse.between(cpu, CpuSnapshot.take(endpoint.service.process.pid)))
                    calls[label] += len(sandbox_calls(control, "lucca", ACCOUNT)["items"]) - before
                say(f"round {round_number + 1}/{args.rounds}: copy {times['copy'][-1]:.0f} ms, "
                    f"Lucca {times['lucca'][-1]:.0f} ms")  # fmt: skip
    measured = {
        label: Listings(name, times[label], rows[label], calls[label], *cpu_figures(uses[label], len(times[label])))
        for label, name in (("copy", "from the copy"), ("lucca", f"reading Lucca ({BEFORE_THE_COPY})"))
    }
    return measured["copy"], measured["lucca"], sync


def cpu_figures(uses: list[CpuUse], listings: int) -> tuple[float, float]:
    """The API process's CPU milliseconds per listing, and the machine's mean busy share."""
    process = sum(use.process_seconds or 0.0 for use in uses)
    busy = [use.machine_busy_share for use in uses if use.machine_busy_share is not None]
    return process * 1000 / listings, statistics.mean(busy) if busy else 0.0


def evaluate(copy: Listings, lucca: Listings, sync: dict[str, Any]) -> list[Check]:
    per_listing = lucca.lucca_calls / len(lucca.milliseconds)
    return [
        Check("full sync before (run counts)", str({key: value for key, value in sync["counts"].items() if value})),
        Check(f"rows {copy.label} / {lucca.label}", f"{copy.rows:,} / {lucca.rows:,}", "the same",
              copy.rows == lucca.rows and copy.rows > 0),
        Check(f"listing {copy.label}: p50; p99 ({len(copy.milliseconds)} answers)",
              f"{copy.percentile(0.5):.0f} ms; {copy.percentile(0.99):.0f} ms", f"p99 < {MAX_P99_MS:.0f} ms",
              copy.percentile(0.99) < MAX_P99_MS),
        Check(f"listing {copy.label}: Lucca calls", str(copy.lucca_calls), "0", copy.lucca_calls == 0),
        Check(f"listing {lucca.label}: p50; p99 ({len(lucca.milliseconds)} answers)",
              f"{lucca.percentile(0.5):.0f} ms; {lucca.percentile(0.99):.0f} ms"),
        Check(f"listing {lucca.label}: Lucca calls per listing", f"{per_listing:g}"),
        Check("API process CPU per listing: from the copy / reading Lucca",
              f"{copy.cpu_ms_per_listing:.0f} ms / {lucca.cpu_ms_per_listing:.0f} ms"),
        Check("machine busy while measured (2 cores shared)", f"{copy.machine_busy:.0%} / {lucca.machine_busy:.0%}"),
        Check("p50 reading Lucca / p50 from the copy",
              f"{lucca.percentile(0.5) / max(copy.percentile(0.5), 0.001):.1f}x"),
        Check("mean from the copy (stdev)", f"{statistics.mean(copy.milliseconds):.0f} ms "
              f"({statistics.pstdev(copy.milliseconds):.0f})"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="bench-listing-") as scratch:
        copy, lucca, sync = measure(args, code_before_the_copy(Path(scratch)))
    checks = evaluate(copy, lucca, sync)
    print_table(f"Cards users listing, {args.employees:,} employees", checks)
    results = {"options": vars(args), "copy": asdict(copy), "lucca": asdict(lucca), "full_sync": sync}
    return finish(BENCH, checks, results)


if __name__ == "__main__":
    sys.exit(main())
