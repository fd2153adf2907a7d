"""Account locks on the real Postgres: tried, never waited for; kept alive by a heartbeat; freed when a host dies."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.clients.ratelimit import GiveWay, SlidingWindowLimiter
from app.db import create_engine
from app.services import locks
from app.services.locks import LockBusy, LockLost, account_lock, account_lock_key, wanted_key

ROOT = Path(__file__).resolve().parents[2]
# A lock holder in another process: it takes the lock, says so, then sleeps until it is stopped or killed.
HOLDER = """
import asyncio, os, sys
from redis.asyncio import Redis
from app.db import create_engine
from app.services import locks

async def main() -> None:
    locks.LOCK_IDLE_SECONDS, locks.HEARTBEAT_SECONDS = 2, 0.5
    engine = create_engine(sys.argv[1])
    async with locks.account_lock(engine, Redis.from_url(os.environ["REDIS_URL"]), "hire", "vanishing.ilucca.net"):
        print("held", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.fixture
async def engine(migrated_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_database)
    yield engine
    await engine.dispose()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(os.environ["REDIS_URL"])
    yield client
    await client.aclose()


@pytest.fixture
def quick_locks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locks, "LOCK_IDLE_SECONDS", 1)
    monkeypatch.setattr(locks, "HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setattr(locks, "HEARTBEAT_TIMEOUT_SECONDS", 0.5)


async def is_free(database_url: str, account: str) -> bool:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        free = await connection.fetchval("SELECT pg_try_advisory_lock($1)", account_lock_key("hire", account))
        if free:
            await connection.execute("SELECT pg_advisory_unlock($1)", account_lock_key("hire", account))
        return bool(free)
    finally:
        await connection.close()


async def end_holder(admin: asyncpg.Connection, account: str) -> None:
    """End the session holding the hire lock of `account` in this database, and only that one: the server is shared
    with other checkouts' suites and services, whose locks are none of this test's business."""
    key = account_lock_key("hire", account) & 0xFFFF_FFFF_FFFF_FFFF  # pg_locks shows the key's two halves unsigned
    await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND classid::bigint = $1 AND objid::bigint = $2",
        key >> 32,
        key & 0xFFFF_FFFF,
    )


async def test_a_held_account_lock_is_busy_at_once_for_that_account_only(engine: AsyncEngine, redis: Redis) -> None:
    async with account_lock(engine, redis, "hire", "acme.ilucca.net"):
        # Busy at once, not after waiting for the holder (which would never let go here: the guard would fire).
        async with asyncio.timeout(10):
            with pytest.raises(LockBusy, match=r"hire lock of acme\.ilucca\.net"):
                async with account_lock(engine, redis, "hire", "acme.ilucca.net"):
                    pytest.fail("two holders of one lock")
        async with (
            account_lock(engine, redis, "hire", "other.ilucca.net"),
            account_lock(engine, redis, "sync", "acme.ilucca.net"),
        ):
            pass
    async with account_lock(engine, redis, "hire", "acme.ilucca.net"):
        pass  # released at the end of the block


@pytest.mark.usefixtures("quick_locks")
async def test_a_live_holder_keeps_its_lock_past_the_idle_timeout(
    engine: AsyncEngine, redis: Redis, migrated_database: str
) -> None:
    async with account_lock(engine, redis, "hire", "busy.ilucca.net"):
        for _ in range(6):  # 3 s of work without a statement of its own, three times the idle timeout
            await asyncio.sleep(0.5)
            assert not await is_free(migrated_database, "busy.ilucca.net")
    assert await is_free(migrated_database, "busy.ilucca.net")


@pytest.mark.usefixtures("quick_locks")
async def test_work_whose_lock_was_lost_stops_before_going_on(
    engine: AsyncEngine, redis: Redis, migrated_database: str
) -> None:
    reached_the_create = False
    admin = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    with pytest.raises(LockLost):
        async with account_lock(engine, redis, "hire", "lost.ilucca.net"):
            await end_holder(admin, "lost.ilucca.net")
            await asyncio.sleep(3)  # the lookup, say; the heartbeat notices within 0.2 s
            reached_the_create = True
    await admin.close()
    assert not reached_the_create
    async with account_lock(engine, redis, "hire", "lost.ilucca.net"):
        pass  # the pool gave a sound connection again


async def test_a_lock_held_by_a_frozen_host_is_freed(migrated_database: str) -> None:
    """SIGSTOP stands for a host that vanished: its socket stays open and says nothing, like a pulled cable."""
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, migrated_database, cwd=ROOT, stdout=subprocess.PIPE, env=os.environ.copy()
    )
    try:
        assert holder.stdout is not None
        assert (await holder.stdout.readline()).strip() == b"held"
        holder.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        while not await is_free(migrated_database, "vanishing.ilucca.net"):
            assert time.monotonic() - stopped < 15, "the frozen host still holds its lock"
            await asyncio.sleep(0.25)
        assert time.monotonic() - stopped >= 1.5  # it was held until the idle timeout, not dropped at once
    finally:
        holder.kill()
        await holder.wait()


async def test_a_holder_waiting_for_a_slot_gives_way_to_a_job_that_wants_its_lock(
    engine: AsyncEngine, redis: Redis
) -> None:
    window, account = f"test:give-way:{uuid.uuid4().hex}", f"{uuid.uuid4().hex}.ilucca.net"
    limiter = SlidingWindowLimiter(redis)
    await limiter.acquire(window, 1, 60)  # the window's one slot, taken for a minute

    async def another_job() -> None:
        await asyncio.sleep(0.3)
        with pytest.raises(LockBusy):
            async with account_lock(engine, redis, "hire", account):
                pytest.fail("two holders of one lock")

    # It lets go once wanted instead of waiting the minute for its slot (the guard would fire), and says when the
    # slot is due.
    async with asyncio.timeout(30):
        with pytest.raises(GiveWay) as given:
            async with account_lock(engine, redis, "hire", account):
                wanting = asyncio.create_task(another_job())
                await limiter.acquire(window, 1, 60)
    await wanting
    assert 55 < given.value.wait_seconds <= 61
    async with account_lock(engine, redis, "hire", account):
        # The job that wanted it has it now: no mark left to make this holder give way in turn.
        assert not await redis.exists(wanted_key("hire", account))
    await redis.delete(window)


async def test_a_holder_that_no_one_waits_for_keeps_its_lock_through_a_wait(engine: AsyncEngine, redis: Redis) -> None:
    window, account = f"test:give-way:{uuid.uuid4().hex}", f"{uuid.uuid4().hex}.ilucca.net"
    limiter = SlidingWindowLimiter(redis)
    await limiter.acquire(window, 1, 2)
    async with account_lock(engine, redis, "hire", account):
        assert await limiter.acquire(window, 1, 2) > 1.5  # slept through, lock held
    await redis.delete(window)
