"""Polling Lucca for changes: every `lucca.poll_seconds` without webhooks, every 15 minutes beside them (CONTRACT 13).

A tenant's polls keep a stable phase within its interval, taken from a hash of its id, so that a thousand tenants
polling every minute spread over the minute instead of all polling in the same second. A poll is not a run: it
updates the directory's state only, and a failing one says why there in plain words and tries again next time.

- With an API key: `GET /api/v3/users?modifiedAt=since,<cursor - 60 s>`, one call when nothing changed; the cursor
  is the newest `modifiedAt` seen (Lucca's clock, never moved backwards). Departments every 15 minutes.
- OAuth alone: v5 has no modified-since filter, so a poll reads everyone (100 a call, waiting for the rate limit as
  the read needs, within the job's deadline); polls are spaced so they use at most a quarter of the account's rate
  limit, whatever `poll_seconds` says.
"""

import asyncio
import dataclasses
import hashlib
import logging
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.sources import credentials_noted, lucca_notices_noted
from app.clients.http import PartnerAuthFailed, PartnerError
from app.clients.lucca import PARTNER as LUCCA
from app.clients.lucca_directory import DirectoryPerson, DirectoryReader, LegacyDirectory
from app.db import Sessionmaker
from app.directory import store
from app.models import Tenant
from app.models.base import utcnow
from app.models.directory import DirectoryState, LuccaEvent
from app.queue import enqueue_alerts
from app.services.context import Services

log = logging.getLogger(__name__)

# Beside active webhooks, a poll is a safety net (and checks the endpoint).
SAFETY_NET_SECONDS = 900
DEPARTMENTS_EVERY = timedelta(minutes=15)
# Changes are asked from a minute before the newest seen: a change Lucca stamped late is not missed.
CURSOR_OVERLAP = timedelta(seconds=60)
# Before any poll: changes from an hour before the full sync completed (a long full sync may have missed some).
FIRST_CURSOR_BEFORE_SYNC = timedelta(hours=1)
# Polls without a modified-since filter use at most this share of the account's rate limit.
BUDGET_SHARE = 4
# Tenants claimed by one pass of the poller; the rest wait for the next pass, a few seconds later.
CLAIM_BATCH = 500
# A poll waits at most this long for a slot of the account's rate limit (a full sync may be using it), then
# gives its worker slot back and comes again soon.
POLL_RATE_WAIT_SECONDS = 2.0
POLL_IN_CALL_SECONDS = 2.0
BUSY_RETRY_SECONDS = 5.0


def phase_seconds(tenant_id: uuid.UUID, interval: float) -> float:
    """The tenant's stable place within any interval: where in the minute its polls fall, say."""
    spread = int.from_bytes(hashlib.sha256(tenant_id.bytes).digest()[:8], "big")
    return (spread % max(1, round(interval * 1000))) / 1000


def next_slot(now: datetime, interval: float, tenant_id: uuid.UUID) -> datetime:
    """The tenant's next poll time after `now`: the next instant at its phase on the `interval` grid."""
    phase = phase_seconds(tenant_id, interval)
    moment = now.timestamp()
    slots = math.floor((moment - phase) / interval) + 1
    return datetime.fromtimestamp(phase + slots * interval, UTC)


@dataclass
class DuePolls:
    """What one pass of the poller found due: tenants to poll, and tenants to register with Lucca's webhooks
    (they have OAuth and no endpoint yet)."""

    polls: list[uuid.UUID] = field(default_factory=list)
    registrations: list[uuid.UUID] = field(default_factory=list)


def interval_of(tenant: Tenant, state: DirectoryState) -> float:
    """Seconds between polls: the safety net's beside active webhooks, else the tenant's `poll_seconds`."""
    return float(SAFETY_NET_SECONDS if state.webhook_status == "active" else tenant.poll_seconds)


