"""Putting runs on the arq queue. Postgres is the truth; the queue only says "look at this run now"."""

import logging
import uuid

from arq.connections import ArqRedis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

EXECUTE_RUN = "runs.execute"


def run_job_id(run_id: uuid.UUID) -> str:
    return f"run:{run_id}"


async def enqueue_run(redis: ArqRedis, run_id: uuid.UUID) -> bool:
    """Queue a run once (the job id dedups); if Redis is down, the worker's sweep takes it up later."""
    try:
        job = await redis.enqueue_job(EXECUTE_RUN, str(run_id), _job_id=run_job_id(run_id))
    except (RedisError, OSError) as exc:
        log.warning("could not queue run %s (%s); the sweep will take it up", run_id, type(exc).__name__)
        return False
    return job is not None
