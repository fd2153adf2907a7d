"""Lucca's webhooks end to end (CONTRACT 13): the sandbox's Lucca registers the real server's endpoint (calling its
echo), delivers signed events to it, and the workers put the change in the copy; a suspended endpoint is
registered again; a client without the scope fails in plain words."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from sqlalchemy import func, select

from app.config import Settings
from app.models import Tenant
from app.models.directory import LuccaEvent
from app.sandbox.demo import DEMO_OAUTH_CLIENT_ID
from app.services.context import Services
from app.workers.freshness import EVENTS_LEFT_AFTER, directory_poll_due
from tests.e2e.conftest import drain_queue
from tests.e2e.directory_helpers import (
    employee,
    filled_tenant,
    poll_now,
    running_services,
    state_of,
)
from tests.factories import TenantHandle, create_oauth_tenant
from tests.live_server import LiveServer
from tests.sandbox_server import LuccaAccount

WAIT_SECONDS = 20


@pytest.fixture
async def services(live_api: LiveServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Services]:
    """This process's services and its workers' with the real server as PUBLIC_BASE_URL: Lucca's deliveries go there."""
    monkeypatch.setattr("app.workers.settings.settings", Settings(public_base_url=live_api.url))
    async with running_services(public_base_url=live_api.url) as started:
        yield started


