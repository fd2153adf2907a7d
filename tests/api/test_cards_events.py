"""The Cards learning-event webhook and the statistics push route, over TCP (contract sections 2, 3 and 9)."""

import asyncio
import copy
import json
from typing import Any

import asyncpg
import httpx
import pytest

from app.schemas.cards_events import CHAPTER_EXAMPLE, QUIZ_EXAMPLE
from tests.factories import ADMIN, TenantHandle, create_tenant, queued_jobs
from tests.live_server import LiveServer

pytestmark = pytest.mark.usefixtures("clean_state")
CARDS = {"api_token": "cards-api-token", "space_id": "acme-space"}


def webhook(token: str | None) -> str:
    return f"/integrations/webhooks/cards/{token}"


async def add_cards(client: httpx.AsyncClient, tenant: TenantHandle, enabled: bool = True) -> TenantHandle:
    answer = await client.put(
        f"/api/v1/tenants/{tenant.slug}/connectors/cards", json={"enabled": enabled, "settings": CARDS}, headers=ADMIN
    )
    assert answer.status_code == 200, answer.text
    tenant.webhook_token = answer.json()["webhook_token"]
    return tenant


@pytest.fixture
async def tenant(client: httpx.AsyncClient) -> TenantHandle:
    return await add_cards(client, await create_tenant(client, "acme"))


async def stored(database_url: str, query: str = "SELECT event_id, type, email FROM cards_events") -> list[Any]:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return [tuple(row) for row in await connection.fetch(query + " ORDER BY id")]
    finally:
        await connection.close()


def event(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(CHAPTER_EXAMPLE)
    body.update(changes)
    return body


def with_data(path: str, value: Any) -> dict[str, Any]:
    """The chapter example with one `data` field changed (`...` removes it)."""
    body = event()
    *parents, last = path.split(".")
    node = body["data"]
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return body


async def test_an_event_is_stored_once_202_then_200(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str
) -> None:
    first = await client.post(webhook(tenant.webhook_token), json=event())
    assert first.status_code == 202, first.text
    assert first.json() == {"id": "evt-20240120-0001", "duplicate": False}
    again = await client.post(webhook(tenant.webhook_token), json=event(data={**CHAPTER_EXAMPLE["data"], "points": 9}))
    assert again.status_code == 200
    assert again.json() == {"id": "evt-20240120-0001", "duplicate": True}
    assert await stored(migrated_database) == [("evt-20240120-0001", "chapter-complete", "claire.martin@acme.fr")]
    # Nothing is queued: the statistics are pushed at night, or on demand.
    assert await queued_jobs() == 0


async def test_concurrent_deliveries_of_one_event_store_it_once(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str
) -> None:
    answers = await asyncio.gather(*(client.post(webhook(tenant.webhook_token), json=QUIZ_EXAMPLE) for _ in range(8)))
    assert sorted(answer.status_code for answer in answers) == [200] * 7 + [202]
    query = "SELECT event_id, chapter_id, progress::text, points::text, max_points::text FROM cards_events"
    assert await stored(migrated_database, query) == [("evt-20240120-0002", "702", "0.4", "3", "4")]


async def test_any_type_is_stored_and_only_learning_events_are_read(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str
) -> None:
    other = {"id": 991, "type": "badge-earned", "created_at": "not a Cards time", "data": ["anything", {"x": None}]}
    answer = await client.post(webhook(tenant.webhook_token), json={**other, "unknown": {"deep": [1]}})
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"id": "991", "duplicate": False}
    assert await stored(migrated_database) == [("991", "badge-earned", None)]


async def test_numbers_are_read_as_json_numbers(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str
) -> None:
    body = with_data("training.id", 77.0)
    body["data"]["score"]["progress"] = 0.285
    assert (await client.post(webhook(tenant.webhook_token), json=body)).status_code == 202
    query = "SELECT training_id, progress::text FROM cards_events"
    assert await stored(migrated_database, query) == [(77, "0.285")]


