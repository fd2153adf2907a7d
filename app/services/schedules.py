"""Nightly jobs (contract 5.5): once per local day per tenant, whichever workers are running.

A job belongs to a connector (its settings say whether and when) or to the tenant's Lucca account (the
directory's full sync, kept while a connector that reads the directory is enabled).

A job is due when its local hour (plus its offset, below) has passed since the later of its last scheduled run and the moment it was
enabled: a service that was down at that hour catches up when it is back (once, however long it was down), and
a job enabled in the afternoon waits for the next night. Each schedule keeps that moment (`due_at`), worked out
here with the tenant's timezone, so a tick with nothing due is one indexed query. A due schedule is claimed by
one UPDATE that only matches the `due_at` it was read with, in the transaction that stores its run: of several
workers ticking at once, exactly one makes the run.

Each (tenant, job) starts at its own offset within its hour, a hash of the tenant's id and the operation: ten
thousand tenants whose job is due at 02:00 start over the hour (about three a second) instead of in one second,
and a tenant's job starts at the same minute and second every night, in every process.
"""

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Sessionmaker
from app.models import Connector, Schedule, Tenant
from app.models.base import utcnow
from app.services.runs import new_run

log = logging.getLogger(__name__)

# The connector of a schedule that has none: a job of the tenant's Lucca account (the directory's full sync).
LUCCA = "lucca"


@dataclass(frozen=True)
class ScheduledJob:
    """A connector's nightly run, and where the connector's settings say whether and at what local hour."""

    operation: str
    enabled_setting: tuple[str, ...]
    hour_setting: tuple[str, ...]

    def plan(self, connector: Connector) -> tuple[bool, int]:
        """(enabled, hour) from the connector's stored settings; a disabled connector runs no job."""
        enabled = setting(connector.settings, self.enabled_setting)
        hour = setting(connector.settings, self.hour_setting)
        return connector.enabled and enabled is True, int(hour)


def setting(settings: dict[str, Any], path: Sequence[str]) -> Any:
    value: Any = settings
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


# The span a job's start is spread over, from its hour:00.
SPREAD = timedelta(hours=1)


def hour_offset(tenant_id: uuid.UUID, operation: str) -> timedelta:
    """A (tenant, job)'s place within its hour, whole seconds in [0, 3600): from SHA-256, not `hash()`, which
    differs from one process to the next."""
    digest = hashlib.sha256(f"{tenant_id}:{operation}".encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % int(SPREAD.total_seconds()))


def next_due(after: datetime, timezone: str, hour: int, offset: timedelta) -> datetime:
    """The first moment after `after` that is `offset` past the moment the local clock of `timezone` reads
    `hour`:00 (in UTC).

    On the night clocks go forward an hour that does not exist comes an hour later; on the night they go back,
    the first of the two (the offset is counted in elapsed time from there)."""
    zone = ZoneInfo(timezone)
    day = after.astimezone(zone).date()
    for days in (0, 1, 2):
        moment = datetime.combine(day + timedelta(days=days), time(hour), tzinfo=zone).astimezone(UTC) + offset
        if moment > after:
            return moment
    raise AssertionError("a local hour comes within two days")


def due_after(schedule: Schedule) -> datetime | None:
    """The later of the moment it was enabled and its last scheduled run; None when disabled."""
    if schedule.enabled_at is None:
        return None
    return max(schedule.enabled_at, schedule.last_run_at or schedule.enabled_at)


async def follow_settings(
    session: AsyncSession,
    tenant: Tenant,
    connector: Connector,
    jobs: Sequence[ScheduledJob],
    now: datetime | None = None,
) -> None:
    """Keep the connector's schedules in step with its settings, in the request's transaction."""
    for job in jobs:
        enabled, hour = job.plan(connector)
        await keep_schedule(session, tenant, connector.id, job.operation, enabled, hour, now)


