"""Thin jobs: they take ids, open their own sessions and call a service. Every job is safe to run twice."""

import asyncio
import logging
import time
import uuid
from datetime import timedelta
from typing import Any

from arq import Retry
from sqlalchemy import select

from app.models import Run, Tenant
from app.models.base import utcnow
from app.queue import enqueue_purge, enqueue_run
from app.services.context import Services
from app.services.execution import execute_run, overran, progress_of
from app.services.retention import purge_expired_runs, purge_resolved_problems
from app.services.tenants import deleted_tenants, purge_tenant

log = logging.getLogger(__name__)

JobContext = dict[str, Any]
# Headroom under arq's own job timeout, which would fail the job for good instead of retrying it.
DEADLINE_MARGIN_SECONDS = 5
# A day's retention is claimed for a little more than a day.
RETENTION_CLAIM_SECONDS = 26 * 3600


async def run_execute(ctx: JobContext, run_id: str) -> None:
    """runs.execute: work on one run; a partner outage or our own deadline re-queues it with a delay.

    The next attempt resumes from the run's checkpoints (its state) instead of redoing finished steps. An attempt
    cut by the deadline without getting an item done counts toward the run's give-up, so a run that always
    overruns ends; one that got items done goes on at once.
    """
    services: Services = ctx["services"]
    deadline = job_deadline(services)
    run = uuid.UUID(run_id)
    done_before = await progress_of(services.sessionmaker, run)
    try:
        async with asyncio.timeout(deadline):
            delay = await execute_run(services, run)
    except TimeoutError:
        log.warning("run %s reached the job deadline; continuing in a new attempt", run_id)
        delay = await overran(services, run, deadline, done_before)
    if delay is not None:
        raise Retry(defer=timedelta(seconds=delay))


def job_deadline(services: Services) -> float:
    """Seconds a job may work before it goes on in a new attempt (a little under arq's own timeout)."""
    return max(services.settings.job_timeout_seconds - DEADLINE_MARGIN_SECONDS, 1)


async def tenants_purge(ctx: JobContext, tenant_id: str) -> None:
    """tenants.purge: remove a deleted tenant's rows in small batches; past our deadline, go on in a new attempt
    (what is deleted stays deleted)."""
    services: Services = ctx["services"]
    try:
        async with asyncio.timeout(job_deadline(services)):
            await purge_tenant(services.sessionmaker, uuid.UUID(tenant_id))
    except TimeoutError:
        log.info("the purge of tenant %s goes on in a new attempt", tenant_id)
        raise Retry(defer=0) from None


async def runs_retention(ctx: JobContext) -> int | None:
    """runs.retention (daily): delete the finished runs older than RUN_RETENTION_DAYS, then the alert problems
    resolved before then; past our deadline, go on in a new attempt. Each worker's scheduler queues it under one job
    id, and a day's claim in Redis stops a late worker from queueing it again once it ended (no result is kept to
    say so)."""
    services: Services = ctx["services"]
    if ctx.get("job_try", 1) == 1:
        claim = f"runs.retention:{utcnow().date().isoformat()}"
        if not await services.redis.set(claim, "1", nx=True, ex=RETENTION_CLAIM_SECONDS):
            return None
    deadline = time.monotonic() + job_deadline(services)
    days = services.settings.run_retention_days
    runs = await purge_expired_runs(services.sessionmaker, days, deadline=deadline)
    problems = None if runs is None else await purge_resolved_problems(services.sessionmaker, days, deadline=deadline)
    if runs is None or problems is None:
        log.info("retention goes on in a new attempt")
        raise Retry(defer=0)
    log.info("retention deleted %d run(s) and %d resolved problem(s) older than %d days", runs, problems, days)
    return runs


async def runs_sweep(ctx: JobContext) -> int:
    """runs.sweep: queue every unfinished run that is due, and the purge of every deleted tenant not yet removed,
    in case their job was lost (Redis down, worker died). A deleted tenant's runs are left to its purge."""
    services: Services = ctx["services"]
    async with services.sessionmaker() as session:
        due = await session.scalars(
            select(Run.id)
            .join(Tenant, Tenant.id == Run.tenant_id)
            .where(Run.status.in_(("queued", "running")), Run.retry_at <= utcnow(), Tenant.deleted_at.is_(None))
            .order_by(Run.created_at)
        )
        run_ids = list(due)
        tenant_ids = await deleted_tenants(session)
    queued = [run_id for run_id in run_ids if await enqueue_run(services.redis, run_id)]
    purges = [tenant_id for tenant_id in tenant_ids if await enqueue_purge(services.redis, tenant_id)]
    if queued or purges:
        log.info("sweep queued %d run(s) left unfinished and %d tenant purge(s)", len(queued), len(purges))
    return len(queued) + len(purges)
