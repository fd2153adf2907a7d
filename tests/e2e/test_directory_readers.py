"""The readers of the directory's copy (CONTRACT section 13): the Cards listings and the Elevo file read no Lucca once
the copy is full, answer from it while Lucca is down, say "loading" before it is; work asked for before the first
full sync waits for it (starting it if needed); a hire is in the copy at once."""

from typing import Any

import asyncpg
import httpx
import pytest

from app.sandbox.demo import demo_seed_payload
from tests.directory_copy import full_sync
from tests.e2e.conftest import WEBHOOK, HiringTenant, drain_queue, events_of, run_of
from tests.factories import TenantHandle, add_softgarden, create_tenant, hire_body
from tests.sandbox_server import CardsAccount, LuccaAccount, SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")


@pytest.fixture
def space(sandbox: SandboxServer) -> CardsAccount:
    return sandbox.new_cards_account(users=[], groups=[])


async def with_cards(client: httpx.AsyncClient, tenant: TenantHandle, space: CardsAccount) -> None:
    body = {"enabled": True, "settings": space.connector_settings()}
    answer = await client.put(f"/api/v1/tenants/{tenant.slug}/connectors/cards", json=body, headers=tenant.auth)
    assert answer.status_code == 200, answer.text


async def listing(client: httpx.AsyncClient, tenant: TenantHandle, what: str) -> dict[str, Any]:
    answer = await client.get(f"/api/v1/tenants/{tenant.slug}/cards/{what}", headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def lucca_calls(lucca: LuccaAccount) -> int:
    return len(lucca.calls()["items"])


async def test_the_listings_read_no_lucca_once_the_copy_is_full_and_answer_while_lucca_is_down(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount
) -> None:
    tenant = await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key)
    await with_cards(client, tenant, space)
    loading = await listing(client, tenant, "users")
    assert loading["items"] == [] and loading["directory"]["status"] == "loading"
    await full_sync(client, tenant)
    read = lucca_calls(lucca)
    users = await listing(client, tenant, "users")
    departments = await listing(client, tenant, "departments")
    assert [row["lucca_id"] for row in users["items"]] == [100, 102]  # Paul Durand (101) has left
    assert users["directory"]["status"] == "ready" and users["directory"]["progress"] == 3
    assert {row["name"]: row["members"] for row in departments["items"]} == {"Engineering": 2, "Sales": 0, "People": 0}
    assert lucca_calls(lucca) == read

    lucca.add_faults({"status": 503, "count": 1000})  # Lucca is down
    for _ in range(3):
        assert [row["lucca_id"] for row in (await listing(client, tenant, "users"))["items"]] == [100, 102]
        assert len((await listing(client, tenant, "departments"))["items"]) == 3
    assert lucca_calls(lucca) == read


async def test_an_import_asked_for_before_the_first_full_sync_waits_for_it_then_goes_through(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount
) -> None:
    tenant = await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key)
    await with_cards(client, tenant, space)
    lucca.add_faults({"status": 503, "count": 3, "match": "GET /api/v3/users"})  # the full sync is slow to read
    answer = await client.post("/api/v1/tenants/acme/cards/users/import", json={"all": True}, headers=tenant.auth)
    assert answer.status_code == 202, answer.text
    await drain_queue()
    run = await run_of(client, tenant, answer.json()["run_id"])
    assert run["status"] == "succeeded" and run["counts"]["created"] == 2, run
    waited = [event["message"] for event in await events_of(client, tenant, run["id"]) if event["level"] == "warning"]
    assert waited and all(message.startswith("Lucca's directory is still loading (") for message in waited)
    assert sorted(user["email"] for user in space.users()) == ["claire.martin@acme.fr", "jean.dupont@acme.fr"]


async def test_work_needing_a_copy_that_no_sync_is_filling_starts_the_full_sync(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount, migrated_database: str
) -> None:
    """A connector enabled before the service kept a copy (here: enabled in the database, no sync queued)."""
    tenant = await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key)
    body = {"enabled": False, "settings": space.connector_settings()}
    assert (await client.put("/api/v1/tenants/acme/connectors/cards", json=body, headers=tenant.auth)).is_success
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        await connection.execute("UPDATE connectors SET enabled = true")
    finally:
        await connection.close()
    answer = await client.post("/api/v1/tenants/acme/cards/users/import", json={"all": True}, headers=tenant.auth)
    await drain_queue()
    assert (await run_of(client, tenant, answer.json()["run_id"]))["status"] == "succeeded"
    syncs = await client.get("/api/v1/tenants/acme/runs", params={"operation": "directory_sync"}, headers=tenant.auth)
    [sync] = syncs.json()["items"]
    assert (sync["status"], sync["trigger"]) == ("succeeded", "api")


async def test_a_hire_is_in_the_copy_at_once(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount, space: CardsAccount
) -> None:
    tenant = await hiring_tenant()
    await with_cards(client, tenant, space)
    await full_sync(client, tenant)
    accepted = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    assert accepted.status_code == 202
    await drain_queue()
    [hired] = [user for user in lucca.users() if user["id"] not in (100, 101, 102)]
    read = lucca_calls(lucca)
    rows = {row["lucca_id"]: row for row in (await listing(client, tenant, "users"))["items"]}
    assert rows[hired["id"]]["email"] == "zoe.muller@acme.fr" and rows[hired["id"]]["department"] == "Engineering"
    assert lucca_calls(lucca) == read


async def test_a_hire_for_a_tenant_without_a_copy_leaves_none(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, migrated_database: str
) -> None:
    tenant = await hiring_tenant()
    accepted = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    await drain_queue()
    assert (await run_of(client, tenant, accepted.json()["run_id"]))["status"] == "succeeded"
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        assert await connection.fetchval("SELECT count(*) FROM directory_employees") == 0
    finally:
        await connection.close()


async def test_the_elevo_file_reads_no_lucca_once_the_copy_is_full(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    seed = demo_seed_payload()
    lucca = sandbox.new_lucca_account(users=seed["users"])
    tenant = await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key)
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOWO9cY1mOOFYGf+vnwmRbsWaX7BDib2xbOoJkKD9DgF"
    settings = {"sftp": {"host": "sftp.elevo.example", "username": "acme", "password": "pw", "host_key": host_key}}
    answer = await client.put("/api/v1/tenants/acme/connectors/elevo", json={"settings": settings}, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    await full_sync(client, tenant)
    read = lucca_calls(lucca)
    lucca.add_faults({"status": 503, "count": 1000})
    preview = await client.get("/api/v1/tenants/acme/elevo/preview", headers=tenant.auth)
    assert preview.status_code == 200, preview.text
    assert [row["email"] for row in preview.json()["rows"]] == ["claire.martin@acme.fr", "jean.dupont@acme.fr"]
    assert lucca_calls(lucca) == read


async def test_another_tenant_never_sees_this_copy(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount, sandbox: SandboxServer
) -> None:
    tenant = await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key)
    await with_cards(client, tenant, space)
    await full_sync(client, tenant)
    other_lucca = sandbox.new_lucca_account(users=[])
    other = await create_tenant(client, "globex", base_url=other_lucca.base_url, api_key=other_lucca.api_key)
    await add_softgarden(client, other)
    await with_cards(client, other, sandbox.new_cards_account())
    await full_sync(client, other)
    assert (await listing(client, other, "users"))["items"] == []
    assert len((await listing(client, tenant, "users"))["items"]) == 2
