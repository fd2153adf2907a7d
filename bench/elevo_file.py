"""Lucca → Elevo: the people file of 2,000 and 20,000 employees, at Lucca's real limit, into the sandbox's SFTP server.

    .venv/bin/python -m bench.elevo_file [--sizes 2000,20000] [--timeout 600]

For each size, a Lucca sandbox account holds that many generated employees besides the demo's three (one in nine
has left, so is listed as departed and left out) at **Lucca's real limit, 50 calls per 60 s**, and a tenant has an
Elevo connector uploading to the sandbox's SFTP server (`python -m app.sandbox --sftp-port`, password sign-in, the
host key pinned). A fresh arq worker is started for that size alone; it first runs the directory's full sync that
enabling the connector queued (the Lucca reading: its calls are reported apart, target ⌈users / 1000⌉ + 2); the
directory's polls are then put off, and `POST …/elevo/sync` is queued twice, one after the other: the first file
(everyone created), then the next night's (everyone sent again, the last file's list read back and replaced). Both
files are built from the directory's copy.
The worker's resident-memory high-water mark (VmHWM, from /proc) after all three is what the sync and those files
cost on top of its own start.

Reported per size and night: Lucca calls of the night itself (target 0: it reads the copy), 429s, the file's rows
and size as uploaded, the run's counts, wall time (run start → end; worker start → first file, the full sync
included); then the worker's peak memory (target < 200 MB) and its growth from the smaller size to the larger (flat
in N: target < 25 MB). Exit status 0 when every target holds, 1 otherwise.
"""

import argparse
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from app.sandbox.demo import DEMO_API_KEY, directory_seed_payload
from app.sandbox.sftp import demo_sftp
from bench.harness import (
    HOST,
    Check,
    Processes,
    ServiceConfig,
    Tenant,
    calls_by_route,
    create_connector_tenant,
    exit_on_sigterm,
    expect,
    finish,
    first_full_sync,
    free_port,
    peak_memory_mb,
    people_sizes,
    prepare_state,
    print_table,
    put_off_polls,
    sandbox_calls,
    say,
    seed_lucca,
    start_api,
    start_sandbox,
    start_worker,
    succeeded,
    wait_for_run,
    worker_started,
)

