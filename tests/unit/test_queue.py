"""Queuing a run: once per job id, in arq's own format, on the real Redis."""

import uuid
from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus
from redis.asyncio import ConnectionPool

from app.queue import EXECUTE_RUN, enqueue_run, run_job_id


@pytest.fixture
async def redis() -> AsyncIterator[ArqRedis]:
    client = ArqRedis(connection_pool=ConnectionPool.from_url("redis://127.0.0.1:6379/3"))
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


async def test_a_run_is_queued_once_and_arq_can_read_it(redis: ArqRedis) -> None:
    run_id = uuid.uuid4()
    assert await enqueue_run(redis, run_id) is True
    assert await enqueue_run(redis, run_id) is False
    job = Job(run_job_id(run_id), redis)
    assert await job.status() == JobStatus.queued
    info = await job.info()
    assert info is not None and info.function == EXECUTE_RUN and info.args == (str(run_id),)
    assert await redis.zcard(redis.default_queue_name) == 1


async def test_a_run_whose_result_is_still_kept_is_not_queued_again(redis: ArqRedis) -> None:
    # arq's own rule: a job id with a result in Redis is taken (our workers keep none, but the rule holds).
    run_id = uuid.uuid4()
    await redis.set(f"arq:result:{run_job_id(run_id)}", b"kept")
    assert await enqueue_run(redis, run_id) is False
    assert await redis.zcard(redis.default_queue_name) == 0


async def test_redis_down_is_reported_not_raised() -> None:
    unreachable = ArqRedis(connection_pool=ConnectionPool.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1))
    assert await enqueue_run(unreachable, uuid.uuid4()) is False
    await unreachable.aclose()
