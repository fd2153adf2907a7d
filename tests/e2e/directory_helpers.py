"""Helpers of the directory freshness tests: the copy filled, polls made due, the copy and state read back."""

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from app.config import Settings
from app.crypto import hash_token, new_webhook_token
from app.directory import store
from app.directory.webhooks import signature
from app.models import Tenant
from app.models.base import utcnow
from app.models.directory import DirectoryEmployee, DirectoryState
from app.services.context import Services
from app.workers.freshness import directory_poll_due
from tests.e2e.conftest import drain_queue
from tests.sandbox_server import LuccaAccount


@asynccontextmanager
async def running_services(**settings: Any) -> AsyncIterator[Services]:
    services = Services.start(Settings(**settings))
    try:
        yield services
    finally:
        await services.close()


async def filled_tenant(services: Services, slug: str = "acme") -> Tenant:
    """The tenant, with what a completed full sync leaves: every employee and department in the copy, the state's
    sync time."""
    async with services.sessionmaker() as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug, Tenant.deleted_at.is_(None)))
    assert tenant is not None
    reader = services.directory_reader(tenant)
    read_at = utcnow()
    async for page in reader.employee_pages():
        async with services.sessionmaker.begin() as session:
            await store.upsert_people(session, tenant.id, page, read_at=read_at)
    departments = await reader.departments()
    async with services.sessionmaker.begin() as session:
        await store.upsert_departments(session, tenant.id, departments, read_at=read_at)
        state = await store.ensure_state(session, tenant.id, lock=True)
        state.last_full_sync_at = read_at
        state.fresh_at = read_at
    return tenant


async def poll_now(services: Services, tenant_id: uuid.UUID) -> None:
    """Make the tenant's poll due, and let the poller's pass and a real worker do it."""
    async with services.sessionmaker.begin() as session:
        await session.execute(
            update(DirectoryState)
            .where(DirectoryState.tenant_id == tenant_id)
            .values(next_poll_at=utcnow() - timedelta(seconds=1))
        )
    await directory_poll_due({"services": services})
    await drain_queue()


async def employee(services: Services, tenant_id: uuid.UUID, lucca_id: int) -> DirectoryEmployee | None:
    async with services.sessionmaker() as session:
        return await session.get(DirectoryEmployee, (tenant_id, lucca_id))


async def state_of(services: Services, tenant_id: uuid.UUID) -> DirectoryState:
    async with services.sessionmaker() as session:
        found = await store.state(session, tenant_id)
    assert found is not None
    return found


def user_calls(lucca: LuccaAccount) -> list[dict[str, Any]]:
    return [call for call in lucca.calls()["items"] if call["path"] == "/api/v3/users"]


def clear_calls(lucca: LuccaAccount) -> None:
    lucca.server.control.delete(f"/lucca/accounts/{lucca.name}/calls").raise_for_status()


async def arm_webhook(services: Services, tenant_id: uuid.UUID, secret: str) -> str:
    """What a registration leaves: an active endpoint whose URL carries the returned token, signed with `secret`."""
    token = new_webhook_token()
    async with services.sessionmaker.begin() as session:
        state = await store.ensure_state(session, tenant_id, lock=True)
        state.webhook_status = "active"
        state.webhook_token_hash = hash_token(token)
        state.webhook_secret_encrypted = services.box.encrypt(secret)
    return token


def signed_event(
    secret: str, event_id: str, topic: str, data: dict[str, Any], occurred_at: str
) -> tuple[bytes, dict[str, str]]:
    """A Lucca event's body and headers, signed now with the endpoint's secret."""
    body = json.dumps(
        {"id": event_id, "type": "event", "topic": topic, "occurredAt": occurred_at, "data": data}
    ).encode()
    timestamp = utcnow().isoformat()
    headers = {
        "Content-Type": "application/json",
        "Lucca-Timestamp": timestamp,
        "Lucca-Signature": signature(secret, timestamp, body),
    }
    return body, headers
