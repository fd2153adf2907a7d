"""A sliding-window rate limit shared through Redis by every process that calls one partner account."""

import asyncio
import math
import time
import uuid
from contextvars import ContextVar

from redis.asyncio import Redis

from app.metrics import metrics

# One atomic step: forget calls older than the window, then record this call or say how long to wait.
# The clock is Redis' own TIME, so processes on hosts with drifting clocks still agree.
# KEYS[1] = the account's sorted set; ARGV = limit, window (µs), member. Returns 0 or the wait in µs.
ACQUIRE_SCRIPT = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
-- Scores are formatted with %d: Lua's default number format would round these 16-digit values.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('(%d', now - window))
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], string.format('%d', now), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return 0
end
-- After a limit was lowered more than `limit` calls may be recorded: wait for enough of them to leave.
local leaving = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return math.max(1, tonumber(leaving[2]) + window - now + 1)
"""

# Counts a call in a window whatever it holds already: a call made before it was known to belong there.
# KEYS[1] = the window's sorted set; ARGV = window (µs), member.
RECORD_SCRIPT = """
local time = redis.call('TIME')
redis.call('ZADD', KEYS[1], string.format('%d', tonumber(time[1]) * 1000000 + tonumber(time[2])), ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
"""

# Slept on top of the computed wait, so a waiter wakes just after the slot frees rather than just before.
WAKE_MARGIN_SECONDS = 0.002
# While the caller holds something another job may wait for (a lock), a wait for a slot up to this long is slept
# (that job steps aside longer than this anyway); a longer one looks this often whether that job waits, and if it
# does, the caller gives way instead (GiveWay).
GIVE_WAY_SECONDS = 1.0
# The Redis keys that say another job waits for what the current task holds: set by the lock the task is in.
HOLDING: ContextVar[tuple[str, ...]] = ContextVar("holding", default=())


def window_seconds(per_seconds: float) -> float:
    """The window enforced: a little longer, so calls reaching the partner a bit late still fit its window."""
    return per_seconds + min(0.5, 0.04 * per_seconds)


class RateLimitBusy(Exception):
    """The next slot is further away than the caller may wait."""

    def __init__(self, wait_seconds: float) -> None:
        super().__init__(wait_seconds)
        self.wait_seconds = wait_seconds


class GiveWay(Exception):
    """The next slot is `wait_seconds` away and the caller holds what another job waits for: it lets go instead."""

    def __init__(self, wait_seconds: float) -> None:
        super().__init__(wait_seconds)
        self.wait_seconds = wait_seconds


class SlidingWindowLimiter:
    """At most `requests` calls per `per_seconds` under one key, across every process sharing Redis."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._script = redis.register_script(ACQUIRE_SCRIPT)
        self._record = redis.register_script(RECORD_SCRIPT)

    async def acquire(
        self, key: str, requests: int, per_seconds: float, *, partner: str = "unknown", max_wait: float | None = None
    ) -> float:
        """Wait until a call is allowed under `key`, record it, and return the seconds waited.

        With `max_wait`, a slot further away than that raises RateLimitBusy instead (nothing is recorded)."""
        if requests < 1 or per_seconds <= 0:
            raise ValueError("a rate limit needs at least one request over a positive duration")
        window_us = math.ceil(window_seconds(per_seconds) * 1_000_000)
        waited = 0.0
        while True:
            wait_us = int(await self._script(keys=[key], args=[requests, window_us, uuid.uuid4().hex]))
            if wait_us == 0:
                break
            delay = wait_us / 1_000_000 + WAKE_MARGIN_SECONDS
            if max_wait is not None and waited + delay > max_wait:
                raise RateLimitBusy(delay)
            await self._pause(delay)
            waited += delay
        if waited:
            metrics.inc("rate_limit_waits_total", partner=partner)
            metrics.inc("rate_limit_wait_seconds_total", waited, partner=partner)
        return waited

    async def record(self, key: str, per_seconds: float) -> None:
        """Count one call made just now under `key`, even beyond its limit (it was made under another key)."""
        window_us = math.ceil(window_seconds(per_seconds) * 1_000_000)
        await self._record(keys=[key], args=[window_us, uuid.uuid4().hex])

    async def _pause(self, delay: float) -> None:
        """Sleep `delay`; but while another job waits for what the caller holds, raise GiveWay rather than keep it."""
        wanted = HOLDING.get()
        if not wanted or delay <= GIVE_WAY_SECONDS:
            await asyncio.sleep(delay)
            return
        until = time.monotonic() + delay
        while (left := until - time.monotonic()) > 0:
            if await self.redis.exists(*wanted):
                raise GiveWay(left)
            await asyncio.sleep(min(left, GIVE_WAY_SECONDS))