async def test_the_same_event_id_in_two_tenants_is_two_events(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str
) -> None:
    other = await add_cards(client, await create_tenant(client, "globex"))
    for token in (tenant.webhook_token, other.webhook_token):
        assert (await client.post(webhook(token), json=event())).status_code == 202
    assert len(await stored(migrated_database)) == 2


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({key: value for key, value in CHAPTER_EXAMPLE.items() if key != "id"}, ["body", "id"]),
        (event(id=True), ["body", "id"]),
        (event(id=""), ["body", "id"]),
        (event(id="x" * 201), ["body", "id"]),
        (event(id=2**63), ["body", "id"]),
        (event(id="a\u0000b"), ["body", "id"]),
        (with_data("training.chapter.id", "\ud800"), ["body", "data", "training", "chapter", "id"]),
        (event(type=None), ["body", "type"]),
        (event(type=7), ["body", "type"]),
        (event(type="a\u0000b"), ["body", "type"]),
        ({"id": "e1", "type": "quiz-complete"}, ["body", "data"]),
        (event(data=None), ["body", "data"]),
        (event(data="done"), ["body", "data"]),
        (event(created_at="20/01/2024 09:10"), ["body", "created_at"]),
        (with_data("created_at", "2024-02-30 09:00:00"), ["body", "data", "created_at"]),
        (with_data("created_at", ...), ["body", "data", "created_at"]),
        (with_data("user", ...), ["body", "data", "user"]),
        (with_data("user.email", 12), ["body", "data", "user", "email"]),
        (with_data("training.id", "77"), ["body", "data", "training", "id"]),
        (with_data("training.id", 0), ["body", "data", "training", "id"]),
        (with_data("training.id", 77.5), ["body", "data", "training", "id"]),
        (with_data("score.progress", 1.5), ["body", "data", "score", "progress"]),
        (with_data("score.progress", "0.5"), ["body", "data", "score", "progress"]),
        (with_data("score.progress", True), ["body", "data", "score", "progress"]),
        (with_data("score.max_points", -1), ["body", "data", "score", "max_points"]),
        ([CHAPTER_EXAMPLE], ["body"]),
    ],
)
async def test_a_malformed_event_is_a_422_naming_the_field_and_nothing_is_stored(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str, body: Any, loc: list[str]
) -> None:
    # Written as a sender would, escapes included (a lone surrogate is valid JSON text).
    content = json.dumps(body).encode()
    answer = await client.post(
        webhook(tenant.webhook_token), content=content, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert [error["loc"] for error in answer.json()["detail"]] == [loc]
    assert await stored(migrated_database) == []


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [(b'{"id": "e1", "type": ', "application/json", 422), (json.dumps(CHAPTER_EXAMPLE).encode(), "text/plain", 415),
     (b"x" * (2 * 1024 * 1024), "application/json", 413)],
)  # fmt: skip
async def test_bad_bodies_get_the_contract_answer(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    migrated_database: str,
    content: bytes,
    content_type: str,
    status: int,
) -> None:
    answer = await client.post(webhook(tenant.webhook_token), content=content, headers={"Content-Type": content_type})
    assert answer.status_code == status and "detail" in answer.json()
    assert await stored(migrated_database) == []


