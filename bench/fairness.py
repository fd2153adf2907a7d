"""A neighbour's hire behind another tenant's slow backlog: how long it waits, against the same hire alone.

    .venv/bin/python -m bench.fairness [--backlog 30] [--create-seconds 1.5] [--workers 2] [--timeout 300]

Two tenants on two Lucca accounts of the sandbox, `--workers` arq worker processes running. First tenant B's hire
alone (twice: a warm-up that fills the structure cache, then the baseline). Then tenant A's account is made slow
(each create takes `--create-seconds`), `--backlog` hires are posted for A, and one more hire for B right after
them. Reported: B's time from webhook to succeeded alone and behind the backlog, A's backlog time (first webhook to
last run finished) and how many of A's runs were still unfinished when B's was done. Exit status 0 when B behind
the backlog finishes within its baseline plus 3 s and every run succeeded, 1 otherwise.
"""

import argparse
import secrets
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

from app.sandbox.demo import DEMO_API_KEY, demo_seed_payload
from bench.harness import (
    SOFTGARDEN_SETTINGS,
    BenchError,
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

BENCH = "fairness"
DATABASE = "lucca_connectors_bench_fairness"
REDIS_DB = 9
WEBHOOK_PATH = "/integrations/webhooks/softgarden/candidate-hired"
FINISHED = ("succeeded", "partial", "failed")
# Generous limits, so that what is measured is the lock and the worker slots, not the rate limit.
REQUESTS_PER_WINDOW, WINDOW_SECONDS = 600, 60
POLL_SECONDS = 0.05
ALLOWED_EXTRA_SECONDS = 3.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=30, help="slow hires of tenant A (default 30)")
    parser.add_argument("--create-seconds", type=float, default=1.5, help="A's Lucca create time (default 1.5)")
    parser.add_argument("--workers", type=int, default=2, help="arq worker processes (default 2)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds to wait for the backlog (default 300)")
    args = parser.parse_args(argv)
    if not 1 <= args.backlog <= 200 or not 0 <= args.create_seconds <= 10 or not 1 <= args.workers <= 8:
        parser.error("--backlog must be 1..200, --create-seconds 0..10 and --workers 1..8")
    return args


def seed_account(control: httpx.Client, sandbox_url: str, account: str) -> dict[str, Any]:
    """A copy of the demo account; returns the tenant's `lucca` settings for it."""
    seed = {**demo_seed_payload(), "window_seconds": WINDOW_SECONDS, "requests_per_window": REQUESTS_PER_WINDOW}
    expect(control.put(f"lucca/accounts/{account}", json=seed), 204, f"seed account {account}")
    limit = {"requests": REQUESTS_PER_WINDOW, "per_seconds": WINDOW_SECONDS}
    return {"base_url": f"{sandbox_url}/{account}", "api_key": DEMO_API_KEY, "rate_limit": limit}


def post_hire(api: httpx.Client, tenant: Tenant, name: str) -> str:
    body = {"applicationId": f"{tenant.slug}-{name}", "firstName": name, "lastName": "Fairness",
            "email": f"{name.lower()}@personal.example", "company": "Acme Berlin", "startDate": "2027-01-04"}  # fmt: skip
    return str(expect(api.post(WEBHOOK_PATH, json=body, headers=tenant.webhook_auth), 202, "post a hire")["run_id"])


def run_status(api: httpx.Client, tenant: Tenant, run_id: str) -> str:
    run = expect(api.get(f"/api/v1/tenants/{tenant.slug}/runs/{run_id}", headers=tenant.auth), 200, "read a run")
    return str(run["status"])


def time_to_finish(api: httpx.Client, tenant: Tenant, run_id: str, posted: float, timeout: float) -> tuple[float, str]:
    """Seconds from `posted` until the run is finished, and its status."""
    while (status := run_status(api, tenant, run_id)) not in FINISHED:
        if time.monotonic() - posted > timeout:
            raise BenchError(f"run {run_id} of {tenant.slug} still {status} after {timeout} s")
        time.sleep(POLL_SECONDS)
    return time.monotonic() - posted, status


@dataclass(frozen=True)
class Outcome:
    warm_up_seconds: float
    baseline_seconds: float
    neighbour_seconds: float
    neighbour_status: str
    backlog_seconds: float
    backlog_unfinished_when_neighbour_done: int
    backlog_statuses: dict[str, int]


