"""Alert channels through the API (contract 14): PUT replaces them, GET shows them without secrets, the test call
sends to each (a real SMTP server and a local HTTP receiver); bad input is a 422 naming the field, nothing stored."""

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from standardwebhooks import Webhook

from tests.factories import ADMIN, TenantHandle, create_tenant
from tests.smtp_sink import SmtpSink
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.usefixtures("clean_state")
SLACK = "https://hooks.slack.test/services/T0123ABC/B0456DEF/xoxbSECRETtoken1234567890"
TEAMS = "https://prod-01.westeurope.logic.test/workflows/0f1e2d3c4b5a6978/triggers/manual/paths/invoke?api-version=2016-06-01&sig=QWxhZGRpbjpvcGVuIHNlc2FtZQ"
HOOK = "https://hooks.acme.test/lucca"
CHANNELS: list[dict[str, Any]] = [
    {"kind": "email", "to": ["hr@acme.test", "it@acme.test"]},
    {"kind": "webhook", "url": HOOK},
    {"kind": "slack", "url": SLACK},
    {"kind": "teams", "url": TEAMS},
]


@pytest.fixture
def receivers() -> Iterator[tuple[WebhookReceiver, WebhookReceiver]]:
    """One receiver up, one down."""
    up, down = WebhookReceiver(), WebhookReceiver()
    down.down_until = float("inf")
    for receiver in (up, down):
        receiver.start()
    yield up, down
    for receiver in (up, down):
        receiver.stop()


def path(tenant: TenantHandle, rest: str = "") -> str:
    return f"/api/v1/tenants/{tenant.slug}/alerts{rest}"


async def put(client: httpx.AsyncClient, tenant: TenantHandle, channels: list[dict[str, Any]]) -> httpx.Response:
    return await client.put(path(tenant), json={"channels": channels}, headers=tenant.auth)


def locs(answer: httpx.Response) -> list[list[Any]]:
    assert answer.status_code == 422, answer.text
    return [error["loc"] for error in answer.json()["detail"]]


async def stored_columns() -> str:
    """Every stored channel column, as text: what a database dump would show."""
    connection = await asyncpg.connect(os.environ["DATABASE_URL"].replace("+asyncpg", ""))
    try:
        rows = await connection.fetch("SELECT * FROM alert_channels")
    finally:
        await connection.close()
    return json.dumps([dict(row) for row in rows], default=str)


async def test_channels_are_replaced_and_read_without_their_secrets(client: httpx.AsyncClient) -> None:
    tenant = await create_tenant(client, "acme")
    assert (await client.get(path(tenant), headers=tenant.auth)).json() == {"channels": []}
    answer = await put(client, tenant, CHANNELS)
    assert answer.status_code == 200, answer.text
    channels = answer.json()["channels"]
    assert [channel["kind"] for channel in channels] == ["email", "webhook", "slack", "teams"]
    assert channels[0]["to"] == ["hr@acme.test", "it@acme.test"] and channels[1]["url"] == HOOK
    secret = channels[1]["secret"]
    assert secret.startswith("whsec_") and [c for c in channels if "secret" in c] == [channels[1]]
    Webhook(secret)  # a secret the Standard Webhooks libraries take
    # Slack's and Teams' URLs are credentials: their host only.
    assert channels[2]["url"] == "https://hooks.slack.test/…"
    assert channels[3]["url"] == "https://prod-01.westeurope.logic.test/…"

    read = await client.get(path(tenant), headers=tenant.auth)
    assert read.status_code == 200
    assert read.json() == {"channels": [{k: v for k, v in c.items() if k != "secret"} for c in channels]}
    for hidden in (secret, "xoxbSECRETtoken", "QWxhZGRpbjpvcGVuIHNlc2FtZQ", "/workflows/"):
        assert hidden not in read.text
    stored = await stored_columns()
    for hidden in (secret, "xoxbSECRETtoken", "QWxhZGRpbjpvcGVuIHNlc2FtZQ", "/workflows/"):
        assert hidden not in stored

    # The list as GET shows it, sent back reordered: the same channels (ids, secret, URLs), no new secret.
    shown = [{k: v for k, v in c.items() if k in ("kind", "to", "url")} for c in channels]
    again = await put(client, tenant, [shown[3], shown[2], shown[1], shown[0]])
    assert again.status_code == 200, again.text
    assert [c["id"] for c in again.json()["channels"]] == [c["id"] for c in reversed(channels)]
    assert "secret" not in again.text and "xoxb" not in again.text

    # A webhook at a new URL is a new channel with a new secret; a channel left out is gone.
    moved = await put(client, tenant, [{"kind": "webhook", "url": HOOK + "/v2"}, shown[2]])
    assert moved.status_code == 200, moved.text
    webhook, slack = moved.json()["channels"]
    assert webhook["id"] != channels[1]["id"] and webhook["secret"].startswith("whsec_") and webhook["secret"] != secret
    assert slack["id"] == channels[2]["id"]
    assert len((await client.get(path(tenant), headers=tenant.auth)).json()["channels"]) == 2


