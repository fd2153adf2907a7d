"""The alert senders: Standard Webhooks signatures, Slack's and Teams' formats (receivers via respx), e-mail through
a real SMTP server; failures as AlertNotSent, retryable or final, in words that never hold the URL's secret."""

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx
from standardwebhooks import Webhook

from app.alerts.message import AlertMessage
from app.alerts.senders import AlertNotSent, send
from app.config import Settings
from app.crypto import new_signing_secret
from app.models.alert import AlertChannel
from app.services.context import Services
from tests.smtp_sink import SmtpSink

HOOK = "https://hooks.acme.test/lucca"
SLACK = "https://hooks.slack.test/services/T0123ABC/B0456DEF/xoxbSECRETtoken1234567890"
TEAMS = "https://prod-01.westeurope.logic.test:443/workflows/0f1e2d3c4b5a69788796a5b4c3d2e1f0/triggers/manual/paths/invoke?api-version=2016-06-01&sig=QWxhZGRpbjpvcGVuIHNlc2FtZQxyz123"
CONSOLE = "https://connectors.example.com/console#/tenants/acme/runs/1234"
HOSTILE = "Lucca refused <script>alert(1)</script> & <b>bold</b> for Zoé"
MESSAGE = AlertMessage(
    id=uuid.uuid4(),
    event="opened",
    tenant_slug="acme",
    tenant_name="Acme <Corp>",
    problem_id=uuid.uuid4(),
    kind="runs",
    source="softgarden",
    title="Softgarden hires are failing",
    message=HOSTILE,
    count=3,
    opened_at=datetime(2026, 12, 6, 15, 0, tzinfo=UTC),
    resolved_at=None,
    console_url=CONSOLE,
)


@pytest.fixture
async def services() -> AsyncIterator[Services]:
    started = Services.start(Settings())
    yield started
    await started.close()


def channel(services: Services, kind: str, url: str | None = None, secret: str | None = None) -> AlertChannel:
    return AlertChannel(
        kind=kind,
        recipients=["hr@acme.test", "it@acme.test"] if kind == "email" else [],
        url_encrypted=services.box.encrypt(url) if url else None,
        secret_encrypted=services.box.encrypt(secret) if secret else None,
    )


async def refusal(services: Services, target: AlertChannel) -> AlertNotSent:
    with pytest.raises(AlertNotSent) as refused:
        await send(services, target, MESSAGE)
    return refused.value


