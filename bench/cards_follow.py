"""Cards' auto_sync (contract 5.3, section 6's `changes` runs): from a change in the sandbox's Lucca to the sandbox's
Cards, and an hour of changes at 20,000 people.

    .venv/bin/python -m bench.cards_follow [--changes 100] [--employees 300] [--people 20000]
        [--hour-changes 400] [--compress 20] [--quick] [--parts latency,hour[,switch-on]]
        [--switch-on-people 20000] [--switch-on-cap 600]

One sandbox, one API process, a Redis of the benchmark's own, real arq workers whose `PUBLIC_BASE_URL` is the API's
address. Every Lucca account holds generated people, all current with a work mail of their own, and its Cards space
holds each of them already (same e-mail and names): switching auto_sync on (`users`) links them all, one listing
page a 500 and no create, and that pass is timed.

**Latency**, both partners at their real limits (Lucca 50 calls / 60 s per account, Cards 300 / 60 s), three tenants
of `--employees` people each, run at once:
- **webhooks** (OAuth alone, auto_sync on): `--changes` changes one every 0.2 s, three renames for one hire; each
  one's lag until the Cards call that carries it was answered (the sandbox's Cards call log), and, as the baseline
  in the same run, until the directory's copy held it (Postgres watched every 50 ms): what following adds is the
  difference. Then `--changes` / 5 job titles changed: Cards does not show them (target: no Cards call, no run,
  while the pass has taken them in).
- **polling** (API key, `poll_seconds` 30, auto_sync on): the same kinds of changes spread over 60 s.
- **off** (OAuth alone, auto_sync off): the webhooks tenant's changes at the same time; its Lucca calls are what the
  directory spends alone (target: every Lucca call of the webhooks tenant is one of the directory's routes; the
  counts differ by how the events fell into the reads' 1-second batches and by the directory's periodic reads).

**An hour** of `--hour-changes` changes (2 % of `--people`: renames, hires and job titles, 2:1:1) spread evenly,
with time compressed `--compress` times: the hour lasts 3600 / compress s, and both partners' windows shrink with it
(Lucca 50 calls per 60 / compress s, Cards 300 per 60 / compress s; the tenant's `rate_limit`s say the same). The
tenant has its key (the full sync) and OAuth (webhooks). Its 20,000 links to Cards, the views Cards was brought in
line with and the follow state are seeded in SQL while the connector is disabled, then it is enabled: the switch-on
pass of 20,000 is one run of 20,000 items whose per-item checkpoint is slow (issue 19), so the bench seeds around it
(its time is measured at `--employees` above). A fresh worker runs the hour. Reported: each partner's calls, its
busiest window against its limit, 429s, the worker's peak memory (VmHWM) against its own at start, Cards calls per
change that Cards shows, and the end state read back from Cards (every rename and hire there, no e-mail twice).

**The switch-on pass** (`--parts switch-on`, not run by default: it is long), both partners at their real limits: a
tenant of `--switch-on-people` people whose Cards space holds each of them, auto_sync switched on with the
connector; its run (one item a person: linked, no write) is read every 5 s until it ends or `--switch-on-cap` s
pass, and the items done, the wall time and the pace in its first and last minute are reported.

Exit status 0 when every target holds.
"""

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import asyncpg
import httpx

from app.sandbox.demo import (
    DEMO_API_KEY,
    DEMO_CARDS_SPACE,
    DEMO_CARDS_TOKEN,
    DEMO_OAUTH_CLIENT_ID,
    DEMO_OAUTH_CLIENT_SECRET,
    current_directory_seed_payload,
    demo_user,
)
from app.services.cards_follow import settings_key
from bench.harness import (
    BenchError,
    BudgetUse,
    Check,
    LuccaChange,
    Processes,
    ServiceConfig,
    Tenant,
    calls_by_route,
    change_and_watch,
    create_connector_tenant,
    create_tenant,
    exit_on_sigterm,
    expect,
    finish,
    first_full_sync,
    full_sync,
    make_change,
    peak_memory_mb,
    percentile,
    print_table,
    private_state,
    run_reporting_failure,
    sandbox_calls,
    say,
    seed_lucca,
    start_api,
    start_lucca_sandbox,
    start_worker,
    tenant_id_of,
    wait_for_run,
    wait_for_webhook,
    worker_started,
)

