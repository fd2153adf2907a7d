"""The bounds that make every run end: waits capped by the give-up time, short jittered waits for a busy lock."""

from datetime import timedelta

from app.clients.http import RetryPolicy
from app.models.base import utcnow
from app.services.execution import LOCK_WAIT_BASE_SECONDS, LOCK_WAIT_MAX_SECONDS, lock_wait_seconds


def test_a_huge_retry_after_is_capped_by_the_give_up_time() -> None:
    policy = RetryPolicy(base_seconds=5, max_seconds=300, give_up_seconds=900)
    for retry_after in (1e12, 1e300, 10_000.0):
        wait = policy.wait(1, retry_after)
        assert wait == 900
        assert utcnow() + timedelta(seconds=wait)  # no OverflowError, and arq can defer it
    assert policy.wait(1, 30.0) == 30
    assert RetryPolicy(base_seconds=5, max_seconds=300, give_up_seconds=60).wait(10) == 60


def test_a_busy_lock_waits_a_little_longer_each_time_with_jitter() -> None:
    first = [lock_wait_seconds(0) for _ in range(200)]
    assert all(LOCK_WAIT_BASE_SECONDS / 2 <= wait <= LOCK_WAIT_BASE_SECONDS for wait in first)
    assert len(set(first)) > 100  # jittered: a backlog's jobs do not come back together
    later = [lock_wait_seconds(1_000) for _ in range(200)]
    assert all(LOCK_WAIT_MAX_SECONDS / 2 <= wait <= LOCK_WAIT_MAX_SECONDS for wait in later)
    assert sum(first) < sum(lock_wait_seconds(5) for _ in range(200)) < sum(later)
