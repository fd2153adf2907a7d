"""The directory's state as the API shows it: counts, mode, freshness, webhook, notices and the latest full sync."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory import store
from app.models import Run, Tenant
from app.models.base import utcnow
from app.models.directory import DirectoryDepartment, DirectoryEmployee
from app.schemas.directory import DirectoryRead, DirectorySync, DirectoryWebhook, SyncStatus

SYNC_STATUS: dict[str, SyncStatus] = {
    "queued": "loading",
    "running": "loading",
    "succeeded": "ready",
    "partial": "failed",
    "failed": "failed",
}


async def read_directory(session: AsyncSession, tenant: Tenant) -> DirectoryRead:
    """Reads only the copy and its state (counts by the tables' keys): never a partner."""
    state = await store.state(session, tenant.id)
    employees = await count_present(session, DirectoryEmployee, tenant)
    departments = await count_present(session, DirectoryDepartment, tenant)
    run = await session.get(Run, state.sync_run_id) if state is not None and state.sync_run_id else None
    sync = DirectorySync(
        status=SYNC_STATUS[run.status] if run is not None else "none",
        progress=state.sync_progress if state is not None else 0,
        run_id=run.id if run is not None else None,
    )
    if state is None:
        webhook = DirectoryWebhook(status="none", message=None)
        return DirectoryRead(
            employees=employees, departments=departments, mode="polling", last_full_sync_at=None,
            last_change_at=None, lag_seconds=None, webhook=webhook, notices=[], sync=sync,
        )  # fmt: skip
    fresh = state.fresh_at if state.last_full_sync_at is not None else None
    return DirectoryRead(
        employees=employees,
        departments=departments,
        mode="webhooks" if state.webhook_status == "active" else "polling",
        last_full_sync_at=state.last_full_sync_at,
        last_change_at=state.last_change_at,
        lag_seconds=None if fresh is None else max(round((utcnow() - fresh).total_seconds()), 0),
        webhook=DirectoryWebhook(status=state.webhook_status, message=state.webhook_message),
        message=state.poll_message,
        notices=list(state.notices or []),
        sync=sync,
    )


async def count_present(
    session: AsyncSession, table: type[DirectoryEmployee] | type[DirectoryDepartment], tenant: Tenant
) -> int:
    """Rows of the tenant not gone from Lucca: a scan of its part of the primary key."""
    columns = table.__table__.c
    query = select(func.count()).where(columns.tenant_id == tenant.id, columns.gone_at.is_(None))
    return int(await session.scalar(query) or 0)
