"""The directory's full sync end to end: the API over TCP, real arq workers, the sandbox's Lucca over HTTP."""

import asyncio
import json
import math
import os
import signal
import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from arq.connections import ArqRedis

from app.db import create_engine, create_sessionmaker
from app.directory.sync import NIGHTLY_HOUR
from app.queue import enqueue_run
from app.sandbox.demo import demo_seed_payload, demo_user
from app.services.schedules import claim_due_runs, hour_offset, next_due
from tests.e2e.conftest import drain_queue, events_of, run_of
from tests.e2e.test_recovery import wait_for_run, worker_process
from tests.factories import ADMIN, TenantHandle, add_softgarden, create_oauth_tenant, create_tenant
from tests.sandbox_server import LuccaAccount, SandboxServer

DIRECTORY_USERS = "/api/v3/users"
DEPARTMENTS = "/organization/structure/api/departments"


def directory_seed(people: int) -> dict[str, Any]:
    """The demo account with `people` employees, some former, some with an `e_` field, one reporting to another."""
    users = [
        demo_user(
            1000 + n,
            f"First{n}",
            f"Last{n}",
            10 + n % 3,
            jobTitle=f"Job {n % 7}",
            employeeNumber=f"E{n:05d}",
            dtContractStart="2020-01-01",
            dtContractEnd="2023-12-31" if n % 10 == 0 else None,
            managerId=1000 if n else None,
            extendedData={"e_elevo_skip": n % 5 == 0} if n % 2 else {},
        )
        for n in range(people)
    ]
    return {**demo_seed_payload(), "users": users}


@pytest.fixture
def directory_lucca(sandbox: SandboxServer) -> LuccaAccount:
    return sandbox.new_lucca_account(**directory_seed(2_500))


async def tenant_on(client: httpx.AsyncClient, lucca: LuccaAccount, slug: str = "acme") -> TenantHandle:
    return await create_tenant(client, slug, base_url=lucca.base_url, api_key=lucca.api_key)


