"""Putting runs (and tenant purges) on the arq queue. Postgres is the truth; the queue only says "look now"."""

import logging
import uuid
from collections.abc import Sequence

from arq.connections import ArqRedis
from arq.constants import expires_extra_ms, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

EXECUTE_RUN = "runs.execute"
PURGE_TENANT = "tenants.purge"
APPLY_LUCCA_EVENTS = "lucca_events.apply"
DELIVER_ALERT = "alerts.deliver"
# Events arriving together share one job, and so one read of the employees they concern.
APPLY_EVENTS_AFTER_SECONDS = 1.0

# arq's own enqueue, in one round trip instead of three (WATCH, EXISTS, MULTI/EXEC): the same keys and job
# format, and the same rule that a job id whose job or result is still in Redis is not queued again.
# KEYS: job, result, queue; ARGV: expiry (ms), serialized job, score (ms), job id. Returns 1 when queued.
ENQUEUE_SCRIPT = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('PSETEX', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
"""


def run_job_id(run_id: uuid.UUID) -> str:
    return f"run:{run_id}"


async def enqueue_run(redis: ArqRedis, run_id: uuid.UUID) -> bool:
    """Queue a run once (the job id dedups); if Redis is down, the worker's sweep takes it up later."""
    return await enqueue_job(redis, EXECUTE_RUN, run_job_id(run_id), run_id)


async def enqueue_purge(redis: ArqRedis, tenant_id: uuid.UUID) -> bool:
    """Queue the removal of a deleted tenant's rows once; if Redis is down, the worker's sweep takes it up later."""
    return await enqueue_job(redis, PURGE_TENANT, f"tenant-purge:{tenant_id}", tenant_id)


async def enqueue_lucca_events(redis: ArqRedis, tenant_id: uuid.UUID) -> bool:
    """Queue the application of a tenant's stored Lucca events, once for events arriving within a second; if Redis
    is down, the poller's sweep takes them up later."""
    job_id = f"lucca-events:{tenant_id}"
    return await enqueue_job(redis, APPLY_LUCCA_EVENTS, job_id, tenant_id, defer_seconds=APPLY_EVENTS_AFTER_SECONDS)


def alert_job_id(delivery_id: uuid.UUID) -> str:
    return f"alert:{delivery_id}"


async def enqueue_alerts(redis: ArqRedis | None, delivery_ids: Sequence[uuid.UUID]) -> None:
    """Queue each committed alert delivery once; without Redis (or with it down), the alerts' tick takes them up."""
    if redis is None:
        return
    for delivery_id in delivery_ids:
        await enqueue_job(redis, DELIVER_ALERT, alert_job_id(delivery_id), delivery_id)


async def enqueue_job(
    redis: ArqRedis, function: str, job_id: str, subject: uuid.UUID, *, defer_seconds: float = 0.0
) -> bool:
    """Queue `function(str(subject))` once under `job_id`, to run after `defer_seconds`; False when it is queued
    already or Redis is down."""
    now_ms = timestamp_ms()
    job = serialize_job(function, (str(subject),), {}, None, now_ms, serializer=redis.job_serializer)
    keys = [job_key_prefix + job_id, result_key_prefix + job_id, redis.default_queue_name]
    score = now_ms + round(defer_seconds * 1000)
    try:
        queued = await redis.register_script(ENQUEUE_SCRIPT)(keys, [expires_extra_ms, job, score, job_id])
    except (RedisError, OSError) as exc:
        log.warning("could not queue %s (%s); the sweep will take it up", job_id, type(exc).__name__)
        return False
    return bool(queued)


async def commit_then_enqueue(session: AsyncSession, redis: ArqRedis, *run_ids: uuid.UUID) -> None:
    """A route's new runs: committed first (only then may a worker see them, and the answer report them), queued after."""
    await session.commit()
    for run_id in run_ids:
        await enqueue_run(redis, run_id)
