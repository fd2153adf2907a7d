"""The directory's full sync: Lucca calls, wall time and the worker's peak memory at 2,000 and 20,000 people.

    .venv/bin/python -m bench.directory_sync [--sizes 2000,20000] [--oauth-sizes 20000] [--timeout 900]

For each size, a Lucca sandbox account holds that many generated employees besides the demo's three, at **Lucca's
real limit, 50 calls per 60 s**, and a tenant (API key) reads it. A fresh arq worker is started for that size
alone, then `POST …/lucca/directory/sync` is queued twice, one after the other: the first full sync (everyone
added to the copy), then a second one with nothing changed in Lucca (everyone read again, nobody changed: the
baseline of the same run for what writing the copy costs). The worker's resident-memory high-water mark (VmHWM, from
/proc) after both is what the syncs cost on top of its own start.

Reported per size and sync: Lucca calls by route (target ⌈N/1000⌉ + 2: the user pages, one more when N is a multiple
of 1,000, and the departments), 429s, the run's counts, wall time (run start → end); then the worker's peak memory
(target < 300 MB) and its growth from the smaller size to the larger (flat in N: target < 25 MB). Exit status 0 when
every target holds, 1 otherwise.

Then, for each `--oauth-sizes`, the same through OAuth alone (a tenant without a key: v5 employees 100 a page with
their job position and employment embedded, v5 departments), one full sync: its calls by route (reported against
⌈N/100⌉ + 2, with the token requests apart, which do not count in Lucca's limit), wall time (at 50 calls a minute it
spans several job attempts, each going on after the last page written) and the worker's peak memory.
"""

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from app.sandbox.demo import DEMO_API_KEY, DEMO_OAUTH_CLIENT_ID, DEMO_OAUTH_CLIENT_SECRET, directory_seed_payload
from bench.harness import (
    Check,
    Processes,
    ServiceConfig,
    Tenant,
    calls_by_route,
    create_tenant,
    exit_on_sigterm,
    finish,
    full_sync,
    peak_memory_mb,
    people_sizes,
    print_table,
    private_state,
    sandbox_calls,
    say,
    seed_lucca,
    start_api,
    start_lucca_sandbox,
    start_worker,
    worker_started,
)