def run_benchmark(args: argparse.Namespace, config: ServiceConfig) -> Outcome:
    batch = secrets.token_hex(3)
    with Processes(BENCH) as processes:
        sandbox = start_sandbox(processes, WINDOW_SECONDS, REQUESTS_PER_WINDOW)
        api = start_api(processes, config)
        with (
            httpx.Client(base_url=f"{sandbox.url}/_sandbox/", timeout=30.0) as control,
            httpx.Client(base_url=api.url, timeout=30.0) as client,
        ):
            slow_account, other_account = f"bench-fair-a-{batch}", f"bench-fair-b-{batch}"
            tenants = [
                create_softgarden_tenant(client, config, slug, seed_account(control, sandbox.url, account), SOFTGARDEN_SETTINGS)
                for slug, account in (("fair-a", slow_account), ("fair-b", other_account))
            ]  # fmt: skip
            slow, other = tenants
            for index in range(args.workers):
                start_worker(processes, config, f"worker-{index + 1}")
            measured = []
            for name in ("Warmup", "Alone"):
                posted = time.monotonic()
                measured.append(time_to_finish(client, other, post_hire(client, other, name), posted, 60)[0])
            fault = {"delay_seconds": args.create_seconds, "count": args.backlog, "match": "POST /api/v3/users"}
            expect(control.post(f"lucca/accounts/{slow_account}/faults", json=[fault]), 204, "slow down account A")
            say(f"posting {args.backlog} hires for tenant A (each create takes {args.create_seconds} s), then B's")
            backlog_posted = time.monotonic()
            backlog = [post_hire(client, slow, f"Backlog{index}") for index in range(args.backlog)]
            posted = time.monotonic()
            neighbour = post_hire(client, other, "Behind")
            neighbour_seconds, neighbour_status = time_to_finish(client, other, neighbour, posted, args.timeout)
            unfinished = sum(run_status(client, slow, run_id) not in FINISHED for run_id in backlog)
            statuses = [time_to_finish(client, slow, run_id, backlog_posted, args.timeout)[1] for run_id in backlog]
            backlog_seconds = time.monotonic() - backlog_posted
    return Outcome(
        warm_up_seconds=measured[0],
        baseline_seconds=measured[1],
        neighbour_seconds=neighbour_seconds,
        neighbour_status=neighbour_status,
        backlog_seconds=backlog_seconds,
        backlog_unfinished_when_neighbour_done=unfinished,
        backlog_statuses={status: statuses.count(status) for status in sorted(set(statuses))},
    )


def evaluate(args: argparse.Namespace, outcome: Outcome) -> list[Check]:
    allowed = outcome.baseline_seconds + ALLOWED_EXTRA_SECONDS
    return [
        Check("B's hire alone (warm-up, cache filled)", f"{outcome.warm_up_seconds:.2f} s"),
        Check("B's hire alone (baseline)", f"{outcome.baseline_seconds:.2f} s"),
        Check(
            f"B's hire behind A's {args.backlog}-hire backlog",
            f"{outcome.neighbour_seconds:.2f} s ({outcome.neighbour_status})",
            f"<= baseline + {ALLOWED_EXTRA_SECONDS:g} s = {allowed:.2f} s",
            outcome.neighbour_seconds <= allowed and outcome.neighbour_status == "succeeded",
        ),
        Check("A's runs unfinished when B's was done", str(outcome.backlog_unfinished_when_neighbour_done)),
        Check(
            "A's backlog, first webhook to last run finished",
            f"{outcome.backlog_seconds:.1f} s",
            f">= {args.backlog} x {args.create_seconds:g} s (one create at a time per account)",
            outcome.backlog_seconds >= args.backlog * args.create_seconds,
        ),
        Check(
            "A's runs by status",
            ", ".join(f"{status} {count}" for status, count in outcome.backlog_statuses.items()),
            f"succeeded {args.backlog}",
            outcome.backlog_statuses == {"succeeded": args.backlog},
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    config = ServiceConfig(database=DATABASE, redis_db=REDIS_DB)
    prepare_state(config)
    outcome = run_benchmark(args, config)
    checks = evaluate(args, outcome)
    title = f"Fairness: one hire of tenant B behind {args.backlog} slow hires of tenant A, {args.workers} worker(s)"
    print_table(title, checks)
    return finish(BENCH, checks, {"options": vars(args), "outcome": outcome.__dict__})


if __name__ == "__main__":
    sys.exit(main())
