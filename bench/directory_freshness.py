"""The directory copy kept fresh: from a change in the sandbox's Lucca to the copy, by webhooks and by polling.

    .venv/bin/python -m bench.directory_freshness [--changes 100] [--idle-seconds 180] [--employees 300]

One sandbox (Lucca's real limit, 50 calls per 60 s per account), one API process, one worker whose
`PUBLIC_BASE_URL` is the API's address, a Redis of the benchmark's own. Three tenants, each its own sandbox account
of the demo directory plus `--employees` generated people, each filled by a full sync first:

- **webhooks** (OAuth alone): its endpoint is registered after the full sync (the sandbox calls the echo); then
  `--changes` people are renamed one every 0.2 s through the sandbox's controls, and each rename's lag is the time
  until the copy holds it (watched in Postgres every 50 ms). Baseline, same run: the time until the signed event
  was stored (the delivery alone). Then a burst: `--changes` renames at once, and the v5 employee reads it cost
  (target ⌈changes / 100⌉: one call per 100 changed employees).
- **polling** (API key, `poll_seconds` 30): `--changes` renames spread over 60 s; each one's lag to the copy
  (target p99 < 35 s). Baseline: the poll interval itself.
- **idle** (API key, `poll_seconds` 30, nothing changes): Lucca calls over `--idle-seconds`. A shortened hour: the
  calls per poll measured at 30 s are scaled to an hour at the default `poll_seconds` 60, plus the departments'
  4 reads an hour (target ≤ 64).

The three run at once (separate accounts, so separate rate limits). Exit status 0 when every target holds.
"""

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
from dataclasses import replace
from typing import Any

import asyncpg
import httpx

from app.sandbox.demo import DEMO_API_KEY, DEMO_OAUTH_CLIENT_ID, DEMO_OAUTH_CLIENT_SECRET, directory_seed_payload
from bench.harness import (
    Check,
    LuccaChange,
    Processes,
    ServiceConfig,
    change_and_watch,
    create_tenant,
    exit_on_sigterm,
    expect,
    finish,
    full_sync,
    lucca_directory,
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
    wait_for_webhook,
)

