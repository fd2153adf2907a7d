"""Elevo following Lucca (push_on_change): from a change in the sandbox's Lucca to the Elevo file holding it.

    .venv/bin/python -m bench.elevo_push [--changes 100] [--span-seconds 180] [--employees 300]

One sandbox (Lucca's real limit, 50 calls per 60 s per account, and Elevo's SFTP server), one API process, one
worker whose `PUBLIC_BASE_URL` is the API's address, a Redis of the benchmark's own. Two modes run at once, as in
`bench.directory_freshness`: **webhooks** (OAuth alone, its endpoint registered after the full sync) and **polling
at 30 s** (API key, `poll_seconds` 30). Each mode has two tenants on two sandbox accounts of the same directory
(`--employees` generated people, all current, each with a work e-mail): the **follower** with an Elevo connector
(`push_on_change`, `min_interval_minutes` 1, its own directory on the SFTP server) and its **twin**, the same
directory without a connector, both filled by a full sync first. The follower's first file (everyone, once its copy
is filled) is left an interval to age.

Then `--changes` people are renamed in both accounts at once, spread evenly over `--span-seconds`. For each rename:
the time until the follower's copy holds it (watched in Postgres every 50 ms: the directory's freshness alone, the
baseline of the same run), and the time until the first file on the SFTP server that holds it (the follower's
directory watched every 50 ms; renames within one interval share a file). What following adds is the file's time
minus the copy's, rename by rename: at most the interval (60 s) after the previous file, plus the poller's 2-second
pass and the build and upload (target p99 < 65 s). Lucca calls: the follower's minus its twin's over the same time,
per rename (target none: the file is built from the copy). For the twins to spend the same, the directory's reads
that follow no change are put off while the renames are followed (the safety-net poll beside webhooks, the
departments' 15-minute read): what is left is the event reads (the same in both) and the polls (one call each, on
each tenant's own 30-second grid: the twins may differ by one). Every file uploaded is checked to differ from the
others.
Exit status 0 when every target holds.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from app.sandbox.demo import (
    DEMO_API_KEY,
    DEMO_OAUTH_CLIENT_ID,
    DEMO_OAUTH_CLIENT_SECRET,
    current_directory_seed_payload,
)
from app.sandbox.sftp import demo_sftp
from bench.harness import (
    HOST,
    BenchError,
    Check,
    Processes,
    ServiceConfig,
    Watcher,
    calls_by_route,
    create_connector_tenant,
    create_tenant,
    exit_on_sigterm,
    expect,
    finish,
    first_full_sync,
    free_port,
    full_sync,
    percentile,
    print_table,
    private_state,
    put_off_polls,
    run_reporting_failure,
    sandbox_calls,
    say,
    seed_lucca,
    sql_value,
    start_api,
    start_sandbox,
    start_worker,
    tenant_id_of,
    wait_for_webhook,
)

BENCH = "elevo_push"
DATABASE = "lucca_connectors_bench_elevo_push"
LUCCA_WINDOW_SECONDS = 60
LUCCA_REQUESTS = 50
POLL_SECONDS = 30
INTERVAL_MINUTES = 1
# The interval, the poller's 2-second pass, and the file's build and upload.
ADDED_P99_TARGET = 65.0
# Every rename's file: the last rename's copy lag (a poll at most), an interval, and room for a slow machine.
FILE_WAIT_SECONDS = POLL_SECONDS + 60 * INTERVAL_MINUTES + 60
# Calls the twins' directories may differ by: each polls on a grid of its own phase.
CALLS_SPREAD = {"hooks": 0, "polls": 1}
WAIT_SECONDS = 120.0
SERVICE_SETTINGS = {"API_DATABASE_POOL_SIZE": "5", "WORKER_MAX_JOBS": "6"}
MODES = {"hooks": "webhooks", "polls": "polling at 30 s"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.elevo_push", description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=100, help="renames per mode (default 100)")
    parser.add_argument("--span-seconds", type=float, default=180.0, help="over this long (default 180)")
    parser.add_argument("--employees", type=int, default=300, help="generated people per account (default 300)")
    args = parser.parse_args(argv)
    if not 1 <= args.changes <= args.employees or not 0 < args.span_seconds <= 3600:
        parser.error("--changes must be 1..--employees and --span-seconds 0..3600")
    return args


@dataclass
class FileWatcher:
    """Sees renames arrive in files on the SFTP server: each new file is read once, and each rename is credited to
    the first file that holds it (its first name, `Pushed<number>`, as a cell of its own)."""

    directory: Path
    prefix: str
    people: list[int]
    seen: dict[int, float] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def look(self) -> None:
        now = time.time()
        for path in sorted(self.directory.glob("users-*.csv")):
            if path.name in self.files:
                continue
            content = path.read_bytes()
            self.files[path.name] = content
            for number, person in enumerate(self.people):
                if person not in self.seen and f",{self.prefix}{number},".encode() in content:
                    self.seen[person] = now


@dataclass(frozen=True)
class Mode:
    """One mode's follower and twin: their sandbox accounts, the follower's id and SFTP directory, who is renamed."""

    name: str
    account: str
    twin: str
    tenant_id: Any
    remote: Path
    people: list[int]


async def rename_and_follow(
    control: httpx.AsyncClient, database_url: str, mode: Mode, spacing: float, prefix: str
) -> tuple[dict[int, float], dict[int, float], FileWatcher]:
    """Rename the mode's people in both accounts, one every `spacing` s; returns when each rename was made, when the
    follower's copy held it, and the files that held it."""
    connection = await asyncpg.connect(database_url)
    copy = Watcher(connection, mode.tenant_id, prefix)
    files = FileWatcher(mode.remote, prefix, mode.people)
    made: dict[int, float] = {}

    async def rename_all() -> None:
        for number, person in enumerate(mode.people):
            made[person] = time.time()
            for account in (mode.account, mode.twin):
                answer = await control.patch(
                    f"/_sandbox/lucca/accounts/{account}/people/{person}", json={"firstName": f"{prefix}{number}"}
                )
                if answer.status_code != 200:
                    raise BenchError(f"renaming {person} in {account}: {answer.status_code} {answer.text[:200]}")
            await asyncio.sleep(spacing)

    async def watch() -> None:
        everyone = len(mode.people)
        while len(made) < everyone or len(copy.seen) < everyone or len(files.seen) < everyone:
            await copy.look()
            await asyncio.to_thread(files.look)
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(asyncio.gather(rename_all(), watch()), spacing * len(mode.people) + FILE_WAIT_SECONDS)
    except TimeoutError:
        say(f"  {mode.name}: {len(mode.people) - len(files.seen)} rename(s) never reached a file")
    finally:
        await connection.close()
    return made, copy.seen, files