@pytest.mark.parametrize(
    ("channels", "loc"),
    [
        ([{"kind": "email", "to": ["hr@acme.test", "not an address"]}], ["body", "channels", 0, "to", 1]),
        ([{"kind": "email", "to": ["hr@acme.test\r\nBcc: all@acme.test"]}], ["body", "channels", 0, "to", 0]),
        ([{"kind": "email", "to": []}], ["body", "channels", 0, "to"]),
        ([CHANNELS[1], {"kind": "fax", "url": HOOK}], ["body", "channels", 1, "kind"]),
        ([{"url": HOOK}], ["body", "channels", 0, "kind"]),
        ([CHANNELS[1], {"kind": "webhook", "url": HOOK, "secret": "mine"}], ["body", "channels", 1, "secret"]),
        ([{"kind": "slack"}], ["body", "channels", 0, "url"]),
        ([{"kind": "slack", "url": "https://hooks.slack.test/…"}], ["body", "channels", 0, "url"]),
        ([{"kind": "webhook", "url": "https://zelda:hunter2pass@hooks.acme.test/x"}], ["body", "channels", 0, "url"]),
        ([{"kind": "teams", "url": "ftp://hooks.acme.test/x"}], ["body", "channels", 0, "url"]),
        ([{"kind": "webhook", "url": HOOK + "#part"}], ["body", "channels", 0, "url"]),
        ([CHANNELS[1]] * 11, ["body", "channels"]),
    ],
)
async def test_bad_input_is_a_422_naming_the_field_and_nothing_is_stored(
    client: httpx.AsyncClient, channels: list[dict[str, Any]], loc: list[Any]
) -> None:
    tenant = await create_tenant(client, "acme")
    assert (await put(client, tenant, [CHANNELS[0]])).status_code == 200
    before = (await client.get(path(tenant), headers=tenant.auth)).json()
    refused = await put(client, tenant, channels)
    assert locs(refused) == [loc]
    assert "hunter2" not in refused.text and "fax" not in refused.text
    assert (await client.get(path(tenant), headers=tenant.auth)).json() == before


async def test_a_masked_url_keeps_only_a_url_of_its_own_kind(client: httpx.AsyncClient) -> None:
    tenant = await create_tenant(client, "acme")
    assert (await put(client, tenant, [CHANNELS[2]])).status_code == 200
    # Teams' masked form cannot borrow the Slack channel's URL.
    assert locs(await put(client, tenant, [{"kind": "teams", "url": "https://hooks.slack.test/…"}])) == [
        ["body", "channels", 0, "url"]
    ]


@pytest.fixture
def deployed(app: FastAPI) -> None:
    """The in-process app, as deployed: ALLOW_HTTP_UPSTREAMS is not set."""
    app.state.settings.allow_http_upstreams = False


@pytest.mark.usefixtures("deployed")
@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1/hook", "https://10.0.0.1/hook", "https://localhost/hook", "https://[::1]/hook",
     "https://169.254.169.254/latest", "http://hooks.acme.test/hook", "https://0x7f.0.0.1/hook"],
)  # fmt: skip
async def test_a_private_url_is_refused_in_production(asgi_client: httpx.AsyncClient, url: str) -> None:
    tenant = await create_tenant(asgi_client, "acme")
    for kind in ("webhook", "slack", "teams"):
        answer = await put(asgi_client, tenant, [CHANNELS[1], {"kind": kind, "url": url}])
        assert locs(answer) == [["body", "channels", 1, "url"]]
    assert (await asgi_client.get(path(tenant), headers=tenant.auth)).json() == {"channels": []}
    # Public receivers, a Teams URL with its query among them, are taken.
    assert (await put(asgi_client, tenant, CHANNELS)).status_code == 200


async def test_email_channels_need_smtp_url(app: FastAPI, asgi_client: httpx.AsyncClient) -> None:
    app.state.settings.smtp_url = None
    tenant = await create_tenant(asgi_client, "acme")
    assert locs(await put(asgi_client, tenant, CHANNELS)) == [["body", "channels", 0, "kind"]]
    assert (await put(asgi_client, tenant, CHANNELS[1:])).status_code == 200


async def test_another_tenant_sees_nothing(client: httpx.AsyncClient) -> None:
    acme, other = await create_tenant(client, "acme"), await create_tenant(client, "other")
    assert (await put(client, acme, CHANNELS)).status_code == 200
    for method, rest, body in (("GET", "", None), ("PUT", "", {"channels": []}), ("POST", "/test", None)):
        answer = await client.request(method, path(acme, rest), json=body, headers=other.auth)
        assert answer.status_code == 404, answer.text
        assert (await client.request(method, path(acme, rest), json=body)).status_code == 401
    assert (await client.get(path(acme), headers=ADMIN)).json()["channels"][0]["to"] == ["hr@acme.test", "it@acme.test"]
    assert len((await client.get(path(acme), headers=acme.auth)).json()["channels"]) == 4