async def test_the_token_is_checked_before_the_body(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    for token in ("00000000-0000-0000-0000-000000000000", "wrong", "x" * 5000, "%00", None):
        headers = {"Content-Type": "text/plain", "Authorization": f"Bearer {tenant.webhook_token}"}
        answer = await client.post(webhook(token), content=b"{not json", headers=headers)
        assert answer.status_code == 401, token
        assert answer.json() == {"detail": "Missing or invalid credentials."}
    # Another kind's token is no Cards token.
    softgarden = await client.put(
        "/api/v1/tenants/acme/connectors/softgarden",
        json={"settings": {"professional_email_template": "{first_name}@acme.fr", "default_department_id": 10,
                           "default_role_principal_id": 55}},
        headers=ADMIN,
    )  # fmt: skip
    assert (await client.post(webhook(softgarden.json()["webhook_token"]), json=event())).status_code == 401


async def test_a_disabled_connector_and_a_rotated_token_refuse_events(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str
) -> None:
    connector = "/api/v1/tenants/acme/connectors/cards"
    assert (await client.patch(connector, json={"enabled": False}, headers=ADMIN)).status_code == 200
    answer = await client.post(webhook(tenant.webhook_token), json=event())
    assert answer.status_code == 403 and answer.json() == {"detail": "This connector is disabled."}
    assert (await client.patch(connector, json={"enabled": True}, headers=ADMIN)).status_code == 200
    rotated = (await client.post(f"{connector}/rotate-token", headers=ADMIN)).json()["webhook_token"]
    assert (await client.post(webhook(tenant.webhook_token), json=event())).status_code == 401
    assert (await client.post(webhook(rotated), json=event())).status_code == 202
    assert len(await stored(migrated_database)) == 1


async def logged_after(server: LiveServer, start: int, marker: str) -> str:
    """What the server wrote since `start`, once `marker` is in it (the access line follows the answer closely)."""
    for _ in range(100):
        written = server.log()[start:]
        if marker in written:
            return written
        await asyncio.sleep(0.05)
    return written


async def test_the_token_never_reaches_the_log(
    client: httpx.AsyncClient, tenant: TenantHandle, live_api: LiveServer
) -> None:
    assert tenant.webhook_token
    start = len(live_api.log())
    for probe, body in (("new", event()), ("again", event()), ("bad", event(type=None))):
        await client.post(f"{webhook(tenant.webhook_token)}?probe={probe}", json=body)
    disabled = await client.patch("/api/v1/tenants/acme/connectors/cards", json={"enabled": False}, headers=ADMIN)
    assert disabled.status_code == 200
    await client.post(f"{webhook(tenant.webhook_token)}?probe=disabled", json=event())
    written = await logged_after(live_api, start, "/integrations/webhooks/cards/***?probe=disabled")
    access = [line for line in written.splitlines() if "probe=" in line]
    assert [line.rsplit(" ", 1)[-1] for line in access] == ["202", "200", "422", "403"], written
    assert all('"POST /integrations/webhooks/cards/***?probe=' in line for line in access)
    assert tenant.webhook_token not in written


async def test_the_push_is_queued_on_demand_enabled_or_not(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str
) -> None:
    answer = await client.post("/api/v1/tenants/acme/cards/stats/sync", headers=tenant.auth)
    assert answer.status_code == 202, answer.text
    run = (await client.get(f"/api/v1/tenants/acme/runs/{answer.json()['run_id']}", headers=tenant.auth)).json()
    assert (run["connector"], run["operation"], run["trigger"], run["status"]) == (
        "cards",
        "stats_sync",
        "api",
        "queued",
    )
    assert await queued_jobs() == 1


async def test_the_push_needs_an_enabled_cards_connector(client: httpx.AsyncClient, migrated_database: str) -> None:
    bare = await create_tenant(client, "acme")
    sync = "/api/v1/tenants/acme/cards/stats/sync"
    answer = await client.post(sync, headers=bare.auth)
    assert answer.status_code == 409 and "No Cards connector" in answer.json()["detail"]
    await add_cards(client, bare, enabled=False)
    answer = await client.post(sync, headers=bare.auth)
    assert answer.status_code == 409 and answer.json()["detail"] == "The Cards connector is disabled."
    other = await create_tenant(client, "globex")
    assert (await client.post(sync, headers=other.auth)).status_code == 404
    assert (await client.post(sync)).status_code == 401
    assert await stored(migrated_database, "SELECT id FROM runs") == [] and await queued_jobs() == 0
