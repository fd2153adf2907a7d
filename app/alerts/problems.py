"""Problems (contract 14): one open problem per tenant and key, an alert to each channel when it opens, at most one
reminder a day while it stays open, and one when it is resolved.

Everything here runs in the caller's transaction: a problem's change and its deliveries commit together or not at
all, so no alert is lost or made twice; the caller queues the deliveries it got back once it has committed.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AlertChannel, AlertDelivery, AlertProblem
from app.models.base import utcnow

Kind = Literal["runs", "credentials", "lucca_webhook", "lucca_notice", "directory_lag", "schedule"]
Event = Literal["opened", "reminder", "resolved"]
REMINDER_AFTER = timedelta(days=1)
# Reminders made by one tick at most: the next tick goes on (each takes a lock on the problems it reminds of).
REMINDERS_PER_TICK = 500


@dataclass(frozen=True)
class Problem:
    """What a source says is wrong: `key` makes two reports the same problem; `title` and `message` are plain
    words without any secret (the title is the alert's subject line)."""

    key: str
    kind: Kind
    source: str
    title: str
    message: str
    operation: str | None = None


async def report(
    session: AsyncSession, tenant_id: uuid.UUID, problem: Problem, run_id: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Open the problem, or count one more report of the open one (its latest message and run kept); returns the
    deliveries made: one per channel when it opened, none otherwise."""
    now = utcnow()
    opening = uuid.uuid4()
    statement = insert(AlertProblem).values(
        id=opening, tenant_id=tenant_id, key=problem.key, kind=problem.kind, source=problem.source,
        operation=problem.operation, status="open", title=problem.title, message=problem.message, count=1,
        first_run_id=run_id, last_run_id=run_id, opened_at=now, last_seen_at=now, last_alert_at=now,
    )  # fmt: skip
    # Two reports at once: the partial unique index makes the second wait for the first, then count.
    statement = statement.on_conflict_do_update(
        index_elements=[AlertProblem.tenant_id, AlertProblem.key],
        # The index's own predicate, as a literal: a bound parameter stops matching it once the statement is
        # prepared with a generic plan (from its sixth use on a connection).
        index_where=text("status = 'open'"),
        set_={
            "count": AlertProblem.count + 1,
            "message": statement.excluded.message,
            "last_seen_at": now,
            "last_run_id": func.coalesce(statement.excluded.last_run_id, AlertProblem.last_run_id),
        },
    )
    problem_id = await session.scalar(statement.returning(AlertProblem.id))
    if problem_id != opening:
        return []
    return await make_deliveries(session, tenant_id, [opening], "opened")


async def clear(
    session: AsyncSession, tenant_id: uuid.UUID, keys: Sequence[str], run_id: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Resolve the open problems of these keys (by `run_id`, when a run's success did); returns the "resolved"
    deliveries made."""
    resolved = await session.scalars(
        update(AlertProblem)
        .where(AlertProblem.tenant_id == tenant_id, AlertProblem.key.in_(keys), AlertProblem.status == "open")
        .values(status="resolved", resolved_at=utcnow(), resolved_by_run_id=run_id)
        .returning(AlertProblem.id)
    )
    return await make_deliveries(session, tenant_id, list(resolved), "resolved")


async def remind(session: AsyncSession, now: datetime | None = None) -> list[uuid.UUID]:
    """The daily reminders of every problem still open a day after its last alert; returns the deliveries made.
    Problems another transaction is reminding of are left to it (skipped), so each reminder is made once."""
    now = now or utcnow()
    due = (
        select(AlertProblem.id)
        .where(AlertProblem.status == "open", AlertProblem.last_alert_at <= now - REMINDER_AFTER)
        .order_by(AlertProblem.last_alert_at)
        .limit(REMINDERS_PER_TICK)
        .with_for_update(skip_locked=True)
    )
    reminded = await session.execute(
        update(AlertProblem)
        .where(AlertProblem.id.in_(due.scalar_subquery()))
        .values(last_alert_at=now)
        .returning(AlertProblem.id, AlertProblem.tenant_id)
    )
    deliveries: list[uuid.UUID] = []
    for problem_id, tenant_id in reminded.all():
        deliveries += await make_deliveries(session, tenant_id, [problem_id], "reminder")
    return deliveries


async def make_deliveries(
    session: AsyncSession, tenant_id: uuid.UUID, problem_ids: Sequence[uuid.UUID], event: Event
) -> list[uuid.UUID]:
    """One pending delivery of `event` per problem and per channel the tenant has now."""
    if not problem_ids:
        return []
    channels = list(await session.scalars(select(AlertChannel.id).where(AlertChannel.tenant_id == tenant_id)))
    now = utcnow()
    pairs = [(problem_id, channel_id) for problem_id in problem_ids for channel_id in channels]
    ids = [uuid.uuid4() for _ in pairs]
    if ids:
        rows = [
            {"id": delivery_id, "tenant_id": tenant_id, "problem_id": problem_id, "channel_id": channel_id,
             "event": event, "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
            for delivery_id, (problem_id, channel_id) in zip(ids, pairs, strict=True)
        ]  # fmt: skip
        await session.execute(insert(AlertDelivery), rows)
    return ids


def console_url(public_base_url: str | None, slug: str, run_id: uuid.UUID | None) -> str | None:
    """The console's page of the run (or of the tenant, for a problem no run shows), without any token: the
    reader signs in; None when the service does not know its public address."""
    if public_base_url is None:
        return None
    page = f"#/tenants/{slug}" if run_id is None else f"#/tenants/{slug}/runs/{run_id}"
    return f"{public_base_url}/console{page}"