def lucca_account(sandbox_url: str, account: str, mode: str) -> dict[str, Any]:
    """The tenant's `lucca` settings: OAuth alone for webhooks, the API key for polling."""
    base_url = f"{sandbox_url}/{account}"
    if mode == "hooks":
        oauth = {"client_id": DEMO_OAUTH_CLIENT_ID, "client_secret": DEMO_OAUTH_CLIENT_SECRET,
                 "token_url": f"{base_url}/connect/token"}  # fmt: skip
        return {"base_url": base_url, "poll_seconds": POLL_SECONDS, "oauth": oauth}
    return {"base_url": base_url, "poll_seconds": POLL_SECONDS, "api_key": DEMO_API_KEY}


def set_up_mode(
    api: httpx.Client,
    control: httpx.Client,
    config: ServiceConfig,
    sandbox_url: str,
    sftp: tuple[dict[str, object], Path],
    mode: str,
    args: argparse.Namespace,
) -> Mode:
    """The mode's two accounts and tenants, each filled by a full sync; the follower's Elevo connector."""
    settings, root = sftp
    (root / mode).mkdir()
    connector = {"sftp": {**settings, "remote_dir": f"/{mode}"}, "schedule_enabled": False, "push_on_change": True,
                 "min_interval_minutes": INTERVAL_MINUTES}  # fmt: skip
    accounts = {}
    for role in ("follower", "twin"):
        account = f"push-{mode}-{role}"
        seed_lucca(control, account, current_directory_seed_payload(args.employees))
        lucca = lucca_account(sandbox_url, account, mode)
        slug = f"{mode}-{role}"
        say(f"{slug}: full sync of {args.employees} generated people")
        if role == "follower":
            # Enabling the connector queues the directory's first full sync.
            tenant = create_connector_tenant(api, config, slug, lucca, "elevo", connector)
            first_full_sync(api, tenant, WAIT_SECONDS)
        else:
            tenant = create_tenant(api, config, slug, lucca)
            full_sync(api, tenant, WAIT_SECONDS)
        if mode == "hooks":
            wait_for_webhook(api, tenant, WAIT_SECONDS)
        accounts[role] = (account, tenant)
    users = expect(control.get(f"/_sandbox/lucca/accounts/{accounts['follower'][0]}/users"), 200, "users")["items"]
    people = [user["id"] for user in users][: args.changes]
    tenant_id = asyncio.run(tenant_id_of(config.postgres_url, f"{mode}-follower"))
    return Mode(mode, accounts["follower"][0], accounts["twin"][0], tenant_id, root / mode, people)


