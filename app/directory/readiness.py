"""Work that needs the whole directory (an import, the statistics push, the Elevo file) waits for its copy.

Asked for before the copy's first full sync completed, such a run is postponed on its backoff schedule (the
DirectoryLoading outage: a note on the run says how far the sync is) after making sure a full sync is under way,
and goes on once the copy is complete. It never reads Lucca instead: the copy is the one directory they share.
"""

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.http import PartnerUnavailable
from app.directory import reads, store, sync
from app.models import Connector, Tenant
from app.queue import commit_then_enqueue
from app.services.connectors import SettingsOutdated, connector_settings
from app.services.context import Services


class DirectoryLoading(PartnerUnavailable):
    """The copy's first full sync has not completed: the run waits for it."""

    def __init__(self, progress: int) -> None:
        read = f"{progress:,} {'person' if progress == 1 else 'people'} read so far"
        super().__init__("lucca", f"Lucca's directory is still loading ({read}): this run goes on once it is complete")
        self.args = (progress,)


async def wait_for_directory(services: Services, tenant: Tenant) -> None:
    """Return when the tenant's copy is complete; else start its full sync if none is under way, and raise
    DirectoryLoading."""
    async with services.sessionmaker() as session:
        load = await reads.load_state(session, tenant.id)
        if load.ready:
            return
        await start_if_idle(session, services, tenant)
    raise DirectoryLoading(load.progress)


async def start_if_idle(session: AsyncSession, services: Services, tenant: Tenant) -> None:
    state = await store.state(session, tenant.id)
    if state is not None and await sync.sync_under_way(session, state) is not None:
        return
    run = await sync.start_full_sync(session, tenant, "api")
    await commit_then_enqueue(session, services.redis, run.id)


@dataclass(frozen=True)
class Follower:
    """A connector that follows the tenant's copy (Cards' auto_sync, Elevo's push_on_change), with its settings."""

    tenant: Tenant
    connector: Connector
    settings: Any


async def ready_follower(services: Services, tenant_id: uuid.UUID, kind: str) -> Follower | None:
    """The tenant's connector of this kind when it may follow the copy now: the tenant not deleted, the connector
    enabled with settings today's rules accept, the copy complete. None otherwise (nothing to do)."""
    async with services.sessionmaker() as session:
        tenant = await session.get(Tenant, tenant_id)
        connector = await session.scalar(
            select(Connector).where(Connector.tenant_id == tenant_id, Connector.kind == kind)
        )
        load = await reads.load_state(session, tenant_id)
    if tenant is None or tenant.deleted_at is not None or connector is None or not connector.enabled:
        return None
    if not load.ready:
        return None
    try:
        settings = connector_settings(services.box, connector)
    except SettingsOutdated:
        return None  # stored settings today's rules refuse: the connector's page says so
    return Follower(tenant, connector, settings)
