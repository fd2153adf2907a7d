"""Lucca → Cards users import of 2,000 employees into an empty Cards space, at the Cards limit.

    .venv/bin/python -m bench.cards_import [--people 2000] [--timeout 900]

A Lucca sandbox account with exactly `--people` current employees (each with a work mail of their own) at **Lucca's
real limit scaled down in time, 50 calls per 5 s instead of per 60 s**, an empty Cards space at **the connector's
default Cards limit scaled down in time, 300 calls per 10 s instead of per 60 s** (Cards publishes none; the
connector's rate_limit says the same), and a tenant with a Cards connector. One arq worker first runs the
directory's full sync that enabling the connector queued (the Lucca reading: its calls are reported apart, target
⌈N/1000⌉ + 2); the directory's polls are then put off, and `POST …/cards/users/import {"all": true}` is queued and
the run is read through the API every second (its counts must move while it works) until it ends. The import reads
the directory's copy.

Reported: calls per person on each side (the sandbox's call logs; targets 0 Lucca calls of the import itself, one
Cards call proving the token, one listing page of the empty space + one create each), 429s from either partner, the
Cards call rate as a share of its limit (as bench.hire_throughput computes it), the busiest 10 s window, wall time, and the
Cards space read back: every employee a Cards user exactly once. Exit status 0 when every target and check holds,
1 otherwise.
"""

import argparse
import math
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import httpx

from app.sandbox.demo import DEMO_API_KEY, DEMO_CARDS_SPACE, DEMO_CARDS_TOKEN, current_directory_seed_payload
from bench.harness import (
    BenchError,
    BudgetUse,
    Check,
    Processes,
    RunProgress,
    ServiceConfig,
    calls_by_route,
    create_connector_tenant,
    exit_on_sigterm,
    expect,
    finish,
    first_full_sync,
    prepare_state,
    print_table,
    put_off_polls,
    sandbox_calls,
    say,
    seed_lucca,
    start_api,
    start_sandbox,
    start_worker,
    wait_for_run,
)

