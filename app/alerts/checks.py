"""The problems no run reports, found by a periodic check (contract 14): Lucca's directory more than an hour
behind, and a nightly job more than an hour past its time without having run. Each opens when found and is
resolved when the check finds it right again."""

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts import problems
from app.alerts.problems import Problem
from app.alerts.sources import partner_name, plain
from app.models import AlertProblem, Connector, Schedule, Tenant
from app.models.base import utcnow
from app.models.directory import DirectoryState
from app.services.context import Services

LAG_LIMIT = timedelta(hours=1)
MISSED_AFTER = timedelta(hours=1)
LAG_KEY = "directory_lag"
# One worker checks at a time (each tick of every worker tries): a problem found is reported once, not once per
# worker.
CHECK_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('alerts.check'))")
NIGHTLY_WORDS = {
    ("elevo", "people_sync"): "The nightly Elevo sync",
    ("cards", "stats_sync"): "The nightly Cards statistics push",
    ("lucca", "directory_sync"): "The nightly full sync of Lucca's directory",
}


async def check_everything(services: Services, now: datetime | None = None) -> list[uuid.UUID]:
    """Both checks, in one transaction; returns the deliveries made (none when another worker is checking)."""
    now = now or utcnow()
    async with services.sessionmaker.begin() as session:
        if not await session.scalar(CHECK_LOCK):
            return []
        return await check_lag(session, now) + await check_schedules(session, now)


async def open_keys(session: AsyncSession, kind: str) -> set[tuple[uuid.UUID, str]]:
    found = await session.execute(
        select(AlertProblem.tenant_id, AlertProblem.key).where(AlertProblem.status == "open", AlertProblem.kind == kind)
    )
    return {(tenant_id, key) for tenant_id, key in found}


async def check_lag(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    """Tenants whose copy was last known in line with Lucca more than an hour ago (after a first full sync)."""
    found = await session.execute(
        select(DirectoryState.tenant_id, DirectoryState.fresh_at, DirectoryState.poll_message)
        .join(Tenant, Tenant.id == DirectoryState.tenant_id)
        .where(
            Tenant.deleted_at.is_(None),
            DirectoryState.last_full_sync_at.is_not(None),
            func.coalesce(DirectoryState.fresh_at, DirectoryState.last_full_sync_at) < now - LAG_LIMIT,
        )
    )
    lagging = {tenant_id: (fresh_at, said) for tenant_id, fresh_at, said in found}
    opened = await open_keys(session, "directory_lag")
    deliveries: list[uuid.UUID] = []
    for tenant_id, (fresh_at, said) in lagging.items():
        if (tenant_id, LAG_KEY) not in opened:
            deliveries += await problems.report(session, tenant_id, lag_problem(fresh_at, said, now))
    for tenant_id, _ in opened:
        if tenant_id not in lagging:
            deliveries += await problems.clear(session, tenant_id, [LAG_KEY])
    return deliveries


def lag_problem(fresh_at: datetime | None, said: str | None, now: datetime) -> Problem:
    behind = f"{(now - fresh_at).total_seconds() / 3600:.1f} hours" if fresh_at else "more than an hour"
    why = f" The last poll said: {said}" if said else ""
    message = f"The copy of Lucca's directory was last known to be in line with Lucca {behind} ago.{why}"
    return Problem(
        key=LAG_KEY,
        kind="directory_lag",
        source="lucca",
        title="Lucca's directory is more than an hour behind",
        message=plain(message),
    )


def schedule_key(connector: str, operation: str) -> str:
    return f"schedule:{connector}:{operation}"


async def check_schedules(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    """Nightly jobs more than an hour past their time without a run (the schedule's tick did not claim them)."""
    found = await session.execute(
        select(Schedule.tenant_id, func.coalesce(Connector.kind, "lucca"), Schedule.operation, Schedule.due_at)
        .outerjoin(Connector, Connector.id == Schedule.connector_id)
        .join(Tenant, Tenant.id == Schedule.tenant_id)
        .where(Tenant.deleted_at.is_(None), Schedule.due_at < now - MISSED_AFTER)
    )
    missed = {(tenant_id, schedule_key(kind, operation)): (kind, operation, due) for tenant_id, kind, operation, due
              in found if due is not None}  # fmt: skip
    opened = await open_keys(session, "schedule")
    deliveries: list[uuid.UUID] = []
    for (tenant_id, key), (kind, operation, due_at) in missed.items():
        if (tenant_id, key) not in opened:
            deliveries += await problems.report(session, tenant_id, missed_problem(kind, operation, due_at))
    for tenant_id, key in opened - missed.keys():
        deliveries += await problems.clear(session, tenant_id, [key])
    return deliveries


def missed_problem(connector: str, operation: str, due_at: datetime) -> Problem:
    words = NIGHTLY_WORDS.get((connector, operation), f"The nightly {partner_name(connector)} {operation}")
    message = (
        f"It was due at {due_at:%Y-%m-%d %H:%M} UTC and has not started: check that the workers are running. "
        "It runs as soon as they take it up."
    )
    return Problem(
        key=schedule_key(connector, operation),
        kind="schedule",
        source=connector,
        operation=operation,
        title=f"{words} missed its day",
        message=message,
    )
