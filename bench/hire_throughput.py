"""Queued hires against the Lucca sandbox at 50 calls per 5 s: how fast workers drain them within the limit.

    .venv/bin/python -m bench.hire_throughput [--hires 200] [--workers 2] [--timeout 600]

With no worker running, `--hires` distinct hires are posted (all must be 202). The sandbox's call log is then
cleared and `--workers` arq workers are started; the runs are polled through the API until all are finished.
Reported: wall time, employees created (exactly one per hire, no login twice), Lucca calls per hire, 429s, the
call rate as a share of the limit, and the busiest 5-second window seen by the sandbox. Exit status: 0 when
every target and check holds, 1 otherwise.
"""

import argparse
import math
import secrets
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.sandbox.demo import DEMO_API_KEY, demo_seed_payload
from bench.harness import (
    SOFTGARDEN_SETTINGS,
    BenchError,
    BudgetUse,
    Check,
    Processes,
    ServiceConfig,
    Tenant,
    create_softgarden_tenant,
    exit_on_sigterm,
    expect,
    finish,
    prepare_state,
    print_table,
    say,
    start_api,
    start_sandbox,
    start_worker,
)

BENCH = "hire_throughput"
DATABASE = "lucca_connectors_bench_hires"
REDIS_DB = 6
ACCOUNT = "bench-hires"
WINDOW_SECONDS = 5
REQUESTS_PER_WINDOW = 50
WEBHOOK_PATH = "/integrations/webhooks/softgarden/candidate-hired"
RUN_STATUSES = ("queued", "running", "succeeded", "partial", "failed")
FINISHED = ("succeeded", "partial", "failed")
MAX_LISTED_RUNS = 500  # the runs API's largest page
POLL_SECONDS = 1.0
TARGET_UTILISATION = 0.90

# 25 x 20 names whose normalised forms are all distinct, and none of the seed's people (Martin, Durand, Dupont).
FIRST_NAMES = (
    "Amélie", "Bruno", "Chloé", "Dario", "Elif", "Fatou", "Gaspard", "Hanna", "Inès", "Jonas", "Kenji", "Léa",
    "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tara", "Ugo", "Vera", "Wiktor", "Yasmin", "Zoë",
)  # fmt: skip
LAST_NAMES = (
    "Adler", "Bernard", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Hoffmann", "Ivanova", "Jansen",
    "Kowalski", "Lefèvre", "Moreau", "Nowak", "O'Brien", "Petit", "Quinn", "Rossi", "Schmidt", "Traoré",
)  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.hire_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--hires", type=int, default=200, help="hires to post (default 200, at most 500)")
    parser.add_argument("--workers", type=int, default=2, help="arq worker processes (default 2)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds to wait for the runs (default 600)")
    args = parser.parse_args(argv)
    if not 1 <= args.hires <= min(MAX_LISTED_RUNS, len(FIRST_NAMES) * len(LAST_NAMES)):
        parser.error(f"--hires must be 1..{MAX_LISTED_RUNS}")
    if not 1 <= args.workers <= 16 or not 10 <= args.timeout <= 3600:
        parser.error("--workers must be 1..16 and --timeout 10..3600 s")
    return args


# ----------------------------------------------------------------------------------------------------
# Set-up: the sandbox account, the tenant, the hires.


def seed_account(sandbox: httpx.Client) -> set[int]:
    """A copy of the demo account with the benchmark's window; returns the ids of its seeded users."""
    seed = {**demo_seed_payload(), "window_seconds": WINDOW_SECONDS, "requests_per_window": REQUESTS_PER_WINDOW}
    answer = sandbox.put(f"/_sandbox/lucca/accounts/{ACCOUNT}", json=seed)
    if answer.status_code != 204:
        raise BenchError(f"seeding the sandbox account: {answer.status_code} {answer.text[:300]}")
    return {int(user["id"]) for user in seed["users"]}


