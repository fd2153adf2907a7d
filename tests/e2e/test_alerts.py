"""Alerts (contract 14): problems open once, count, remind once a day and resolve once; each alert reaches each
channel once (a real SMTP server, a real HTTP receiver), through real arq workers."""

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from standardwebhooks import Webhook

import app.workers.settings as worker_settings
from app.alerts import problems, senders
from app.alerts.checks import check_everything
from app.alerts.delivery import deliver
from app.alerts.problems import Problem
from app.config import Settings
from app.directory.polling import poll_tenant
from app.metrics import render
from app.models.base import utcnow
from app.services.context import Services
from app.services.retention import purge_expired_runs, purge_resolved_problems
from app.services.tenants import purge_tenant
from app.workers.alerts import alerts_tick
from tests.e2e.conftest import WEBHOOK, HiringTenant, drain_queue, run_of
from tests.e2e.directory_helpers import filled_tenant, poll_now, running_services, state_of
from tests.e2e.test_recovery import worker_process
from tests.factories import ADMIN, TenantHandle, add_softgarden, create_oauth_tenant, create_tenant, hire_body
from tests.live_server import LiveServer
from tests.sandbox_server import LuccaAccount
from tests.smtp_sink import SmtpSink
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.usefixtures("clean_state")
DATABASE = os.environ["DATABASE_URL"].replace("+asyncpg", "")
HIRES_FAILING = "Softgarden hires are failing"


@pytest.fixture(scope="session")
def hook_server() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def receiver(hook_server: WebhookReceiver) -> WebhookReceiver:
    hook_server.clear()
    return hook_server


@pytest.fixture
async def services(clean_state: None) -> AsyncIterator[Services]:
    started = Services.start(Settings(), pool_size=5)
    yield started
    await started.close()


