"""The nightly Cards → Lucca statistics push at 2,000 and 10,000 employees, 2 % of them changed since the last one.

    .venv/bin/python -m bench.cards_push [--sizes 2000,10000] [--changed 0.02] [--timeout 900]

For each size: a Lucca sandbox account with exactly that many current employees (each with a work mail), a Cards
space holding the demo's two trainings, and a tenant with a Cards connector (stats_sync enabled, its hour the
current UTC hour so the schedule is not due during the run). Every employee gets a learning event through the
webhook, and a first push writes them all (unmeasured: Lucca's limit lifted for it). The account is then seeded
again with its own state at **Lucca's real limit scaled down in time, 50 calls per 5 s instead of per 60 s**
(the tenant's rate_limit too), a quiz result is posted for `--changed` of the employees, spread over the
directory, and a fresh arq worker runs the measured push.

Reported per size: Lucca calls of the measured push (target: changed employees + ⌈N/1000⌉ + 3) and its PUTs,
429s from either partner (sandbox call logs), the call rate as a share of the limit (as bench.hire_throughput
computes it), wall time, what Lucca holds afterwards (each employee's occurrence, the changed ones rewritten in
place), and the worker's peak memory (VmHWM of the arq process: < 300 MB, and flat in N). Exit status 0 when
every target and check holds, 1 otherwise.
"""

import argparse
import asyncio
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from app.sandbox.demo import DEMO_API_KEY, current_directory_seed_payload, demo_cards_seed_payload
from bench.harness import (
    BenchError,
    BudgetUse,
    Check,
    Processes,
    ServiceConfig,
    Tenant,
    create_connector_tenant,
    exit_on_sigterm,
    expect,
    finish,
    peak_memory_mb,
    prepare_state,
    print_table,
    sandbox_calls,
    say,
    start_api,
    start_sandbox,
    start_worker,
    wait_for_run,
)

BENCH = "cards_push"
DATABASE = "lucca_connectors_bench_cards_push"
REDIS_DB = 3
# Lucca's 50 calls per 60 s, scaled down in time by 12.
WINDOW_SECONDS = 5
REQUESTS_PER_WINDOW = 50
# The first push is set-up, not measured: a limit it never reaches.
WARM_UP_REQUESTS = 100_000
# The connector's default 300 calls per 60 s (Cards publishes none), scaled down in time by 6.
CARDS_WINDOW_SECONDS = 10
CARDS_REQUESTS = 300
LUCCA_PAGE = 1000
EXTRA_CALLS = 3  # the "few" calls allowed beyond the PUTs and the pages
TARGET_UTILISATION = 0.90
MAX_PEAK_MB = 300.0
FLAT_TOLERANCE = 0.10  # the peak at the largest size may exceed the smallest's by this share
POST_CONCURRENCY = 8
# Small pools: Postgres's 100 connections are shared with everything else on the machine.
SERVICE_SETTINGS = {"API_DATABASE_POOL_SIZE": str(POST_CONCURRENCY + 2), "WORKER_MAX_JOBS": "4"}
TRAININGS = tuple(int(training["id"]) for training in demo_cards_seed_payload()["trainings"])
COMPOUND = "e_formation"  # the connector's default field codes
FIRST_EVENT_AT = "2026-11-30 09:00:00"
CHANGE_AT = "2026-12-01 10:00:00"
# What Lucca must hold: a chapter half way through the training, then a quiz of 3 points out of 4 that ends it.
BEFORE = {"e_progress": "50%", "e_score": None, "e_last_completion_date": None}
AFTER = {"e_progress": "100%", "e_score": "75%", "e_last_completion_date": CHANGE_AT[:10]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cards_push", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,10000", help="current employees per account, comma-separated")
    parser.add_argument("--changed", type=float, default=0.02, help="share of employees changed (default 0.02)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds to wait for one push (default 900)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error("--sizes must be integers, e.g. 2000,10000")
    if not all(100 <= size <= 50_000 for size in args.sizes) or not 0 < args.changed <= 1:
        parser.error("--sizes must be 100..50000 and --changed in (0, 1]")
    if not 30 <= args.timeout <= 7200:
        parser.error("--timeout must be 30..7200 s")
    return args


# ----------------------------------------------------------------------------------------------------
# Learning events, posted to the webhook as Cards sends them.


def learning_event(event_id: str, email: str, training: int, when: str, *, quiz: bool) -> dict[str, Any]:
    """A chapter completed half way through `training`, or with `quiz` a quiz of 3 / 4 points that completes it."""
    points, max_points, progress = (3, 4, 1.0) if quiz else (1, 1, 0.5)
    return {
        "id": event_id,
        "type": "quiz-complete" if quiz else "chapter-complete",
        "created_at": when,
        "data": {
            "created_at": when,
            "points": points,
            "user": {"id": 1, "email": email},
            "training": {"id": training, "chapter": {"id": "quiz" if quiz else "intro"}},
            "score": {"points": points, "max_points": max_points, "progress": progress},
        },
    }


async def post_all(api_url: str, token: str, events: Sequence[dict[str, Any]]) -> Counter[int]:
    """Post every event, `POST_CONCURRENCY` at a time; the answers' statuses counted."""
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=POST_CONCURRENCY)
    async with httpx.AsyncClient(base_url=api_url, timeout=30.0, limits=limits) as client:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for event in events:
            queue.put_nowait(event)

        async def post_some() -> None:
            while not queue.empty():
                answer = await client.post(f"/integrations/webhooks/cards/{token}", json=queue.get_nowait())
                statuses[answer.status_code] += 1

        await asyncio.gather(*(post_some() for _ in range(POST_CONCURRENCY)))
    return statuses


