"""A Softgarden hire becomes exactly one correct Lucca employee (contract section 7), through a real worker."""

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import WEBHOOK, HiringTenant, drain_queue, events_of, run_of
from tests.factories import hire_body
from tests.sandbox_server import LuccaAccount

pytestmark = pytest.mark.usefixtures("clean_state")


def new_users(lucca: LuccaAccount) -> list[dict[str, Any]]:
    """Users beyond the three of the demo seed."""
    return [user for user in lucca.users() if user["id"] not in (100, 101, 102)]


async def test_a_hire_creates_one_employee_with_every_field(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant()
    accepted = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    assert accepted.status_code == 202
    await drain_queue()
    [user] = new_users(lucca)
    assert {key: user[key] for key in (
        "firstName", "lastName", "mail", "login", "legalEntityId", "departmentId", "rolePrincipalId", "jobTitle",
        "personalEmail", "personalMobile", "address", "dtContractStart", "managerId")} == {
        "firstName": "Zoë", "lastName": "Müller", "mail": "zoe.muller@acme.fr", "login": "zoe.muller@acme.fr",
        "legalEntityId": 2, "departmentId": 10, "rolePrincipalId": 55, "jobTitle": "Backend Engineer",
        "personalEmail": "zoe.m@gmail.com", "personalMobile": "+49 170 1234567",
        "address": "Hauptstr. 1, 10115 Berlin, DE", "dtContractStart": "2026-12-01T00:00:00", "managerId": 100,
    }  # fmt: skip
    run = await run_of(client, tenant, accepted.json()["run_id"])
    assert run["status"] == "succeeded"
    assert run["counts"] == {"total": 1, "created": 1, "linked": 0, "updated": 0, "skipped": 0, "suspended": 0,
                             "failed": 0}  # fmt: skip
    assert run["started_at"] and run["finished_at"]
    events = await events_of(client, tenant, run["id"])
    assert events[-1]["action"] == "create" and str(user["id"]) in events[-1]["message"]
    assert all(lucca.api_key not in event["message"] for event in events)


async def test_twenty_concurrent_deliveries_make_one_employee(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant()
    answers = await asyncio.gather(
        *(client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth) for _ in range(20))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 19 + [202]
    assert len({answer.json()["run_id"] for answer in answers}) == 1
    await drain_queue()
    assert len(new_users(lucca)) == 1
    later = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    assert later.status_code == 200 and later.json()["duplicate"] is True
    await drain_queue()
    assert len(new_users(lucca)) == 1


async def test_a_person_already_in_lucca_is_linked(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant()
    first = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    await drain_queue()
    rehire = await client.post(
        WEBHOOK, json=hire_body(applicationId="app-0002", email="ZOE.M@gmail.com"), headers=tenant.webhook_auth
    )
    await drain_queue()
    assert len(new_users(lucca)) == 1
    run = await run_of(client, tenant, rehire.json()["run_id"])
    assert run["status"] == "succeeded" and run["counts"]["linked"] == 1 and run["counts"]["created"] == 0
    events = await events_of(client, tenant, run["id"])
    assert events[-1]["action"] == "link"
    assert (await run_of(client, tenant, first.json()["run_id"]))["counts"]["created"] == 1


async def test_without_personal_email_same_names_and_start_date_is_the_same_person(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant()
    seeded = hire_body(firstName="Jean", lastName="Dupont", email=None, startDate="2021-09-01")
    answer = await client.post(WEBHOOK, json=seeded, headers=tenant.webhook_auth)
    await drain_queue()
    run = await run_of(client, tenant, answer.json()["run_id"])
    assert run["counts"]["linked"] == 1
    assert new_users(lucca) == []


async def test_a_namesake_gets_the_next_suffix(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant()
    body = hire_body(firstName="Jean", lastName="Dupont", email="jean.d@perso.fr")
    await client.post(WEBHOOK, json=body, headers=tenant.webhook_auth)
    await client.post(WEBHOOK, json={**body, "applicationId": "app-2", "email": "other.jean@perso.fr"},
                      headers=tenant.webhook_auth)  # fmt: skip
    await drain_queue()
    assert sorted(user["login"] for user in new_users(lucca)) == ["jean.dupont2@acme.fr", "jean.dupont3@acme.fr"]


async def test_a_lucca_refusal_fails_the_run_with_its_message(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant()
    lucca.add_faults({"status": 400, "match": "POST /api/v3/users", "count": 1})
    answer = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    await drain_queue()
    run = await run_of(client, tenant, answer.json()["run_id"])
    assert run["status"] == "failed" and run["counts"]["failed"] == 1
    assert "Lucca refused" in (run["error"] or "")
    assert new_users(lucca) == []


async def test_a_hire_is_taken_in_when_the_stored_settings_stopped_validating_and_runs_once_they_are_fixed(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount, migrated_database: str
) -> None:
    tenant = await hiring_tenant()
    # An alias that a rule added since refuses (it has no letter nor digit), as an upgrade would find it stored.
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        await connection.execute(
            """UPDATE connectors SET settings = settings || '{"establishment_aliases": {"***": 2}}'::jsonb
               WHERE kind = 'softgarden'"""
        )
    finally:
        await connection.close()
    accepted = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    assert accepted.status_code == 202, accepted.text
    await drain_queue()
    run = await run_of(client, tenant, accepted.json()["run_id"])
    assert run["status"] == "failed" and "settings.establishment_aliases" in run["error"], run
    assert new_users(lucca) == []
    fixed = await client.patch(
        "/api/v1/tenants/acme/connectors/softgarden",
        json={"settings": {"establishment_aliases": None}},
        headers=tenant.auth,
    )
    assert fixed.status_code == 200, fixed.text
    retry = await client.post(f"/api/v1/tenants/acme/runs/{run['id']}/retry", headers=tenant.auth)
    assert retry.status_code == 202
    await drain_queue()
    assert (await run_of(client, tenant, retry.json()["run_id"]))["counts"]["created"] == 1
    assert len(new_users(lucca)) == 1
