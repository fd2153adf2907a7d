"""Lucca's webhook on the real server: the echo, the signature and timestamp, one stored event per id (CONTRACT 13)."""

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from app.crypto import SecretBox, hash_token, new_webhook_token
from app.directory.webhooks import signature
from tests.factories import create_tenant
from tests.live_server import LiveServer

pytestmark = pytest.mark.usefixtures("clean_state")
SECRET = "b3YGydKxao0CYEg4-2LM81rviT-vl2JzKyf_zlewRn0c"


def database_url() -> str:
    return os.environ["DATABASE_URL"].replace("+asyncpg", "")


async def armed_tenant(client: httpx.AsyncClient, slug: str = "acme") -> str:
    """A tenant whose Lucca endpoint is registered: returns the token of its webhook URL."""
    await create_tenant(client, slug)
    token = new_webhook_token()
    secret = SecretBox(os.environ["SECRET_KEY"]).encrypt(SECRET)
    connection = await asyncpg.connect(database_url())
    try:
        await connection.execute(
            """
            INSERT INTO directory_states (tenant_id, sync_progress, webhook_status, webhook_token_hash,
                                          webhook_secret_encrypted, notices, updated_at)
            SELECT id, 0, 'active', $2, $3, '[]', now() FROM tenants WHERE slug = $1
            """,
            slug,
            hash_token(token),
            secret,
        )
    finally:
        await connection.close()
    return token


async def stored_events() -> list[tuple[Any, ...]]:
    connection = await asyncpg.connect(database_url())
    try:
        rows = await connection.fetch("SELECT event_id, topic, payload FROM lucca_events ORDER BY received_at")
        return [(row["event_id"], row["topic"], json.loads(row["payload"])) for row in rows]
    finally:
        await connection.close()


def lucca_event(event_id: str = "9001", topic: str = "employee.updated", employee: str = "875") -> bytes:
    body = {
        "id": event_id,
        "type": "event",
        "topic": topic,
        "occurredAt": "2026-12-06T09:34:23.001Z",
        "source": "https://acme.ilucca.net",
        "data": {"id": employee, "type": "employee", "firstName": "Jean"},
    }
    return json.dumps(body).encode()


def signed(body: bytes, at: datetime | None = None, secret: str = SECRET) -> dict[str, str]:
    timestamp = (at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    return {
        "Content-Type": "application/json",
        "Lucca-Timestamp": timestamp,
        "Lucca-Signature": signature(secret, timestamp, body),
    }


async def test_the_activation_echo_is_answered_as_plain_text(client: httpx.AsyncClient, live_api: LiveServer) -> None:
    token = await armed_tenant(client)
    for name in ("echo", "challenge"):
        answer = await client.get(f"/integrations/webhooks/lucca/{token}", params={name: "c0ffee-42"})
        assert answer.status_code == 200
        assert answer.text == "c0ffee-42"
        assert answer.headers["content-type"].startswith("text/plain")
    too_long = await client.get(f"/integrations/webhooks/lucca/{token}", params={"echo": "x" * 201})
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["query", "echo"]
    unknown = await client.get(f"/integrations/webhooks/lucca/{new_webhook_token()}", params={"echo": "1"})
    assert unknown.status_code == 401
    await asyncio.sleep(0.1)  # the access line is written just after the answer
    assert "/integrations/webhooks/lucca/***?echo=c0ffee-42" in live_api.log() and token not in live_api.log()


async def test_unsigned_late_or_forged_deliveries_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
) -> None:
    token = await armed_tenant(client)
    url = f"/integrations/webhooks/lucca/{token}"
    body = lucca_event()
    now = datetime.now(UTC)
    headers = signed(body)
    refused = [
        {"Content-Type": "application/json"},  # no header at all
        {key: value for key, value in headers.items() if key != "Lucca-Signature"},
        {key: value for key, value in headers.items() if key != "Lucca-Timestamp"},
        {**headers, "Lucca-Signature": signed(body, secret="another-secret")["Lucca-Signature"]},
        signed(body, at=now - timedelta(minutes=6)),
        signed(body, at=now + timedelta(minutes=6)),
        {**headers, "Lucca-Timestamp": "yesterday"},
        {**headers, "Lucca-Signature": "not base64 at all"},
    ]
    for sent in refused:
        answer = await client.post(url, content=body, headers=sent)
        assert answer.status_code == 401, sent
    # Signed for another body: the signature covers every byte.
    tampered = await client.post(url, content=lucca_event(employee="876"), headers=headers)
    assert tampered.status_code == 401
    unknown = await client.post(f"/integrations/webhooks/lucca/{new_webhook_token()}", content=body, headers=headers)
    assert unknown.status_code == 401
    assert await stored_events() == []


async def test_a_signed_event_is_stored_once_and_a_resend_is_ignored(client: httpx.AsyncClient) -> None:
    token = await armed_tenant(client)
    url = f"/integrations/webhooks/lucca/{token}"
    body = lucca_event()
    # Four minutes old is still within the five allowed.
    first = await client.post(url, content=body, headers=signed(body, at=datetime.now(UTC) - timedelta(minutes=4)))
    assert first.status_code == 202, first.text
    assert first.json() == {"id": "9001", "duplicate": False}
    again = await client.post(url, content=body, headers=signed(body))
    assert again.status_code == 200
    assert again.json() == {"id": "9001", "duplicate": True}
    events = await stored_events()
    assert [(event_id, topic) for event_id, topic, _ in events] == [("9001", "employee.updated")]
    # What the job reads is kept, not the whole body (names and the like stay in Lucca).
    assert events[0][2]["data"] == {"id": "875"}
    redis = Redis.from_url(os.environ["REDIS_URL"])
    try:
        assert await redis.exists(f"arq:job:lucca-events:{await tenant_id('acme')}")
    finally:
        await redis.aclose()


async def test_a_signed_body_that_is_not_an_event_is_a_422_naming_the_field(client: httpx.AsyncClient) -> None:
    token = await armed_tenant(client)
    body = json.dumps({"id": "1", "data": {}}).encode()
    answer = await client.post(f"/integrations/webhooks/lucca/{token}", content=body, headers=signed(body))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "topic"]
    assert await stored_events() == []


async def test_tokens_are_per_tenant(client: httpx.AsyncClient) -> None:
    acme = await armed_tenant(client, "acme")
    await armed_tenant(client, "globex")
    body = lucca_event()
    answer = await client.post(f"/integrations/webhooks/lucca/{acme}", content=body, headers=signed(body))
    assert answer.status_code == 202
    connection = await asyncpg.connect(database_url())
    try:
        owners = await connection.fetch("SELECT tenants.slug FROM lucca_events JOIN tenants ON tenants.id = tenant_id")
    finally:
        await connection.close()
    assert [row["slug"] for row in owners] == ["acme"]


async def tenant_id(slug: str) -> str:
    connection = await asyncpg.connect(database_url())
    try:
        return str(await connection.fetchval("SELECT id FROM tenants WHERE slug = $1", slug))
    finally:
        await connection.close()