def post_events(api_url: str, tenant: Tenant, events: Sequence[dict[str, Any]]) -> None:
    started = time.monotonic()
    statuses = asyncio.run(post_all(api_url, tenant.webhook_token, events))
    if statuses != Counter({202: len(events)}):
        raise BenchError(f"posting {len(events)} learning events: answers {dict(statuses)}, all 202 expected")
    say(f"  {len(events)} learning events stored in {time.monotonic() - started:.1f} s")


# ----------------------------------------------------------------------------------------------------
# One size: set-up, the first push, the measured push, what Lucca holds.


@dataclass(frozen=True)
class PushFigures:
    """One push as measured: its run, the calls each partner saw, the worker's peak memory."""

    run: dict[str, Any]
    run_seconds: float | None
    worker_to_end_seconds: float | None
    lucca_calls: list[dict[str, Any]]
    cards_calls: list[dict[str, Any]]
    peak_mb: float | None

    def count(self, calls: Sequence[dict[str, Any]], status: int) -> int:
        return sum(1 for call in calls if call["status"] == status)

    @property
    def lucca_budget(self) -> BudgetUse:
        return BudgetUse.of([float(call["at"]) for call in self.lucca_calls], REQUESTS_PER_WINDOW, WINDOW_SECONDS)

    @property
    def lucca_routes(self) -> dict[str, int]:
        routes = Counter(f"{call['method']} {route(call['path'])}" for call in self.lucca_calls)
        return dict(routes.most_common())


def route(path: str) -> str:
    """A path with its trailing id generalised (`/api/v3/users/1234` → `/api/v3/users/{id}`)."""
    head, _, tail = path.rpartition("/")
    return f"{head}/{{id}}" if tail.isdigit() else path


@dataclass(frozen=True)
class SizeResult:
    employees: int
    changed: int
    first: PushFigures
    measured: PushFigures
    # Employees whose compound field holds exactly one occurrence with the values expected of them.
    holding_expected: int
    wrong_examples: list[str]


