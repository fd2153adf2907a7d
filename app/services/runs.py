"""Runs as the API sees them: listing, reading, events, and retrying a run's failed items."""

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, NotFound
from app.models import Run, RunEvent, Tenant
from app.schemas.run import RunCounts, RunEventRead, RunRead

RETRYABLE = ("failed", "partial")
# A retry in one of these states means the work is being, or has been, redone: no second retry of it.
REDOING = {"queued": "is queued", "running": "is running", "succeeded": "succeeded"}


def new_run(tenant: Tenant, connector: str, operation: str, trigger: str, input: dict[str, Any]) -> Run:
    return Run(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        connector=connector,
        operation=operation,
        trigger=trigger,
        status="queued",
        counts=RunCounts().model_dump(),
        input=input,
        state={},
    )


def read_run(run: Run) -> RunRead:
    return RunRead(
        id=run.id,
        connector=run.connector,
        operation=run.operation,
        trigger=run.trigger,
        status=run.status,
        counts=RunCounts.model_validate(run.counts),
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        error=run.error,
        retry_of=run.retry_of,
        retried_by=run.retried_by,
    )


async def list_runs(
    session: AsyncSession,
    tenant: Tenant,
    connector: str | None,
    operation: str | None,
    status: str | None,
    limit: int,
) -> list[RunRead]:
    query = select(Run).where(Run.tenant_id == tenant.id)
    for column, value in ((Run.connector, connector), (Run.operation, operation), (Run.status, status)):
        if value is not None:
            query = query.where(column == value)
    runs = await session.scalars(query.order_by(Run.created_at.desc(), Run.id.desc()).limit(limit))
    return [read_run(run) for run in runs]


async def find_run(session: AsyncSession, tenant: Tenant, run_id: uuid.UUID) -> Run:
    run = await session.scalar(select(Run).where(Run.id == run_id, Run.tenant_id == tenant.id))
    if run is None:
        raise NotFound("Run not found.")
    return run


async def list_events(session: AsyncSession, tenant: Tenant, run_id: uuid.UUID) -> list[RunEventRead]:
    await find_run(session, tenant, run_id)
    events = await session.scalars(select(RunEvent).where(RunEvent.run_id == run_id).order_by(RunEvent.id))
    return [RunEventRead.model_validate(event, from_attributes=True) for event in events]


async def retry_run(session: AsyncSession, tenant: Tenant, run_id: uuid.UUID) -> Run:
    """A new run doing a failed or partial run's work again, unless a retry of that work is under way or succeeded.

    Items already done are recognised (linked) by the lookups. The run and the runs it retries are one lineage,
    whose first run's row is the lock: concurrent retries of any of them take turns, and the second sees the first.
    """
    run = await find_run(session, tenant, run_id)
    lineage = await lock_lineage(session, run)
    run = lineage[-1]
    if run.status not in RETRYABLE:
        raise Conflict(f"Only a failed or partial run can be retried; this one is {run.status}.")
    # Every run of the lineage points at its newest retry, so the first one's says where the work stands.
    latest = await session.get(Run, lineage[0].retried_by) if lineage[0].retried_by else None
    if latest is not None and latest.status in REDOING:
        raise Conflict(f"This run was already retried by run {latest.id}, which {REDOING[latest.status]}.")
    retry = new_run(tenant, run.connector, run.operation, "retry", dict(run.input))
    retry.counts = {**retry.counts, "total": run.counts.get("total", 0)}
    retry.retry_of = run.id
    session.add(retry)
    await session.flush()
    for earlier in lineage:
        earlier.retried_by = retry.id
    await session.flush()
    return retry


async def lock_lineage(session: AsyncSession, run: Run) -> list[Run]:
    """The runs `run` retries, first one first, ending with `run`: locked, and read again once locked."""
    ids = [run.id]
    parent = run.retry_of
    while parent is not None and parent not in ids:
        ids.append(parent)
        parent = await session.scalar(select(Run.retry_of).where(Run.id == parent))
    ids.reverse()
    fresh = select(Run).with_for_update().execution_options(populate_existing=True)
    # The first run alone first, so that two retries in one lineage never lock its rows in opposite orders.
    await session.scalar(fresh.where(Run.id == ids[0]))
    by_id = {found.id: found for found in await session.scalars(fresh.where(Run.id.in_(ids)))}
    return [by_id[run_id] for run_id in ids if run_id in by_id]
