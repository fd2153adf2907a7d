"""Retention (contract section 11): finished runs older than `RUN_RETENTION_DAYS` are deleted with their events.

A batch of runs at a time: their events in short transactions of their own, then the runs, with a pause after
each, so that webhooks and running jobs never wait behind the purge. What makes a later delivery a duplicate
stays: a delivery's external id (the Softgarden `applicationId`) outlives its run, its payload emptied; Cards and
Lucca event ids and the links have no key to runs. A run is deleted only with its whole lineage (the runs it
retries and the retry that last redid them), so a kept run never loses its latest retry. Alert problems resolved
before the same cutoff go too, with their alerts; open ones stay, however old.
"""

import asyncio
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, exists, select, update
from sqlalchemy.orm import aliased

from app.db import Sessionmaker
from app.models import AlertProblem, Delivery, Run, RunEvent, RunItem
from app.models.base import utcnow
from app.models.run import FINISHED
from app.services.tenants import RUN_EVENTS, RUN_ITEMS, delete_batch, purge_transaction

RUNS_PER_BATCH = 500
# After each transaction of the purge, a rest at least this long and as long as the transaction took: the purge
# keeps at most half of one connection's time, leaving the rest of the machine to webhooks and jobs.
PAUSE_SECONDS = 0.05


def expired(run: Any, cutoff: datetime) -> ColumnElement[bool]:
    return and_(run.status.in_(FINISHED), run.finished_at < cutoff)


def expired_runs(cutoff: datetime, among: list[uuid.UUID] | None = None) -> Select[uuid.UUID]:
    """Runs finished before `cutoff` whose latest retry finished before it too, and that no kept run names as its
    latest retry; oldest first (by the index on `finished_at`), a batch at a time."""
    run, latest, earlier = aliased(Run), aliased(Run), aliased(Run)
    latest_kept = exists().where(latest.id == run.retried_by, ~expired(latest, cutoff))
    earlier_kept = exists().where(earlier.retried_by == run.id, ~expired(earlier, cutoff))
    query = select(run.id).where(expired(run, cutoff), ~latest_kept, ~earlier_kept)
    if among is not None:
        query = query.where(run.id.in_(among))
    return query.order_by(run.finished_at).limit(RUNS_PER_BATCH)


async def purge_expired_runs(
    sessionmaker: Sessionmaker, retention_days: int, deadline: float | None = None, pause: float = PAUSE_SECONDS
) -> int | None:
    """Delete the runs past retention; how many went, or None when `deadline` (a `time.monotonic()` value) came
    first and some are left. Safe to stop anywhere and to run again."""
    cutoff = utcnow() - timedelta(days=retention_days)
    deleted = 0
    while deadline is None or time.monotonic() < deadline:
        started = time.monotonic()
        async with purge_transaction(sessionmaker) as connection:
            run_ids = list((await connection.execute(expired_runs(cutoff))).scalars())
        if not run_ids:
            return deleted
        await rest(started, pause)
        await delete_events(sessionmaker, run_ids, pause)
        started = time.monotonic()
        deleted += await delete_runs(sessionmaker, run_ids, cutoff)
        await rest(started, pause)
    return None


async def rest(started: float, pause: float) -> None:
    """After work begun at `started`: `pause`, or as long as the work took when longer (none when `pause` is 0)."""
    if pause:
        await asyncio.sleep(max(pause, time.monotonic() - started))


async def delete_events(sessionmaker: Sessionmaker, run_ids: list[uuid.UUID], pause: float) -> None:
    """The runs' events and ledgers, a batch at a time (a run of 20,000 people holds as many of each)."""
    for table, run_id in ((RUN_EVENTS, RunEvent.run_id), (RUN_ITEMS, RunItem.run_id)):
        while True:
            started = time.monotonic()
            if not await delete_batch(sessionmaker, table, run_id.in_(run_ids)):
                break
            await rest(started, pause)


async def delete_runs(sessionmaker: Sessionmaker, run_ids: list[uuid.UUID], cutoff: datetime) -> int:
    """Delete the runs (checked again: one retried meanwhile stays) and their deliveries, except a delivery's
    external id, kept without its payload."""
    async with purge_transaction(sessionmaker) as connection:
        gone = (
            (await connection.execute(delete(Run).where(Run.id.in_(expired_runs(cutoff, run_ids))).returning(Run.id)))
            .scalars()
            .all()
        )
        mine = Delivery.run_id.in_(gone)
        await connection.execute(delete(Delivery).where(mine, Delivery.external_id.is_(None)))
        await connection.execute(update(Delivery).where(mine, Delivery.payload != {}).values(payload={}))
    return len(gone)


async def purge_resolved_problems(
    sessionmaker: Sessionmaker, retention_days: int, deadline: float | None = None, pause: float = PAUSE_SECONDS
) -> int | None:
    """Delete the alert problems resolved before the cutoff, with their alerts, a batch at a time; how many went,
    or None when `deadline` came first."""
    cutoff = utcnow() - timedelta(days=retention_days)
    resolved_long_ago = and_(AlertProblem.status == "resolved", AlertProblem.resolved_at < cutoff)
    deleted = 0
    while deadline is None or time.monotonic() < deadline:
        started = time.monotonic()
        async with purge_transaction(sessionmaker) as connection:
            batch = select(AlertProblem.id).where(resolved_long_ago).limit(RUNS_PER_BATCH)
            gone = len(
                (
                    await connection.execute(
                        delete(AlertProblem).where(AlertProblem.id.in_(batch)).returning(AlertProblem.id)
                    )
                ).all()
            )
        if not gone:
            return deleted
        deleted += gone
        await rest(started, pause)
    return None
