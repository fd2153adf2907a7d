"""Running a queued run: pick its operation, keep going through partner outages, give up after 15 minutes."""

import dataclasses
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app.clients.http import FailureStreak, PartnerAuthFailed, PartnerRejected, PartnerUnavailable
from app.clients.ratelimit import GiveWay
from app.db import Sessionmaker
from app.directory import sync as directory_sync
from app.logging import bind_log_context
from app.models import FINISHED, Connector, Run, Tenant
from app.models.base import utcnow
from app.services import cards_follow, cards_stats, cards_users, elevo, softgarden, taleez
from app.services.connectors import SettingsOutdated
from app.services.context import Services
from app.services.locks import LockBusy, LockLost
from app.services.run_log import Action, Level, Outcome, RunLog, finish_run, items_done

log = logging.getLogger(__name__)

# A run whose account lock another job holds waits a little and tries again; the wait grows slowly to a cap,
# with jitter so that a backlog's jobs do not come back all at once.
LOCK_WAIT_BASE_SECONDS = 0.5
LOCK_WAIT_MAX_SECONDS = 3.0
LOCK_WAIT_GROWTH = 1.25

Operation = Callable[[Services, Run, Tenant, Connector, RunLog], Awaitable[None]]
Work = Callable[[Services, Run, Tenant, RunLog], Awaitable[None]]

OPERATIONS: dict[tuple[str, str], Operation] = {
    (softgarden.SOURCE, softgarden.OPERATION): softgarden.process_hire,
    (taleez.SOURCE, taleez.OPERATION): taleez.process_import,
    (cards_users.SOURCE, cards_users.USERS_IMPORT): cards_users.process_users_import,
    (cards_users.SOURCE, cards_users.DEPARTMENTS_IMPORT): cards_users.process_departments_import,
    (cards_users.SOURCE, cards_follow.CHANGES): cards_follow.process_changes,
    (cards_stats.SOURCE, cards_stats.STATS_SYNC): cards_stats.process_stats_sync,
    (elevo.SOURCE, elevo.PEOPLE_SYNC): elevo.process_people_sync,
}
# Work of the tenant's Lucca account itself, which has no connector to be enabled.
ACCOUNT_OPERATIONS: dict[tuple[str, str], Work] = {
    (directory_sync.SOURCE, directory_sync.OPERATION): directory_sync.process_directory_sync,
}


async def execute_run(services: Services, run_id: uuid.UUID) -> float | None:
    """Do the run's work; returns the seconds to wait before the next attempt, or None when it is finished."""
    async with services.sessionmaker.begin() as session:
        run = await session.scalar(select(Run).where(Run.id == run_id).with_for_update())
        if run is None or run.status in FINISHED:
            return None
        tenant = await session.get(Tenant, run.tenant_id)
        if tenant is None or tenant.deleted_at is not None:
            return None  # its tenant is deleted: the run goes with its rows, undone
        connector = await session.scalar(
            select(Connector).where(Connector.tenant_id == run.tenant_id, Connector.kind == run.connector)
        )
        run.status = "running"
        run.started_at = run.started_at or utcnow()
    bind_log_context(run=run.id, tenant=tenant.slug, connector=run.connector)
    # The run's place in the backoff schedule: its partner calls continue it, across job attempts too.
    streak = FailureStreak(run.failed_attempts, run.failing_since)
    run_log = ProgressLog(services.sessionmaker, run_id, run.state, streak)
    if await every_item_done(services.sessionmaker, run):
        # An earlier attempt did the work and stopped (its deadline, a dying worker) just before closing the run.
        await finish_run(services.sessionmaker, run_id, redis=services.redis)
        return None
    work = work_of(run, connector)
    if work is None:
        message = f"The {run.connector} connector is disabled or removed: nothing was done. Retry once it is back."
        await fail_at_once(services, run_log, run.connector, message)
        return None
    counted = streak.failures
    working = dataclasses.replace(services, retry=services.retry.following(streak))
    try:
        await work(working, run, tenant, run_log)
    except PartnerUnavailable as outage:
        # Raised without going through PartnerHTTP, which counts its own (since the start, or the last progress).
        if streak.failures == (0 if run_log.progressed else counted):
            streak.failed(utcnow())
        setback = Setback(outage.partner, outage.message, outage.retry_after)
        return await postpone(services, run, run_log, setback, streak)
    except LockBusy as busy:
        return await wait_for_lock(services, run, streak, busy)
    except GiveWay as given:
        return await give_way(services, run, streak, given)
    except LockLost:
        streak.failed(utcnow())
        setback = Setback("service", "The run lost its database lock and stopped before going on", None)
        return await postpone(services, run, run_log, setback, streak)
    except PartnerRejected as refusal:
        # Refused credentials are the partner's connection broken, a problem of their own (not the runs').
        refused_by = refusal.partner if isinstance(refusal, PartnerAuthFailed) else None
        await fail_at_once(services, run_log, refusal.partner, refusal.message, refused_by=refused_by)
        return None
    except SettingsOutdated as outdated:
        await fail_at_once(services, run_log, run.connector, outdated.detail)
        return None
    except Exception:
        # A fault of ours (or of the database): keep the run, try again later, and say so.
        log.exception("run %s stopped on an unexpected error; it will be tried again", run_id)
        streak.failed(utcnow())
        setback = Setback("service", "An unexpected error interrupted this run", None)
        return await postpone(services, run, run_log, setback, streak)
    await finish_run(services.sessionmaker, run_id, redis=services.redis)
    return None


