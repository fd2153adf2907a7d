"""The Cards listing and import routes over TCP: who may call them, bad input refused naming the field with
nothing stored or queued, and an import answered only once its run is committed."""

from typing import Any

import asyncpg
import httpx
import pytest

from app.schemas.cards_imports import MAX_IMPORT_IDS
from tests.factories import ADMIN, TenantHandle, create_tenant, queued_jobs

pytestmark = pytest.mark.usefixtures("clean_state")
CARDS = {"api_base_url": "http://127.0.0.1:9/cards", "api_token": "cards-token", "space_id": "acme-space"}
USERS = "/api/v1/tenants/acme/cards/users"
DEPARTMENTS = "/api/v1/tenants/acme/cards/departments"


@pytest.fixture
async def tenant(client: httpx.AsyncClient) -> TenantHandle:
    handle = await create_tenant(client, "acme")
    answer = await client.put("/api/v1/tenants/acme/connectors/cards", json={"settings": CARDS}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return handle


async def stored_runs(database_url: str) -> int:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        # Enabling Cards queued the directory's first full sync: only the others count.
        count: int = await connection.fetchval("SELECT count(*) FROM runs WHERE operation <> 'directory_sync'")
        return count
    finally:
        await connection.close()


BAD_USERS_IMPORTS: list[tuple[Any, list[str | int]]] = [
    ({"all": True, "lucca_ids": [100]}, ["body", "lucca_ids"]),
    ({}, ["body", "lucca_ids"]),
    ({"all": None, "lucca_ids": None}, ["body", "lucca_ids"]),
    ({"all": False}, ["body", "all"]),
    ({"all": "true"}, ["body", "all"]),
    ({"all": True, "login_mode": "password"}, ["body", "login_mode"]),
    ({"all": True, "notify": "yes"}, ["body", "notify"]),
    ({"all": True, "lucca_id": [1]}, ["body", "lucca_id"]),
    ({"lucca_ids": []}, ["body", "lucca_ids"]),
    ({"lucca_ids": [100, 100]}, ["body", "lucca_ids"]),
    ({"lucca_ids": [0]}, ["body", "lucca_ids", 0]),
    ({"lucca_ids": [2_147_483_648]}, ["body", "lucca_ids", 0]),
    ({"lucca_ids": ["100"]}, ["body", "lucca_ids", 0]),
    ({"lucca_ids": list(range(1, MAX_IMPORT_IDS + 2))}, ["body", "lucca_ids"]),
    ([100], ["body"]),
]
BAD_DEPARTMENTS_IMPORTS: list[tuple[Any, list[str | int]]] = [
    ({"all": True, "department_ids": [10]}, ["body", "department_ids"]),
    ({}, ["body", "department_ids"]),
    ({"all": False}, ["body", "all"]),
    ({"department_ids": [10, 10]}, ["body", "department_ids"]),
    ({"department_ids": [-1]}, ["body", "department_ids", 0]),
    ({"all": True, "notify": True}, ["body", "notify"]),
    ({"all": True, "login_mode": "sso"}, ["body", "login_mode"]),
]


@pytest.mark.parametrize(("body", "loc"), BAD_USERS_IMPORTS)
async def test_a_bad_users_import_is_422_naming_the_field_and_nothing_is_queued(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str, body: Any, loc: list[str | int]
) -> None:
    answer = await client.post(f"{USERS}/import", json=body, headers=tenant.auth)
    assert answer.status_code == 422, answer.text
    assert loc in [error["loc"] for error in answer.json()["detail"]], answer.text
    assert await stored_runs(migrated_database) == 0 and await queued_jobs() == 0


@pytest.mark.parametrize(("body", "loc"), BAD_DEPARTMENTS_IMPORTS)
async def test_a_bad_departments_import_is_422_naming_the_field_and_nothing_is_queued(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str, body: Any, loc: list[str | int]
) -> None:
    answer = await client.post(f"{DEPARTMENTS}/import", json=body, headers=tenant.auth)
    assert answer.status_code == 422, answer.text
    assert loc in [error["loc"] for error in answer.json()["detail"]], answer.text
    assert await stored_runs(migrated_database) == 0 and await queued_jobs() == 0


async def test_the_messages_say_what_to_send(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    both = await client.post(f"{USERS}/import", json={"all": True, "lucca_ids": [1]}, headers=tenant.auth)
    assert both.json()["detail"][0]["msg"] == "give either all (true) or lucca_ids, not both and not neither"
    twice = await client.post(f"{DEPARTMENTS}/import", json={"department_ids": [3, 3]}, headers=tenant.auth)
    assert twice.json()["detail"][0]["msg"] == "holds the same id more than once"


async def test_an_unknown_status_is_422_naming_it(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    answer = await client.get(USERS, params={"status": "deleted"}, headers=tenant.auth)
    assert answer.status_code == 422
    assert [error["loc"] for error in answer.json()["detail"]] == [["query", "status"]]


async def test_an_import_is_answered_once_its_run_is_stored_and_queued(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    body = {"lucca_ids": [102, 100], "notify": True, "login_mode": "MicrosoftOAuth"}
    answer = await client.post(f"{USERS}/import", json=body, headers=tenant.auth)
    assert answer.status_code == 202, answer.text
    run = (await client.get(f"/api/v1/tenants/acme/runs/{answer.json()['run_id']}", headers=tenant.auth)).json()
    assert (run["connector"], run["operation"], run["trigger"], run["status"]) == (
        "cards", "users_import", "api", "queued")  # fmt: skip
    departments = await client.post(f"{DEPARTMENTS}/import", json={"all": True}, headers=ADMIN)
    assert departments.status_code == 202, departments.text
    listed = (await client.get("/api/v1/tenants/acme/runs", params={"connector": "cards"}, headers=ADMIN)).json()
    assert [run["operation"] for run in listed["items"]] == ["departments_import", "users_import"]
    assert await queued_jobs() == 2


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", USERS, None), ("GET", DEPARTMENTS, None), ("POST", f"{USERS}/import", {"all": True}),
     ("POST", f"{DEPARTMENTS}/import", {"all": True})],
)  # fmt: skip
async def test_without_an_enabled_cards_connector_every_route_is_409(
    client: httpx.AsyncClient, migrated_database: str, method: str, path: str, body: Any
) -> None:
    tenant = await create_tenant(client, "acme")
    missing = await client.request(method, path, json=body, headers=tenant.auth)
    assert missing.status_code == 409, missing.text
    assert missing.json()["detail"] == "No Cards connector is set up for this tenant: PUT one first."
    put = await client.put(
        "/api/v1/tenants/acme/connectors/cards", json={"enabled": False, "settings": CARDS}, headers=tenant.auth
    )
    assert put.status_code == 200
    disabled = await client.request(method, path, json=body, headers=tenant.auth)
    assert disabled.status_code == 409 and disabled.json()["detail"] == "The Cards connector is disabled."
    assert await stored_runs(migrated_database) == 0 and await queued_jobs() == 0


@pytest.mark.parametrize(
    ("method", "path"), [("GET", USERS), ("GET", DEPARTMENTS), ("POST", f"{USERS}/import"),
                         ("POST", f"{DEPARTMENTS}/import")],
)  # fmt: skip
async def test_credentials_come_first_and_other_tenants_see_nothing(
    client: httpx.AsyncClient, tenant: TenantHandle, method: str, path: str
) -> None:
    # A bad body does not matter before the credentials are checked.
    anonymous = await client.request(method, path, content=b"{not json", headers={"Content-Type": "application/json"})
    assert anonymous.status_code == 401
    other = await create_tenant(client, "other")
    assert (await client.request(method, path, json={"all": True}, headers=other.auth)).status_code == 404


async def test_before_the_first_full_sync_the_listings_say_the_directory_is_loading_without_calling_lucca(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str
) -> None:
    # The tenant's Lucca cannot be reached from here: the listings never call it.
    await client.patch(
        "/api/v1/tenants/acme", json={"lucca": {"base_url": "http://127.0.0.1:9", "api_key": "k"}}, headers=ADMIN
    )
    # Enabling the connector queued the first full sync; no worker has taken it yet.
    for path in (USERS, DEPARTMENTS):
        answer = await client.get(path, headers=tenant.auth)
        assert answer.status_code == 200, answer.text
        assert answer.json()["items"] == [] and answer.json()["directory"]["status"] == "loading"
        assert answer.json()["directory"]["progress"] == 0
    # The full sync under way has read 1,200 people so far.
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        await connection.execute("UPDATE directory_states SET sync_progress = 1200")
    finally:
        await connection.close()
    for path in (USERS, DEPARTMENTS):
        answer = await client.get(path, headers=tenant.auth)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "items": [],
            "directory": {
                "status": "loading",
                "progress": 1200,
                "message": "Lucca's directory is still loading (1,200 people read so far): this list fills in once "
                "its first full sync completes.",
            },
        }