def first_files_aged(modes: list[Mode]) -> None:
    """Wait for each follower's first file (its whole directory, sent once the full sync filled the copy), then for
    the interval after the newest: the first rename then finds the follower idle, as a change usually does."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not all(any(mode.remote.glob("users-*.csv")) for mode in modes):
        if time.monotonic() > deadline:
            raise BenchError("a follower's first file did not arrive")
        time.sleep(0.2)
    newest = max(path.stat().st_mtime for mode in modes for path in mode.remote.glob("users-*.csv"))
    wait = newest + 60 * INTERVAL_MINUTES - time.time()
    say(f"the followers' first files are there; waiting {max(wait, 0):.0f} s for their interval to pass")
    time.sleep(max(wait, 0))


def put_off_unprompted_reads(config: ServiceConfig, modes: list[Mode]) -> None:
    """The directory's reads that no change prompts, put off in both twins alike: the safety-net poll beside
    webhooks (the events bring the changes), and every tenant's departments read (its 15 minutes start now)."""
    for mode in modes:
        if mode.name == "hooks":
            for role in ("follower", "twin"):
                put_off_polls(config, f"{mode.name}-{role}")
    sql_value(config, "UPDATE directory_states SET departments_polled_at = now() RETURNING 1")


@dataclass(frozen=True)
class Followed:
    """What one mode measured: renames made, in the copy, in a file; the files; Lucca calls of both tenants."""

    made: dict[int, float]
    in_copy: dict[int, float]
    in_file: dict[int, float]
    files: dict[str, bytes]
    follower_calls: list[dict[str, Any]]
    twin_calls: list[dict[str, Any]]


def follow_modes(
    control_url: str, config: ServiceConfig, modes: list[Mode], args: argparse.Namespace
) -> dict[str, Followed]:
    spacing = args.span_seconds / args.changes

    async def both() -> list[tuple[dict[int, float], dict[int, float], FileWatcher]]:
        async with httpx.AsyncClient(base_url=control_url, timeout=30) as control:
            return await asyncio.gather(
                *(rename_and_follow(control, config.postgres_url, mode, spacing, "Pushed") for mode in modes)
            )

    with httpx.Client(base_url=control_url, timeout=30) as control:
        for mode in modes:
            for account in (mode.account, mode.twin):
                expect(control.delete(f"/_sandbox/lucca/accounts/{account}/calls"), 204, "clear calls")
        measured = asyncio.run(both())
        followed = {}
        for mode, (made, in_copy, files) in zip(modes, measured, strict=True):
            followed[mode.name] = Followed(
                made, in_copy, files.seen, files.files,
                sandbox_calls(control, "lucca", mode.account)["items"],
                sandbox_calls(control, "lucca", mode.twin)["items"],
            )  # fmt: skip
    return followed