BENCH = "directory_freshness"
DATABASE = "lucca_connectors_bench_freshness"
LUCCA_WINDOW_SECONDS = 60
LUCCA_REQUESTS = 50
WEBHOOK_P99_TARGET = 5.0
POLLING_P99_TARGET = 35.0
POLL_SECONDS = 30
IDLE_PER_HOUR_TARGET = 64
DEPARTMENT_READS_PER_HOUR = 4
WEBHOOK_SPACING_SECONDS = 0.2
POLLING_SPAN_SECONDS = 60.0
WAIT_SECONDS = 120.0
SERVICE_SETTINGS = {"API_DATABASE_POOL_SIZE": "5", "WORKER_MAX_JOBS": "6"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.directory_freshness", description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=100, help="renames per mode (default 100)")
    parser.add_argument("--idle-seconds", type=int, default=180, help="idle polling measured this long (default 180)")
    parser.add_argument("--employees", type=int, default=300, help="generated people per account (default 300)")
    return parser.parse_args(argv)


async def rename_and_watch(
    control: httpx.AsyncClient,
    database_url: str,
    mode: dict[str, Any],
    people: list[int],
    spacing: float,
    prefix: str,
) -> tuple[dict[int, float], dict[int, float]]:
    """Rename `people` of the mode's account one every `spacing` s; returns when each rename was made and when the
    copy of the mode's tenant held it."""
    renames = [LuccaChange(person, {"firstName": f"{prefix}{number}"}) for number, person in enumerate(people)]
    return await change_and_watch(
        control, database_url, mode["account"], mode["id"], renames, spacing, prefix, WAIT_SECONDS
    )


async def event_times(database_url: str, tenant_id: Any) -> list[Any]:
    connection = await asyncpg.connect(database_url)
    try:
        return list(
            await connection.fetch("SELECT payload, received_at FROM lucca_events WHERE tenant_id = $1", tenant_id)
        )
    finally:
        await connection.close()


def lags(made: dict[int, float], seen: dict[int, float]) -> list[float]:
    return [seen[person] - made[person] for person in made if person in seen]


def lag_checks(mode: str, values: list[float], expected: int, target: float | None) -> list[Check]:
    if not values:
        return [Check(f"{mode}: renames in the copy", "0", f"{expected}", False)]
    p99 = percentile(values, 0.99)
    return [
        Check(f"{mode}: renames in the copy", f"{len(values)}", f"{expected}", len(values) == expected),
        Check(f"{mode}: lag p50", f"{statistics.median(values):.2f} s"),
        Check(
            f"{mode}: lag p99", f"{p99:.2f} s", f"< {target:g} s" if target else "", p99 < target if target else None
        ),
    ]


async def measure(
    args: argparse.Namespace, config: ServiceConfig, sandbox_url: str, plan: dict[str, Any]
) -> dict[str, Any]:
    database_url = config.postgres_url
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as control:
        hooks_people = plan["hooks"]["people"][: args.changes]
        polls_people = plan["polls"]["people"][: args.changes]
        idle_started = time.time()
        hooks, polls = await asyncio.gather(
            rename_and_watch(control, database_url, plan["hooks"], hooks_people, WEBHOOK_SPACING_SECONDS, "Hooked"),
            rename_and_watch(
                control, database_url, plan["polls"], polls_people, POLLING_SPAN_SECONDS / args.changes, "Polled"
            ),
        )
        # The burst: every rename at once, then the v5 reads they cost.
        before = len(v5_employee_reads(plan["sandbox"], plan["hooks"]["account"]))
        burst = await rename_and_watch(control, database_url, plan["hooks"], hooks_people, 0.0, "Burst")
        burst_reads = len(v5_employee_reads(plan["sandbox"], plan["hooks"]["account"])) - before
        events = await event_times(database_url, plan["hooks"]["id"])
    idle_left = args.idle_seconds - (time.time() - idle_started)
    if idle_left > 0:
        await asyncio.sleep(idle_left)
    return {
        "hooks": hooks,
        "polls": polls,
        "burst": burst,
        "burst_reads": burst_reads,
        "events": events,
        "idle_seconds": time.time() - idle_started,
    }


def v5_employee_reads(control: httpx.Client, account: str) -> list[dict[str, Any]]:
    calls = sandbox_calls(control, "lucca", account)["items"]
    return [call for call in calls if call["path"].startswith("/lucca-api/employees")]


def delivery_lags(made: dict[int, float], events: list[Any]) -> list[float]:
    """From each rename to the first of its events stored: what the delivery alone takes."""
    stored: dict[int, float] = {}
    for event in events:
        payload = json.loads(event["payload"]) if isinstance(event["payload"], str) else event["payload"]
        data = payload.get("data") or {}
        person = int(data.get("id", 0)) if str(data.get("id", "")).isdigit() else None
        if person in made:
            moment = event["received_at"].timestamp()
            if moment >= made[person]:
                stored[person] = min(stored.get(person, moment), moment)
    return [stored[person] - made[person] for person in stored]


def run(args: argparse.Namespace) -> int:
    exit_on_sigterm()
    with Processes(BENCH) as processes:
        config = private_state(processes, DATABASE, SERVICE_SETTINGS)
        sandbox = start_lucca_sandbox(processes, LUCCA_WINDOW_SECONDS, LUCCA_REQUESTS)
        api_endpoint = start_api(processes, config)
        start_worker(processes, replace(config, settings={**config.settings, "PUBLIC_BASE_URL": api_endpoint.url}))
        with (
            httpx.Client(base_url=api_endpoint.url, timeout=30) as api,
            httpx.Client(base_url=sandbox.url, timeout=30) as control,
        ):
            plan: dict[str, Any] = {"sandbox": control}
            for mode in ("hooks", "polls", "idle"):
                account = f"fresh-{mode}"
                seed_lucca(control, account, directory_seed_payload(args.employees))
                base_url = f"{sandbox.url}/{account}"
                oauth = {
                    "client_id": DEMO_OAUTH_CLIENT_ID,
                    "client_secret": DEMO_OAUTH_CLIENT_SECRET,
                    "token_url": f"{base_url}/connect/token",
                }
                lucca: dict[str, Any] = {"base_url": base_url, "poll_seconds": POLL_SECONDS}
                lucca.update({"oauth": oauth} if mode == "hooks" else {"api_key": DEMO_API_KEY})
                tenant = create_tenant(api, config, mode, lucca)
                say(f"{mode}: full sync of {args.employees} generated people and the demo's")
                full_sync(api, tenant, WAIT_SECONDS)
                people = [
                    user["id"]
                    for user in expect(control.get(f"/_sandbox/lucca/accounts/{account}/users"), 200, "users")["items"]
                ]
                tenant_id = asyncio.run(tenant_id_of(config.postgres_url, mode))
                plan[mode] = {"account": account, "tenant": tenant, "people": people, "id": tenant_id}
            say("hooks: waiting for the webhook endpoint to be active")
            wait_for_webhook(api, plan["hooks"]["tenant"], WAIT_SECONDS)
            expect(control.delete("/_sandbox/lucca/accounts/fresh-idle/calls"), 204, "clear calls")
            say(f"renaming {args.changes} people per mode; idle polling measured for {args.idle_seconds} s")
            measured = asyncio.run(measure(args, config, sandbox.url, plan))
            idle_calls = sandbox_calls(control, "lucca", "fresh-idle")["items"]
            final = {mode: lucca_directory(api, plan[mode]["tenant"]) for mode in ("hooks", "polls", "idle")}
        checks, results = report(args, measured, idle_calls, final)
        print_table("Lucca directory freshness", checks)
        return finish(BENCH, checks, results)


def report(
    args: argparse.Namespace, measured: dict[str, Any], idle_calls: list[dict[str, Any]], final: dict[str, Any]
) -> tuple[list[Check], dict[str, Any]]:
    hooks_made, hooks_seen = measured["hooks"]
    polls_made, polls_seen = measured["polls"]
    burst_made, burst_seen = measured["burst"]
    webhook_lags = lags(hooks_made, hooks_seen)
    delivery = delivery_lags(hooks_made, measured["events"])
    polling_lags = lags(polls_made, polls_seen)
    users = [call for call in idle_calls if call["path"] == "/api/v3/users"]
    departments = [call for call in idle_calls if "department" in call["path"]]
    # The polls due in the time measured (each tenant keeps its phase: one more or less at the edges).
    polls = max(1, round(measured["idle_seconds"] / POLL_SECONDS))
    per_poll = len(users) / polls
    # A shortened hour: the calls per poll at 30 s, at the default 60 s for an hour, and 4 department reads.
    per_hour = 3600 / 60 * per_poll + DEPARTMENT_READS_PER_HOUR
    changed = len(burst_made)
    per_hundred = measured["burst_reads"] * 100 / changed if changed else math.inf
    most_reads = math.ceil(changed / 100)  # employees by id, 100 a call
    checks = [
        *lag_checks("webhooks", webhook_lags, args.changes, WEBHOOK_P99_TARGET),
        Check(
            "webhooks baseline: event stored p50 / p99",
            f"{statistics.median(delivery):.2f} / {percentile(delivery, 0.99):.2f} s" if delivery else "n/a",
        ),
        Check("webhooks: mode shown", final["hooks"]["mode"], "webhooks", final["hooks"]["mode"] == "webhooks"),
        *lag_checks("polling at 30 s", polling_lags, args.changes, POLLING_P99_TARGET),
        Check("polling baseline: the interval", f"{POLL_SECONDS} s"),
        Check("burst: renames in the copy", f"{len(burst_seen)}", f"{changed}", len(burst_seen) == changed),
        Check(
            "burst: v5 employee reads (per 100 changed)",
            f"{measured['burst_reads']} ({per_hundred:.1f})",
            f"≤ {most_reads} (1 per 100 ids)",
            measured["burst_reads"] <= most_reads,
        ),
        Check(
            f"idle: calls in {measured['idle_seconds']:.0f} s at 30 s ({polls} polls due)",
            f"{len(idle_calls)} ({len(users)} user reads, {len(departments)} department reads)",
        ),
        Check(
            "idle: calls per tenant per hour at 60 s (scaled)",
            f"{per_hour:.0f}",
            f"≤ {IDLE_PER_HOUR_TARGET}",
            per_hour <= IDLE_PER_HOUR_TARGET,
        ),
        Check(
            "idle: user reads per poll", f"{per_poll:.2f}", "1 (± a poll at the edges)", abs(len(users) - polls) <= 1
        ),
    ]
    results = {
        "changes": args.changes,
        "employees": args.employees,
        "webhook_lags": webhook_lags,
        "delivery_lags": delivery,
        "polling_lags": polling_lags,
        "burst_reads": measured["burst_reads"],
        "idle_calls": idle_calls,
        "directories": final,
        "checks": [check.as_dict() for check in checks],
    }
    return checks, results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_reporting_failure(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
