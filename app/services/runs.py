"""Runs as the API sees them: listing, reading, events, and retrying a run's failed items."""

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, NotFound
from app.models import Run, RunEvent, Tenant
from app.schemas.run import RunCounts, RunEventRead, RunRead


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
    """A new run doing the failed run's work again; items already done are recognised (linked) by the lookups."""
    run = await find_run(session, tenant, run_id)
    if run.status not in ("failed", "partial"):
        raise Conflict(f"Only a failed or partial run can be retried; this one is {run.status}.")
    retry = new_run(tenant, run.connector, run.operation, "retry", dict(run.input))
    retry.counts = {**retry.counts, "total": run.counts.get("total", 0)}
    retry.retry_of = run.id
    session.add(retry)
    await session.flush()
    return retry