def run(args: argparse.Namespace) -> int:
    exit_on_sigterm()
    with Processes(BENCH) as processes, tempfile.TemporaryDirectory(prefix="bench-elevo-push-") as sftp_dir:
        config = private_state(processes, DATABASE, SERVICE_SETTINGS)
        sftp_port = free_port()
        sandbox = start_sandbox(
            processes, LUCCA_WINDOW_SECONDS, LUCCA_REQUESTS, "--no-demo",
            *("--sftp-port", str(sftp_port), "--sftp-dir", sftp_dir),
        )  # fmt: skip
        api_endpoint = start_api(processes, config)
        start_worker(processes, replace(config, settings={**config.settings, "PUBLIC_BASE_URL": api_endpoint.url}))
        sftp = demo_sftp(HOST, sftp_port, Path(sftp_dir))
        with (
            httpx.Client(base_url=api_endpoint.url, timeout=30) as api,
            httpx.Client(base_url=sandbox.url, timeout=30) as control,
        ):
            modes = [set_up_mode(api, control, config, sandbox.url, sftp, mode, args) for mode in MODES]
        first_files_aged(modes)
        put_off_unprompted_reads(config, modes)
        say(f"renaming {args.changes} people per mode over {args.span_seconds:g} s, then waiting for their files")
        followed = follow_modes(sandbox.url, config, modes, args)
    checks = [check for name, one in followed.items() for check in mode_checks(name, one, args.changes)]
    print_table(f"Elevo following Lucca (push_on_change, min_interval_minutes {INTERVAL_MINUTES})", checks)
    results = {"options": vars(args), **{name: result_of(one) for name, one in followed.items()}}
    return finish(BENCH, checks, results)


def lags(made: dict[int, float], seen: dict[int, float]) -> list[float]:
    return [seen[person] - made[person] for person in made if person in seen]


def p50_p99(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {percentile(values, 0.99):.2f} s" if values else "n/a"


def mode_checks(mode: str, one: Followed, expected: int) -> list[Check]:
    label, spread = MODES[mode], CALLS_SPREAD[mode]
    copy_lags, file_lags = lags(one.made, one.in_copy), lags(one.made, one.in_file)
    added = [
        one.in_file[person] - one.in_copy[person]
        for person in one.made
        if person in one.in_file and person in one.in_copy
    ]
    contents = list(one.files.values())
    repeated = len(contents) - len(set(contents))
    beyond = len(one.follower_calls) - len(one.twin_calls)
    follower_routes = ", ".join(f"{route} x{count}" for route, count in calls_by_route(one.follower_calls).items())
    twin_routes = ", ".join(f"{route} x{count}" for route, count in calls_by_route(one.twin_calls).items())
    added_p99 = percentile(added, 0.99) if added else float("inf")
    return [
        Check(f"{label}: renames in a file", f"{len(file_lags)}", f"{expected}", len(file_lags) == expected),
        Check(f"{label}: change -> file p50 / p99", p50_p99(file_lags)),
        Check(f"{label}: baseline, change -> copy p50 / p99", p50_p99(copy_lags)),
        Check(f"{label}: following adds (file - copy) p50 / p99", p50_p99(added), f"p99 < {ADDED_P99_TARGET:g} s",
              added_p99 < ADDED_P99_TARGET),
        Check(f"{label}: files uploaded; the same as an earlier one", f"{len(contents)}; {repeated}", "0 the same",
              repeated == 0),
        Check(f"{label}: Lucca calls, follower ({follower_routes})", f"{len(one.follower_calls)}"),
        Check(f"{label}: Lucca calls, twin without Elevo ({twin_routes})", f"{len(one.twin_calls)}"),
        Check(f"{label}: Lucca calls beyond the directory's, per rename", f"{beyond} ({beyond / expected:.2f})",
              f"0 (± {spread}: the twins' poll phases)" if spread else "0", abs(beyond) <= spread),
    ]  # fmt: skip


def result_of(one: Followed) -> dict[str, Any]:
    return {
        "file_lags": lags(one.made, one.in_file),
        "copy_lags": lags(one.made, one.in_copy),
        "files": {name: len(content) for name, content in one.files.items()},
        "follower_calls": one.follower_calls,
        "twin_calls": one.twin_calls,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_reporting_failure(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
