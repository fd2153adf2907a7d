"""The shared sliding-window limiter, against a real Redis."""

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.clients.ratelimit import HOLDING, GiveWay, RateLimitBusy, SlidingWindowLimiter, window_seconds
from app.metrics import metrics

REDIS_URL = os.environ["REDIS_URL"]


@pytest.fixture
async def key() -> AsyncIterator[str]:
    """A fresh rate-limit key, deleted after the test."""
    name = f"test:ratelimit:{uuid.uuid4().hex}"
    yield name
    redis = Redis.from_url(REDIS_URL)
    await redis.delete(name)
    await redis.aclose()


@pytest.fixture
async def connections() -> AsyncIterator[list[Redis]]:
    """Three independent Redis connections, one per simulated process."""
    clients = [Redis.from_url(REDIS_URL) for _ in range(3)]
    yield clients
    for client in clients:
        await client.aclose()


def pending(name: str, **labels: str) -> float:
    """The value counted locally (not yet flushed) for one metric series."""
    rendered = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return metrics._pending.get(f"{name}|{rendered}", 0.0)


async def test_never_more_than_the_limit_in_any_window_across_processes(key: str, connections: list[Redis]) -> None:
    requests, per_seconds, callers = 5, 0.3, 30
    limiters = [SlidingWindowLimiter(redis) for redis in connections]
    watcher = connections[0]
    granted: dict[bytes, float] = {}

    async def call(number: int) -> None:
        await limiters[number % len(limiters)].acquire(key, requests, per_seconds, partner="test")
        # Every grant stays in the sorted set for a whole window: read the exact Redis grant times there.
        granted.update(await watcher.zrange(key, 0, -1, withscores=True))

    waits_before = pending("rate_limit_waits_total", partner="test")
    started = time.monotonic()
    await asyncio.gather(*(call(number) for number in range(callers)))
    elapsed = time.monotonic() - started

    assert len(granted) == callers
    times = sorted(score / 1_000_000 for score in granted.values())
    for first, later in zip(times, times[requests:], strict=False):
        assert later - first > per_seconds, "more than `requests` grants inside one window"
    # 30 grants at 5 per window need at least 5 full windows after the first burst.
    assert elapsed >= (callers // requests - 1) * window_seconds(per_seconds)
    assert pending("rate_limit_waits_total", partner="test") - waits_before >= callers - requests


async def test_free_budget_is_granted_without_waiting(key: str, connections: list[Redis]) -> None:
    limiter = SlidingWindowLimiter(connections[0])
    waits = [await limiter.acquire(key, 10, 60) for _ in range(10)]
    assert waits == [0.0] * 10


async def test_key_expires_once_the_window_is_over(key: str, connections: list[Redis]) -> None:
    redis = connections[0]
    await SlidingWindowLimiter(redis).acquire(key, 5, 2)
    ttl_ms = await redis.pttl(key)
    assert 0 < ttl_ms <= window_seconds(2) * 1000 + 1000


async def test_a_lowered_limit_waits_for_enough_calls_to_leave(key: str, connections: list[Redis]) -> None:
    limiter = SlidingWindowLimiter(connections[0])
    for _ in range(4):
        await limiter.acquire(key, 4, 0.2)
    waited = await limiter.acquire(key, 2, 0.2)
    assert waited > 0
    assert await connections[0].zcard(key) <= 2


async def test_refuses_a_limit_that_allows_nothing(key: str, connections: list[Redis]) -> None:
    with pytest.raises(ValueError):
        await SlidingWindowLimiter(connections[0]).acquire(key, 0, 1)


async def test_a_caller_that_may_not_wait_long_is_told_how_long_instead(key: str, connections: list[Redis]) -> None:
    limiter = SlidingWindowLimiter(connections[0])
    for _ in range(2):
        await limiter.acquire(key, 2, 30, max_wait=1)
    with pytest.raises(RateLimitBusy) as busy:
        await limiter.acquire(key, 2, 30, max_wait=1)
    assert 29 < busy.value.wait_seconds <= window_seconds(30) + 0.01
    # Refused calls are not recorded: the window still holds the two that were made.
    assert await connections[0].zcard(key) == 2


async def test_a_call_made_under_another_key_is_recorded_even_beyond_the_limit(
    key: str, connections: list[Redis]
) -> None:
    limiter = SlidingWindowLimiter(connections[0])
    await limiter.acquire(key, 1, 30)
    await limiter.record(key, 30)
    assert await connections[0].zcard(key) == 2
    assert 0 < await connections[0].pttl(key) <= window_seconds(30) * 1000 + 1000


async def test_a_long_wait_gives_way_when_what_the_caller_holds_is_wanted(key: str, connections: list[Redis]) -> None:
    redis = connections[0]
    limiter, wanted = SlidingWindowLimiter(redis), f"{key}:wanted"
    await limiter.acquire(key, 1, 30)
    holding = HOLDING.set((wanted,))
    try:
        await redis.set(wanted, "1", ex=10)
        started = time.monotonic()
        with pytest.raises(GiveWay) as given:
            await limiter.acquire(key, 1, 30)
        assert time.monotonic() - started < 0.5 and 29 < given.value.wait_seconds <= window_seconds(30) + 0.01
        await redis.delete(wanted)
        # Wanted by no one, the same wait is slept through.
        assert await limiter.acquire(key, 1, 1.5) > 1.2
    finally:
        HOLDING.reset(holding)
        await redis.delete(wanted)
    assert await redis.zcard(key) == 1