async def full_sync(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    """Ask for a full sync, let the workers run it, and return its run."""
    answer = await client.post(f"/api/v1/tenants/{tenant.slug}/lucca/directory/sync", headers=tenant.auth)
    assert answer.status_code == 202, answer.text
    await drain_queue()
    return await run_of(client, tenant, answer.json()["run_id"])


async def directory(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    answer = await client.get(f"/api/v1/tenants/{tenant.slug}/lucca/directory", headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    state: dict[str, Any] = answer.json()
    return state


async def copy_of(database: str, slug: str) -> dict[int, dict[str, Any]]:
    """The tenant's copy as its table holds it, by Lucca id."""
    connection = await asyncpg.connect(database.replace("+asyncpg", ""))
    try:
        rows = await connection.fetch(
            "SELECT e.* FROM directory_employees e JOIN tenants t ON t.id = e.tenant_id "
            "WHERE t.slug = $1 AND t.deleted_at IS NULL",
            slug,
        )
    finally:
        await connection.close()
    return {row["lucca_id"]: dict(row) for row in rows}


def as_copied(user: dict[str, Any]) -> dict[str, Any]:
    """What the copy should hold of a sandbox user."""
    return {
        "first_name": user["firstName"],
        "last_name": user["lastName"],
        "email": user["mail"],
        "employee_number": user.get("employeeNumber"),
        "job_title": user.get("jobTitle"),
        "department_id": user.get("departmentId"),
        "manager_id": user.get("managerId"),
        "legal_entity_id": user.get("legalEntityId"),
        "contract_start": (user.get("dtContractStart") or "")[:10] or None,
        "contract_end": (user.get("dtContractEnd") or "")[:10] or None,
        # The e_ fields, and the user fields the copy has no column for (Elevo's extra columns may name them).
        "extended": {
            **(user.get("extendedData") or {}),
            **{
                name: user[name] for name in ("login", "personalEmail", "rolePrincipalId") if user.get(name) is not None
            },
        },
    }


def stored(row: dict[str, Any]) -> dict[str, Any]:
    kept = {key: row[key] for key in ("first_name", "last_name", "email", "employee_number", "job_title")}
    kept.update({key: row[key] for key in ("department_id", "manager_id", "legal_entity_id")})
    kept["contract_start"] = row["contract_start"] and row["contract_start"].isoformat()
    kept["contract_end"] = row["contract_end"] and row["contract_end"].isoformat()
    kept["extended"] = json.loads(row["extended"]) if isinstance(row["extended"], str) else row["extended"]
    return kept


def lucca_reads(lucca: LuccaAccount) -> list[str]:
    return [call["path"] for call in lucca.calls()["items"] if call["method"] == "GET"]


async def test_a_full_sync_through_the_key_copies_every_person_in_few_calls(
    client: httpx.AsyncClient, directory_lucca: LuccaAccount, migrated_database: str
) -> None:
    tenant = await tenant_on(client, directory_lucca)
    before = await directory(client, tenant)
    assert before["sync"] == {"status": "none", "progress": 0, "run_id": None}
    assert before["employees"] == 0 and before["lag_seconds"] is None and before["mode"] == "polling"

    run = await full_sync(client, tenant)

    assert run["status"] == "succeeded", run
    assert run["connector"] == "lucca" and run["operation"] == "directory_sync" and run["trigger"] == "api"
    assert run["counts"] == {"total": 2500, "created": 0, "linked": 0, "updated": 0, "skipped": 0,
                             "suspended": 0, "failed": 0, "added": 2500, "gone": 0}  # fmt: skip
    users = {user["id"]: user for user in directory_lucca.users()}
    copy = await copy_of(migrated_database, tenant.slug)
    assert set(copy) == set(users)
    assert {lucca_id: stored(row) for lucca_id, row in copy.items()} == {
        lucca_id: as_copied(user) for lucca_id, user in users.items()
    }
    assert all(row["gone_at"] is None and row["seen_by"] is not None for row in copy.values())
    # ⌈N/1000⌉ user pages (+1 when N is a multiple of 1,000) and the departments: ⌈N/1000⌉ + 2 at most.
    reads = lucca_reads(directory_lucca)
    assert len(reads) <= math.ceil(2500 / 1000) + 2, reads
    assert reads.count(DIRECTORY_USERS) == 3

    state = await directory(client, tenant)
    assert state["employees"] == 2500 and state["departments"] == 3
    assert state["sync"] == {"status": "ready", "progress": 2500, "run_id": run["id"]}
    assert state["last_full_sync_at"] is not None and state["last_change_at"] is not None
    assert state["lag_seconds"] is not None and state["lag_seconds"] >= 0
    assert state["webhook"] == {"status": "none", "message": None} and state["notices"] == []
    events = events_of(client, tenant, run["id"])
    assert any("2,500 people and 3 departments" in event["message"] for event in await events)

    # Nothing changed in Lucca: a second sync changes no row and says so.
    seqs = {lucca_id: row["change_seq"] for lucca_id, row in copy.items()}
    again = await full_sync(client, tenant)
    assert again["status"] == "succeeded"
    assert again["counts"]["added"] == 0 and again["counts"]["updated"] == 0 and again["counts"]["skipped"] == 2500
    after = await copy_of(migrated_database, tenant.slug)
    assert {lucca_id: row["change_seq"] for lucca_id, row in after.items()} == seqs


async def test_a_sync_cut_half_way_removes_nobody_and_the_next_complete_one_marks_the_deleted_gone(
    client: httpx.AsyncClient, sandbox: SandboxServer, migrated_database: str
) -> None:
    seed = directory_seed(1_200)
    lucca = sandbox.new_lucca_account(**seed)
    tenant = await tenant_on(client, lucca)
    assert (await full_sync(client, tenant))["status"] == "succeeded"

    # Person 1001 is deleted in Lucca, 1002 renamed; then Lucca refuses the departments: the read never completes.
    users = [user for user in seed["users"] if user["id"] != 1001]
    users = [{**user, "lastName": "Renamed"} if user["id"] == 1002 else user for user in users]
    sandbox.control.put(f"/lucca/accounts/{lucca.name}", json={**seed, "users": users}).raise_for_status()
    lucca.add_faults({"status": 400, "match": f"GET {DEPARTMENTS}"})
    cut = await full_sync(client, tenant)

    assert cut["status"] == "failed" and cut["error"], cut
    assert "gone" not in cut["counts"] or cut["counts"]["gone"] == 0
    copy = await copy_of(migrated_database, tenant.slug)
    assert copy[1001]["gone_at"] is None, "a read that did not complete removed someone"
    assert copy[1002]["last_name"] == "Renamed"  # the pages it read are kept
    state = await directory(client, tenant)
    assert state["employees"] == 1200 and state["sync"]["status"] == "failed"
    assert any(event["level"] == "error" for event in await events_of(client, tenant, cut["id"]))

    complete = await full_sync(client, tenant)
    assert complete["status"] == "succeeded"
    assert complete["counts"]["gone"] == 1 and complete["counts"]["total"] == 1200
    copy = await copy_of(migrated_database, tenant.slug)
    assert copy[1001]["gone_at"] is not None
    assert [lucca_id for lucca_id, row in copy.items() if row["gone_at"]] == [1001]
    assert (await directory(client, tenant))["employees"] == 1199


async def test_a_second_request_during_a_sync_gets_the_same_run(
    client: httpx.AsyncClient, directory_lucca: LuccaAccount
) -> None:
    tenant = await tenant_on(client, directory_lucca)
    path = f"/api/v1/tenants/{tenant.slug}/lucca/directory/sync"
    first = await client.post(path, headers=tenant.auth)
    second = await client.post(path, headers=tenant.auth)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    loading = await directory(client, tenant)
    assert loading["sync"] == {"status": "loading", "progress": 0, "run_id": first.json()["run_id"]}
    await drain_queue()
    listed = await client.get(
        f"/api/v1/tenants/{tenant.slug}/runs", params={"operation": "directory_sync"}, headers=tenant.auth
    )
    assert [run["status"] for run in listed.json()["items"]] == ["succeeded"]
    third = await client.post(path, headers=tenant.auth)
    assert third.json() != first.json()


async def directory_runs(client: httpx.AsyncClient, tenant: TenantHandle) -> list[dict[str, Any]]:
    answer = await client.get(
        f"/api/v1/tenants/{tenant.slug}/runs", params={"operation": "directory_sync"}, headers=tenant.auth
    )
    assert answer.status_code == 200
    runs: list[dict[str, Any]] = answer.json()["items"]
    return runs


async def directory_schedule(database: str, slug: str) -> dict[str, Any] | None:
    connection = await asyncpg.connect(database.replace("+asyncpg", ""))
    try:
        row = await connection.fetchrow(
            "SELECT s.* FROM schedules s JOIN tenants t ON t.id = s.tenant_id "
            "WHERE t.slug = $1 AND s.connector_id IS NULL AND s.operation = 'directory_sync'",
            slug,
        )
    finally:
        await connection.close()
    return dict(row) if row else None


async def test_the_first_connector_reading_the_directory_starts_a_full_sync_and_the_nightly_one(
    client: httpx.AsyncClient, sandbox: SandboxServer, migrated_database: str
) -> None:
    lucca = sandbox.new_lucca_account()
    cards = sandbox.new_cards_account()
    tenant = await tenant_on(client, lucca)
    await add_softgarden(client, tenant)
    assert await directory_runs(client, tenant) == []  # Softgarden does not read the directory
    assert await directory_schedule(migrated_database, tenant.slug) is None

    connectors = f"/api/v1/tenants/{tenant.slug}/connectors"
    body = {"enabled": True, "settings": cards.connector_settings()}
    assert (await client.put(f"{connectors}/cards", json=body, headers=tenant.auth)).status_code == 200
    [first] = await directory_runs(client, tenant)
    assert first["trigger"] == "api" and first["status"] == "queued"
    assert (await directory(client, tenant))["sync"] == {"status": "loading", "progress": 0, "run_id": first["id"]}
    schedule = await directory_schedule(migrated_database, tenant.slug)
    assert schedule is not None and schedule["hour"] == NIGHTLY_HOUR
    offset = hour_offset(schedule["tenant_id"], "directory_sync")
    assert schedule["due_at"] == next_due(schedule["enabled_at"], "Europe/Paris", NIGHTLY_HOUR, offset)

    await drain_queue()
    assert (await run_of(client, tenant, first["id"]))["status"] == "succeeded"
    assert (await directory(client, tenant))["employees"] == 3
    # Enabled again, or another reader enabled: the copy is there, no new full sync.
    patch = await client.patch(f"{connectors}/cards", json={"enabled": False}, headers=tenant.auth)
    assert patch.status_code == 200
    assert (await directory_schedule(migrated_database, tenant.slug) or {})["due_at"] is None
    await client.patch(f"{connectors}/cards", json={"enabled": True}, headers=tenant.auth)
    assert len(await directory_runs(client, tenant)) == 1
    schedule = await directory_schedule(migrated_database, tenant.slug)
    assert schedule is not None and schedule["due_at"] is not None

    # The night comes: the schedule's run is a full sync of the tenant's Lucca account.
    engine = create_engine(migrated_database)
    try:
        claimed = await claim_due_runs(create_sessionmaker(engine), now=schedule["due_at"] + timedelta(minutes=1))
    finally:
        await engine.dispose()
    assert len(claimed) == 1
    for run_id in claimed:
        await enqueue_run_id(run_id)
    await drain_queue()
    nightly = await run_of(client, tenant, str(claimed[0]))
    assert (nightly["connector"], nightly["operation"], nightly["trigger"]) == ("lucca", "directory_sync", "schedule")
    assert nightly["status"] == "succeeded" and nightly["counts"]["skipped"] == 3

    # No connector reads the directory any more: no nightly sync.
    assert (await client.delete(f"{connectors}/cards", headers=tenant.auth)).status_code == 204
    assert (await directory_schedule(migrated_database, tenant.slug) or {})["due_at"] is None


async def enqueue_run_id(run_id: uuid.UUID) -> None:
    redis = ArqRedis.from_url(os.environ["REDIS_URL"])
    try:
        await enqueue_run(redis, run_id)
    finally:
        await redis.aclose()


async def test_a_deleted_tenant_loses_its_copy(
    client: httpx.AsyncClient, sandbox: SandboxServer, migrated_database: str
) -> None:
    tenant = await tenant_on(client, sandbox.new_lucca_account())
    assert (await full_sync(client, tenant))["status"] == "succeeded"
    assert len(await copy_of(migrated_database, tenant.slug)) == 3
    assert (await client.delete(f"/api/v1/tenants/{tenant.slug}", headers=ADMIN)).status_code == 204
    await drain_queue()
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        left = [
            await connection.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 (fixed table names)
            for table in ("directory_employees", "directory_departments", "directory_states")
        ]
    finally:
        await connection.close()
    assert left == [0, 0, 0]


async def test_a_full_sync_through_v5_pages_gives_the_copy_the_key_gives(
    client: httpx.AsyncClient, sandbox: SandboxServer, migrated_database: str
) -> None:
    """2,500 people through the key (3 pages of 1,000), the first 250 of the same directory through OAuth alone
    (3 pages of 100, their job positions and employments embedded): the same rows for the same people, but the
    `e_` fields, which the OAuth API does not give."""
    seed = directory_seed(2_500)
    by_key = sandbox.new_lucca_account(**seed)
    by_oauth = sandbox.new_lucca_account(**{**seed, "users": seed["users"][:250]})
    key_tenant = await tenant_on(client, by_key, "by-key")
    oauth_tenant = await create_oauth_tenant(client, "by-oauth", by_oauth)

    assert (await full_sync(client, key_tenant))["status"] == "succeeded"
    run = await full_sync(client, oauth_tenant)
    assert run["status"] == "succeeded", run
    assert run["counts"]["added"] == 250
    calls = by_oauth.call_counts()
    assert calls["v3"] == calls["v4"] == 0 and calls["v5"] >= 3

    def content(row: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in stored(row).items() if key != "extended"}

    through_key = await copy_of(migrated_database, key_tenant.slug)
    through_v5 = await copy_of(migrated_database, oauth_tenant.slug)
    assert len(through_key) == 2500 and set(through_v5) == {user["id"] for user in seed["users"][:250]}
    assert {lucca_id: content(row) for lucca_id, row in through_v5.items()} == {
        lucca_id: content(through_key[lucca_id]) for lucca_id in through_v5
    }
    assert (await directory(client, oauth_tenant))["departments"] == (await directory(client, key_tenant))[
        "departments"
    ]


async def test_a_read_cut_by_lucca_goes_on_after_the_last_page_written(
    client: httpx.AsyncClient, sandbox: SandboxServer, migrated_database: str
) -> None:
    # Lucca lets two calls through every 15 s: the third page is refused (429), and the run's next attempt goes on
    # after the last person written instead of reading the first two pages again. (A 3-s window let the third page
    # through on a loaded machine, whose first two pages took longer than that.)
    lucca = sandbox.new_lucca_account(**directory_seed(2_500), window_seconds=15, requests_per_window=2)
    tenant = await tenant_on(client, lucca)
    run = await full_sync(client, tenant)

    assert run["status"] == "succeeded", run
    assert run["counts"]["added"] == 2500 and run["counts"]["total"] == 2500
    pages = [call for call in lucca.calls()["items"] if call["path"] == DIRECTORY_USERS]
    answered = [call["query"] for call in pages if call["status"] == 200]
    assert len(answered) == 3, answered
    assert any(call["status"] == 429 for call in pages)
    assert "id=greaterthan%2C2999" in answered[2] and "greaterthan" not in answered[0]
    assert len(await copy_of(migrated_database, tenant.slug)) == 2500
    events = await events_of(client, tenant, run["id"])
    assert any(event["level"] == "warning" and "next try" in event["message"] for event in events), events


async def problems(client: httpx.AsyncClient, tenant: TenantHandle, status: str) -> list[dict[str, Any]]:
    answer = await client.get(f"/api/v1/tenants/{tenant.slug}/alerts/problems?status={status}", headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def test_what_lucca_announces_about_its_paths_is_on_the_directory(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    # Through OAuth: every v5 answer carries a Sunset header.
    by_oauth = sandbox.new_lucca_account()
    by_oauth.control("PATCH", "/settings", json={"sunset": "Sat, 01 Jan 2028 00:00:00 GMT"})
    oauth_tenant = await create_oauth_tenant(client, "by-oauth", by_oauth)
    assert (await full_sync(client, oauth_tenant))["status"] == "succeeded"
    notices = (await directory(client, oauth_tenant))["notices"]
    sunset = "Lucca will retire /lucca-api/employees on Sat, 01 Jan 2028 00:00:00 GMT (Sunset header)."
    assert sunset in notices
    # It is a problem too (contract 13: "and as an alert"), until a complete read hears nothing of the kind.
    [notice] = [found for found in await problems(client, oauth_tenant, "open") if found["kind"] == "lucca_notice"]
    assert sunset in notice["message"] and notice["title"] == "Lucca is retiring a path this service reads"
    by_oauth.control("PATCH", "/settings", json={"sunset": None})
    assert (await full_sync(client, oauth_tenant))["status"] == "succeeded"
    assert (await directory(client, oauth_tenant))["notices"] == []
    resolved = await problems(client, oauth_tenant, "resolved")
    assert [found["id"] for found in resolved if found["kind"] == "lucca_notice"] == [notice["id"]]

    # Through the key: the departments' path is gone (410): the sync fails, removes nobody, and says why.
    by_key = sandbox.new_lucca_account()
    key_tenant = await tenant_on(client, by_key, "by-key")
    by_key.add_faults({"status": 410, "match": f"GET {DEPARTMENTS}"})
    failed = await full_sync(client, key_tenant)
    assert failed["status"] == "failed"
    state = await directory(client, key_tenant)
    assert state["notices"] == [
        f"Lucca no longer serves {DEPARTMENTS} (HTTP 410 Gone): this service needs an update to read it."
    ]
    assert state["employees"] == 3 and state["sync"]["status"] == "failed"
    assert "lucca_notice" in {found["kind"] for found in await problems(client, key_tenant, "open")}


async def test_a_worker_killed_half_way_removes_nobody_and_the_next_one_goes_on_after_the_last_page(
    client: httpx.AsyncClient, sandbox: SandboxServer, migrated_database: str
) -> None:
    lucca = sandbox.new_lucca_account(**directory_seed(2_500))
    tenant = await tenant_on(client, lucca)
    assert (await full_sync(client, tenant))["status"] == "succeeded"
    lucca.delete_person(1001)
    lucca.clear_calls()
    # The first page answers at once; the second hangs: the worker is killed while it waits.
    lucca.add_faults({"match": f"GET {DIRECTORY_USERS}"}, {"match": f"GET {DIRECTORY_USERS}", "delay_seconds": 30})
    answer = await client.post(f"/api/v1/tenants/{tenant.slug}/lucca/directory/sync", headers=tenant.auth)
    run_id = answer.json()["run_id"]
    with worker_process() as first_worker:
        deadline = time.monotonic() + 30
        while (await directory(client, tenant))["sync"]["progress"] < 1000:
            assert time.monotonic() < deadline, "the worker never wrote the first page"
            await asyncio.sleep(0.1)
        first_worker.send_signal(signal.SIGKILL)
    cut = await copy_of(migrated_database, tenant.slug)
    assert cut[1001]["gone_at"] is None and (await run_of(client, tenant, run_id))["status"] == "running"

    with worker_process():
        # arq takes the job up again once its in-progress mark expires (job timeout + 10 s).
        run = await wait_for_run(client, tenant, run_id, seconds=90)
    assert run["status"] == "succeeded", run
    assert run["counts"]["gone"] == 1 and run["counts"]["total"] == 2500
    assert [
        lucca_id for lucca_id, row in (await copy_of(migrated_database, tenant.slug)).items() if row["gone_at"]
    ] == [1001]
    # The full sync's reads (a worker also polls: `modifiedAt=since,…`).
    queries = [call["query"] for call in lucca.calls()["items"]
               if call["path"] == DIRECTORY_USERS and "modifiedAt=since" not in call["query"]]  # fmt: skip
    assert len([query for query in queries if "greaterthan" not in query and "paging=0%2C" in query]) == 1, queries
    # The first page held 1000 and 1002…2000 (1001 is deleted): the next attempt goes on after 2000.
    assert any("id=greaterthan%2C2000" in query for query in queries), queries