@dataclass
class Bench:
    """The processes and clients every size shares."""

    processes: Processes
    config: ServiceConfig
    api_url: str
    sandbox_url: str
    control: httpx.Client
    api: httpx.Client
    timeout: float

    def push(self, tenant: Tenant, lucca: str, cards: str, worker_name: str) -> PushFigures:
        """Queue a push, start a fresh worker for it, wait for the run; the calls it made and the worker's peak."""
        for partner, account in (("lucca", lucca), ("cards", cards)):
            expect(self.control.delete(f"/_sandbox/{partner}/accounts/{account}/calls"), 204, "clear calls")
        path = f"/api/v1/tenants/{tenant.slug}/cards/stats/sync"
        run_id = str(expect(self.api.post(path, headers=tenant.auth), 202, "queue the push")["run_id"])
        started = time.time()
        worker = start_worker(self.processes, self.config, worker_name)
        progress = wait_for_run(self.api, tenant, run_id, self.timeout)
        peak = peak_memory_mb(worker)
        worker.stop()
        if not progress.finished:
            raise BenchError(f"push {run_id} still {progress.run['status']} after {self.timeout:.0f} s")
        ended = progress.run["finished_at"]
        return PushFigures(
            run=progress.run,
            run_seconds=progress.seconds(),
            worker_to_end_seconds=datetime.fromisoformat(ended).timestamp() - started if ended else None,
            lucca_calls=sandbox_calls(self.control, "lucca", lucca)["items"],
            cards_calls=sandbox_calls(self.control, "cards", cards)["items"],
            peak_mb=peak,
        )

    def measure(self, employees: int, share: float) -> SizeResult:
        lucca, cards, slug = f"bench-push-{employees}", f"bench-push-{employees}", f"push-{employees}"
        say(f"{employees} employees: seeding Lucca and Cards, the tenant, one learning event each")
        seed = current_directory_seed_payload(
            employees, window_seconds=WINDOW_SECONDS, requests_per_window=WARM_UP_REQUESTS
        )
        expect(self.control.put(f"/_sandbox/lucca/accounts/{lucca}", json=seed), 204, "seed Lucca")
        space = {**demo_cards_seed_payload(), "users": [], "groups": []}
        space |= {"window_seconds": CARDS_WINDOW_SECONDS, "requests_per_window": CARDS_REQUESTS}
        expect(self.control.put(f"/_sandbox/cards/accounts/{cards}", json=space), 204, "seed Cards")
        lucca_settings = {
            "base_url": f"{self.sandbox_url}/{lucca}",
            "api_key": DEMO_API_KEY,
            "rate_limit": {"requests": WARM_UP_REQUESTS, "per_seconds": WINDOW_SECONDS},
        }
        settings = {
            "api_base_url": f"{self.sandbox_url}/cards/{cards}/v1",
            "api_token": space["api_token"],
            "space_id": space["space_id"],
            "rate_limit": {"requests": CARDS_REQUESTS, "per_seconds": CARDS_WINDOW_SECONDS},
            # The hour that has just begun: the nightly schedule is next due tomorrow, never during the bench.
            "stats_sync": {"enabled": True, "hour": datetime.now(UTC).hour},
        }
        tenant = create_connector_tenant(self.api, self.config, slug, lucca_settings, "cards", settings, timezone="UTC")
        people = [(int(user["id"]), str(user["mail"])) for user in seed["users"]]
        training = {user_id: TRAININGS[index % len(TRAININGS)] for index, (user_id, _) in enumerate(people)}
        first_events = [
            learning_event(f"first-{user_id}", mail, training[user_id], FIRST_EVENT_AT, quiz=False)
            for user_id, mail in people
        ]
        post_events(self.api_url, tenant, first_events)

        say(f"  first push (every employee written; Lucca's limit lifted to {WARM_UP_REQUESTS} / {WINDOW_SECONDS} s)")
        first = self.push(tenant, lucca, cards, f"worker-first-{employees}")
        # An attempt cut by the job deadline between a PUT and its fingerprint counts that person as skipped when
        # resumed (Lucca holds their statistics by then): updated + skipped is everyone.
        done = first.run["counts"]["updated"] + first.run["counts"]["skipped"]
        if first.run["status"] != "succeeded" or done != employees:
            raise BenchError(f"the first push ended {first.run['status']} {first.run['counts']}: {first.run['error']}")
        say(f"  first push: {first.run_seconds:.1f} s, {len(first.lucca_calls)} Lucca calls")

        # The same account, its state as the first push left it, at the measured limit (and an empty call log).
        users = expect(self.control.get(f"/_sandbox/lucca/accounts/{lucca}/users"), 200, "read Lucca users")["items"]
        measured_seed = {**seed, "users": users, "requests_per_window": REQUESTS_PER_WINDOW}
        expect(self.control.put(f"/_sandbox/lucca/accounts/{lucca}", json=measured_seed), 204, "seed Lucca again")
        limit = {"lucca": {"rate_limit": {"requests": REQUESTS_PER_WINDOW, "per_seconds": WINDOW_SECONDS}}}
        expect(self.api.patch(f"/api/v1/tenants/{slug}", json=limit, headers=self.config.admin_auth), 200, "set limit")

        count = max(1, round(employees * share))
        changed = {people[index * employees // count][0] for index in range(count)}
        mails = dict(people)
        changes = [
            learning_event(f"change-{user_id}", mails[user_id], training[user_id], CHANGE_AT, quiz=True)
            for user_id in sorted(changed)
        ]
        post_events(self.api_url, tenant, changes)
        say(f"  measured push: {count} employees changed, Lucca at {REQUESTS_PER_WINDOW} calls / {WINDOW_SECONDS} s")
        measured = self.push(tenant, lucca, cards, f"worker-{employees}")
        say(f"  measured push: {measured.run_seconds:.1f} s, {len(measured.lucca_calls)} Lucca calls")
        holding, wrong = self.check_lucca(lucca, changed, training)
        return SizeResult(employees, count, first, measured, holding, wrong)

    def check_lucca(self, lucca: str, changed: set[int], training: dict[int, int]) -> tuple[int, list[str]]:
        """How many employees hold exactly one occurrence, of their training, with the values expected of them."""
        titles = {int(item["id"]): item["title"] for item in demo_cards_seed_payload()["trainings"]}
        users = expect(self.control.get(f"/_sandbox/lucca/accounts/{lucca}/users"), 200, "read Lucca users")["items"]
        holding, wrong = 0, list[str]()
        for user in users:
            rows = (user.get("extendedData") or {}).get(COMPOUND) or []
            expected = {"e_title": titles[training[user["id"]]], **(AFTER if user["id"] in changed else BEFORE)}
            values = [{code: sub.get("value") for code, sub in row["value"].items()} for row in rows]
            held = [{code: value[code][:10] if code.endswith("date") and value.get(code) else value.get(code)
                     for code in expected} for value in values]  # fmt: skip
            if held == [expected]:
                holding += 1
            elif len(wrong) < 5:
                wrong.append(f"Lucca user {user['id']} holds {values}, expected one occurrence {expected}")
        return holding, wrong


def run_benchmark(args: argparse.Namespace, config: ServiceConfig) -> list[SizeResult]:
    with Processes(BENCH) as processes:
        sandbox = start_sandbox(processes, WINDOW_SECONDS, REQUESTS_PER_WINDOW)
        api = start_api(processes, config)
        with (
            httpx.Client(base_url=sandbox.url, timeout=120.0) as control,
            httpx.Client(base_url=api.url, timeout=30.0) as client,
        ):
            bench = Bench(processes, config, api.url, sandbox.url, control, client, args.timeout)
            return [bench.measure(employees, args.changed) for employees in args.sizes]


# ----------------------------------------------------------------------------------------------------
# Figures.


def evaluate(results: Sequence[SizeResult]) -> list[Check]:
    checks = []
    for result in results:
        measured, n = result.measured, result.employees
        label = f"{n:,} employees"
        pages = math.ceil(n / LUCCA_PAGE)
        most_calls = result.changed + pages + EXTRA_CALLS
        calls = len(measured.lucca_calls)
        puts = sum(1 for call in measured.lucca_calls if call["method"] == "PUT")
        counts = measured.run["counts"]
        first = result.first.run["counts"]
        budget = measured.lucca_budget
        bound = calls > REQUESTS_PER_WINDOW
        too_many = measured.count(measured.lucca_calls, 429) + measured.count(measured.cards_calls, 429)
        wall = measured.run_seconds
        checks += [
            Check(f"{label}: push run", f"{measured.run['status']}, {counts['updated']} updated, "
                  f"{counts['skipped']} skipped", f"succeeded, {result.changed} updated",
                  measured.run["status"] == "succeeded" and counts["updated"] == result.changed
                  and counts["skipped"] == n - result.changed),
            Check(f"{label}: Lucca calls (changed {result.changed} + pages {pages} + {EXTRA_CALLS})", str(calls),
                  f"<= {most_calls}", calls <= most_calls),
            Check(f"{label}: Lucca PUTs", str(puts), f"{result.changed}", puts == result.changed),
            Check(f"{label}: Cards calls", str(len(measured.cards_calls))),
            Check(f"{label}: 429s (Lucca + Cards)", str(too_many), "0", too_many == 0),
            # Fewer calls than one window allows never wait for the limit: the rate says nothing then.
            Check(f"{label}: call rate / limit (calls / (50 x span / 5 s))", f"{budget.utilisation:.1%}"
                  + ("" if bound else " (never waited: within one window)"), f">= {TARGET_UTILISATION:.0%}",
                  budget.utilisation >= TARGET_UTILISATION if bound else None),
            Check(f"{label}: calls / sliding-window max", f"{budget.utilisation_of_max:.1%}"),
            Check(f"{label}: busiest {WINDOW_SECONDS} s window", str(budget.busiest_window),
                  f"<= {REQUESTS_PER_WINDOW}", budget.busiest_window <= REQUESTS_PER_WINDOW),
            Check(f"{label}: push wall time (run start -> end)", f"{wall:.1f} s" if wall is not None else "n/a"),
            Check(f"{label}: employees holding the expected occurrence", f"{result.holding_expected:,}",
                  f"{n:,}", result.holding_expected == n),
            Check(f"{label}: worker peak memory (VmHWM)", megabytes(measured.peak_mb), f"< {MAX_PEAK_MB:.0f} MB",
                  measured.peak_mb is not None and measured.peak_mb < MAX_PEAK_MB),
            Check(f"{label}: first push (all written): counts, time, calls, peak",
                  f"{first['updated']} updated + {first['skipped']} skipped, {result.first.run_seconds or 0:.1f} s, "
                  f"{len(result.first.lucca_calls)}, {megabytes(result.first.peak_mb)}"),
        ]  # fmt: skip
    peaks = [(result.employees, result.measured.peak_mb) for result in results]
    if len(peaks) > 1 and all(peak is not None for _, peak in peaks):
        (small, low), (large, high) = min(peaks), max(peaks)
        assert low is not None and high is not None
        growth = high / low - 1
        checks.append(Check(f"peak memory {large:,} vs {small:,} employees", f"{growth:+.1%}",
                            f"<= +{FLAT_TOLERANCE:.0%}", growth <= FLAT_TOLERANCE))  # fmt: skip
    return checks


def megabytes(value: float | None) -> str:
    return f"{value:.1f} MB" if value is not None else "n/a"


def summary(figures: PushFigures) -> dict[str, Any]:
    return {
        "run": figures.run,
        "run_seconds": figures.run_seconds,
        "worker_start_to_end_seconds": figures.worker_to_end_seconds,
        "lucca_calls": len(figures.lucca_calls),
        "lucca_calls_by_route": figures.lucca_routes,
        "lucca_budget": asdict(figures.lucca_budget),
        "cards_calls": len(figures.cards_calls),
        "peak_memory_mb": figures.peak_mb,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    config = ServiceConfig(database=DATABASE, redis_db=REDIS_DB, settings=SERVICE_SETTINGS)
    prepare_state(config)
    results = run_benchmark(args, config)
    checks = evaluate(results)
    title = (
        f"Cards statistics push, {args.changed:.0%} changed; Lucca sandbox at {REQUESTS_PER_WINDOW} calls / "
        f"{WINDOW_SECONDS} s (its real 50 / 60 s scaled down in time)"
    )
    print_table(title, checks)
    for result in results:
        routes = ", ".join(f"{name} x{count}" for name, count in result.measured.lucca_routes.items())
        say(f"{result.employees:,} employees, measured push: {routes}")
        for line in result.wrong_examples:
            say(line)
    document = {
        "options": vars(args),
        "sizes": [
            {
                "employees": result.employees,
                "changed": result.changed,
                "holding_expected": result.holding_expected,
                "wrong_examples": result.wrong_examples,
                "first_push": summary(result.first),
                "measured_push": {**summary(result.measured), "calls": result.measured.lucca_calls},
            }
            for result in results
        ],
    }
    return finish(BENCH, checks, document)


if __name__ == "__main__":
    sys.exit(main())