BENCH = "elevo_file"
DATABASE = "lucca_connectors_bench_elevo"
REDIS_DB = 10
# Lucca's documented limit, unscaled: the file's few calls fit in one window.
LUCCA_WINDOW_SECONDS = 60
LUCCA_REQUESTS = 50
LUCCA_PAGE = 1000
FULL_SYNC_TIMEOUT_SECONDS = 600
MAX_PEAK_MB = 200.0
MAX_GROWTH_MB = 25.0
# Small pools: Postgres's 100 connections are shared with everything else on the machine.
SERVICE_SETTINGS = {"API_DATABASE_POOL_SIZE": "5", "WORKER_MAX_JOBS": "4"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.elevo_file", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=people_sizes, default="2000,20000", help="generated employees per account")
    parser.add_argument("--timeout", type=int, default=600, help="seconds to wait for one sync (default 600)")
    args = parser.parse_args(argv)
    if not args.sizes or not 30 <= args.timeout <= 7200:
        parser.error("--sizes must name at least one size and --timeout be 30..7200 s")
    return args


@dataclass(frozen=True)
class Night:
    """One sync: its run, the Lucca calls it made, the file Elevo received."""

    run: dict[str, Any]
    run_seconds: float | None
    calls_by_route: dict[str, int]
    too_many: int
    file_rows: int
    file_bytes: int

    @property
    def calls(self) -> int:
        return sum(self.calls_by_route.values())


@dataclass(frozen=True)
class FileRun:
    """One size: the first file, the next night's (everyone sent again), and the worker's memory across both."""

    employees: int
    users: int
    full_sync_calls: dict[str, int]
    nights: list[Night]
    worker_seconds: float
    worker_start_mb: float | None
    worker_peak_mb: float | None

    @property
    def full_sync_target(self) -> int:
        """The user pages (one more when N is a multiple of 1,000) and the departments."""
        return math.ceil(self.users / LUCCA_PAGE) + 2


def sync_one_size(
    processes: Processes,
    config: ServiceConfig,
    sandbox_url: str,
    control: httpx.Client,
    api: httpx.Client,
    sftp: tuple[dict[str, object], Path],
    employees: int,
    timeout: float,
) -> FileRun:
    account = f"bench-elevo-{employees}"
    seed = directory_seed_payload(employees, window_seconds=LUCCA_WINDOW_SECONDS, requests_per_window=LUCCA_REQUESTS)
    seed_lucca(control, account, seed)
    settings, root = sftp
    remote_dir = root / account
    remote_dir.mkdir()
    lucca = {"base_url": f"{sandbox_url}/{account}", "api_key": DEMO_API_KEY,
             "rate_limit": {"requests": LUCCA_REQUESTS, "per_seconds": LUCCA_WINDOW_SECONDS}}  # fmt: skip
    connector = {"sftp": {**settings, "remote_dir": f"/{account}"}, "schedule_enabled": False}
    tenant = create_connector_tenant(api, config, f"elevo-{employees}", lucca, "elevo", connector)
    worker = start_worker(processes, config, name=f"worker-{employees}")
    started = time.time()
    start_mb = worker_started(worker)
    say(f"{tenant.slug}: waiting for the directory's first full sync")
    first_full_sync(api, tenant, FULL_SYNC_TIMEOUT_SECONDS)
    put_off_polls(config, tenant.slug)
    full_sync_calls = calls_by_route(sandbox_calls(control, "lucca", account)["items"])
    nights = [sync_night(control, api, tenant, account, remote_dir, timeout) for _ in range(2)]
    peak_mb = peak_memory_mb(worker)
    worker.stop()
    ended = datetime.fromisoformat(nights[0].run["finished_at"]).timestamp()
    return FileRun(employees, len(seed["users"]), full_sync_calls, nights, ended - started, start_mb, peak_mb)


def sync_night(
    control: httpx.Client, api: httpx.Client, tenant: Tenant, account: str, remote_dir: Path, timeout: float
) -> Night:
    """Queue a sync, wait for it, take the file in (as Elevo does) and count the Lucca calls it made."""
    calls_before = len(sandbox_calls(control, "lucca", account)["items"])
    answer = expect(api.post(f"/api/v1/tenants/{tenant.slug}/elevo/sync", headers=tenant.auth), 202, "queue a sync")
    say(f"{tenant.slug}: sync queued (waiting up to {timeout:.0f} s)")
    progress = succeeded(
        wait_for_run(api, tenant, str(answer["run_id"]), timeout, every=0.5), f"the sync of {tenant.slug}"
    )
    [uploaded] = [path for path in remote_dir.iterdir() if path.suffix == ".csv"]
    content = uploaded.read_bytes()
    uploaded.unlink()
    calls = sandbox_calls(control, "lucca", account)["items"][calls_before:]
    return Night(
        run=progress.run,
        run_seconds=progress.seconds(),
        calls_by_route=calls_by_route(calls),
        too_many=sum(1 for call in calls if call["status"] == 429),
        file_rows=content.count(b"\r\n") - 1,
        file_bytes=len(content),
    )


def run_benchmark(args: argparse.Namespace, config: ServiceConfig, sftp_dir: Path) -> list[FileRun]:
    with Processes(BENCH) as processes:
        sftp_port = free_port()
        sandbox = start_sandbox(
            processes, LUCCA_WINDOW_SECONDS, LUCCA_REQUESTS, "--no-demo",
            *("--sftp-port", str(sftp_port), "--sftp-dir", str(sftp_dir)),
        )  # fmt: skip
        api = start_api(processes, config)
        sftp = demo_sftp(HOST, sftp_port, sftp_dir)
        with (
            httpx.Client(base_url=sandbox.url, timeout=300.0) as control,
            httpx.Client(base_url=api.url, timeout=60.0) as client,
        ):
            return [
                sync_one_size(processes, config, sandbox.url, control, client, sftp, size, args.timeout)
                for size in args.sizes
            ]


def megabytes(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} MB"


def evaluate(measured: list[FileRun]) -> list[Check]:
    checks = []
    for one in measured:
        label = f"{one.employees:,} employees ({one.users:,} Lucca users)"
        current = sum(1 for index in range(one.employees) if index % 9 != 8) + 2  # the demo's Claire and Jean
        full_sync = sum(one.full_sync_calls.values())
        full_routes = ", ".join(f"{route} x{count}" for route, count in one.full_sync_calls.items())
        checks.append(Check(f"{label}, the directory's first full sync: Lucca calls", f"{full_sync} ({full_routes})",
                            f"<= {one.full_sync_target}", full_sync <= one.full_sync_target))  # fmt: skip
        for night, (name, outcome) in zip(
            one.nights, (("first file", "created"), ("next night", "updated")), strict=True
        ):
            counts = {key: value for key, value in night.run["counts"].items() if value}
            routes = ", ".join(f"{route} x{count}" for route, count in night.calls_by_route.items())
            checks += [
                Check(f"{label}, {name}: run", f"{night.run['status']}, {counts}", f"succeeded, {outcome} {current:,}",
                      night.run["status"] == "succeeded" and counts.get(outcome) == current),
                Check(f"{label}, {name}: file rows; bytes", f"{night.file_rows:,}; {night.file_bytes:,}",
                      f"{current:,} rows", night.file_rows == current),
                Check(f"{label}, {name}: Lucca calls", f"{night.calls} ({routes})", "0 (the copy)", night.calls == 0),
                Check(f"{label}, {name}: 429s", str(night.too_many), "0", night.too_many == 0),
                Check(f"{label}, {name}: wall time (run start -> end)", f"{night.run_seconds or 0:.1f} s"),
            ]  # fmt: skip
        checks += [
            Check(f"{label}: worker start -> first file uploaded", f"{one.worker_seconds:.1f} s"),
            Check(f"{label}: worker peak memory, the full sync and both nights (after start-up)",
                  f"{megabytes(one.worker_peak_mb)} ({megabytes(one.worker_start_mb)})", f"< {MAX_PEAK_MB:.0f} MB",
                  one.worker_peak_mb is not None and one.worker_peak_mb < MAX_PEAK_MB),
        ]  # fmt: skip
    peaks = [one.worker_peak_mb for one in measured if one.worker_peak_mb is not None]
    if len(measured) > 1 and len(peaks) == len(measured):
        growth = max(peaks) - min(peaks)
        sizes = f"{measured[0].employees:,} -> {measured[-1].employees:,}"
        checks.append(Check(f"peak memory growth {sizes}", f"{growth:.1f} MB", f"< {MAX_GROWTH_MB:.0f} MB",
                            growth < MAX_GROWTH_MB))  # fmt: skip
    return checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    config = ServiceConfig(database=DATABASE, redis_db=REDIS_DB, settings=SERVICE_SETTINGS)
    prepare_state(config)
    with tempfile.TemporaryDirectory(prefix="bench-elevo-") as sftp_dir:
        measured = run_benchmark(args, config, Path(sftp_dir))
    checks = evaluate(measured)
    print_table(f"Elevo people file at Lucca's limit ({LUCCA_REQUESTS} calls / {LUCCA_WINDOW_SECONDS} s)", checks)
    results = {"options": vars(args), "syncs": [asdict(one) for one in measured]}
    return finish(BENCH, checks, results)


if __name__ == "__main__":
    sys.exit(main())