BENCH = "cards_follow"
DATABASE = "lucca_connectors_bench_cards_follow"
LUCCA_WINDOW_SECONDS = 60
LUCCA_REQUESTS = 50
CARDS_WINDOW_SECONDS = 60
CARDS_REQUESTS = 300
POLL_SECONDS = 30
WEBHOOK_P99_TARGET = 10.0
POLLING_P99_TARGET = 40.0
WEBHOOK_SPACING_SECONDS = 0.2
POLLING_SPAN_SECONDS = 60.0
WAIT_SECONDS = 120.0
# After the last change: the poller's pass (2 s), the job's gathering (3 s) and a run, twice over.
SETTLE_SECONDS = 12.0
USERS = {"users": True, "departments": "none", "leavers": "keep"}
OFF = {"users": False, "departments": "none", "leavers": "keep"}
SERVICE_SETTINGS = {"API_DATABASE_POOL_SIZE": "5", "WORKER_MAX_JOBS": "6"}
WRITES = ("POST", "PUT")
# The routes the directory reads with OAuth alone: its changed people, its departments, its webhook endpoint.
DIRECTORY_ROUTES = ("GET /lucca-api/employees", "GET /lucca-api/departments", "GET /lucca-api/webhook-endpoints/")


PARTS = ("latency", "hour", "switch-on")


def parts(text: str) -> list[str]:
    """An argparse type: some of PARTS, comma-separated."""
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    if not chosen or not set(chosen) <= set(PARTS):
        raise argparse.ArgumentTypeError(f"{text!r}: some of {', '.join(PARTS)}, comma-separated")
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cards_follow", description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=100, help="changes per latency tenant (default 100)")
    parser.add_argument("--employees", type=int, default=300, help="people per latency tenant (default 300)")
    parser.add_argument("--people", type=int, default=20_000, help="people of the hour's tenant (default 20000)")
    parser.add_argument("--hour-changes", type=int, default=400, help="changes in the hour (default 400)")
    parser.add_argument(
        "--compress", type=int, default=20, choices=(10, 12, 15, 20, 30, 60), help="time compression (default 20)"
    )
    parser.add_argument("--quick", action="store_true", help="20 changes of 100 people; 40 of 2,000 in 60 s")
    parser.add_argument(
        "--parts",
        type=parts,
        default="latency,hour",
        help=f"comma-separated, of {', '.join(PARTS)} (default: the first two)",
    )
    parser.add_argument("--switch-on-people", type=int, default=20_000, help="people of the switch-on pass (20000)")
    parser.add_argument("--switch-on-cap", type=int, default=600, help="seconds the switch-on pass is read (600)")
    args = parser.parse_args(argv)
    if args.quick:
        args.changes, args.employees, args.people, args.hour_changes, args.compress = 20, 100, 2000, 40, 60
    if not 4 <= args.changes <= args.employees or not 4 <= args.hour_changes <= args.people // 2:
        parser.error("--changes must be 4..--employees, --hour-changes 4..--people / 2")
    return args


# ----------------------------------------------------------------------------------------------------
# Accounts, tenants and changes.


def cards_seed(users: Sequence[Mapping[str, Any]], **limits: Any) -> dict[str, Any]:
    """A Cards space holding every one of these Lucca people already (its user id is their Lucca id)."""
    cards_users = [
        {"id": user["id"], "firstname": user["firstName"], "lastname": user["lastName"], "email": user["mail"]}
        for user in users
    ]
    return {"api_token": DEMO_CARDS_TOKEN, "space_id": DEMO_CARDS_SPACE, "users": cards_users, **limits}


def seed_accounts(
    control: httpx.Client, account: str, people: int, lucca: Mapping[str, Any], cards: Mapping[str, Any]
) -> list[int]:
    """The Lucca account of `people` and its Cards space holding each of them, each at its limit (`window_seconds`,
    `requests_per_window`; none given: the sandbox's); their Lucca ids."""
    seed = current_directory_seed_payload(people, **lucca)
    seed_lucca(control, account, seed)
    space = cards_seed(seed["users"], **cards)
    expect(control.put(f"/_sandbox/cards/accounts/{account}", json=space), 204, f"seed Cards {account}")
    return [int(user["id"]) for user in seed["users"]]


def lucca_settings(sandbox_url: str, account: str, *, key: bool, oauth: bool, **more: Any) -> dict[str, Any]:
    base_url = f"{sandbox_url}/{account}"
    lucca: dict[str, Any] = {"base_url": base_url, **more}
    if key:
        lucca["api_key"] = DEMO_API_KEY
    if oauth:
        lucca["oauth"] = {
            "client_id": DEMO_OAUTH_CLIENT_ID,
            "client_secret": DEMO_OAUTH_CLIENT_SECRET,
            "token_url": f"{base_url}/connect/token",
        }
    return lucca