def work_of(run: Run, connector: Connector | None) -> Work | None:
    """The run's operation; None when it needs its connector and that is disabled or removed."""
    key = (run.connector, run.operation)
    if key in ACCOUNT_OPERATIONS:
        return ACCOUNT_OPERATIONS[key]
    if connector is None or not connector.enabled:
        return None
    operation = OPERATIONS[key]

    async def work(services: Services, run: Run, tenant: Tenant, run_log: RunLog) -> None:
        await operation(services, run, tenant, connector, run_log)

    return work


async def fail_at_once(
    services: Services, run_log: RunLog, source: str, message: str, refused_by: str | None = None
) -> None:
    """End the run as failed, saying why: trying again cannot help until someone acts."""
    await run_log.event("fail", source, message)
    await finish_run(services.sessionmaker, run_log.run_id, error=message, redis=services.redis, refused_by=refused_by)


class ProgressLog(RunLog):
    """The log an operation writes: each item it gets done puts the run's failures so far behind it, so a long
    run that keeps moving through partner hiccups never reaches the give-up, meant for work that stopped moving."""

    def __init__(
        self, sessionmaker: Sessionmaker, run_id: uuid.UUID, state: dict[str, Any], streak: FailureStreak
    ) -> None:
        super().__init__(sessionmaker, run_id, state)
        self.streak = streak
        self.progressed = False

    async def item(
        self,
        item_id: str,
        outcome: Outcome,
        action: Action,
        subject: str,
        message: str,
        level: Level | None = None,
    ) -> bool:
        counted = await super().item(item_id, outcome, action, subject, message, level)
        if counted:
            self.progressed = True
            self.streak.failures = 0
            self.streak.since = None
        return counted


async def progress_of(sessionmaker: Sessionmaker, run_id: uuid.UUID) -> int:
    """How many items of a run have their outcome recorded (its ledger); a run that reads in pages (the
    directory's full sync) counts the pages it wrote (kept in its state)."""
    async with sessionmaker() as session:
        state = await session.scalar(select(Run.state).where(Run.id == run_id))
        return await items_done(session, run_id) + int((state or {}).get("pages_done", 0))


async def every_item_done(sessionmaker: Sessionmaker, run: Run) -> bool:
    total = run.counts.get("total", 0)
    return bool(total) and await progress_of(sessionmaker, run.id) >= total