async def add_channels(
    client: httpx.AsyncClient, tenant: TenantHandle, hook_url: str | None, to: list[str] | None = None
) -> str | None:
    """The tenant's channels, set through the API; returns the webhook's signing secret (shown this once)."""
    channels: list[dict[str, Any]] = [{"kind": "email", "to": to}] if to else []
    if hook_url:
        channels.append({"kind": "webhook", "url": hook_url})
    answer = await client.put(f"/api/v1/tenants/{tenant.slug}/alerts", json={"channels": channels}, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    secret: str | None = next((item["secret"] for item in answer.json()["channels"] if item.get("secret")), None)
    return secret


async def sql(statement: str, *args: Any) -> None:
    connection = await asyncpg.connect(DATABASE)
    try:
        await connection.execute(statement, *args)
    finally:
        await connection.close()


async def problems_of(client: httpx.AsyncClient, tenant: TenantHandle, status: str | None = None) -> list[Any]:
    params = {"status": status} if status else {}
    answer = await client.get(f"/api/v1/tenants/{tenant.slug}/alerts/problems", params=params, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    items: list[Any] = answer.json()["items"]
    return items


async def hire(client: httpx.AsyncClient, tenant: TenantHandle, n: int) -> str:
    answer = await client.post(WEBHOOK, json=hire_body(applicationId=f"app-{n:04}"), headers=tenant.webhook_auth)
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    return run_id


async def test_one_alert_per_problem_counted_then_resolved_and_another_kind_its_own(
    client: httpx.AsyncClient,
    hiring_tenant: HiringTenant,
    lucca: LuccaAccount,
    smtp_sink: SmtpSink,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_settings.settings, "public_base_url", "https://connectors.example.com")
    tenant = await hiring_tenant()
    secret = await add_channels(client, tenant, receiver.url, ["hr@acme.fr"])
    lucca.add_faults({"status": 400, "match": "POST /api/v3/users", "count": 20})
    first = await hire(client, tenant, 1)
    await drain_queue()
    assert (await run_of(client, tenant, first))["status"] == "failed"
    [mail] = await smtp_sink.wait_for(1)
    assert receiver.events() == [("problem.opened", HIRES_FAILING)]
    assert mail.recipients == ["hr@acme.fr"] and HIRES_FAILING in mail.message["Subject"]
    signed = receiver.received[0]
    assert Webhook(str(secret)).verify(signed.body, signed.headers)["type"] == "problem.opened"
    data = signed.payload["data"]
    assert data["console_url"] == f"https://connectors.example.com/console#/tenants/acme/runs/{first}"
    assert "Zoë Müller" in data["message"] and "Lucca refused the new employee" in data["message"]
    # The candidate's name is the only personal data: not their addresses.
    for text in (receiver.received[0].body.decode(), mail.part("plain"), mail.part("html")):
        assert "zoe.m@gmail.com" not in text and "+49 170" not in text and lucca.api_key not in text

    for n in range(2, 21):
        await hire(client, tenant, n)
    await drain_queue()
    [problem] = await problems_of(client, tenant, "open")
    assert problem["title"] == HIRES_FAILING and problem["count"] == 20 and problem["kind"] == "runs"
    assert problem["run_ids"]["first"] == first
    assert sorted((alert["channel_kind"], alert["event"], alert["status"]) for alert in problem["alerts"]) == [
        ("email", "opened", "sent"), ("webhook", "opened", "sent")]  # fmt: skip
    assert len(smtp_sink.received) == 1 and len(receiver.received) == 1

    succeeded = await hire(client, tenant, 21)
    await drain_queue()
    assert (await run_of(client, tenant, succeeded))["status"] == "succeeded"
    await smtp_sink.wait_for(2)
    assert receiver.events() == [("problem.opened", HIRES_FAILING), ("problem.resolved", HIRES_FAILING)]
    assert await problems_of(client, tenant, "open") == []
    [resolved] = await problems_of(client, tenant, "resolved")
    assert resolved["run_ids"]["resolved_by"] == succeeded and resolved["resolved_at"]

    # The directory's full sync failing is a problem of its own kind: its own alert.
    lucca.add_faults({"status": 400, "match": "GET /api/v3/users", "count": 5})
    sync = await client.post(f"/api/v1/tenants/{tenant.slug}/lucca/directory/sync", headers=tenant.auth)
    assert sync.status_code == 202
    await drain_queue()
    await smtp_sink.wait_for(3)
    assert receiver.events()[2:] == [("problem.opened", "The Lucca directory's full sync is failing")]
    assert len(receiver.received) == 3 and len(smtp_sink.received) == 3
    assert [item["key"] for item in await problems_of(client, tenant)] == [
        "runs:lucca:directory_sync", "runs:softgarden:candidate_hired"]  # fmt: skip


async def test_a_refused_lucca_key_is_a_broken_connection_naming_lucca_never_the_key(
    client: httpx.AsyncClient, lucca: LuccaAccount, smtp_sink: SmtpSink, receiver: WebhookReceiver
) -> None:
    revoked = "revoked-key-4f1c9a2e7b"
    tenant = await create_tenant(client, "acme", base_url=lucca.base_url, api_key=revoked)
    await add_softgarden(client, tenant)
    await add_channels(client, tenant, receiver.url, ["hr@acme.fr"])
    refused = await hire(client, tenant, 1)
    await hire(client, tenant, 2)
    await drain_queue()
    assert (await run_of(client, tenant, refused))["status"] == "failed"
    [problem] = await problems_of(client, tenant, "open")
    assert problem["key"] == "credentials:lucca" and problem["kind"] == "credentials"
    assert problem["title"] == "Lucca refused the stored credentials (connection broken)"
    assert problem["count"] == 2
    [mail] = await smtp_sink.wait_for(1)
    assert receiver.events() == [("problem.opened", problem["title"])]
    everything = [json.dumps(problem), receiver.received[0].body.decode(), mail.part("plain"), mail.part("html")]
    assert all(revoked not in text for text in everything)

    fixed = await client.patch(f"/api/v1/tenants/{tenant.slug}", json={"lucca": {"api_key": lucca.api_key}},
                               headers=ADMIN)  # fmt: skip
    assert fixed.status_code == 200, fixed.text
    await hire(client, tenant, 3)
    await drain_queue()
    await smtp_sink.wait_for(2)
    assert [event for event, _ in receiver.events()] == ["problem.opened", "problem.resolved"]
    assert await problems_of(client, tenant, "open") == []


async def test_a_connection_check_and_the_directory_poll_see_the_credentials_refused_then_accepted(
    client: httpx.AsyncClient, lucca: LuccaAccount, receiver: WebhookReceiver, services: Services
) -> None:
    revoked = "revoked-key-4f1c9a2e7b"
    tenant = await add_softgarden(client, await create_tenant(client, "acme", base_url=lucca.base_url, api_key=revoked))
    await add_channels(client, tenant, receiver.url)
    check = await client.post(f"/api/v1/tenants/{tenant.slug}/connectors/softgarden/check", headers=tenant.auth)
    assert check.status_code == 200 and not check.json()["ok"]
    tenant_id = await tenant_id_of(tenant.slug)
    await sql(
        """INSERT INTO directory_states (tenant_id, sync_progress, last_full_sync_at, fresh_at, webhook_status,
                                         notices, updated_at) VALUES ($1, 0, now(), now(), 'none', '[]', now())""",
        tenant_id,
    )
    assert await poll_tenant(services, tenant_id, 10) == 0
    await drain_queue()
    [problem] = await problems_of(client, tenant, "open")
    assert problem["key"] == "credentials:lucca" and problem["count"] == 2 and revoked not in json.dumps(problem)
    assert receiver.events() == [("problem.opened", "Lucca refused the stored credentials (connection broken)")]

    fixed = await client.patch(f"/api/v1/tenants/{tenant.slug}", json={"lucca": {"api_key": lucca.api_key}},
                               headers=ADMIN)  # fmt: skip
    assert fixed.status_code == 200
    assert await poll_tenant(services, tenant_id, 10) > 0
    await drain_queue()
    assert [event for event, _ in receiver.events()] == ["problem.opened", "problem.resolved"]
    check = await client.post(f"/api/v1/tenants/{tenant.slug}/connectors/softgarden/check", headers=tenant.auth)
    assert check.json()["ok"]
    await drain_queue()
    assert await problems_of(client, tenant, "open") == [] and len(receiver.received) == 2


async def test_the_lucca_webhook_subscription_failing_is_a_problem_resolved_once_active(
    client: httpx.AsyncClient, lucca: LuccaAccount, receiver: WebhookReceiver, live_api: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Lucca reaches the real server: it is the service's public address here.
    monkeypatch.setattr(worker_settings, "settings", Settings(public_base_url=live_api.url))
    scopes = ["employees.readonly", "departments.readonly", "job-positions.readonly", "employments.readonly"]
    lucca.control("PUT", "/oauth-clients/reader", json={"client_secret": "reader-secret", "scopes": scopes})
    handle = await create_oauth_tenant(client, "acme", lucca, "reader")
    await add_channels(client, handle, receiver.url)
    async with running_services(public_base_url=live_api.url) as services:
        tenant = await filled_tenant(services)
        await poll_now(services, tenant.id)  # the poller finds it without an endpoint: registered, refused
        [problem] = await problems_of(client, handle, "open")
        assert problem["key"] == "lucca_webhook" and "webhook-endpoints.readwrite" in problem["message"]
        assert receiver.events() == [("problem.opened", "The Lucca webhook subscription is failing")]

        scopes.append("webhook-endpoints.readwrite")
        lucca.control("PUT", "/oauth-clients/reader", json={"client_secret": "reader-secret", "scopes": scopes})
        await services.redis.delete(f"lucca-webhook-retry:{tenant.id}")  # a failed one is tried again every 15 min
        await poll_now(services, tenant.id)
        assert (await state_of(services, tenant.id)).webhook_status == "active"
    assert await problems_of(client, handle, "open") == []
    assert [event for event, _ in receiver.events()] == ["problem.opened", "problem.resolved"]


async def test_a_webhook_channel_down_for_a_minute_gets_the_alert_once_when_back(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount, receiver: WebhookReceiver
) -> None:
    tenant = await hiring_tenant()
    await add_channels(client, tenant, receiver.url)
    lucca.add_faults({"status": 400, "match": "POST /api/v3/users", "count": 1})
    receiver.down_until = time.monotonic() + 60
    await hire(client, tenant, 1)
    await drain_queue()
    assert time.monotonic() >= receiver.down_until
    assert len(receiver.received) == 1 and receiver.refused >= 5
    [problem] = await problems_of(client, tenant, "open")
    [alert] = problem["alerts"]
    assert alert["status"] == "sent" and alert["attempts"] == receiver.refused + 1 and alert["error"] is None


async def test_an_alert_failing_for_15_minutes_is_failed_with_its_error(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, receiver: WebhookReceiver, services: Services
) -> None:
    tenant = await hiring_tenant()
    await add_channels(client, tenant, receiver.url)
    receiver.down_until = float("inf")
    tenant_id = await tenant_id_of(tenant.slug)
    failed_before = await alerts_failed(services)
    async with services.sessionmaker.begin() as session:
        [delivery_id] = await problems.report(session, tenant_id, Problem("runs:x:y", "runs", "x", "X fails", "Why."))
    assert await deliver(services, delivery_id) is not None  # 503: tried again later
    [alert] = (await problems_of(client, tenant))[0]["alerts"]
    assert alert["status"] == "pending" and alert["attempts"] == 1 and "unavailable" in alert["error"]
    await sql("UPDATE alert_deliveries SET failing_since = now() - interval '16 minutes', next_attempt_at = now()")
    assert await deliver(services, delivery_id) is None
    [alert] = (await problems_of(client, tenant))[0]["alerts"]
    assert alert["status"] == "failed" and alert["attempts"] == 2 and "unavailable" in alert["error"]
    assert alert["next_attempt_at"] is None
    assert await deliver(services, delivery_id) is None and receiver.refused == 2
    assert await alerts_failed(services) == failed_before + 1


async def test_a_fault_of_ours_while_sending_is_recorded_and_retried(
    client: httpx.AsyncClient,
    hiring_tenant: HiringTenant,
    receiver: WebhookReceiver,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = await hiring_tenant()
    await add_channels(client, tenant, receiver.url)

    async def broken(*_: object) -> None:
        raise RuntimeError("a bug in a sender")

    monkeypatch.setitem(senders.SENDERS, "webhook", broken)
    async with services.sessionmaker.begin() as session:
        [delivery_id] = await problems.report(
            session, await tenant_id_of(tenant.slug), Problem("runs:x:y", "runs", "x", "X fails", "Why.")
        )
    delay = await deliver(services, delivery_id)
    [alert] = (await problems_of(client, tenant))[0]["alerts"]
    assert delay is not None
    assert alert["status"] == "pending" and alert["attempts"] == 1 and "unexpected error" in alert["error"]
    assert receiver.received == []


async def alerts_failed(services: Services) -> float:
    """The service's count of webhook alerts given up on, as /metrics shows it."""
    sample = 'alerts_failed_total{channel="webhook",event="opened"} '
    lines = (await render(services.redis, "arq:queue")).splitlines()
    return next((float(line.removeprefix(sample)) for line in lines if line.startswith(sample)), 0.0)


async def test_two_deliverers_at_once_send_once(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, receiver: WebhookReceiver, services: Services
) -> None:
    tenant = await hiring_tenant()
    await add_channels(client, tenant, receiver.url)
    receiver.delay_seconds = 0.5
    async with services.sessionmaker.begin() as session:
        [delivery_id] = await problems.report(
            session, await tenant_id_of(tenant.slug), Problem("runs:x:y", "runs", "x", "X fails", "Why.")
        )
    await asyncio.gather(deliver(services, delivery_id), deliver(services, delivery_id))
    assert len(receiver.received) == 1


async def test_two_worker_processes_send_each_alert_once(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, smtp_sink: SmtpSink, receiver: WebhookReceiver
) -> None:
    tenant = await hiring_tenant()
    await add_channels(client, tenant, receiver.url, ["hr@acme.fr"])
    receiver.delay_seconds = 0.2
    engine_services = Services.start(Settings(), pool_size=2)
    try:
        # Twenty problems at once, made without queueing: both workers' ticks find every delivery due.
        async with engine_services.sessionmaker.begin() as session:
            tenant_id = await tenant_id_of(tenant.slug)
            for n in range(20):
                await problems.report(session, tenant_id, Problem(f"runs:x:{n}", "runs", "x", f"X {n} fails", "Why."))
    finally:
        await engine_services.close()
    with worker_process(), worker_process():
        deadline = time.monotonic() + 90
        while len(receiver.received) < 20 or len(smtp_sink.received) < 20:
            assert time.monotonic() < deadline, f"{len(receiver.received)} webhooks, {len(smtp_sink.received)} mails"
            await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # a double would come now
    ids = [hook.headers["webhook-id"] for hook in receiver.received]
    assert len(ids) == len(set(ids)) == 20
    assert len({mail.message["Message-ID"] for mail in smtp_sink.received}) == len(smtp_sink.received) == 20
    assert all(alert["status"] == "sent" and alert["attempts"] == 1
               for problem in await problems_of(client, tenant) for alert in problem["alerts"])  # fmt: skip


async def test_a_problem_open_for_a_day_gets_one_reminder(
    client: httpx.AsyncClient,
    hiring_tenant: HiringTenant,
    lucca: LuccaAccount,
    smtp_sink: SmtpSink,
    receiver: WebhookReceiver,
    services: Services,
) -> None:
    tenant = await hiring_tenant()
    await add_channels(client, tenant, receiver.url, ["hr@acme.fr"])
    lucca.add_faults({"status": 400, "match": "POST /api/v3/users", "count": 1})
    await hire(client, tenant, 1)
    await drain_queue()
    await smtp_sink.wait_for(1)
    await alerts_tick({"services": services})
    await drain_queue()
    assert len(receiver.received) == 1, "no reminder before a day"
    await sql("UPDATE alert_problems SET last_alert_at = now() - interval '25 hours'")
    await asyncio.gather(alerts_tick({"services": services}), alerts_tick({"services": services}))
    await alerts_tick({"services": services})
    await drain_queue()
    await smtp_sink.wait_for(2)
    assert receiver.events() == [("problem.opened", HIRES_FAILING), ("problem.reminder", HIRES_FAILING)]
    assert len(smtp_sink.received) == 2
    [problem] = await problems_of(client, tenant, "open")
    assert [alert["event"] for alert in problem["alerts"]] == ["opened", "opened", "reminder", "reminder"]


async def test_the_directory_lagging_and_a_schedule_missing_its_day_open_and_resolve(
    client: httpx.AsyncClient, receiver: WebhookReceiver, services: Services
) -> None:
    tenant = await create_tenant(client, "acme")
    await add_channels(client, tenant, receiver.url)
    tenant_id = await tenant_id_of(tenant.slug)
    await sql(
        """INSERT INTO directory_states (tenant_id, sync_progress, last_full_sync_at, fresh_at, webhook_status,
                                         notices, updated_at, poll_message)
           VALUES ($1, 0, now() - interval '3 hours', now() - interval '2 hours', 'none', '[]', now(),
                   'Lucca at acme.ilucca.net is unavailable.')""",
        tenant_id,
    )
    await sql(
        """INSERT INTO schedules (id, tenant_id, operation, hour, timezone, enabled_at, due_at)
           VALUES ($1, $2, 'directory_sync', 1, 'Europe/Paris', now() - interval '3 days', now() - interval '2 hours')""",
        uuid.uuid4(), tenant_id,
    )  # fmt: skip
    made = await check_everything(services)
    assert len(made) == 2 and await check_everything(services) == []
    for delivery_id in made:
        assert await deliver(services, delivery_id) is None
    assert sorted(receiver.events()) == [
        ("problem.opened", "Lucca's directory is more than an hour behind"),
        ("problem.opened", "The nightly full sync of Lucca's directory missed its day"),
    ]
    lag = next(item for item in await problems_of(client, tenant, "open") if item["kind"] == "directory_lag")
    assert "2.0 hours" in lag["message"] and "unavailable" in lag["message"]

    await sql("UPDATE directory_states SET fresh_at = now()")
    await sql("UPDATE schedules SET due_at = now() + interval '20 hours'")
    later = utcnow() + timedelta(seconds=1)
    resolved = await check_everything(services, later)
    assert len(resolved) == 2
    assert await problems_of(client, tenant, "open") == []
    assert {item["kind"] for item in await problems_of(client, tenant, "resolved")} == {"directory_lag", "schedule"}


async def test_retention_and_the_tenant_purge_go_through_problems(
    client: httpx.AsyncClient,
    hiring_tenant: HiringTenant,
    lucca: LuccaAccount,
    receiver: WebhookReceiver,
    services: Services,
) -> None:
    tenant = await hiring_tenant()
    await add_channels(client, tenant, receiver.url)
    lucca.add_faults({"status": 400, "match": "POST /api/v3/users", "count": 1})
    old = await hire(client, tenant, 1)
    await drain_queue()
    await sql("UPDATE runs SET finished_at = now() - interval '100 days' WHERE id = $1", uuid.UUID(old))
    assert await purge_expired_runs(services.sessionmaker, 90, pause=0) == 1
    [problem] = await problems_of(client, tenant, "open")
    assert problem["run_ids"] == {"first": None, "last": None, "resolved_by": None}
    assert problem["console_url"] is None and len(problem["alerts"]) == 1

    # A problem resolved before the cutoff goes with its alerts; an open one stays, however old.
    await hire(client, tenant, 2)
    await drain_queue()
    assert [item["id"] for item in await problems_of(client, tenant, "resolved")] == [problem["id"]]
    await sql(
        "UPDATE alert_problems SET resolved_at = now() - interval '100 days' WHERE id = $1", uuid.UUID(problem["id"])
    )
    # (Zoë Müller is an employee by now: the next hire fails on the look-up of duplicates instead.)
    lucca.add_faults({"status": 400, "match": "GET /api/v3/users", "count": 1})
    await hire(client, tenant, 3)
    await drain_queue()
    await sql("UPDATE alert_problems SET opened_at = now() - interval '200 days' WHERE status = 'open'")
    assert await purge_resolved_problems(services.sessionmaker, 90, pause=0) == 1
    [still_open] = await problems_of(client, tenant, "open")
    assert still_open["id"] != problem["id"] and await problems_of(client, tenant, "resolved") == []
    assert await purge_resolved_problems(services.sessionmaker, 90, pause=0) == 0

    tenant_id = await tenant_id_of(tenant.slug)
    assert (await client.delete(f"/api/v1/tenants/{tenant.slug}", headers=ADMIN)).status_code == 204
    await purge_tenant(services.sessionmaker, tenant_id)
    connection = await asyncpg.connect(DATABASE)
    try:
        for table in ("alert_deliveries", "alert_problems", "alert_channels", "tenants"):
            assert await connection.fetchval(f"SELECT count(*) FROM {table}") == 0, table  # noqa: S608
    finally:
        await connection.close()


async def test_problems_list_refuses_an_unknown_status(client: httpx.AsyncClient) -> None:
    tenant = await create_tenant(client, "acme")
    answer = await client.get("/api/v1/tenants/acme/alerts/problems", params={"status": "closed"}, headers=tenant.auth)
    assert answer.status_code == 422
    assert [error["loc"] for error in answer.json()["detail"]] == [["query", "status"]]
    assert await problems_of(client, tenant) == []


async def tenant_id_of(slug: str) -> uuid.UUID:
    connection = await asyncpg.connect(DATABASE)
    try:
        found: uuid.UUID = await connection.fetchval(
            "SELECT id FROM tenants WHERE slug = $1 AND deleted_at IS NULL", slug
        )
        return found
    finally:
        await connection.close()