def cards_settings(sandbox_url: str, account: str, auto_sync: Mapping[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "api_base_url": f"{sandbox_url}/cards/{account}/v1",
        "api_token": DEMO_CARDS_TOKEN,
        "space_id": DEMO_CARDS_SPACE,
        "auto_sync": dict(auto_sync),
        **more,
    }


def hire_body(first_name: str) -> dict[str, Any]:
    """A hire in Paris, Engineering, whose login and mail follow from the (unique) first name."""
    return {key: value for key, value in demo_user(0, first_name, "Hired", 10).items() if key != "id"}


def mixed_changes(people: Sequence[int], count: int, prefix: str, titles: bool) -> list[LuccaChange]:
    """`count` changes, each naming its person `prefix` + its number: three renames for one hire or, with `titles`,
    renames, hires and job titles 2:1:1 (a job title keeps the name: Cards does not show it)."""
    kinds = ("rename", "rename", "hire", "title") if titles else ("rename", "rename", "rename", "hire")
    changes = []
    for number in range(count):
        name, kind = f"{prefix}{number}", kinds[number % 4]
        if kind == "hire":
            changes.append(LuccaChange(None, hire_body(name)))
        elif kind == "title":
            changes.append(LuccaChange(people[number], {"jobTitle": f"Title {name}"}))
        else:
            changes.append(LuccaChange(people[number], {"firstName": name}))
    return changes


def shown(change: LuccaChange) -> str | None:
    """The first name a change gives, which the Cards call carrying it sends; None for a job title."""
    name = change.body.get("firstName")
    return str(name) if name is not None else None


def clear_calls(control: httpx.Client, account: str) -> None:
    for partner in ("lucca", "cards"):
        expect(control.delete(f"/_sandbox/{partner}/accounts/{account}/calls"), 204, f"clear {partner} calls")


def changes_runs(api: httpx.Client, tenant: Tenant) -> list[dict[str, Any]]:
    path = f"/api/v1/tenants/{tenant.slug}/runs"
    params: dict[str, str | int] = {"connector": "cards", "operation": "changes", "limit": 500}
    items: list[dict[str, Any]] = expect(api.get(path, params=params, headers=tenant.auth), 200, "runs")["items"]
    return items


def switched_on_run(api: httpx.Client, tenant: Tenant) -> str:
    """The id of the changes run that switching auto_sync on made (the space brought in line once)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not (runs := changes_runs(api, tenant)):
        if time.monotonic() > deadline:
            raise BenchError(f"{tenant.slug}: switching auto_sync on made no changes run")
        time.sleep(0.5)
    return str(runs[-1]["id"])


def switch_on(api: httpx.Client, tenant: Tenant) -> dict[str, Any]:
    """The switch-on run, once finished."""
    progress = wait_for_run(api, tenant, switched_on_run(api, tenant), WAIT_SECONDS, every=0.5)
    if progress.run["status"] != "succeeded":
        raise BenchError(f"{tenant.slug}: the switch-on run ended {progress.run['status']}: {progress.run['error']}")
    return {**progress.run, "seconds": progress.seconds()}


def cards_writes(calls: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """First name → when the first answered Cards write sending it was logged."""
    seen: dict[str, float] = {}
    for call in calls:
        body = call.get("body")
        if call["method"] in WRITES and call["status"] < 300 and isinstance(body, dict) and "firstname" in body:
            seen.setdefault(str(body["firstname"]), float(call["at"]))
    return seen


def wait_for_cards(control: httpx.Client, account: str, names: set[str], wait: float) -> float:
    """Read the Cards call log each second until every name was sent (or `wait` passes); when it was."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if names <= set(cards_writes(sandbox_calls(control, "cards", account)["items"])):
            break
        time.sleep(1.0)
    return time.time()


async def first_names(database_url: str, tenant_id: Any, prefix: str) -> dict[str, int]:
    """First name → person, for the copy's people named `prefix`…"""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT lucca_id, first_name FROM directory_employees WHERE tenant_id = $1 AND first_name LIKE $2",
            tenant_id,
            f"{prefix}%",
        )
    finally:
        await connection.close()
    return {str(row["first_name"]): int(row["lucca_id"]) for row in rows}


