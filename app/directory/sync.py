"""The directory's full sync (CONTRACT section 13): a run that reads every employee and department of a tenant's
Lucca, writes the copy a page at a time, and only after a read that completed marks gone who it did not see.

A page is written with the run's progress in one transaction, so a read cut half way (a worker killed, Lucca down,
the job's deadline) leaves the copy as it was plus what it read, and removes nobody; the run's next attempt goes on
after the last page written (a page written twice changes nothing the second time) and still sweeps only after its
read completed. One full sync at a time per tenant: the directory's state row names the sync under way, and a
second request gets that run.
"""

import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.sources import lucca_notices_noted
from app.clients.lucca_directory import DirectoryDepartment, DirectoryReader
from app.directory import store
from app.models import Connector, Run, Tenant
from app.models.base import utcnow
from app.models.directory import DirectoryState
from app.queue import enqueue_alerts
from app.services.context import Services
from app.services.run_log import RunLog
from app.services.runs import new_run
from app.services.schedules import LUCCA, keep_schedule

SOURCE = LUCCA
OPERATION = "directory_sync"
UNDER_WAY = ("queued", "running")
# The run's state keys: its read's progress, and the pages written (the run's items done).
READ = "directory_read"
PAGES_DONE = "pages_done"
# The connectors that read the copy: while one is enabled, the copy is kept (a full sync every night).
DIRECTORY_READERS = ("cards", "elevo")
NIGHTLY_HOUR = 1


async def start_full_sync(session: AsyncSession, tenant: Tenant, trigger: str) -> Run:
    """A full sync of the tenant's directory, stored for the caller to commit then queue; the sync already queued or
    running when there is one (its state row is the lock, so two requests at once get the same run)."""
    state = await store.ensure_state(session, tenant.id, lock=True)
    current = await sync_under_way(session, state)
    if current is not None:
        return current
    run = new_run(tenant, SOURCE, OPERATION, trigger, {})
    session.add(run)
    await session.flush()
    state.sync_run_id = run.id
    state.sync_progress = 0
    await session.flush()
    return run


async def sync_under_way(session: AsyncSession, state: DirectoryState) -> Run | None:
    if state.sync_run_id is None:
        return None
    run = await session.get(Run, state.sync_run_id)
    return run if run is not None and run.status in UNDER_WAY else None


async def ensure_directory(session: AsyncSession, tenant: Tenant) -> Run | None:
    """Keep the copy in step with the tenant's connectors, in the request's transaction: while one that reads the
    directory is enabled, a full sync runs every night at 01:00 local; the first one enabled starts a full sync
    when none ever completed or is under way (returned, for the caller to queue after its commit)."""
    reading = await session.scalar(
        select(
            exists().where(
                Connector.tenant_id == tenant.id, Connector.kind.in_(DIRECTORY_READERS), Connector.enabled.is_(True)
            )
        )
    )
    if not reading:
        await keep_schedule(session, tenant, None, OPERATION, enabled=False, hour=NIGHTLY_HOUR)
        return None
    state = await store.ensure_state(session, tenant.id, lock=True)
    await keep_schedule(session, tenant, None, OPERATION, enabled=True, hour=NIGHTLY_HOUR)
    if state.last_full_sync_at is not None or await sync_under_way(session, state) is not None:
        return None
    return await start_full_sync(session, tenant, "api")


@dataclass(frozen=True)
class ReadProgress:
    """Where a full sync's read stands, kept in its run's state with each page it writes: an attempt cut half way
    (a job's deadline, a worker killed, Lucca down) goes on from the last page written."""

    started_at: str  # when the read began: the rows it saw keep its mark, and the sweep spares rows newer than this
    people: int = 0
    resume_at: str | None = None  # the reader's position after the last page written
    people_done: bool = False
    added: int = 0
    updated: int = 0
    completed: bool = False


async def process_directory_sync(services: Services, run: Run, tenant: Tenant, log: RunLog) -> None:
    """The queued run's work: read every employee then every department, a page at a time; sweep once complete."""
    progress = await take_turn(services, run, tenant, log)
    if progress is None or progress.completed:
        return
    reader = services.directory_reader(tenant)
    completed = False
    try:
        await read_directory(services, run, tenant, reader, progress, log)
        completed = True
    finally:
        # What Lucca announced (a Sunset, a 410) is kept even when it stopped the read, and alerted on; a complete
        # read that heard nothing of the kind clears it.
        if reader.notices or completed:
            async with services.sessionmaker.begin() as session:
                new = await store.note_notices(session, tenant.id, reader.notices, complete=completed)
                deliveries = await lucca_notices_noted(session, tenant.id, new, cleared=not reader.notices)
            await enqueue_alerts(services.redis, deliveries)


