"""The Softgarden webhook's answers to good and bad input (contract sections 3 and 7); no worker runs here."""

import json

import asyncpg
import httpx
import pytest

from tests.factories import ADMIN, TenantHandle, add_softgarden, create_tenant, hire_body

pytestmark = pytest.mark.usefixtures("clean_state")
WEBHOOK = "/integrations/webhooks/softgarden/candidate-hired"


@pytest.fixture
async def tenant(client: httpx.AsyncClient) -> TenantHandle:
    return await add_softgarden(client, await create_tenant(client, "acme"))


async def count_rows(database_url: str) -> tuple[int, int]:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        runs = await connection.fetchval("SELECT count(*) FROM runs")
        deliveries = await connection.fetchval("SELECT count(*) FROM deliveries")
    finally:
        await connection.close()
    return runs, deliveries


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"applicationId": "a1", "firstName": ', "application/json", 400),
        (json.dumps(hire_body(firstName=42)).encode(), "application/json", 422),
        (json.dumps(hire_body(startDate="01/12/2026")).encode(), "application/json", 422),
        (json.dumps(hire_body(startDate="2026-02-30")).encode(), "application/json", 422),
        (json.dumps({"firstName": "Zoë", "lastName": "Müller"}).encode(), "application/json", 422),
        (json.dumps(hire_body(applicationId="  ")).encode(), "application/json", 422),
        (json.dumps(hire_body(address=["not", "an", "address"])).encode(), "application/json", 422),
        (json.dumps([hire_body()]).encode(), "application/json", 422),
        (json.dumps(hire_body()).encode(), "text/plain", 415),
        (b"x" * (5 * 1024 * 1024), "application/json", 413),
    ],
)
async def test_bad_input_gets_the_contract_answer_and_changes_nothing(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    migrated_database: str,
    content: bytes,
    content_type: str,
    status: int,
) -> None:
    headers = {**tenant.webhook_auth, "Content-Type": content_type}
    answer = await client.post(WEBHOOK, content=content, headers=headers)
    assert answer.status_code in ((400, 422) if status == 400 else (status,)), answer.text
    assert "detail" in answer.json()
    assert await count_rows(migrated_database) == (0, 0)


async def test_credentials_are_checked_before_the_body(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    for headers in ({}, {"Authorization": "Bearer 00000000-0000-0000-0000-000000000000"}, ADMIN, tenant.auth):
        answer = await client.post(WEBHOOK, content=b"{not json", headers={**headers, "Content-Type": "text/plain"})
        assert answer.status_code == 401, headers
        assert answer.json() == {"detail": "Missing or invalid credentials."}


async def test_disabled_connector_refuses_webhooks(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    body = {"enabled": False, "settings": {"professional_email_template": "{first_name}@acme.fr",
                                           "default_department_id": 10, "default_role_principal_id": 55}}  # fmt: skip
    await client.put(f"/api/v1/tenants/{tenant.slug}/connectors/softgarden", json=body, headers=tenant.auth)
    answer = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    assert answer.status_code == 403


async def test_keys_match_ignoring_case_and_charset_is_allowed(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    body = {"APPLICATIONID": "a-1", "firstname": "Zoë", "LastName": "Müller", "Status": "HIRED", "extra": [1, 2]}
    headers = {**tenant.webhook_auth, "Content-Type": "application/json; charset=utf-8"}
    answer = await client.post(WEBHOOK, content=json.dumps(body).encode(), headers=headers)
    assert answer.status_code == 202
    assert answer.json()["duplicate"] is False


async def test_other_status_is_a_skipped_run_that_keeps_the_application_id(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    answer = await client.post(WEBHOOK, json=hire_body(status="interview"), headers=tenant.webhook_auth)
    assert answer.status_code == 202
    run = (await client.get(f"/api/v1/tenants/acme/runs/{answer.json()['run_id']}", headers=tenant.auth)).json()
    assert run["status"] == "succeeded"
    assert run["counts"]["skipped"] == 1 and run["counts"]["total"] == 1
    events = (await client.get(f"/api/v1/tenants/acme/runs/{run['id']}/events", headers=tenant.auth)).json()["items"]
    assert events[0]["action"] == "skip" and "interview" in events[0]["message"]
    hire = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    assert hire.status_code == 202 and hire.json()["duplicate"] is False


async def test_a_hire_is_stored_once_and_duplicates_point_at_it(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    first = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    assert first.status_code == 202
    again = await client.post(WEBHOOK, json=hire_body(firstName="Corrected"), headers=tenant.webhook_auth)
    assert again.status_code == 200
    assert again.json() == {"run_id": first.json()["run_id"], "duplicate": True}
    runs = (await client.get("/api/v1/tenants/acme/runs", headers=tenant.auth)).json()["items"]
    assert [run["status"] for run in runs] == ["queued"]
    assert runs[0]["trigger"] == "webhook" and runs[0]["operation"] == "candidate_hired"


async def test_runs_listing_filters_and_limits(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    for index in range(3):
        await client.post(WEBHOOK, json=hire_body(applicationId=f"a{index}", status="x"), headers=tenant.webhook_auth)
    await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    listing = "/api/v1/tenants/acme/runs"
    assert len((await client.get(listing, params={"status": "succeeded"}, headers=tenant.auth)).json()["items"]) == 3
    assert len((await client.get(listing, params={"limit": 2}, headers=tenant.auth)).json()["items"]) == 2
    assert (await client.get(listing, params={"limit": 501}, headers=tenant.auth)).status_code == 422
    queued = (await client.get(listing, params={"status": "queued"}, headers=tenant.auth)).json()["items"]
    retry = await client.post(f"{listing}/{queued[0]['id']}/retry", headers=tenant.auth)
    assert retry.status_code == 409
