"""Service-wide counters shared through Redis, so what workers count is not lost in their processes.

Each process adds to a local tally; `flush` moves it into one Redis hash with HINCRBYFLOAT. A tally that
cannot be flushed (Redis down) stays and goes out with the next flush.
"""

import asyncio
import contextlib
import logging
import math

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

REDIS_KEY = "metrics:counters"
FIELD_SEPARATOR = "|"

HELP = {
    "http_requests_total": "HTTP requests answered, by method, route and status.",
    "webhook_deliveries_total": "Webhook deliveries, by source and outcome.",
    "runs_finished_total": "Runs finished, by connector, operation and status.",
    "partner_calls_total": "Calls to partner APIs, by partner and HTTP status (or error).",
    "rate_limit_waits_total": "Times a partner call waited for the shared rate limit, by partner.",
    "rate_limit_wait_seconds_total": "Seconds spent waiting for the shared rate limit, by partner.",
    "alerts_sent_total": "Alerts delivered, by channel kind and event (opened, reminder, resolved).",
    "alerts_failed_total": "Alerts given up on (retried 15 minutes, or refused for good), by channel kind and event.",
}


def _field(name: str, labels: dict[str, str]) -> str:
    rendered = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return f"{name}{FIELD_SEPARATOR}{rendered}"


class Metrics:
    def __init__(self) -> None:
        self._pending: dict[str, float] = {}

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        field = _field(name, labels)
        self._pending[field] = self._pending.get(field, 0.0) + value

    async def flush(self, redis: Redis) -> None:
        if not self._pending:
            return
        taken, self._pending = self._pending, {}
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for field, value in taken.items():
                    pipe.hincrbyfloat(REDIS_KEY, field, value)
                await pipe.execute()
        except (RedisError, OSError):
            for field, value in taken.items():
                self._pending[field] = self._pending.get(field, 0.0) + value


class Flusher:
    """Flushes the counters every second in the background; `stop` ends it between flushes, never mid-command,
    and flushes once more (a shutdown must neither hang on a cancelled Redis call nor drop counts)."""

    def __init__(self, redis: Redis, every_seconds: float = 1.0) -> None:
        self._redis = redis
        self._every = every_seconds
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._every)
            await metrics.flush(self._redis)

    async def stop(self, within_seconds: float = 10.0) -> None:
        self._stopping.set()
        try:
            await asyncio.wait_for(self._task, within_seconds)
        except TimeoutError:
            log.warning("metrics were not flushed within %.0f s of shutdown", within_seconds)


metrics = Metrics()


def format_value(value: float) -> str:
    """A sample's value, exact: whole numbers as integers, others as the shortest text that reads back the same."""
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    return repr(value) if math.isfinite(value) else {math.inf: "+Inf", -math.inf: "-Inf"}.get(value, "NaN")


def render_counters(stored: dict[str, float]) -> list[str]:
    """Prometheus lines for every known counter family, zero when nothing was counted yet, then any other."""
    by_name: dict[str, list[str]] = {name: [] for name in HELP}
    for field, value in sorted(stored.items()):
        name, _, labels = field.partition(FIELD_SEPARATOR)
        sample = f"{name}{{{labels}}}" if labels else name
        by_name.setdefault(name, []).append(f"{sample} {format_value(value)}")
    lines: list[str] = []
    for name, samples in by_name.items():
        lines += [f"# HELP {name} {HELP.get(name, name)}", f"# TYPE {name} counter", *(samples or [f"{name} 0"])]
    return lines


async def render(redis: Redis, queue_name: str) -> str:
    """Prometheus text for the whole service, read from the shared hash."""
    await metrics.flush(redis)
    stored: dict[bytes, bytes] = await redis.hgetall(REDIS_KEY)  # type: ignore[misc]
    counters = {field.decode(): float(value.decode()) for field, value in stored.items()}
    depth = await redis.zcard(queue_name)
    lines = [
        *render_counters(counters),
        "# HELP queue_depth Jobs waiting in the queue.",
        "# TYPE queue_depth gauge",
        f"queue_depth {depth}",
    ]
    return "\n".join(lines) + "\n"