def writes_and_reads(calls: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """Cards writes (a create or an update each) and the other calls (the token's proof, reads of users)."""
    writes = sum(1 for call in calls if call["method"] in WRITES)
    return writes, len(calls) - writes


def too_many(calls: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for call in calls if call["status"] == 429)


def p50_p99(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f} / {percentile(values, 0.99):.2f} s" if values else "n/a"


# ----------------------------------------------------------------------------------------------------
# Latency at the real limits.


@dataclass
class Mode:
    """One latency tenant: its account, auto_sync, credentials, changes and what was seen of them."""

    name: str
    auto_sync: Mapping[str, Any]
    oauth: bool
    prefix: str
    spacing: float
    tenant: Tenant | None = None
    tenant_id: Any = None
    people: list[int] | None = None
    switch_on: dict[str, Any] | None = None
    made: dict[int, float] | None = None
    in_copy: dict[int, float] | None = None

    @property
    def account(self) -> str:
        return f"follow-{self.name}"


def setup_modes(
    args: argparse.Namespace, config: ServiceConfig, sandbox_url: str, api: httpx.Client, control: httpx.Client
) -> list[Mode]:
    modes = [
        Mode("hooks", USERS, True, "Hooked", WEBHOOK_SPACING_SECONDS),
        Mode("polls", USERS, False, "Polled", POLLING_SPAN_SECONDS / args.changes),
        Mode("off", OFF, True, "Hooked", WEBHOOK_SPACING_SECONDS),
    ]
    for mode in modes:
        mode.people = seed_accounts(control, mode.account, args.employees, {}, {})
        lucca = lucca_settings(
            sandbox_url, mode.account, key=not mode.oauth, oauth=mode.oauth, poll_seconds=POLL_SECONDS
        )
        settings = cards_settings(sandbox_url, mode.account, mode.auto_sync)
        mode.tenant = create_connector_tenant(api, config, mode.name, lucca, "cards", settings)
    for mode in modes:
        assert mode.tenant is not None
        say(f"{mode.name}: first full sync of {args.employees} people, then auto_sync's switch-on pass")
        first_full_sync(api, mode.tenant, WAIT_SECONDS)
        if mode.auto_sync["users"]:
            mode.switch_on = switch_on(api, mode.tenant)
            mode.switch_on["cards_calls"] = calls_by_route(sandbox_calls(control, "cards", mode.account)["items"])
        if mode.oauth:
            wait_for_webhook(api, mode.tenant, WAIT_SECONDS)
        mode.tenant_id = asyncio.run(tenant_id_of(config.postgres_url, mode.name))
    return modes


async def change_all(config: ServiceConfig, sandbox_url: str, modes: Sequence[Mode], count: int) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as control:

        async def one(mode: Mode) -> None:
            assert mode.people is not None
            changes = mixed_changes(mode.people, count, mode.prefix, titles=False)
            mode.made, mode.in_copy = await change_and_watch(
                control, config.postgres_url, mode.account, mode.tenant_id, changes, mode.spacing, mode.prefix,
                WAIT_SECONDS,
            )  # fmt: skip

        await asyncio.gather(*(one(mode) for mode in modes))


async def titles(config: ServiceConfig, sandbox_url: str, mode: Mode, count: int) -> None:
    """`count` job titles of the mode's people, until the copy holds them."""
    assert mode.people is not None
    changes = [
        LuccaChange(person, {"jobTitle": f"Titled {number}"}) for number, person in enumerate(mode.people[:count])
    ]
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as control:
        await change_and_watch(
            control, config.postgres_url, mode.account, mode.tenant_id, changes, WEBHOOK_SPACING_SECONDS, "Titled",
            WAIT_SECONDS, column="job_title",
        )  # fmt: skip


async def pass_took_in_all(database_url: str, tenant_id: Any) -> bool:
    """Whether auto_sync's cursor has reached the copy's newest change."""
    connection = await asyncpg.connect(database_url)
    try:
        return bool(
            await connection.fetchval(
                "SELECT s.seen_seq >= (SELECT max(change_seq) FROM directory_employees WHERE tenant_id = $1)"
                " FROM cards_follow_states s WHERE s.tenant_id = $1",
                tenant_id,
            )
        )
    finally:
        await connection.close()


def latency(
    args: argparse.Namespace, config: ServiceConfig, sandbox_url: str, api: httpx.Client, control: httpx.Client
) -> tuple[list[Check], dict[str, Any]]:
    modes = setup_modes(args, config, sandbox_url, api, control)
    hooks = modes[0]
    for mode in modes:
        clear_calls(control, mode.account)
    say(f"{args.changes} changes per tenant: webhooks and off one every 0.2 s, polling over 60 s")
    asyncio.run(change_all(config, sandbox_url, modes, args.changes))
    results: dict[str, Any] = {}
    checks: list[Check] = []
    for mode in modes[:2]:  # the two that follow
        assert mode.people is not None and mode.tenant is not None and mode.made is not None
        names = {
            name for change in mixed_changes(mode.people, args.changes, mode.prefix, False) if (name := shown(change))
        }
        wait_for_cards(control, mode.account, names, WAIT_SECONDS)
    time.sleep(SETTLE_SECONDS)
    for mode in modes:
        assert mode.tenant is not None and mode.made is not None and mode.in_copy is not None
        lucca_calls = sandbox_calls(control, "lucca", mode.account)["items"]
        cards_calls = sandbox_calls(control, "cards", mode.account)["items"]
        person_of = asyncio.run(first_names(config.postgres_url, mode.tenant_id, mode.prefix))
        in_cards = {person_of[name]: at for name, at in cards_writes(cards_calls).items() if name in person_of}
        copy_lags = [mode.in_copy[person] - mode.made[person] for person in mode.made if person in mode.in_copy]
        cards_lags = [in_cards[person] - mode.made[person] for person in mode.made if person in in_cards]
        following = [
            in_cards[person] - mode.in_copy[person]
            for person in mode.made
            if person in in_cards and person in mode.in_copy
        ]
        runs = changes_runs(api, mode.tenant)
        results[mode.name] = {
            "switch_on": mode.switch_on,
            "copy_lags": copy_lags,
            "cards_lags": cards_lags,
            "following_adds": following,
            "lucca_calls_by_route": calls_by_route(lucca_calls),
            "cards_calls_by_route": calls_by_route(cards_calls),
            "changes_runs": len(runs) - (1 if mode.switch_on else 0),
            "lucca_calls": len(lucca_calls),
            "cards_calls": len(cards_calls),
            "cards_writes_reads": writes_and_reads(cards_calls),
            "429s": too_many(lucca_calls) + too_many(cards_calls),
        }
    checks += latency_checks(args, results)
    say(f"webhooks: {args.changes // 5} job titles changed (Cards does not show them)")
    clear_calls(control, hooks.account)
    assert hooks.tenant is not None
    runs_before = len(changes_runs(api, hooks.tenant))
    asyncio.run(titles(config, sandbox_url, hooks, args.changes // 5))
    time.sleep(SETTLE_SECONDS)
    title_calls = sandbox_calls(control, "cards", hooks.account)["items"]
    title_runs = len(changes_runs(api, hooks.tenant)) - runs_before
    taken_in = asyncio.run(pass_took_in_all(config.postgres_url, hooks.tenant_id))
    results["titles"] = {"changes": args.changes // 5, "cards_calls": len(title_calls), "runs": title_runs,
                         "taken_in": taken_in}  # fmt: skip
    checks.append(
        Check(
            f"webhooks: {args.changes // 5} job titles: Cards calls, changes runs (the pass took them in)",
            f"{len(title_calls)}, {title_runs} ({'yes' if taken_in else 'no'})",
            "0, 0 (yes)",
            len(title_calls) == 0 and title_runs == 0 and taken_in,
        )
    )
    return checks, results


def latency_checks(args: argparse.Namespace, results: Mapping[str, Any]) -> list[Check]:
    hooks, off = results["hooks"], results["off"]
    hires = args.changes // 4
    checks = []
    for name, title, target in (
        ("hooks", "webhooks", WEBHOOK_P99_TARGET),
        ("polls", "polling at 30 s", POLLING_P99_TARGET),
    ):
        mode = results[name]
        lags = mode["cards_lags"]
        p99 = percentile(lags, 0.99) if lags else float("inf")
        switched = mode["switch_on"]
        checks += [
            Check(f"{title}: switch-on pass of {args.employees}: linked; run time; Cards calls",
                  f"{switched['counts'].get('linked', 0)}; {switched['seconds'] or 0:.1f} s; "
                  f"{sum(switched['cards_calls'].values())}", f"{args.employees}; ; 2 (the proof, one listing)",
                  switched["counts"].get("linked") == args.employees),
            Check(f"{title}: changes in Cards ({args.changes - hires} renames, {hires} hires)", f"{len(lags)}",
                  f"{args.changes}", len(lags) == args.changes),
            Check(f"{title}: change -> Cards p50 / p99", p50_p99(lags), f"p99 < {target:g} s", p99 < target),
            Check(f"{title} baseline: change -> copy p50 / p99", p50_p99(mode["copy_lags"])),
            Check(f"{title}: what following adds (copy -> Cards) p50 / p99", p50_p99(mode["following_adds"])),
            Check(f"{title}: Cards writes (per change), other Cards calls; changes runs",
                  f"{mode['cards_writes_reads'][0]} ({mode['cards_writes_reads'][0] / args.changes:.2f}), "
                  f"{mode['cards_writes_reads'][1]}; {mode['changes_runs']}", f"{args.changes} (1.00), 0",
                  tuple(mode["cards_writes_reads"]) == (args.changes, 0)),
            Check(f"{title}: Lucca calls; 429s", f"{mode['lucca_calls']}; {mode['429s']}", "; 0", mode["429s"] == 0),
        ]  # fmt: skip
    # The follow job and its runs read the copy: every Lucca call of the tenant that follows is the directory's (its
    # reads of the changed people, its departments and webhook endpoint reads, due at their own times). The counts on
    # and off differ by how the events fell into the reads' 1-second batches and by those periodic reads.
    others = sorted(route for route in hooks["lucca_calls_by_route"] if not route.startswith(DIRECTORY_ROUTES))
    checks.append(
        Check("webhooks: Lucca calls with auto_sync on vs off (same changes, same time); not the directory's",
              f"{hooks['lucca_calls']} vs {off['lucca_calls']}; {', '.join(others) or 'none'}", "none", not others)
    )  # fmt: skip
    return checks


# ----------------------------------------------------------------------------------------------------
# An hour of changes at 20,000 people, compressed.


async def seed_followed(database_url: str, tenant_id: Any, space_id: str, key: str) -> int:
    """Every current employee linked to the Cards user of their Lucca id, the view Cards was brought in line with
    (what `Scene.view` makes under `users`), and the follow state at the copy's newest change: what the switch-on
    pass leaves."""
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO cards_user_links (id, tenant_id, space_id, lucca_user_id, cards_user_id)"
                " SELECT gen_random_uuid(), tenant_id, $2, lucca_id, lucca_id FROM directory_employees"
                " WHERE tenant_id = $1 AND gone_at IS NULL",
                tenant_id,
                space_id,
            )
            await connection.execute(
                "INSERT INTO cards_followed_people (tenant_id, space_id, lucca_user_id, view, email_key)"
                " SELECT tenant_id, $2, lucca_id, jsonb_build_object('left', false, 'problem', null,"
                " 'first_name', coalesce(first_name, ''), 'last_name', coalesce(last_name, ''), 'email', email),"
                " lower(email) FROM directory_employees WHERE tenant_id = $1 AND gone_at IS NULL",
                tenant_id,
                space_id,
            )
            await connection.execute(
                "INSERT INTO cards_follow_states (tenant_id, space_id, settings_key, seen_seq, leavers_checked_at)"
                " SELECT $1, $2, $3, greatest((SELECT max(change_seq) FROM directory_employees WHERE tenant_id = $1),"
                " (SELECT max(change_seq) FROM directory_departments WHERE tenant_id = $1)), now()",
                tenant_id,
                space_id,
                key,
            )
            count: int = await connection.fetchval(
                "SELECT count(*) FROM cards_user_links WHERE tenant_id = $1", tenant_id
            )
    finally:
        await connection.close()
    return count


async def change_over(control_url: str, account: str, changes: Sequence[LuccaChange], span: float) -> dict[str, float]:
    """The changes spread evenly over `span` s; first name → when its change was made (job titles left out)."""
    made: dict[str, float] = {}
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=control_url, timeout=30) as control:
        for number, change in enumerate(changes):
            await asyncio.sleep(max(0.0, started + number * span / len(changes) - time.monotonic()))
            at = time.time()
            await make_change(control, account, change)
            if (name := shown(change)) is not None:
                made[name] = at
    return made


@dataclass(frozen=True)
class Hour:
    """The compressed hour's settings."""

    compress: int

    @property
    def window(self) -> int:
        return 60 // self.compress

    @property
    def seconds(self) -> float:
        return 3600 / self.compress


def hour(
    args: argparse.Namespace,
    config: ServiceConfig,
    processes: Processes,
    sandbox_url: str,
    api: httpx.Client,
    control: httpx.Client,
) -> tuple[list[Check], dict[str, Any]]:
    scaled = Hour(args.compress)
    account = "follow-hour"
    say(f"hour: seeding {args.people} people in Lucca and in Cards")
    people = seed_accounts(
        control, account, args.people, {"window_seconds": scaled.window, "requests_per_window": LUCCA_REQUESTS},
        {"window_seconds": scaled.window, "requests_per_window": CARDS_REQUESTS},
    )  # fmt: skip
    lucca = lucca_settings(sandbox_url, account, key=True, oauth=True, rate_limit={
        "requests": LUCCA_REQUESTS, "per_seconds": scaled.window})  # fmt: skip
    tenant = create_tenant(api, config, "hour", lucca)
    rate = {"requests": CARDS_REQUESTS, "per_seconds": scaled.window}
    settings = cards_settings(sandbox_url, account, USERS, rate_limit=rate)
    path = f"/api/v1/tenants/{tenant.slug}/connectors/cards"
    body = {"enabled": False, "settings": settings}
    stored = expect(api.put(path, json=body, headers=tenant.auth), 200, "a disabled Cards connector")["settings"]
    setup_worker = start_worker(processes, config, name="worker-hour-setup")
    synced = full_sync(api, tenant, WAIT_SECONDS * 5)
    full_sync_calls = len(sandbox_calls(control, "lucca", account)["items"])
    tenant_id = asyncio.run(tenant_id_of(config.postgres_url, tenant.slug))
    seeded_at = time.monotonic()
    linked = asyncio.run(seed_followed(config.postgres_url, tenant_id, DEMO_CARDS_SPACE, settings_key(stored)))
    seeded_seconds = time.monotonic() - seeded_at
    expect(api.patch(path, json={"enabled": True}, headers=tenant.auth), 200, "enable the Cards connector")
    wait_for_webhook(api, tenant, WAIT_SECONDS)
    setup_worker.stop()
    worker = start_worker(processes, config, name="worker-hour")
    at_start = worker_started(worker)
    time.sleep(SETTLE_SECONDS)  # a switch-on pass, were the seeded state not what it leaves, would start now
    runs_after_enabling = len(changes_runs(api, tenant))
    clear_calls(control, account)
    changes = mixed_changes(people, args.hour_changes, "Hour", titles=True)
    say(f"hour: {args.hour_changes} changes over {scaled.seconds:.0f} s (an hour compressed {args.compress}x)")
    made = asyncio.run(change_over(str(control.base_url), account, changes, scaled.seconds))
    drained_at = wait_for_cards(control, account, set(made), WAIT_SECONDS * 3)
    time.sleep(SETTLE_SECONDS)
    peak = peak_memory_mb(worker)
    lucca_calls = sandbox_calls(control, "lucca", account)["items"]
    cards_calls = sandbox_calls(control, "cards", account)["items"]
    cards_users = expect(control.get(f"/_sandbox/cards/accounts/{account}/users"), 200, "read Cards")["items"]
    runs = changes_runs(api, tenant)
    in_cards = cards_writes(cards_calls)
    outcome = {
        "full_sync": {"seconds": synced.seconds(), "lucca_calls": full_sync_calls},
        "seeded": {"links": linked, "seconds": seeded_seconds, "runs_after_enabling": runs_after_enabling},
        "span_seconds": scaled.seconds,
        "drained_after_seconds": drained_at - max(made.values()),
        "cards_lags": [in_cards[name] - at for name, at in made.items() if name in in_cards],
        "lucca_budget": asdict(BudgetUse.of([float(c["at"]) for c in lucca_calls], LUCCA_REQUESTS, scaled.window)),
        "cards_budget": asdict(BudgetUse.of([float(c["at"]) for c in cards_calls], CARDS_REQUESTS, scaled.window)),
        "lucca_calls_by_route": calls_by_route(lucca_calls),
        "cards_calls_by_route": calls_by_route(cards_calls),
        "cards_writes_reads": writes_and_reads(cards_calls),
        "429s": {"lucca": too_many(lucca_calls), "cards": too_many(cards_calls)},
        "worker_mb": {"start": at_start, "peak": peak},
        "runs": [{key: run[key] for key in ("id", "status", "counts", "started_at", "finished_at")} for run in runs],
    }
    return hour_checks(args, scaled, changes, people, cards_users, outcome), outcome


def hour_checks(
    args: argparse.Namespace,
    scaled: Hour,
    changes: Sequence[LuccaChange],
    people: Sequence[int],
    cards_users: Sequence[Mapping[str, Any]],
    outcome: Mapping[str, Any],
) -> list[Check]:
    by_email = {str(user["email"]).casefold(): user for user in cards_users}
    twice = sum(1 for count in Counter(str(user["email"]).casefold() for user in cards_users).values() if count > 1)
    renames = [change for change in changes if change.person is not None and shown(change) is not None]
    hires = [change for change in changes if change.person is None]
    kept_titles = len(changes) - len(renames) - len(hires)
    wrong = [change for change in hires if str(change.body["mail"]).casefold() not in by_email]
    renamed = {str(user["firstname"]) for user in cards_users}
    wrong += [change for change in renames if shown(change) not in renamed]
    lucca, cards = outcome["lucca_budget"], outcome["cards_budget"]
    expected_calls = len(renames) + len(hires)
    lags = outcome["cards_lags"]
    writes, reads = outcome["cards_writes_reads"]
    window = f"{scaled.window} s"
    return [
        Check("hour: seeding (links and views in SQL; the switch-on pass seeded around)",
              f"{outcome['seeded']['links']} links in {outcome['seeded']['seconds']:.1f} s; "
              f"{outcome['seeded']['runs_after_enabling']} runs after enabling", f"{len(people)}; 0 runs",
              outcome["seeded"]["links"] == len(people) and outcome["seeded"]["runs_after_enabling"] == 0),
        Check(f"hour: changes in Cards ({len(renames)} renames, {len(hires)} hires; {kept_titles} job titles)",
              f"{expected_calls - len(wrong)}; e-mails twice: {twice}", f"{expected_calls}; 0",
              not wrong and twice == 0),
        Check("hour: Cards writes (per change Cards shows), other Cards calls; changes runs",
              f"{writes} ({writes / expected_calls:.2f}), {reads}; {len(outcome['runs'])}",
              f"{expected_calls} (1.00), <= 1 (the token's proof, hourly)", writes == expected_calls and reads <= 1),
        Check(f"hour: Lucca busiest {window} window (calls in all)", f"{lucca['busiest_window']} ({lucca['calls']})",
              f"<= {LUCCA_REQUESTS}", lucca["busiest_window"] <= LUCCA_REQUESTS),
        Check(f"hour: Cards busiest {window} window", f"{cards['busiest_window']}", f"<= {CARDS_REQUESTS}",
              cards["busiest_window"] <= CARDS_REQUESTS),
        Check("hour: 429s (Lucca + Cards)", f"{outcome['429s']['lucca']} + {outcome['429s']['cards']}", "0",
              outcome["429s"]["lucca"] + outcome["429s"]["cards"] == 0),
        Check("hour: change -> Cards p50 / p99 (not compressed)", p50_p99(lags)),
        Check("hour: worker peak memory (at start)",
              f"{outcome['worker_mb']['peak'] or 0:.1f} MB ({outcome['worker_mb']['start'] or 0:.1f})"),
    ]  # fmt: skip


# ----------------------------------------------------------------------------------------------------
# The switch-on pass at 20,000 people.


def switch_on_pass(
    args: argparse.Namespace, config: ServiceConfig, sandbox_url: str, api: httpx.Client, control: httpx.Client
) -> tuple[list[Check], dict[str, Any]]:
    people, account = args.switch_on_people, "follow-switch-on"
    say(f"switch-on: {people} people in Lucca and in Cards, auto_sync on with the connector")
    seed_accounts(control, account, people, {}, {})
    lucca = lucca_settings(sandbox_url, account, key=True, oauth=False)
    tenant = create_connector_tenant(
        api, config, "switch-on", lucca, "cards", cards_settings(sandbox_url, account, USERS)
    )
    first_full_sync(api, tenant, WAIT_SECONDS * 5)
    run_id = switched_on_run(api, tenant)
    say(f"switch-on: its run read every 5 s for up to {args.switch_on_cap} s")
    progress = wait_for_run(api, tenant, run_id, args.switch_on_cap, every=5.0)
    samples = [
        (sample["at"], items_done(sample["counts"])) for sample in progress.samples if sample["status"] == "running"
    ]
    done = items_done(progress.run["counts"])
    elapsed = progress.seconds() or (samples[-1][0] - samples[0][0] if samples else 0.0)
    cards_calls = sandbox_calls(control, "cards", account)["items"]
    outcome = {
        "run": progress.run,
        "samples": samples,
        "first_minute": pace(samples[:13]),
        "last_minute": pace(samples[-13:]),
        "cards_calls_by_route": calls_by_route(cards_calls),
    }
    checks = [
        Check(f"switch-on of {people}: items done; status; wall time", f"{done}; {progress.run['status']}; "
              f"{elapsed:.0f} s" + ("" if progress.finished else f" (read for {args.switch_on_cap} s)")),
        Check("switch-on: people a second, first / last minute read",
              f"{outcome['first_minute']:.1f} / {outcome['last_minute']:.1f}"),
        Check("switch-on: Cards calls (writes)", f"{len(cards_calls)} ({writes_and_reads(cards_calls)[0]})"),
    ]  # fmt: skip
    return checks, outcome


def items_done(counts: Mapping[str, int]) -> int:
    return sum(counts.get(key, 0) for key in ("linked", "created", "updated", "skipped", "suspended", "failed"))


def pace(samples: Sequence[tuple[float, int]]) -> float:
    """Items a second between the first and the last of these samples."""
    if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
        return 0.0
    return (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])


