"""End-to-end: the API in-process, the sandbox over HTTP, and a real arq worker draining the real queue."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, cast

import httpx
import pytest
from arq.typing import WorkerSettingsType
from arq.worker import create_worker
from sqlalchemy import select

from app.db import Sessionmaker
from app.models import Run
from app.services.schedules import claim_due_runs
from app.workers import WorkerSettings
from tests.factories import TenantHandle, add_softgarden, create_tenant
from tests.sandbox_server import LuccaAccount, SandboxServer

WEBHOOK = "/integrations/webhooks/softgarden/candidate-hired"


async def drain_queue() -> None:
    """Run a real arq worker in burst mode until every job, deferred retries included, is done.

    Its schedule is left out: a sweep every second would keep the queue from ever being empty.
    """
    worker = create_worker(cast(WorkerSettingsType, WorkerSettings), burst=True, poll_delay=0.05, cron_jobs=[])
    try:
        await worker.main()
    finally:
        await worker.close()


async def directory_loaded(lucca: LuccaAccount) -> None:
    """Let the workers run the directory's first full sync, which enabling Cards or Elevo starts, and forget its
    Lucca calls: a test of a connector counts only its own."""
    await drain_queue()
    lucca.clear_calls()


async def claim_connector_runs(sessionmaker: Sessionmaker, now: datetime | None = None) -> list[uuid.UUID]:
    """The runs a tick makes for connectors' schedules, left out the directory's nightly full sync (enabling Cards
    or Elevo schedules it too; tests/e2e/test_directory_sync.py tests it)."""
    run_ids = await claim_due_runs(sessionmaker, now)
    async with sessionmaker() as session:
        found = await session.scalars(select(Run.id).where(Run.id.in_(run_ids), Run.operation == "directory_sync"))
        directory = set(found)
    return [run_id for run_id in run_ids if run_id not in directory]


@pytest.fixture
def lucca(sandbox: SandboxServer) -> LuccaAccount:
    return sandbox.new_lucca_account()


HiringTenant = Callable[..., Awaitable[TenantHandle]]


@pytest.fixture
def hiring_tenant(client: httpx.AsyncClient, lucca: LuccaAccount) -> HiringTenant:
    """A tenant whose Lucca is the sandbox account, with a Softgarden connector."""

    async def build(slug: str = "acme", **settings: Any) -> TenantHandle:
        tenant = await create_tenant(client, slug, base_url=lucca.base_url, api_key=lucca.api_key)
        return await add_softgarden(client, tenant, **settings)

    return build


async def run_of(client: httpx.AsyncClient, tenant: TenantHandle, run_id: str) -> dict[str, Any]:
    answer = await client.get(f"/api/v1/tenants/{tenant.slug}/runs/{run_id}", headers=tenant.auth)
    assert answer.status_code == 200
    run: dict[str, Any] = answer.json()
    return run


async def events_of(client: httpx.AsyncClient, tenant: TenantHandle, run_id: str) -> list[dict[str, Any]]:
    answer = await client.get(f"/api/v1/tenants/{tenant.slug}/runs/{run_id}/events", headers=tenant.auth)
    assert answer.status_code == 200
    events: list[dict[str, Any]] = answer.json()["items"]
    return events


async def runs_of(client: httpx.AsyncClient, tenant: TenantHandle, operation: str) -> list[dict[str, Any]]:
    """The tenant's runs of one operation, newest first, as the API lists them."""
    answer = await client.get(
        f"/api/v1/tenants/{tenant.slug}/runs", params={"operation": operation}, headers=tenant.auth
    )
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items