async def test_the_test_call_sends_to_each_channel(
    client: httpx.AsyncClient, smtp_sink: SmtpSink, receivers: tuple[WebhookReceiver, WebhookReceiver]
) -> None:
    tenant = await create_tenant(client, "acme")
    up, down = receivers
    channels = [
        CHANNELS[0],
        {"kind": "webhook", "url": up.url},
        {"kind": "slack", "url": up.url},
        {"kind": "teams", "url": f"{down.url}?sig=QWxhZGRpbjpvcGVuIHNlc2FtZQ"},
        {"kind": "webhook", "url": "http://127.0.0.1:9/closed"},
    ]
    set_up = await put(client, tenant, channels)
    assert set_up.status_code == 200, set_up.text
    secret = set_up.json()["channels"][1]["secret"]
    answer = await client.post(path(tenant, "/test"), headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    tested = answer.json()["channels"]
    assert [(c["kind"], c["ok"]) for c in tested] == [
        ("email", True), ("webhook", True), ("slack", True), ("teams", False), ("webhook", False)
    ]  # fmt: skip
    assert [c["id"] for c in tested] == [c["id"] for c in set_up.json()["channels"]]
    assert tested[0]["message"] == "Sent to hr@acme.test, it@acme.test."
    assert tested[3]["message"] == f"Teams at 127.0.0.1:{down.port} is unavailable (HTTP 503)"
    assert tested[4]["message"] == "Webhook at 127.0.0.1:9 did not answer (connection refused)"
    for hidden in ("/hook", "QWxhZGRpbjpvcGVuIHNlc2FtZQ", "/closed"):
        assert hidden not in answer.text

    [mail] = await smtp_sink.wait_for(1)
    assert mail.recipients == ["hr@acme.test", "it@acme.test"]
    assert mail.message["Subject"] == "[acme SAS] Test alert: this channel receives the connectors' alerts"
    assert "Nothing is wrong." in mail.part("plain") and "Nothing is wrong." in mail.part("html")
    hook, slack = sorted(up.received, key=lambda received: "text" in received.payload)
    payload = Webhook(secret).verify(hook.body, hook.headers)
    assert payload["type"] == "test" and payload["data"]["tenant_slug"] == "acme"
    assert slack.payload["text"].startswith("[acme SAS] Test alert") and "webhook-id" not in slack.headers
    # Nothing configured: nothing to test.
    other = await create_tenant(client, "other")
    assert (await client.post(path(other, "/test"), headers=other.auth)).json() == {"channels": []}


def at(hour: int, second: int = 0) -> datetime:
    return datetime(2026, 12, 6, hour, 0, second, tzinfo=UTC)


async def test_each_channel_shows_its_latest_alert(client: httpx.AsyncClient) -> None:
    tenant = await create_tenant(client, "acme")
    channels = (await put(client, tenant, CHANNELS[:2])).json()["channels"]
    connection = await asyncpg.connect(os.environ["DATABASE_URL"].replace("+asyncpg", ""))
    try:
        problem = await connection.fetchval(
            """
            INSERT INTO alert_problems (id, tenant_id, key, kind, source, status, title, message, count, opened_at,
                                        last_seen_at, last_alert_at)
            SELECT gen_random_uuid(), id, 'runs:softgarden:hire', 'runs', 'softgarden', 'open', 'Hires fail', 'x', 1,
                   now(), now(), now() FROM tenants WHERE slug = 'acme'
            RETURNING id
            """
        )
        deliveries = [
            (channels[0]["id"], "opened", "sent", 1, None, at(10), at(10, 5)),
            (channels[0]["id"], "resolved", "pending", 3, "Slow", at(11), None),
            (channels[1]["id"], "opened", "failed", 6, "Webhook at hooks.acme.test is unavailable (HTTP 503)", at(10),
             None),
        ]  # fmt: skip
        for channel_id, event, status, attempts, error, created, sent in deliveries:
            await connection.execute(
                """
                INSERT INTO alert_deliveries (id, tenant_id, problem_id, channel_id, event, status, attempts,
                                              next_attempt_at, error, created_at, sent_at)
                SELECT gen_random_uuid(), tenant_id, $1, $2::uuid, $3, $4, $5, now(), $6, $7, $8
                FROM alert_problems WHERE id = $1
                """,
                problem, channel_id, event, status, attempts, error, created, sent,
            )  # fmt: skip
    finally:
        await connection.close()
    read = (await client.get(path(tenant), headers=tenant.auth)).json()["channels"]
    assert read[0]["last_alert"] == {
        "event": "resolved", "status": "pending", "attempts": 3, "error": "Slow", "at": "2026-12-06T11:00:00Z"
    }  # fmt: skip
    assert read[1]["last_alert"] == {
        "event": "opened", "status": "failed", "attempts": 6, "at": "2026-12-06T10:00:00Z",
        "error": "Webhook at hooks.acme.test is unavailable (HTTP 503)",
    }  # fmt: skip
