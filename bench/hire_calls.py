"""Lucca calls per hire at 5,000 and 20,000 employees, counted from the sandbox's call log.

    .venv/bin/python -m bench.hire_calls [--sizes 5000,20000] [--timeout 120]

For each size a sandbox account is seeded with that many generated employees (every name held by several
namesakes, one in nine a former employee) and a tenant with a Softgarden connector is made. A first hire fills the
structure cache; then a new hire, a namesake (who takes the next suffix) and a re-hire (the same personal e-mail,
linked) are posted one at a time, and the calls each made are read from the call log. Reported per hire: calls
(target at most 5) and the bytes Lucca sent for them (each logged users query is sent again to measure its
answer), beside the baseline of the former full listing (⌈users / 1000⌉ pages of 1,000, measured the same way,
plus the create). Exit status: 0 when every hire is within the target, 1 otherwise.
"""

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from app.sandbox.demo import DEMO_API_KEY, directory_seed_payload
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

BENCH = "hire_calls"
DATABASE = "lucca_connectors_bench_calls"
REDIS_DB = 8
# A window the hires never reach: only the count of calls is measured here, not the pace.
WINDOW_SECONDS = 5
REQUESTS_PER_WINDOW = 1000
MAX_CALLS = 5
OLD_PAGE_SIZE = 1000
OLD_FIELDS = (
    "id,firstName,lastName,login,mail,personalEmail,jobTitle,employeeNumber,dtContractStart,dtContractEnd,"
    "departmentId,department,legalEntityId,managerId,rolePrincipalId"
)
WEBHOOK_PATH = "/integrations/webhooks/softgarden/candidate-hired"
FINISHED = ("succeeded", "partial", "failed")
POLL_SECONDS = 0.1
LUCCA_AUTH = {"Authorization": f"lucca application={DEMO_API_KEY}"}

