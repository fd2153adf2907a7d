"""Thin jobs: they take ids, open their own sessions and call a service. Every job is safe to run twice."""

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

from arq import Retry
from sqlalchemy import select

from app.models import Run
from app.models.base import utcnow
from app.queue import enqueue_run
from app.services.context import Services
from app.services.execution import execute_run, items_done, overran

log = logging.getLogger(__name__)

JobContext = dict[str, Any]
# Headroom under arq's own job timeout, which would fail the job for good instead of retrying it.
DEADLINE_MARGIN_SECONDS = 5


async def run_execute(ctx: JobContext, run_id: str) -> None:
    """runs.execute: work on one run; a partner outage or our own deadline re-queues it with a delay.

    The next attempt resumes from the run's checkpoints (its state) instead of redoing finished steps. An attempt
    cut by the deadline without getting an item done counts toward the run's give-up, so a run that always
    overruns ends; one that got items done goes on at once.
    """
    services: Services = ctx["services"]
    deadline = max(services.settings.job_timeout_seconds - DEADLINE_MARGIN_SECONDS, 1)
    run = uuid.UUID(run_id)
    done_before = await items_done_of(services, run)
    try:
        async with asyncio.timeout(deadline):
            delay = await execute_run(services, run)
    except TimeoutError:
        log.warning("run %s reached the job deadline; continuing in a new attempt", run_id)
        delay = await overran(services, run, deadline, done_before)
    if delay is not None:
        raise Retry(defer=timedelta(seconds=delay))


async def items_done_of(services: Services, run_id: uuid.UUID) -> int:
    async with services.sessionmaker() as session:
        state = await session.scalar(select(Run.state).where(Run.id == run_id))
    return items_done(state or {})


async def runs_sweep(ctx: JobContext) -> int:
    """runs.sweep: queue every unfinished run that is due, in case its job was lost (Redis down, worker died)."""
    services: Services = ctx["services"]
    async with services.sessionmaker() as session:
        due = await session.scalars(
            select(Run.id)
            .where(Run.status.in_(("queued", "running")), Run.retry_at <= utcnow())
            .order_by(Run.created_at)
        )
        run_ids = list(due)
    queued = [run_id for run_id in run_ids if await enqueue_run(services.redis, run_id)]
    if queued:
        log.info("sweep queued %d run(s) left unfinished", len(queued))
    return len(queued)