def run(args: argparse.Namespace) -> int:
    exit_on_sigterm()
    with Processes(BENCH) as processes:
        config = private_state(processes, DATABASE, SERVICE_SETTINGS)
        sandbox = start_lucca_sandbox(processes, LUCCA_WINDOW_SECONDS, LUCCA_REQUESTS)
        api_endpoint = start_api(processes, config)
        config = replace(config, settings={**config.settings, "PUBLIC_BASE_URL": api_endpoint.url})
        with (
            httpx.Client(base_url=api_endpoint.url, timeout=60) as api,
            httpx.Client(base_url=sandbox.url, timeout=120) as control,
        ):
            checks: list[Check] = []
            results: dict[str, Any] = {}
            if "latency" in args.parts:
                worker = start_worker(processes, config)
                more, results["latency"] = latency(args, config, sandbox.url, api, control)
                checks += more
                worker.stop()
            if "hour" in args.parts:
                more, results["hour"] = hour(args, config, processes, sandbox.url, api, control)
                checks += more
            if "switch-on" in args.parts:
                start_worker(processes, config, name="worker-switch-on")
                more, results["switch_on"] = switch_on_pass(args, config, sandbox.url, api, control)
                checks += more
    title = (
        f"Cards auto_sync ({', '.join(args.parts)}): {args.changes} changes of {args.employees} people at the real "
        f"limits; {args.hour_changes} changes of {args.people} in an hour compressed {args.compress}x"
    )
    print_table(title, checks)
    return finish(BENCH, checks, {"options": vars(args), **results})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_reporting_failure(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