async def keep_schedule(
    session: AsyncSession,
    tenant: Tenant,
    connector_id: uuid.UUID | None,
    operation: str,
    enabled: bool,
    hour: int,
    now: datetime | None = None,
) -> None:
    """Keep one nightly job in step, in the request's transaction: enabling starts the wait for the next local
    hour; disabling stops it; a new hour moves it. Without a connector, it is a job of the tenant's Lucca account."""
    now = now or utcnow()
    found = select(Schedule).where(Schedule.tenant_id == tenant.id, Schedule.operation == operation)
    found = found.where(
        Schedule.connector_id.is_(None) if connector_id is None else Schedule.connector_id == connector_id
    )
    schedule = await session.scalar(found.with_for_update())
    if schedule is None:
        if not enabled:
            return
        schedule = Schedule(tenant_id=tenant.id, connector_id=connector_id, operation=operation)
        session.add(schedule)
    if not enabled:
        schedule.enabled_at = None
    elif schedule.enabled_at is None:
        schedule.enabled_at = now
    schedule.hour = hour
    schedule.timezone = tenant.timezone
    after = due_after(schedule)
    offset = hour_offset(tenant.id, operation)
    schedule.due_at = None if after is None else next_due(after, tenant.timezone, hour, offset)
    await session.flush()


async def claim_due_runs(sessionmaker: Sessionmaker, now: datetime | None = None) -> list[uuid.UUID]:
    """Store a run (trigger `schedule`) for every schedule that is due; returns their ids, for the caller to queue.

    A schedule whose tenant changed timezone since its `due_at` was worked out gets a new one first; so does one
    stored before offsets existed (due at its hour:00): it moves to its offset without running.
    """
    now = now or utcnow()
    async with sessionmaker() as session:
        found = await session.execute(
            select(Schedule, func.coalesce(Connector.kind, LUCCA), Tenant)
            .outerjoin(Connector, Connector.id == Schedule.connector_id)
            .join(Tenant, Tenant.id == Schedule.tenant_id)
            .where(
                Schedule.due_at.is_not(None),
                or_(Schedule.due_at <= now, Schedule.timezone != Tenant.timezone),
            )
        )
        candidates = found.all()
    run_ids = []
    for schedule, kind, tenant in candidates:
        run_id = await claim(sessionmaker, schedule, kind, tenant, now)
        if run_id is not None:
            run_ids.append(run_id)
    return run_ids


async def claim(
    sessionmaker: Sessionmaker, schedule: Schedule, kind: str, tenant: Tenant, now: datetime
) -> uuid.UUID | None:
    """Make the schedule's run if it is due and nobody else claimed it; else only bring `due_at` up to date."""
    after = due_after(schedule)
    assert after is not None and schedule.due_at is not None
    offset = hour_offset(tenant.id, schedule.operation)
    due = next_due(after, tenant.timezone, schedule.hour, offset)
    claiming = due <= now
    run = new_run(tenant, kind, schedule.operation, "schedule", {"due_at": due.isoformat()}) if claiming else None
    changes: dict[str, Any] = {"timezone": tenant.timezone, "due_at": due}
    if run is not None:
        changes.update(
            last_run_at=now, last_run_id=run.id, due_at=next_due(now, tenant.timezone, schedule.hour, offset)
        )
    async with sessionmaker() as session:
        if run is not None:
            session.add(run)
            await session.flush()
        # Only the `due_at` this tick read: another worker's claim (or a settings change) since then wins, and
        # this run is never stored.
        claimed = await session.execute(
            update(Schedule)
            .where(and_(Schedule.id == schedule.id, Schedule.due_at == schedule.due_at))
            .values(**changes)
            .returning(Schedule.id)
        )
        if claimed.first() is None:
            return None
        await session.commit()
    if run is not None:
        log.info("schedule %s of tenant %s is due: run %s", schedule.operation, tenant.slug, run.id)
    return None if run is None else run.id