async def claim_due_polls(sessionmaker: Sessionmaker, *, webhooks_on: bool) -> DuePolls:
    """Take the tenants whose poll is due (only those whose copy a full sync has filled), set their next time,
    and return them; a tenant polled for the first time is only given its place in the interval. Several
    workers share the work: rows another is claiming are skipped."""
    now = utcnow()
    async with sessionmaker.begin() as session:
        rows = await session.execute(
            select(DirectoryState, Tenant)
            .join(Tenant, Tenant.id == DirectoryState.tenant_id)
            .where(
                Tenant.deleted_at.is_(None),
                DirectoryState.last_full_sync_at.is_not(None),
                or_(DirectoryState.next_poll_at.is_(None), DirectoryState.next_poll_at <= now),
            )
            .order_by(DirectoryState.next_poll_at.asc().nulls_first())
            .limit(CLAIM_BATCH)
            .with_for_update(of=DirectoryState, skip_locked=True)
        )
        due = DuePolls()
        for state, tenant in rows:
            if state.next_poll_at is not None:
                due.polls.append(tenant.id)
            state.next_poll_at = next_slot(now, interval_of(tenant, state), tenant.id)
            if webhooks_on and tenant.lucca_oauth_encrypted is not None and state.webhook_status == "none":
                due.registrations.append(tenant.id)
    return due


async def poll_tenant(services: Services, tenant_id: uuid.UUID, deadline_seconds: float) -> int:
    """One poll of the tenant's directory within `deadline_seconds`; returns the Lucca calls it made. A failure is
    noted on the state."""
    async with services.sessionmaker() as session:
        tenant = await session.get(Tenant, tenant_id)
        state = await store.state(session, tenant_id)
    if tenant is None or tenant.deleted_at is not None or state is None or state.last_full_sync_at is None:
        return 0
    started = utcnow()
    try:
        async with asyncio.timeout(deadline_seconds):
            if tenant.lucca_api_key_encrypted is not None:
                calls = await poll_changes(quick(services), tenant, state, started)
            else:
                calls = await poll_everyone(services, tenant, state, started)
    except PartnerError as error:
        refused = isinstance(error, PartnerAuthFailed)
        retry_after = getattr(error, "retry_after", None)
        await note_problem(
            services, tenant_id, error.message, retry_after, refused_by=error.partner if refused else None
        )
        log.info("the poll of tenant %s failed: %s", tenant.slug, error.message)
        return 0
    except TimeoutError:
        # What it read is written (each page on its own): the next poll starts again.
        message = f"The last poll did not finish within {deadline_seconds:.0f} s (Lucca slow, or its rate limit busy)."
        await note_problem(services, tenant_id, message)
        return 0
    return calls


def quick(services: Services) -> Services:
    """A key's poll is a call or two: it gives its worker slot back rather than wait long for the account's rate
    limit (a full sync may be using it) or for a failing Lucca, and comes again soon."""
    retry = dataclasses.replace(
        services.retry, rate_wait_seconds=POLL_RATE_WAIT_SECONDS, in_call_seconds=POLL_IN_CALL_SECONDS
    )
    return dataclasses.replace(services, retry=retry)


async def poll_changes(services: Services, tenant: Tenant, state: DirectoryState, started: datetime) -> int:
    """The key's poll: the employees changed since the cursor (one call when none), departments when due."""
    reader = LegacyDirectory(services.lucca(tenant))
    assert state.last_full_sync_at is not None
    cursor = state.poll_cursor or state.last_full_sync_at - FIRST_CURSOR_BEFORE_SYNC
    calls, newest = await write_pages(services, tenant.id, reader.changed_since(cursor - CURSOR_OVERLAP), started)
    calls += await poll_departments(services, reader, tenant.id, state, started)
    # What Lucca stamped a minute before this poll began is settled (seen now, or by the next poll's overlap): the
    # cursor moves at least that far, else a bulk change (20,000 people stamped the same second) would be read again
    # by every poll until someone else changed.
    settled = started - CURSOR_OVERLAP
    await note_polled(services, tenant.id, started, settled if newest is None else max(newest, settled))
    return calls


async def poll_everyone(services: Services, tenant: Tenant, state: DirectoryState, started: datetime) -> int:
    """OAuth alone: every employee read again (v5 has no modified-since filter), departments when due; the next
    poll waits until this one's calls are at most a quarter of the account's rate limit."""
    reader = services.directory_reader(tenant)
    calls, _ = await write_pages(services, tenant.id, reader.employee_pages(), started)
    calls += await poll_departments(services, reader, tenant.id, state, started)
    spaced = started + timedelta(
        seconds=calls * BUDGET_SHARE * tenant.rate_limit_per_seconds / tenant.rate_limit_requests
    )
    await note_polled(services, tenant.id, started, None, not_before=spaced)
    return calls