BENCH = "cards_import"
DATABASE = "lucca_connectors_bench_cards_import"
REDIS_DB = 4
ACCOUNT = "bench-cards-import"
# Lucca's 50 calls per 60 s, scaled down in time by 12.
LUCCA_WINDOW_SECONDS = 5
LUCCA_REQUESTS = 50
# The connector's default 300 calls per 60 s, scaled down in time by 6.
CARDS_WINDOW_SECONDS = 10
CARDS_REQUESTS = 300
LUCCA_PAGE = 1000
CARDS_PAGE = 500
TARGET_UTILISATION = 0.90
# Small pools: Postgres's 100 connections are shared with everything else on the machine.
SERVICE_SETTINGS = {"API_DATABASE_POOL_SIZE": "5", "WORKER_MAX_JOBS": "4"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cards_import", description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=2000, help="current Lucca employees (default 2000)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds to wait for the import (default 900)")
    args = parser.parse_args(argv)
    if not 1 <= args.people <= 20_000 or not 30 <= args.timeout <= 7200:
        parser.error("--people must be 1..20000 and --timeout 30..7200 s")
    return args


@dataclass(frozen=True)
class Outcome:
    """What the import did: its run as read while it worked, both call logs, the Cards space afterwards."""

    progress: RunProgress
    queued_at: float
    full_sync_calls: list[dict[str, Any]]
    lucca_calls: list[dict[str, Any]]
    cards_calls: list[dict[str, Any]]
    cards_users: list[dict[str, Any]]
    lucca_mails: list[str]

    @property
    def cards_budget(self) -> BudgetUse:
        return BudgetUse.of([float(call["at"]) for call in self.cards_calls], CARDS_REQUESTS, CARDS_WINDOW_SECONDS)

    @property
    def queued_to_end_seconds(self) -> float | None:
        ended = self.progress.run["finished_at"]
        return datetime.fromisoformat(ended).timestamp() - self.queued_at if ended else None

    @property
    def created_seen(self) -> list[int]:
        """The distinct `created` counts read while the run was unfinished: it moves as the import works."""
        return sorted({int(sample["counts"]["created"]) for sample in self.progress.samples})


def run_benchmark(args: argparse.Namespace, config: ServiceConfig) -> Outcome:
    with Processes(BENCH) as processes:
        sandbox = start_sandbox(processes, LUCCA_WINDOW_SECONDS, LUCCA_REQUESTS)
        api = start_api(processes, config)
        with (
            httpx.Client(base_url=sandbox.url, timeout=120.0) as control,
            httpx.Client(base_url=api.url, timeout=30.0) as client,
        ):
            seed = current_directory_seed_payload(
                args.people, window_seconds=LUCCA_WINDOW_SECONDS, requests_per_window=LUCCA_REQUESTS
            )
            seed_lucca(control, ACCOUNT, seed)
            space = {
                "api_token": DEMO_CARDS_TOKEN,
                "space_id": DEMO_CARDS_SPACE,
                "window_seconds": CARDS_WINDOW_SECONDS,
                "requests_per_window": CARDS_REQUESTS,
            }
            expect(control.put(f"/_sandbox/cards/accounts/{ACCOUNT}", json=space), 204, "seed Cards")
            lucca = {
                "base_url": f"{sandbox.url}/{ACCOUNT}",
                "api_key": DEMO_API_KEY,
                "rate_limit": {"requests": LUCCA_REQUESTS, "per_seconds": LUCCA_WINDOW_SECONDS},
            }
            settings = {
                "api_base_url": f"{sandbox.url}/cards/{ACCOUNT}/v1",
                "api_token": DEMO_CARDS_TOKEN,
                "space_id": DEMO_CARDS_SPACE,
                "rate_limit": {"requests": CARDS_REQUESTS, "per_seconds": CARDS_WINDOW_SECONDS},
            }
            tenant = create_connector_tenant(client, config, "cards-import", lucca, "cards", settings)
            start_worker(processes, config)
            say(f"{args.people} people: waiting for the directory's first full sync")
            first_full_sync(client, tenant, args.timeout)
            put_off_polls(config, tenant.slug)
            full_sync_calls = sandbox_calls(control, "lucca", ACCOUNT)["items"]
            path = f"/api/v1/tenants/{tenant.slug}/cards/users/import"
            queued_at = time.time()
            run_id = str(expect(client.post(path, json={"all": True}, headers=tenant.auth), 202, "import")["run_id"])
            say(f"import of {args.people} people queued; waiting up to {args.timeout} s")
            progress = wait_for_run(client, tenant, run_id, args.timeout)
            if not progress.finished:
                raise BenchError(f"the import is still {progress.run['status']} after {args.timeout} s")
            cards_users = expect(control.get(f"/_sandbox/cards/accounts/{ACCOUNT}/users"), 200, "read Cards")["items"]
            return Outcome(
                progress=progress,
                queued_at=queued_at,
                full_sync_calls=full_sync_calls,
                lucca_calls=sandbox_calls(control, "lucca", ACCOUNT)["items"][len(full_sync_calls) :],
                cards_calls=sandbox_calls(control, "cards", ACCOUNT)["items"],
                cards_users=cards_users,
                lucca_mails=[str(user["mail"]) for user in seed["users"]],
            )


def evaluate(args: argparse.Namespace, outcome: Outcome) -> list[Check]:
    people, run = args.people, outcome.progress.run
    counts, budget = run["counts"], outcome.cards_budget
    # The directory's user pages (one more when N is a multiple of 1,000) and its departments.
    full_sync_most = math.ceil(people / LUCCA_PAGE) + 2
    # The token's proof (one cheap call before the space's lock), the empty space's one listing page, one create each.
    cards_most = people + 2
    full_sync_calls, lucca_calls, cards_calls = map(
        len, (outcome.full_sync_calls, outcome.lucca_calls, outcome.cards_calls)
    )
    too_many = sum(1 for call in [*outcome.lucca_calls, *outcome.cards_calls] if call["status"] == 429)
    emails = Counter(str(user["email"]).casefold() for user in outcome.cards_users)
    twice = sum(1 for count in emails.values() if count > 1)
    missing = len({mail.casefold() for mail in outcome.lucca_mails} - set(emails))
    seen = outcome.created_seen
    wall, queued_wall = outcome.progress.seconds(), outcome.queued_to_end_seconds
    return [
        Check("import run", f"{run['status']}, {counts['created']} created", f"succeeded, {people} created",
              run["status"] == "succeeded" and counts["created"] == people),
        Check("distinct `created` counts read while it ran", f"{len(seen)} ({', '.join(map(str, seen[:3]))} … "
              f"{seen[-1] if seen else ''})", ">= 3 (progress visible)", len(seen) >= 3),
        Check("Cards users after the import", str(len(outcome.cards_users)), str(people),
              len(outcome.cards_users) == people),
        Check("e-mails in Cards twice; employees missing", f"{twice}; {missing}", "0; 0", twice == 0 and missing == 0),
        Check("the directory's first full sync, before: Lucca calls", f"{full_sync_calls}", f"<= {full_sync_most}",
              full_sync_calls <= full_sync_most),
        Check("Lucca calls of the import", str(lucca_calls), "0 (the copy)", lucca_calls == 0),
        Check("Cards calls (per person)", f"{cards_calls} ({cards_calls / people:.4f})", f"<= {cards_most}",
              cards_calls <= cards_most),
        Check("429s (Lucca + Cards)", str(too_many), "0", too_many == 0),
        Check(f"Cards call rate / limit (calls / ({CARDS_REQUESTS} x span / {CARDS_WINDOW_SECONDS} s))",
              f"{budget.utilisation:.1%}", f">= {TARGET_UTILISATION:.0%}", budget.utilisation >= TARGET_UTILISATION),
        Check("Cards calls / sliding-window max", f"{budget.utilisation_of_max:.1%}"),
        Check(f"busiest {CARDS_WINDOW_SECONDS} s window of Cards", str(budget.busiest_window),
              f"<= {CARDS_REQUESTS}", budget.busiest_window <= CARDS_REQUESTS),
        Check("wall time: run start -> end; queued -> end",
              f"{wall or 0:.1f} s; {queued_wall or 0:.1f} s"),
        Check("people per second", f"{people / wall:.1f}" if wall else "n/a"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    config = ServiceConfig(database=DATABASE, redis_db=REDIS_DB, settings=SERVICE_SETTINGS)
    prepare_state(config)
    outcome = run_benchmark(args, config)
    checks = evaluate(args, outcome)
    title = (
        f'Cards users import, {args.people} people, {{"all": true}}; Cards sandbox at {CARDS_REQUESTS} calls / '
        f"{CARDS_WINDOW_SECONDS} s, Lucca at {LUCCA_REQUESTS} / {LUCCA_WINDOW_SECONDS} s (both scaled down in time)"
    )
    print_table(title, checks)
    logs = (("Lucca (the full sync)", outcome.full_sync_calls), ("Lucca (the import)", outcome.lucca_calls),
            ("Cards", outcome.cards_calls))  # fmt: skip
    for partner, calls in logs:
        say(
            f"{partner} calls by route: "
            + ", ".join(f"{name} x{count}" for name, count in calls_by_route(calls).items())
        )
    results = {
        "options": vars(args),
        "run": outcome.progress.run,
        "samples": outcome.progress.samples,
        "full_sync_calls_by_route": calls_by_route(outcome.full_sync_calls),
        "lucca_calls_by_route": calls_by_route(outcome.lucca_calls),
        "cards_calls_by_route": calls_by_route(outcome.cards_calls),
        "cards_budget": asdict(outcome.cards_budget),
        "queued_to_end_seconds": outcome.queued_to_end_seconds,
        "lucca_calls": outcome.lucca_calls,
        "cards_calls": outcome.cards_calls,
    }
    return finish(BENCH, checks, results)


if __name__ == "__main__":
    sys.exit(main())