async def webhooked_tenant(
    client: httpx.AsyncClient, lucca: LuccaAccount, services: Services, client_id: str = DEMO_OAUTH_CLIENT_ID
) -> tuple[TenantHandle, Tenant]:
    """A tenant with OAuth alone, its copy filled; then what follows the first full sync: the poller's pass finds it
    without an endpoint and registers one."""
    handle = await create_oauth_tenant(client, "acme", lucca, client_id)
    tenant = await filled_tenant(services)
    await poll_now(services, tenant.id)
    return handle, tenant


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait for something another process does (the sandbox's deliveries); fails after WAIT_SECONDS."""
    for _ in range(WAIT_SECONDS * 20):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition did not come true")


async def stored_events(services: Services, tenant_id: uuid.UUID) -> int:
    async with services.sessionmaker() as session:
        query = select(func.count()).select_from(LuccaEvent).where(LuccaEvent.tenant_id == tenant_id)
        return int(await session.scalar(query) or 0)


async def test_a_change_in_lucca_reaches_the_copy_through_its_webhook(
    client: httpx.AsyncClient, lucca: LuccaAccount, services: Services
) -> None:
    handle, tenant = await webhooked_tenant(client, lucca, services)
    state = await state_of(services, tenant.id)
    assert state.webhook_status == "active", state.webhook_message
    assert state.webhook_url is not None and state.webhook_url.startswith(f"{services.settings.public_base_url}/")
    assert state.webhook_endpoint_id is not None and state.webhook_secret_encrypted is not None
    shown = (await client.get("/api/v1/tenants/acme/lucca/directory", headers=handle.auth)).json()
    assert shown["mode"] == "webhooks" and shown["webhook"] == {"status": "active", "message": None}

    someone = lucca.users()[0]["id"]
    lucca.change_person(someone, firstName="Webhooked")
    await until(lambda: has_events(services, tenant.id))
    await drain_queue()
    person = await employee(services, tenant.id, someone)
    assert person is not None and person.first_name == "Webhooked"
    async with services.sessionmaker() as session:
        unapplied = await session.scalar(
            select(func.count()).select_from(LuccaEvent).where(LuccaEvent.applied_at.is_(None))
        )
    assert unapplied == 0


async def has_events(services: Services, tenant_id: uuid.UUID) -> bool:
    return await stored_events(services, tenant_id) > 0


async def test_a_suspended_endpoint_is_registered_again_and_its_old_url_refused(
    client: httpx.AsyncClient, lucca: LuccaAccount, services: Services
) -> None:
    _, tenant = await webhooked_tenant(client, lucca, services)
    first = await state_of(services, tenant.id)
    assert first.webhook_status == "active" and first.webhook_url is not None
    lucca.control("POST", f"/webhook-endpoints/{first.webhook_endpoint_id}/suspend")

    await poll_now(services, tenant.id)  # the safety net looks at the endpoint
    second = await state_of(services, tenant.id)
    assert second.webhook_status == "active", second.webhook_message
    assert second.webhook_endpoint_id != first.webhook_endpoint_id
    assert second.webhook_url != first.webhook_url and second.webhook_token_hash != first.webhook_token_hash
    old = await client.get(
        first.webhook_url.removeprefix(services.settings.public_base_url or ""), params={"echo": "1"}
    )
    assert old.status_code == 401


async def test_a_client_without_the_webhook_scope_fails_in_plain_words_and_is_polled(
    client: httpx.AsyncClient, lucca: LuccaAccount, services: Services
) -> None:
    scopes = ["employees.readonly", "departments.readonly", "job-positions.readonly", "employments.readonly"]
    lucca.control("PUT", "/oauth-clients/reader", json={"client_secret": "reader-secret", "scopes": scopes})
    handle, _ = await webhooked_tenant(client, lucca, services, client_id="reader")
    shown = (await client.get("/api/v1/tenants/acme/lucca/directory", headers=handle.auth)).json()
    assert shown["mode"] == "polling" and shown["webhook"]["status"] == "failed"
    assert "webhook-endpoints.readwrite" in shown["webhook"]["message"]


async def test_a_new_public_base_url_gets_a_new_endpoint(
    client: httpx.AsyncClient,
    lucca: LuccaAccount,
    services: Services,
    live_api: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, tenant = await webhooked_tenant(client, lucca, services)
    first = await state_of(services, tenant.id)
    assert first.webhook_status == "active" and first.webhook_url is not None
    # The same server under another name: the service moved.
    moved = live_api.url.replace("127.0.0.1", "localhost")
    monkeypatch.setattr("app.workers.settings.settings", Settings(public_base_url=moved))
    async with running_services(public_base_url=moved) as after_move:
        await poll_now(after_move, tenant.id)
        second = await state_of(after_move, tenant.id)
    assert second.webhook_status == "active", second.webhook_message
    assert second.webhook_url is not None and second.webhook_url.startswith(f"{moved}/integrations/webhooks/lucca/")
    assert second.webhook_endpoint_id != first.webhook_endpoint_id


async def test_events_delivered_newest_first_and_again_leave_the_newest_state(
    client: httpx.AsyncClient, lucca: LuccaAccount, services: Services
) -> None:
    _, tenant = await webhooked_tenant(client, lucca, services)
    someone = lucca.users()[0]["id"]
    lucca.control("POST", "/webhooks/pause")
    lucca.change_person(someone, firstName="First")
    lucca.change_person(someone, firstName="Second")
    lucca.control("POST", "/webhooks/resume", json={"reverse": True})
    await until(lambda: events_at_least(services, tenant.id, 2))
    await drain_queue()
    person = await employee(services, tenant.id, someone)
    assert person is not None and person.first_name == "Second"
    # The older event delivered once more, late: seen before, ignored; the newer state stays.
    older = lucca.control("GET", "/webhooks/events").json()["items"][0]["id"]
    lucca.control("POST", f"/webhooks/events/{older}/redeliver")
    await until(lambda: redelivered(lucca))
    await drain_queue()
    person = await employee(services, tenant.id, someone)
    assert person is not None and person.first_name == "Second"
    assert await stored_events(services, tenant.id) == 2


async def events_at_least(services: Services, tenant_id: uuid.UUID, count: int) -> bool:
    return await stored_events(services, tenant_id) >= count


async def redelivered(lucca: LuccaAccount) -> bool:
    deliveries = lucca.control("GET", "/webhooks/deliveries").json()["items"]
    return len(deliveries) == 3 and all(delivery["status"] == "delivered" for delivery in deliveries)


async def test_an_event_whose_job_was_lost_is_applied_by_the_pollers_sweep(
    client: httpx.AsyncClient, lucca: LuccaAccount, services: Services
) -> None:
    _, tenant = await webhooked_tenant(client, lucca, services)
    someone = lucca.users()[0]["id"]
    lucca.change_person(someone, firstName="Stored")
    await until(lambda: has_events(services, tenant.id))
    await services.redis.flushdb()  # the queued job is lost, as when Redis was down
    await asyncio.sleep(EVENTS_LEFT_AFTER.total_seconds())
    await directory_poll_due({"services": services})
    await drain_queue()
    person = await employee(services, tenant.id, someone)
    assert person is not None and person.first_name == "Stored"