BENCH = "directory_sync"
DATABASE = "lucca_connectors_bench_directory"
LUCCA_WINDOW_SECONDS = 60
LUCCA_REQUESTS = 50
LUCCA_PAGE = 1000
V5_PAGE = 100
GRANT_ROUTE = "POST /connect/token"
MAX_PEAK_MB = 300.0
MAX_GROWTH_MB = 25.0
SERVICE_SETTINGS = {"API_DATABASE_POOL_SIZE": "5", "WORKER_MAX_JOBS": "4"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.directory_sync", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=people_sizes, default="2000,20000", help="generated employees per account")
    parser.add_argument(
        "--oauth-sizes", type=people_sizes, default="20000", help="people read through OAuth alone ('' for none)"
    )
    parser.add_argument("--timeout", type=int, default=900, help="seconds to wait for one sync (default 900)")
    args = parser.parse_args(argv)
    if not 30 <= args.timeout <= 7200:
        parser.error("--timeout must be 30..7200 s")
    return args


@dataclass(frozen=True)
class Sync:
    """One full sync: its run and the Lucca calls it made."""

    run: dict[str, Any]
    run_seconds: float | None
    calls_by_route: dict[str, int]
    too_many: int

    @property
    def calls(self) -> int:
        """Calls that count in Lucca's limit (token requests do not)."""
        return sum(count for route, count in self.calls_by_route.items() if route != GRANT_ROUTE)


@dataclass(frozen=True)
class SizeRun:
    employees: int
    users: int
    oauth: bool
    syncs: list[Sync]
    worker_start_mb: float | None
    worker_peak_mb: float | None

    @property
    def target_calls(self) -> int:
        return math.ceil(self.users / (V5_PAGE if self.oauth else LUCCA_PAGE)) + 2


def sync_one_size(
    processes: Processes, config: ServiceConfig, sandbox_url: str, control: httpx.Client, api: httpx.Client,
    employees: int, timeout: float, oauth: bool = False,
) -> SizeRun:  # fmt: skip
    account = f"bench-directory-{employees}{'-oauth' if oauth else ''}"
    seed = directory_seed_payload(employees, window_seconds=LUCCA_WINDOW_SECONDS, requests_per_window=LUCCA_REQUESTS)
    seed_lucca(control, account, seed)
    lucca: dict[str, Any] = {"base_url": f"{sandbox_url}/{account}",
                             "rate_limit": {"requests": LUCCA_REQUESTS, "per_seconds": LUCCA_WINDOW_SECONDS}}  # fmt: skip
    if oauth:
        lucca["oauth"] = {"client_id": DEMO_OAUTH_CLIENT_ID, "client_secret": DEMO_OAUTH_CLIENT_SECRET,
                          "token_url": f"{sandbox_url}/{account}/connect/token"}  # fmt: skip
    else:
        lucca["api_key"] = DEMO_API_KEY
    tenant = create_tenant(api, config, account.removeprefix("bench-"), lucca)
    worker = start_worker(processes, config, name=f"worker-{tenant.slug}")
    start_mb = worker_started(worker)
    syncs = [counted_full_sync(control, api, tenant, account, timeout) for _ in range(1 if oauth else 2)]
    peak_mb = peak_memory_mb(worker)
    worker.stop()
    return SizeRun(employees, len(seed["users"]), oauth, syncs, start_mb, peak_mb)


def counted_full_sync(control: httpx.Client, api: httpx.Client, tenant: Tenant, account: str, timeout: float) -> Sync:
    calls_before = len(sandbox_calls(control, "lucca", account)["items"])
    say(f"{tenant.slug}: full sync queued (waiting up to {timeout:.0f} s)")
    progress = full_sync(api, tenant, timeout)
    calls = sandbox_calls(control, "lucca", account)["items"][calls_before:]
    return Sync(
        run=progress.run,
        run_seconds=progress.seconds(),
        calls_by_route=calls_by_route(calls),
        too_many=sum(1 for call in calls if call["status"] == 429),
    )


def run_benchmark(args: argparse.Namespace) -> list[SizeRun]:
    with Processes(BENCH) as processes:
        config = private_state(processes, DATABASE, SERVICE_SETTINGS)
        sandbox = start_lucca_sandbox(processes, LUCCA_WINDOW_SECONDS, LUCCA_REQUESTS)
        api = start_api(processes, config)
        with (
            httpx.Client(base_url=sandbox.url, timeout=300.0) as control,
            httpx.Client(base_url=api.url, timeout=60.0) as client,
        ):
            return [
                *(sync_one_size(processes, config, sandbox.url, control, client, size, args.timeout)
                  for size in args.sizes),
                *(sync_one_size(processes, config, sandbox.url, control, client, size, args.timeout, oauth=True)
                  for size in args.oauth_sizes),
            ]  # fmt: skip


def megabytes(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} MB"


def evaluate(measured: list[SizeRun]) -> list[Check]:
    checks = []
    for one in measured:
        label = f"{one.users:,} people{' through OAuth alone' if one.oauth else ''}"
        for sync, (name, outcome) in zip(one.syncs, (("first sync", "added"), ("again, unchanged", "skipped")),
                                         strict=False):  # fmt: skip
            counts = {key: value for key, value in sync.run["counts"].items() if value}
            routes = ", ".join(f"{route} x{count}" for route, count in sync.calls_by_route.items())
            checks += [
                Check(f"{label}, {name}: run", f"{sync.run['status']}, {counts}", f"succeeded, {outcome} {one.users:,}",
                      sync.run["status"] == "succeeded" and counts.get(outcome) == one.users),
                Check(f"{label}, {name}: Lucca calls", f"{sync.calls} ({routes})", f"<= {one.target_calls}",
                      sync.calls <= one.target_calls),
                Check(f"{label}, {name}: 429s", str(sync.too_many), "0", sync.too_many == 0),
                Check(f"{label}, {name}: wall time (run start -> end)", f"{sync.run_seconds or 0:.1f} s"),
            ]  # fmt: skip
        checks.append(
            Check(f"{label}: worker peak memory, its syncs (after start-up)",
                  f"{megabytes(one.worker_peak_mb)} ({megabytes(one.worker_start_mb)})", f"< {MAX_PEAK_MB:.0f} MB",
                  one.worker_peak_mb is not None and one.worker_peak_mb < MAX_PEAK_MB)
        )  # fmt: skip
    by_key = [one for one in measured if not one.oauth]
    peaks = [one.worker_peak_mb for one in by_key if one.worker_peak_mb is not None]
    if len(by_key) > 1 and len(peaks) == len(by_key):
        growth = max(peaks) - min(peaks)
        sizes = f"{by_key[0].users:,} -> {by_key[-1].users:,}"
        checks.append(Check(f"peak memory growth {sizes}", f"{growth:.1f} MB", f"< {MAX_GROWTH_MB:.0f} MB",
                            growth < MAX_GROWTH_MB))  # fmt: skip
    return checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    started = time.time()
    measured = run_benchmark(args)
    checks = evaluate(measured)
    print_table(f"Directory full sync at Lucca's limit ({LUCCA_REQUESTS} calls / {LUCCA_WINDOW_SECONDS} s)", checks)
    results = {"options": vars(args), "seconds": time.time() - started, "sizes": [asdict(one) for one in measured]}
    return finish(BENCH, checks, results)


if __name__ == "__main__":
    sys.exit(main())