async def overran(services: Services, run_id: uuid.UUID, deadline_seconds: float, done_before: int) -> float | None:
    """The job's deadline stopped the run's work. An attempt that got items done (`done_before` were done when it
    started) goes on at once in the next one: a long import spans many. One that did not counts as a failed
    attempt, so a run that always overruns gives up like any other failing work. Returns the seconds to wait,
    or None when the run is finished."""
    async with services.sessionmaker() as session:
        run = await session.get(Run, run_id)
    if run is None or run.status in FINISHED:
        return None
    done = await progress_of(services.sessionmaker, run_id)
    if done > done_before:
        log.info("run %s goes on in a new attempt after %d more item(s)", run_id, done - done_before)
        return await reschedule(services, run_id, FailureStreak(), 0.0)
    streak = FailureStreak(run.failed_attempts, run.failing_since)
    streak.failed(utcnow())
    words = f"This run's work did not finish within the job's deadline of {seconds_in_words(deadline_seconds)}"
    setback = Setback("service", words, None)
    return await postpone(services, run, RunLog(services.sessionmaker, run_id, run.state), setback, streak)


async def wait_for_lock(services: Services, run: Run, streak: FailureStreak, busy: LockBusy) -> float:
    """Another job holds the lock this run needs: try again shortly. Not a failure, and no event: just a wait."""
    # Calls made before the lock still count in the backoff schedule.
    delay = await reschedule(services, run.id, streak, lock_wait_seconds(run.lock_waits), run.lock_waits + 1)
    log.debug("run %s waits %.2f s: %s", run.id, delay, busy)
    return delay


async def give_way(services: Services, run: Run, streak: FailureStreak, given: GiveWay) -> float:
    """The run held a lock another job waits for while its rate limit kept it waiting: it let go, and comes back
    when its slot is due (within the give-up time). Not a failure, and no event: its own limit's wait."""
    delay = await reschedule(services, run.id, streak, min(given.wait_seconds, services.retry.give_up_seconds))
    log.debug("run %s gave way to a job waiting for its lock; back in %.1f s", run.id, delay)
    return delay


async def reschedule(
    services: Services, run_id: uuid.UUID, streak: FailureStreak, delay: float, lock_waits: int = 0
) -> float:
    """Keep the run's place in the backoff schedule and when its next attempt is due; returns `delay`."""
    async with services.sessionmaker.begin() as session:
        stored = await session.get(Run, run_id)
        assert stored is not None
        stored.failing_since = streak.since
        stored.failed_attempts = streak.failures
        stored.lock_waits = lock_waits
        stored.retry_at = utcnow() + timedelta(seconds=delay)
    return delay


def lock_wait_seconds(waits: int) -> float:
    """The wait after the `waits`-th busy lock in a row: growing slowly from half a second to a few, jittered."""
    ceiling = min(LOCK_WAIT_MAX_SECONDS, LOCK_WAIT_BASE_SECONDS * LOCK_WAIT_GROWTH ** min(waits, 32))
    return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class Setback:
    """Why the work stopped for now: `message` is a clause in plain words, without a full stop."""

    source: str
    message: str
    retry_after: float | None


async def postpone(
    services: Services, run: Run, run_log: RunLog, setback: Setback, streak: FailureStreak
) -> float | None:
    """Wait and try again on the run's backoff schedule, unless its work has been failing for longer than allowed."""
    settings = services.settings
    now = utcnow()
    failing_since = streak.since or now
    if now - failing_since >= timedelta(seconds=settings.give_up_after_seconds):
        message = f"Gave up after {duration_in_words(settings.give_up_after_seconds)}: {setback.message}."
        await run_log.event("fail", setback.source, message)
        await finish_run(services.sessionmaker, run.id, error=message, redis=services.redis)
        return None
    streak.since = failing_since
    delay = await reschedule(services, run.id, streak, services.retry.wait(streak.failures, setback.retry_after))
    message = f"{setback.message}; next try in {seconds_in_words(delay)}."
    await run_log.event("note", setback.source, message, level="warning")
    log.info("run %s postponed by %.1f s: %s", run.id, delay, setback.message)
    return delay


def seconds_in_words(seconds: float) -> str:
    """A wait as people read it: "40 s", "1.6 s", "5 min"."""
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{round(seconds, 1) if seconds < 10 else round(seconds):g} s"


def duration_in_words(seconds: float) -> str:
    """A duration of the give-up rule: "15 minutes", "1 minute", "30 seconds"."""
    amount, unit = (round(seconds), "second") if seconds < 60 else (round(seconds / 60), "minute")
    return f"{amount} {unit}{'' if amount == 1 else 's'}"