async def write_pages(
    services: Services, tenant_id: uuid.UUID, pages: AsyncIterator[list[DirectoryPerson]], started: datetime
) -> tuple[int, datetime | None]:
    """Write each page as it comes; returns the pages read (one call each) and the newest `modifiedAt` seen."""
    calls = 0
    newest: datetime | None = None
    async for page in pages:
        calls += 1
        seen = [person.modified_at for person in page if person.modified_at is not None]
        newest = max([*seen, newest] if newest else seen, default=None)
        if page:
            async with services.sessionmaker.begin() as session:
                await store.upsert_people(session, tenant_id, page, read_at=started)
    return calls, newest


async def poll_departments(
    services: Services, reader: DirectoryReader, tenant_id: uuid.UUID, state: DirectoryState, started: datetime
) -> int:
    """Departments every 15 minutes (a department change is rare, and no filter finds it cheaply)."""
    if state.departments_polled_at is not None and started - state.departments_polled_at < DEPARTMENTS_EVERY:
        return 0
    departments = await reader.departments()
    async with services.sessionmaker.begin() as session:
        await store.upsert_departments(session, tenant_id, departments, read_at=started)
        await session.execute(
            update(DirectoryState).where(DirectoryState.tenant_id == tenant_id).values(departments_polled_at=started)
        )
        new = await store.note_notices(session, tenant_id, reader.notices)
        deliveries = await lucca_notices_noted(session, tenant_id, new)
    await enqueue_alerts(services.redis, deliveries)
    return 1


async def note_polled(
    services: Services,
    tenant_id: uuid.UUID,
    started: datetime,
    newest: datetime | None,
    *,
    not_before: datetime | None = None,
) -> None:
    """The copy is in line with Lucca as of `started`; the cursor moves to the newest change seen (never back).
    Lucca took the stored credentials: a problem with them is resolved."""
    columns = DirectoryState.__table__.c
    values: dict[str, object] = {"poll_message": None, "updated_at": utcnow()}
    if newest is not None:
        values["poll_cursor"] = func.greatest(columns.poll_cursor, newest)
    if not_before is not None:
        values["next_poll_at"] = func.greatest(columns.next_poll_at, not_before)
    async with services.sessionmaker.begin() as session:
        await session.execute(update(DirectoryState).where(columns.tenant_id == tenant_id).values(**values))
        await store.note_fresh(session, tenant_id, started)
        deliveries = await credentials_noted(session, tenant_id, LUCCA, None)
    await enqueue_alerts(services.redis, deliveries)


async def note_problem(
    services: Services,
    tenant_id: uuid.UUID,
    message: str,
    retry_after: float | None = None,
    *,
    refused_by: str | None = None,
) -> None:
    """Say on the state why the copy could not be kept fresh; with `retry_after` (a busy rate limit, a 429), the
    next poll comes then rather than a whole interval later. `refused_by`: the partner that refused the stored
    credentials, a problem of its own."""
    values: dict[str, object] = {"poll_message": message, "updated_at": utcnow()}
    if retry_after is not None:
        values["next_poll_at"] = utcnow() + timedelta(seconds=max(retry_after, BUSY_RETRY_SECONDS))
    async with services.sessionmaker.begin() as session:
        await session.execute(update(DirectoryState).where(DirectoryState.tenant_id == tenant_id).values(**values))
        deliveries = [] if refused_by is None else await credentials_noted(session, tenant_id, refused_by, message)
    await enqueue_alerts(services.redis, deliveries)


async def unapplied_event_tenants(session: AsyncSession, older_than: timedelta) -> list[uuid.UUID]:
    """Tenants with webhook events stored a while ago and not applied yet (their job was lost, or Redis down)."""
    found = await session.scalars(
        select(LuccaEvent.tenant_id)
        .where(LuccaEvent.applied_at.is_(None), LuccaEvent.received_at <= utcnow() - older_than)
        .distinct()
    )
    return list(found)
