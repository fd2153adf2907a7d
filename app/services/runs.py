"""Runs as the API sees them: listing, reading, events, and retrying a run's failed items."""

import base64
import binascii
import hashlib
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi.exceptions import RequestValidationError
from sqlalchemy import Select, Text, exists, func, literal, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.errors import Conflict, NotFound
from app.models import Run, RunEvent, Tenant
from app.models.base import utcnow
from app.models.run import FINISHED
from app.schemas.connector import KINDS
from app.schemas.run import FailureCounts, RunCounts, RunEventList, RunEventRead, RunRead

RETRYABLE = ("failed", "partial")
# A retry in one of these states means the work is being, or has been, redone: no second retry of it.
REDOING = {"queued": "is queued", "running": "is running", "succeeded": "succeeded"}
# One call of retry-failed retries at most this many runs (the next call takes the rest).
MAX_RETRIES_AT_ONCE = 500
# An events cursor is an event id (run_events.id, a bigint), encoded so that clients treat it as opaque.
CURSOR = re.compile(r"e[0-9]{1,19}")
MAX_EVENT_ID = 2**63 - 1
FAILURE_WINDOW = timedelta(days=7)


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
    subject: str | None = None,
) -> list[RunRead]:
    """The tenant's runs, newest first; `subject` keeps those with an event about someone whose subject holds it,
    ignoring case and accents (compared on the folded subject Postgres keeps, `fold_text`)."""
    runs = await session.scalars(runs_query(tenant.id, connector, operation, status, subject, limit))
    return [read_run(run) for run in runs]


def runs_query(
    tenant_id: uuid.UUID,
    connector: str | None,
    operation: str | None,
    status: str | None,
    subject: str | None,
    limit: int,
) -> Select[Run]:
    """`list_runs`' query.

    The planner picks how to meet `subject`: from 3 characters on, the index of (tenant, trigrams) can find the
    tenant's events first (then their runs); when it expects many, or the needle is shorter (no trigram), it reads
    the tenant's runs newest first, each one's events by run, until `limit` are found. Either way the answer is
    exact; a short needle that is rare reads many events.
    """
    query = select(Run).where(Run.tenant_id == tenant_id)
    for column, value in ((Run.connector, connector), (Run.operation, operation), (Run.status, status)):
        if value is not None:
            query = query.where(column == value)
    if subject:
        # Joined by `||` (immutable) the pattern is a constant, computed once when planning; concat() is only
        # stable, so reading the tenant's runs one by one rebuilt it for every event (a third of the time).
        pattern = literal("%", Text) + func.fold_text(like_literal(subject), type_=Text) + "%"
        query = query.where(
            exists().where(
                RunEvent.run_id == Run.id,
                RunEvent.tenant_id == tenant_id,
                RunEvent.subject_folded.like(pattern, escape="\\"),
            )
        )
    return query.order_by(Run.created_at.desc(), Run.id.desc()).limit(limit)


def failure_counts_query(tenant_id: uuid.UUID, since: datetime) -> Select[str, int]:
    """Failed runs created since `since`, per connector: read from ix_runs_tenant_id_status_created_at alone."""
    return (
        select(Run.connector, func.count())
        .where(Run.tenant_id == tenant_id, Run.status == "failed", Run.created_at >= since)
        .group_by(Run.connector)
    )


async def failure_counts(session: AsyncSession, tenant: Tenant) -> FailureCounts:
    """The tenant's failed runs of the last 7 days, per connector, counted exactly."""
    since = utcnow() - FAILURE_WINDOW
    found = dict((await session.execute(failure_counts_query(tenant.id, since))).tuples().all())
    return FailureCounts(since=since, connectors={**dict.fromkeys(KINDS, 0), **found})


def like_literal(value: str) -> str:
    """`value` matched as itself in a LIKE pattern (its `%`, `_` and `\\` escaped)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def find_run(session: AsyncSession, tenant: Tenant, run_id: uuid.UUID) -> Run:
    run = await session.scalar(select(Run).where(Run.id == run_id, Run.tenant_id == tenant.id))
    if run is None:
        raise NotFound("Run not found.")
    return run


async def list_events(
    session: AsyncSession, tenant: Tenant, run_id: uuid.UUID, limit: int, after: str | None
) -> RunEventList:
    """A page of the run's events after the cursor, oldest first (by id: a run's events are written one at a time,
    under its lock, so ids grow in the order they are committed and a page never skips one written later)."""
    after_id = event_cursor_id(after) if after is not None else 0
    # Read before the events: once the run is seen finished, every one of its events is visible.
    finished = (await find_run(session, tenant, run_id)).status in FINISHED
    events = list(
        await session.scalars(
            select(RunEvent)
            .where(RunEvent.run_id == run_id, RunEvent.id > after_id)
            .order_by(RunEvent.id)
            .limit(limit + 1)
        )
    )
    page = events[:limit]
    last_id = page[-1].id if page else after_id
    more = len(events) > limit or not finished
    return RunEventList(
        items=[RunEventRead.model_validate(event, from_attributes=True) for event in page],
        next=event_cursor(last_id) if more else None,
    )


def event_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"e{event_id}".encode()).decode().rstrip("=")


def event_cursor_id(cursor: str) -> int:
    """The event id a cursor stands for; a 422 naming `after` for anything this service did not hand out."""
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if not CURSOR.fullmatch(decoded) or int(decoded[1:]) > MAX_EVENT_ID:
        message = "not a cursor this service gave: pass a page's `next` as it came"
        raise RequestValidationError([{"type": "value_error", "loc": ("query", "after"), "msg": message}])
    return int(decoded[1:])


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


async def retry_failed(
    session: AsyncSession, tenant: Tenant, since: datetime, until: datetime | None, connector: str | None
) -> list[Run]:
    """One retry (`retry_run`) of each failed or partial run created in the window whose work is not being, or
    has not been, redone; at most `MAX_RETRIES_AT_ONCE`, oldest first.

    Calls for one tenant take turns (a lock until the commit), so two never lock runs' lineages in opposite
    orders; with single retries at the same time, `retry_run`'s own lock decides and the loser is skipped.
    """
    lock_key = int.from_bytes(hashlib.sha256(f"retry-failed:{tenant.id}".encode()).digest()[:8], "big", signed=True)
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
    redone = aliased(Run)
    candidates = (
        select(Run.created_at, Run.id)
        .outerjoin(redone, redone.id == Run.retried_by)
        .where(Run.tenant_id == tenant.id, Run.status.in_(RETRYABLE), Run.created_at >= since)
        .where(Run.created_at < (until or utcnow()))
        # A run's own `retried_by` already tells about most of them; `retry_run` decides for the others.
        .where(or_(redone.id.is_(None), redone.status.not_in(REDOING)))
        .order_by(Run.created_at, Run.id)
        .limit(MAX_RETRIES_AT_ONCE)
    )
    if connector is not None:
        candidates = candidates.where(Run.connector == connector)
    retries: list[Run] = []
    after: tuple[datetime, uuid.UUID] | None = None
    while len(retries) < MAX_RETRIES_AT_ONCE:
        query = candidates if after is None else candidates.where(tuple_(Run.created_at, Run.id) > after)
        page = list(await session.execute(query))
        for created_at, run_id in page:
            after = (created_at, run_id)
            try:
                retries.append(await retry_run(session, tenant, run_id))
            except Conflict:
                continue  # its work is being redone (by a retry of another run of its lineage, just now)
            if len(retries) == MAX_RETRIES_AT_ONCE:
                break
        if len(page) < MAX_RETRIES_AT_ONCE:
            break
    return retries