def hire_bodies(count: int) -> Iterator[dict[str, Any]]:
    """Distinct candidates: names, personal emails and application ids, two establishments, various start days."""
    batch = secrets.token_hex(3)
    for index in range(count):
        yield {
            "applicationId": f"bench-{batch}-{index:04d}",
            "status": "hired",
            "firstName": FIRST_NAMES[index % len(FIRST_NAMES)],
            "lastName": LAST_NAMES[index // len(FIRST_NAMES)],
            "email": f"candidate-{batch}-{index:04d}@personal.example",
            "phone": f"+49 170 {index:07d}",
            "jobTitle": "Engineer",
            "company": "Acme Berlin" if index % 2 else "Acme Paris",
            "startDate": (date(2026, 12, 1) + timedelta(days=index % 60)).isoformat(),
        }


def post_hires(api: httpx.Client, tenant: Tenant, count: int) -> list[str]:
    """Post every hire (each must be a new one: 202); returns the run ids."""
    run_ids = []
    for body in hire_bodies(count):
        answer = expect(api.post(WEBHOOK_PATH, json=body, headers=tenant.webhook_auth), 202, "post a hire")
        run_ids.append(str(answer["run_id"]))
    return run_ids


# ----------------------------------------------------------------------------------------------------
# Waiting: poll the runs API until every run is finished, or the time cap.


def runs_by_status(api: httpx.Client, tenant: Tenant) -> dict[str, list[dict[str, Any]]]:
    found = {}
    for status in RUN_STATUSES:
        path = f"/api/v1/tenants/{tenant.slug}/runs"
        params = {"status": status, "limit": str(MAX_LISTED_RUNS)}
        found[status] = expect(api.get(path, params=params, headers=tenant.auth), 200, "list runs")["items"]
    return found


def wait_for_runs(api: httpx.Client, tenant: Tenant, count: int, timeout: float) -> dict[str, list[dict[str, Any]]]:
    """The runs by status once `count` are finished, or as they stand when `timeout` passes."""
    deadline = time.monotonic() + timeout
    runs = runs_by_status(api, tenant)
    for _ in range(math.ceil(timeout / POLL_SECONDS)):
        finished = sum(len(runs[status]) for status in FINISHED)
        if finished >= count or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
        runs = runs_by_status(api, tenant)
    return runs


# ----------------------------------------------------------------------------------------------------
# Analysis of the sandbox's call log and users.


def parse_time(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


@dataclass(frozen=True)
class Outcome:
    """What the workers did, from the API's runs and the sandbox's users and call log."""

    runs: dict[str, list[dict[str, Any]]]
    new_users: list[dict[str, Any]]
    calls: list[dict[str, Any]]
    count_by_status: dict[str, int]
    workers_started_at: float
    log_dir: Path

    @property
    def finished_runs(self) -> list[dict[str, Any]]:
        return [run for status in FINISHED for run in self.runs[status]]

    @property
    def last_finished_at(self) -> float | None:
        moments = [parse_time(run["finished_at"]) for run in self.finished_runs]
        return max((moment for moment in moments if moment is not None), default=None)

    @property
    def wall_seconds(self) -> float | None:
        last = self.last_finished_at
        return last - self.workers_started_at if last is not None else None

    @property
    def first_call_delay(self) -> float | None:
        """Seconds from starting the workers to their first Lucca call (process start-up included)."""
        first = min((float(call["at"]) for call in self.calls), default=None)
        return first - self.workers_started_at if first is not None else None

    @property
    def calls_by_route(self) -> dict[str, int]:
        return dict(Counter(f"{call['method']} {call['path']}" for call in self.calls).most_common())

    @property
    def rate(self) -> BudgetUse:
        return BudgetUse.of([float(call["at"]) for call in self.calls], REQUESTS_PER_WINDOW, WINDOW_SECONDS)


def run_benchmark(args: argparse.Namespace, config: ServiceConfig) -> Outcome:
    """Everything with processes running: set-up, hires, workers, waiting, reading the sandbox."""
    with Processes(BENCH) as processes:
        sandbox = start_sandbox(processes, WINDOW_SECONDS, REQUESTS_PER_WINDOW)
        api = start_api(processes, config)
        with (
            httpx.Client(base_url=sandbox.url, timeout=30.0) as control,
            httpx.Client(base_url=api.url, timeout=30.0) as client,
        ):
            seed_ids = seed_account(control)
            lucca = {
                "base_url": f"{sandbox.url}/{ACCOUNT}",
                "api_key": DEMO_API_KEY,
                "rate_limit": {"requests": REQUESTS_PER_WINDOW, "per_seconds": WINDOW_SECONDS},
            }
            tenant = create_softgarden_tenant(client, config, "bench-hires", lucca, SOFTGARDEN_SETTINGS)
            say(f"posting {args.hires} hires with no worker running")
            post_hires(client, tenant, args.hires)
            expect(control.delete(f"/_sandbox/lucca/accounts/{ACCOUNT}/calls"), 204, "clear the call log")
            say(f"starting {args.workers} worker(s); waiting up to {args.timeout} s")
            started_at = time.time()
            for index in range(args.workers):
                start_worker(processes, config, f"worker-{index + 1}")
            runs = wait_for_runs(client, tenant, args.hires, args.timeout)
            users = expect(control.get(f"/_sandbox/lucca/accounts/{ACCOUNT}/users"), 200, "read users")["items"]
            calls = expect(control.get(f"/_sandbox/lucca/accounts/{ACCOUNT}/calls"), 200, "read calls")
        new_users = [user for user in users if user["id"] not in seed_ids]
        return Outcome(runs, new_users, calls["items"], calls["count_by_status"], started_at, processes.log_dir)


def evaluate(args: argparse.Namespace, outcome: Outcome) -> list[Check]:
    """The figures and their targets."""
    hires, rate = args.hires, outcome.rate
    finished = len(outcome.finished_runs)
    logins = Counter((user.get("login") or "").casefold() for user in outcome.new_users)
    twice = sum(1 for count in logins.values() if count > 1)
    created = sum(run["counts"]["created"] for run in outcome.finished_runs)
    too_many = outcome.count_by_status.get("429", 0)
    wall, first_call = outcome.wall_seconds, outcome.first_call_delay
    return [
        Check("runs finished", f"{finished} / {hires}", f"{hires}", finished == hires),
        Check("runs succeeded", str(len(outcome.runs["succeeded"])), f"{hires}", len(outcome.runs["succeeded"]) == hires),
        Check("wall time, workers start -> last run", f"{wall:.1f} s" if wall is not None else "n/a"),
        Check("first Lucca call after workers start", f"{first_call:.1f} s" if first_call is not None else "n/a"),
        Check("hires per second", f"{finished / wall:.2f}" if wall else "n/a"),
        Check("employees created in Lucca", str(len(outcome.new_users)), f"{hires}", len(outcome.new_users) == hires),
        Check("runs counting `created`", str(created), f"{hires}", created == hires),
        Check("logins used twice", str(twice), "0", twice == 0),
        Check("Lucca calls", str(rate.calls)),
        Check("Lucca calls per hire", f"{rate.calls / hires:.2f}"),
        Check("429s received", str(too_many), "0", too_many == 0),
        Check("calls first -> last", f"{rate.span_seconds:.1f} s"),
        Check("call rate / limit (calls / (50 x span / 5 s))", f"{rate.utilisation:.1%}", f">= {TARGET_UTILISATION:.0%}",
              rate.utilisation >= TARGET_UTILISATION),
        Check("calls / sliding-window max (50 x (floor(span/5)+1))", f"{rate.utilisation_of_max:.1%}"),
        Check(f"busiest {WINDOW_SECONDS} s window", str(rate.busiest_window), f"<= {REQUESTS_PER_WINDOW}",
              rate.busiest_window <= REQUESTS_PER_WINDOW),
    ]  # fmt: skip


def refused_calls_summary(outcome: Outcome, limit: int = 10) -> list[str]:
    """Calls the sandbox answered with an error, timed from the first call, with the busiest window they fell in."""
    calls = sorted(outcome.calls, key=lambda call: float(call["at"]))
    if not calls:
        return []
    first = float(calls[0]["at"])
    times = [float(call["at"]) for call in calls]
    lines = []
    for call in [call for call in calls if int(call["status"]) >= 400][:limit]:
        at = float(call["at"])
        before = sum(1 for moment in times if at - WINDOW_SECONDS < moment <= at)
        lines.append(
            f"{call['status']} at +{at - first:.3f} s: {call['method']} {call['path']} "
            f"({before} calls logged in the {WINDOW_SECONDS} s up to it, itself included)"
        )
    return lines


def failed_runs_summary(outcome: Outcome, limit: int = 5) -> list[str]:
    """The first few runs that did not succeed, with their error, to say what went wrong."""
    troubled = [run for status in ("failed", "partial", "queued", "running") for run in outcome.runs[status]]
    return [f"{run['status']} run {run['id']}: {run['error']}" for run in troubled[:limit]]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    config = ServiceConfig(database=DATABASE, redis_db=REDIS_DB)
    prepare_state(config)
    outcome = run_benchmark(args, config)
    checks = evaluate(args, outcome)
    title = f"Hire throughput: {args.hires} queued hires, {args.workers} worker(s), sandbox limit 50 calls / 5 s"
    print_table(title, checks)
    say("calls by route: " + ", ".join(f"{route} x{count}" for route, count in outcome.calls_by_route.items()))
    for line in [*refused_calls_summary(outcome), *failed_runs_summary(outcome)]:
        say(line)
    results = {
        "options": vars(args),
        "runs_by_status": {status: len(runs) for status, runs in outcome.runs.items()},
        "calls_by_route": outcome.calls_by_route,
        "calls_by_status": outcome.count_by_status,
        "call_rate": asdict(outcome.rate),
        "wall_seconds": outcome.wall_seconds,
        "first_call_after_workers_start_s": outcome.first_call_delay,
        "problems": failed_runs_summary(outcome, limit=50),
        "refused_calls": refused_calls_summary(outcome, limit=50),
        "calls": outcome.calls,
        "logs": str(outcome.log_dir),
    }
    return finish(BENCH, checks, results)


if __name__ == "__main__":
    sys.exit(main())