async def read_directory(
    services: Services, run: Run, tenant: Tenant, reader: DirectoryReader, progress: ReadProgress, log: RunLog
) -> None:
    """Every employee a page at a time (from where an earlier attempt stopped), then the departments; then sweep."""
    if not progress.people_done:
        async for page in reader.employee_pages(progress.resume_at):
            async with services.sessionmaker.begin() as session:
                written = await store.upsert_people(session, tenant.id, page, seen_by=run.id, read_at=utcnow())
                progress = replace(
                    progress,
                    people=progress.people + len(page),
                    resume_at=reader.resume_at,
                    people_done=reader.resume_at is None,
                    added=progress.added + written.added,
                    updated=progress.updated + written.updated,
                )
                await keep_progress(session, run.id, progress, pages=1)
                await session.execute(
                    update(DirectoryState)
                    .where(DirectoryState.tenant_id == tenant.id, DirectoryState.sync_run_id == run.id)
                    .values(sync_progress=progress.people)
                )
    departments = await reader.departments()
    async with services.sessionmaker.begin() as session:
        summary = await complete(session, run, tenant, progress, departments)
    await log.event("note", "directory", summary)


async def take_turn(services: Services, run: Run, tenant: Tenant, log: RunLog) -> ReadProgress | None:
    """Make this run the tenant's sync under way and return where its read stands (an earlier attempt's progress);
    None when another sync is under way (this one leaves the work to it)."""
    async with services.sessionmaker.begin() as session:
        state = await store.ensure_state(session, tenant.id, lock=True)
        current = await sync_under_way(session, state)
        if current is not None and current.id != run.id:
            await log.event("note", "directory", f"Full sync {current.id} was already reading the directory: "
                                                 "this run left the work to it.")  # fmt: skip
            return None
        stored = await session.get(Run, run.id, with_for_update=True)
        assert stored is not None
        kept = stored.state.get(READ)
        progress = ReadProgress(**kept) if kept else ReadProgress(started_at=utcnow().isoformat())
        await keep_progress(session, run.id, progress)
        state.sync_run_id = run.id
        state.sync_progress = progress.people
    return progress


async def keep_progress(session: AsyncSession, run_id: uuid.UUID, progress: ReadProgress, pages: int = 0) -> None:
    """Keep the read's progress in the run's state; `pages` written count as the run's items done, so an attempt
    stopped by its deadline after writing some goes on at once (app.services.execution.overran)."""
    run = await session.get(Run, run_id, with_for_update=True)
    assert run is not None
    run.state = {**run.state, READ: asdict(progress), PAGES_DONE: run.state.get(PAGES_DONE, 0) + pages}


async def complete(
    session: AsyncSession,
    run: Run,
    tenant: Tenant,
    progress: ReadProgress,
    departments: list[DirectoryDepartment],
) -> str:
    """The read completed: write the departments, sweep who it did not see; returns what changed, in words."""
    now = utcnow()
    teams = await store.upsert_departments(session, tenant.id, departments, seen_by=run.id, read_at=now)
    started_at = datetime.fromisoformat(progress.started_at)
    gone = await store.sweep(session, tenant.id, run.id, now, started_at=started_at)
    await store.note_fresh(session, tenant.id, now)
    state = await store.ensure_state(session, tenant.id, lock=True)
    state.last_full_sync_at = now
    await keep_progress(session, run.id, replace(progress, completed=True))
    read, added, updated = progress.people, progress.added, progress.updated
    stored = await session.get(Run, run.id, with_for_update=True)
    assert stored is not None
    stored.counts = {
        **stored.counts,
        "total": read + gone,
        "added": added,
        "updated": updated,
        # People read and found as the copy had them.
        "skipped": max(read - added - updated, 0),
        "gone": gone,
    }
    return (
        f"Read {people(read)} and {len(departments)} department{'' if len(departments) == 1 else 's'} from Lucca: "
        f"{added} added, {updated} changed, {gone} no longer in Lucca (marked gone); "
        f"departments: {teams.added} added, {teams.updated} changed."
    )


def people(count: int) -> str:
    return f"{count:,} {'person' if count == 1 else 'people'}"