@respx.mock
async def test_a_webhook_is_signed_as_standard_webhooks_specifies(services: Services) -> None:
    secret = new_signing_secret()
    route = respx.post(HOOK).respond(204)
    await send(services, channel(services, "webhook", HOOK, secret), MESSAGE)
    request = route.calls.last.request
    # The package's own verifier, with the receiver's clock: the signature, id and timestamp all hold.
    payload = Webhook(secret).verify(request.content, dict(request.headers))
    assert request.headers["webhook-id"] == str(MESSAGE.id)
    assert payload["type"] == "problem.opened"
    assert payload["data"]["id"] == str(MESSAGE.id) and payload["data"]["message"] == HOSTILE
    assert payload["data"]["count"] == 3 and payload["data"]["opened_at"] == "2026-12-06T15:00:00+00:00"
    assert request.headers["content-type"] == "application/json"
    assert secret not in request.content.decode() and secret not in str(request.headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(new_signing_secret()).verify(request.content, dict(request.headers))
    # A resent alert keeps its id: the receiver deduplicates on it.
    await send(services, channel(services, "webhook", HOOK, secret), replace(MESSAGE, event="resolved"))
    assert route.calls.last.request.headers["webhook-id"] == str(MESSAGE.id)
    assert json.loads(route.calls.last.request.content)["type"] == "problem.resolved"


@respx.mock
async def test_slack_gets_text_and_blocks_with_partner_words_escaped(services: Services) -> None:
    route = respx.post(SLACK).respond(200, text="ok")
    await send(services, channel(services, "slack", SLACK), MESSAGE)
    body = json.loads(route.calls.last.request.content)
    assert body["text"] == "[Acme &lt;Corp&gt;] Softgarden hires are failing"
    said = json.dumps(body["blocks"])
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in said and "<script>" not in said
    assert "<Corp>" not in said
    assert {block["type"] for block in body["blocks"]} == {"section", "actions"}
    assert body["blocks"][-1]["elements"][0]["url"] == CONSOLE


@respx.mock
async def test_teams_gets_an_adaptive_card(services: Services) -> None:
    route = respx.post(TEAMS).respond(202)
    await send(services, channel(services, "teams", TEAMS), MESSAGE)
    assert route.calls.last.request.url == TEAMS  # the query (its signature) is kept
    body = json.loads(route.calls.last.request.content)
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["body"][0]["text"].endswith("Softgarden hires are failing")
    assert card["body"][1]["text"] == HOSTILE
    assert {"title": "Times seen", "value": "3"} in card["body"][2]["facts"]
    assert card["actions"][0]["url"] == CONSOLE


@respx.mock
@pytest.mark.parametrize(
    ("answer", "retry_after"),
    [
        (lambda: httpx.Response(503, headers={"Retry-After": "7"}), 7.0),
        # An HTTP date, made when the test runs.
        (
            lambda: httpx.Response(429, headers={"Retry-After": format_datetime(datetime.now(UTC) + timedelta(0, 90))}),
            90,
        ),
        (lambda: httpx.Response(500, text="boom"), None),
        (lambda: httpx.ConnectError("connection refused"), None),
        (lambda: httpx.ReadTimeout("timed out"), None),
    ],
)
async def test_a_receiver_down_is_retryable(
    services: Services, answer: Callable[[], httpx.Response | Exception], retry_after: float | None
) -> None:
    respx.post(SLACK).mock(side_effect=[answer()])
    refused = await refusal(services, channel(services, "slack", SLACK))
    assert refused.retryable
    if retry_after is None:
        assert refused.retry_after is None
    else:
        assert refused.retry_after == pytest.approx(retry_after, abs=2)
    assert refused.message.startswith("Slack at hooks.slack.test ")
    assert "services" not in refused.message and "xoxb" not in refused.message


@respx.mock
@pytest.mark.parametrize("status", [400, 403, 404, 410])
async def test_a_refusal_is_final_and_never_repeats_the_url(services: Services, status: int) -> None:
    # A receiver that echoes its own URL: what it says of the path and query is masked.
    echo = {"error": f"no_service for {SLACK} and {TEAMS}"}
    respx.post(SLACK).respond(status, json=echo)
    refused = await refusal(services, channel(services, "slack", SLACK))
    assert not refused.retryable and refused.retry_after is None
    assert f"HTTP {status}" in refused.message and "no_service" in refused.message
    for secret in ("xoxbSECRETtoken1234567890", "/services/", "QWxhZGRpbjpvcGVuIHNlc2FtZQxyz123", "sig="):
        assert secret not in refused.message


async def test_a_private_address_is_never_called(services: Services) -> None:
    deployed = Services.start(Settings(allow_http_upstreams=False))
    try:
        refused = await refusal(
            deployed, channel(deployed, "webhook", "https://127.0.0.1:9/hook", new_signing_secret())
        )
    finally:
        await deployed.close()
    assert not refused.retryable
    assert "not public" in refused.message and "/hook" not in refused.message


async def test_an_email_has_text_and_escaped_html(services: Services, smtp_sink: SmtpSink) -> None:
    await send(services, channel(services, "email"), MESSAGE)
    [mail] = await smtp_sink.wait_for(1)
    assert mail.recipients == ["hr@acme.test", "it@acme.test"]
    assert mail.sender == "alerts@connectors.test"
    assert mail.message["Subject"] == "[Acme <Corp>] Softgarden hires are failing"
    assert mail.message["Message-ID"] == f"<{MESSAGE.id}@lucca-connectors>"
    text = mail.part("plain")
    assert HOSTILE in text and CONSOLE in text and "Times seen: 3" in text
    page = mail.part("html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "<script>" not in page and "<b>bold" not in page and "<Corp>" not in page
    assert f'href="{CONSOLE}"' in page


@pytest.mark.parametrize(("answer", "retryable"), [("451 4.3.0 try again later", True), ("554 5.6.0 refused", False)])
async def test_a_mail_server_refusal(services: Services, smtp_sink: SmtpSink, answer: str, retryable: bool) -> None:
    smtp_sink.refuse_with = answer
    refused = await refusal(services, channel(services, "email"))
    assert refused.retryable is retryable
    assert (
        refused.message.startswith("The mail server at 127.0.0.1 refused the alert") and answer[:3] in refused.message
    )


async def test_a_mail_server_down_is_retryable_and_none_set_up_is_final(services: Services) -> None:
    closed = Services.start(Settings(smtp_url="smtp://user:hunter2@127.0.0.1:9"))
    try:
        refused = await refusal(closed, channel(closed, "email"))
    finally:
        await closed.close()
    assert refused.retryable and "did not answer" in refused.message and "hunter2" not in refused.message
    unset = Services.start(Settings(smtp_url=None))
    try:
        refused = await refusal(unset, channel(unset, "email"))
    finally:
        await unset.close()
    assert not refused.retryable and "SMTP_URL" in refused.message


def test_smtp_url_is_read_and_a_bad_one_refused_without_repeating_it() -> None:
    server = Settings(smtp_url="smtps://ops%40acme.test:p%40ss@mail.acme.test").smtp
    assert server is not None
    assert (server.host, server.port, server.tls) == ("mail.acme.test", 465, True)
    assert (server.username, server.password, server.sender) == ("ops@acme.test", "p@ss", "ops@acme.test")
    assert Settings(smtp_url="smtp://mail.acme.test:2525?from=alerts@acme.test").smtp == replace(
        server, port=2525, tls=False, username=None, password=None, sender="alerts@acme.test"
    )
    assert Settings(smtp_url="").smtp is None
    for bad in ("http://user:hunter2@mail.acme.test", "smtp://user:hunter2@mail.acme.test?to=x", "smtp://:hunter2@"):
        with pytest.raises(ValueError, match="SMTP_URL") as refused:
            Settings(smtp_url=bad)
        assert "hunter2" not in str(refused.value)
