"""Work that needs the whole directory (an import, the statistics push, the Elevo file) waits for its copy.

Asked for before the copy's first full sync completed, such a run is postponed on its backoff schedule (the
DirectoryLoading outage: a note on the run says how far the sync is) after making sure a full sync is under way,
and goes on once the copy is complete. It never reads Lucca instead: the copy is the one directory they share.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.http import PartnerUnavailable
from app.directory import reads, store, sync
from app.models import Tenant
from app.queue import commit_then_enqueue
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