# (case, webhook body changes, expected outcome). Ada Adams is employees 0, 2000, 4000…: a namesake, and
# `ada.adams.0@perso.example` is the first one's personal e-mail.
CASES: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("new hire", {"firstName": "Quentin", "lastName": "Zhou", "email": "quentin@perso.example"}, "created"),
    ("namesake (next suffix)", {"firstName": "Ada", "lastName": "Adams", "email": "ada@new.example"}, "created"),
    ("re-hire (linked)", {"firstName": "Ada", "lastName": "Adams", "email": "Ada.Adams.0@perso.example"}, "linked"),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.hire_calls", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,20000", help="employees per account, comma-separated")
    parser.add_argument("--timeout", type=int, default=120, help="seconds to wait for one hire (default 120)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error("--sizes must be integers, e.g. 5000,20000")
    if not all(0 <= size <= 100_000 for size in args.sizes) or not 5 <= args.timeout <= 3600:
        parser.error("--sizes must be 0..100000 and --timeout 5..3600 s")
    return args


@dataclass(frozen=True)
class HireCalls:
    """One measured hire: its outcome, the Lucca calls it made, and what they cost beside the old listing."""

    employees: int
    case: str
    outcome: str
    login: str | None
    calls: int
    calls_by_route: dict[str, int]
    bytes_read: int
    baseline_calls: int
    baseline_bytes: int
    seconds: float


@dataclass
class Account:
    """A seeded sandbox account, its tenant, and clients of the sandbox and the API."""

    name: str
    employees: int
    tenant: Tenant
    sandbox: httpx.Client
    api: httpx.Client

    def calls(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = expect(
            self.sandbox.get(f"/_sandbox/lucca/accounts/{self.name}/calls"), 200, "read the call log"
        )["items"]
        return items

    def users(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = expect(
            self.sandbox.get(f"/_sandbox/lucca/accounts/{self.name}/users"), 200, "read the users"
        )["items"]
        return items

    def answer_bytes(self, path: str, query: str) -> int:
        """The size of Lucca's answer to this GET, sent again (a read: it changes nothing)."""
        answer = self.sandbox.get(f"/{self.name}{path}?{query}", headers=LUCCA_AUTH)
        expect(answer, 200, f"send GET {path} again")
        return len(answer.content)


def seed(sandbox: httpx.Client, name: str, employees: int) -> None:
    body = directory_seed_payload(employees, window_seconds=WINDOW_SECONDS, requests_per_window=REQUESTS_PER_WINDOW)
    answer = sandbox.put(f"/_sandbox/lucca/accounts/{name}", json=body)
    if answer.status_code != 204:
        raise BenchError(f"seeding {name}: {answer.status_code} {answer.text[:300]}")


def wait_for_run(account: Account, run_id: str, timeout: float) -> dict[str, Any]:
    path = f"/api/v1/tenants/{account.tenant.slug}/runs/{run_id}"
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = expect(account.api.get(path, headers=account.tenant.auth), 200, "read a run")
        if run["status"] in FINISHED:
            return run
        if time.monotonic() >= deadline:
            raise BenchError(f"run {run_id} still {run['status']} after {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def hire(
    account: Account, application_id: str, changes: dict[str, Any], timeout: float
) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
    """Post one hire and wait for its run; returns the run, the Lucca calls it made, and its seconds."""
    before = len(account.calls())
    body = {"applicationId": application_id, "status": "hired", "company": "Acme Paris",
            "startDate": "2027-03-01", **changes}  # fmt: skip
    started = time.monotonic()
    answer = expect(account.api.post(WEBHOOK_PATH, json=body, headers=account.tenant.webhook_auth), 202, "post a hire")
    run = wait_for_run(account, str(answer["run_id"]), timeout)
    return run, account.calls()[before:], time.monotonic() - started


def old_listing(account: Account) -> tuple[int, int]:
    """The former lookup: every user, 1,000 a page, until a short page; its pages and bytes, measured."""
    pages, size, offset = 0, 0, 0
    while True:
        query = f"fields={OLD_FIELDS}&formerEmployees=true&paging={offset},{OLD_PAGE_SIZE}"
        answer = account.sandbox.get(f"/{account.name}/api/v3/users?{query}", headers=LUCCA_AUTH)
        items = expect(answer, 200, "list users as before")["data"]["items"]
        pages, size, offset = pages + 1, size + len(answer.content), offset + OLD_PAGE_SIZE
        if len(items) < OLD_PAGE_SIZE:
            return pages, size


def measure_account(account: Account, timeout: float) -> list[HireCalls]:
    warm, _, _ = hire(account, "warm-up", {"firstName": "Warm", "lastName": "Up", "email": "warm@up.example"}, timeout)
    if warm["status"] != "succeeded":
        raise BenchError(f"the warm-up hire ended {warm['status']}: {warm['error']}")
    measured = []
    for index, (case, changes, outcome) in enumerate(CASES):
        run, calls, seconds = hire(account, f"case-{index}", changes, timeout)
        if run["status"] != "succeeded" or run["counts"][outcome] != 1:
            raise BenchError(f"{case} at {account.employees}: run {run['status']} {run['counts']} {run['error']}")
        pages, listing_bytes = old_listing(account)
        gets = [call for call in calls if call["method"] == "GET"]
        routes: dict[str, int] = {}
        for call in calls:
            route = f"{call['method']} {call['path']}"
            routes[route] = routes.get(route, 0) + 1
        emails = {str(user.get("personalEmail")).casefold(): user.get("login") for user in account.users()}
        measured.append(
            HireCalls(
                employees=account.employees,
                case=case,
                outcome=outcome,
                login=emails.get(changes["email"].casefold()),
                calls=len(calls),
                calls_by_route=routes,
                bytes_read=sum(account.answer_bytes(call["path"], call["query"]) for call in gets),
                baseline_calls=pages + (1 if outcome == "created" else 0),
                baseline_bytes=listing_bytes,
                seconds=seconds,
            )
        )
    return measured


def run_benchmark(args: argparse.Namespace, config: ServiceConfig) -> list[HireCalls]:
    with Processes(BENCH) as processes:
        sandbox = start_sandbox(processes, WINDOW_SECONDS, REQUESTS_PER_WINDOW)
        api = start_api(processes, config)
        start_worker(processes, config)
        with (
            httpx.Client(base_url=sandbox.url, timeout=60.0) as control,
            httpx.Client(base_url=api.url, timeout=30.0) as client,
        ):
            measured: list[HireCalls] = []
            for employees in args.sizes:
                name = f"bench-calls-{employees}"
                say(f"seeding {name} with {employees} employees")
                seed(control, name, employees)
                lucca = {
                    "base_url": f"{sandbox.url}/{name}",
                    "api_key": DEMO_API_KEY,
                    "rate_limit": {"requests": REQUESTS_PER_WINDOW, "per_seconds": WINDOW_SECONDS},
                }
                tenant = create_softgarden_tenant(client, config, f"calls-{employees}", lucca, SOFTGARDEN_SETTINGS)
                measured += measure_account(Account(name, employees, tenant, control, client), args.timeout)
            return measured


def kilobytes(size: int) -> str:
    return f"{size / 1024:,.1f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:,.1f} MB"


def evaluate(measured: Sequence[HireCalls]) -> list[Check]:
    checks = []
    for hire_calls in measured:
        label = f"{hire_calls.employees:,} employees, {hire_calls.case}"
        checks.append(Check(f"{label}: Lucca calls", str(hire_calls.calls), f"<= {MAX_CALLS}",
                            hire_calls.calls <= MAX_CALLS))  # fmt: skip
        checks.append(Check(f"{label}: calls before (full listing)", str(hire_calls.baseline_calls)))
        checks.append(Check(f"{label}: bytes read now / before",
                            f"{kilobytes(hire_calls.bytes_read)} / {kilobytes(hire_calls.baseline_bytes)}"))  # fmt: skip
    return checks


def describe(hire_calls: HireCalls) -> str:
    routes = ", ".join(f"{route} x{count}" for route, count in hire_calls.calls_by_route.items())
    return (
        f"{hire_calls.employees:,} employees, {hire_calls.case}: {hire_calls.outcome} "
        f"(login {hire_calls.login}) in {hire_calls.seconds:.2f} s; {routes}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    config = ServiceConfig(database=DATABASE, redis_db=REDIS_DB)
    prepare_state(config)
    measured = run_benchmark(args, config)
    print_table("Lucca calls per hire (structure cached), from the sandbox's call log", evaluate(measured))
    for hire_calls in measured:
        say(describe(hire_calls))
    return finish(BENCH, evaluate(measured), {"options": vars(args), "hires": [asdict(h) for h in measured]})


if __name__ == "__main__":
    sys.exit(main())
