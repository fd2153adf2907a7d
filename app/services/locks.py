"""Cross-process locks held in Postgres, so they vanish with the connection if a process (or its host) dies.

A job never waits for a lock: `account_lock` tries it and raises `LockBusy` when another job holds it, and
the run is deferred (execution.py), so a busy account never holds a worker slot or a connection of another.
Nor does a holder keep a lock that another job wants while it waits for a rate-limit slot: a busy lock says in
Redis that it is wanted, and the holder's long wait gives way (GiveWay, app.clients.ratelimit) and is deferred.

A held lock stays alive by a heartbeat statement on its own connection. The server ends a lock's session that
has been silent for `LOCK_IDLE_SECONDS` (idle_in_transaction_session_timeout) and probes a quiet socket with TCP
keepalives, so a lock of a host that vanished is free within a minute. The holder notices first: a heartbeat that
fails or stays unanswered for `HEARTBEAT_TIMEOUT_SECONDS` cancels the work inside the lock (`LockLost`) well
before the server could give the lock to another job, so a job that lost its lock never goes on to create.
"""

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.clients.ratelimit import HOLDING

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
HEARTBEAT_TIMEOUT_SECONDS = 5.0
# Silence after which the server ends a lock's session: more than a heartbeat and its timeout, under a minute.
LOCK_IDLE_SECONDS = 30
# A quiet lock connection's socket is probed after 10 s, every 5 s, and declared dead after 3 missed probes.
TCP_KEEPALIVE = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 5, "tcp_keepalives_count": 3}
# How long a busy lock stays marked wanted: longer than its waiters' longest step aside (execution.py), plus pickup.
WANTED_SECONDS = 10


class LockBusy(Exception):
    """Another job holds the lock: try again a little later instead of waiting for it."""

    def __init__(self, scope: str, account: str) -> None:
        super().__init__(scope, account)
        self.scope = scope
        self.account = account

    def __str__(self) -> str:
        return f"another job holds the {self.scope} lock of {self.account}"


class LockLost(Exception):
    """The lock's connection failed while the work inside it was going on: that work was stopped."""


def account_lock_key(scope: str, account: str) -> int:
    digest = hashlib.sha256(f"{scope}:account:{account}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def wanted_key(scope: str, account: str) -> str:
    """The Redis key that says another job waits for the lock of (`scope`, `account`)."""
    return f"lock:wanted:{account_lock_key(scope, account)}"


@asynccontextmanager
async def account_lock(engine: AsyncEngine, redis: Redis, scope: str, account: str) -> AsyncIterator[None]:
    """Hold the transaction-scoped advisory lock of (`scope`, `account`) for the block, or raise LockBusy at once.

    `account` is a partner account's identity, shared only by credentials it has accepted (`proven_account`).
    """
    wanted = wanted_key(scope, account)
    async with engine.connect() as connection, connection.begin():
        await _guard_session(connection)
        taken = await connection.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": account_lock_key(scope, account)}
        )
        if not taken:
            await redis.set(wanted, "1", ex=WANTED_SECONDS)
            raise LockBusy(scope, account)
        # Whoever wanted it may have it now; another waiter says so again on its next try.
        await redis.delete(wanted)
        holding = HOLDING.set((*HOLDING.get(), wanted))
        try:
            async with _heartbeat(connection, f"{scope} lock of {account}"):
                yield
        finally:
            HOLDING.reset(holding)


async def _guard_session(connection: AsyncConnection) -> None:
    """Make the server end this session soon if its client goes silent (local: only for this lock's transaction)."""
    settings = {"idle_in_transaction_session_timeout": f"{LOCK_IDLE_SECONDS}s", **TCP_KEEPALIVE}
    calls = ", ".join(f"set_config('{name}', :{name}, true)" for name in settings)
    await connection.execute(text(f"SELECT {calls}"), {name: str(value) for name, value in settings.items()})


@asynccontextmanager
async def _heartbeat(connection: AsyncConnection, what: str) -> AsyncIterator[None]:
    """Keep the lock's session alive; if its connection fails, cancel the block and raise LockLost."""
    owner = asyncio.current_task()
    assert owner is not None
    stopping = asyncio.Event()
    lost = asyncio.Event()

    async def beat() -> None:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), HEARTBEAT_SECONDS)
                return
            try:
                await asyncio.wait_for(connection.execute(text("SELECT 1")), HEARTBEAT_TIMEOUT_SECONDS)
            except Exception:
                log.warning("the %s was lost (its connection failed); stopping the work it guarded", what)
                lost.set()
                owner.cancel()
                return

    beating = asyncio.create_task(beat())
    try:
        yield
    except asyncio.CancelledError:
        if not lost.is_set():
            raise
        owner.uncancel()
        await _drop(connection)
        raise LockLost(what) from None
    finally:
        # Let a heartbeat in flight finish (within its timeout) rather than cut a statement in half.
        stopping.set()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
    if lost.is_set():
        # The block ended just as the lock was lost; its work was done under the lock, but the end is unsure.
        if owner.cancelling():
            owner.uncancel()
        await _drop(connection)
        raise LockLost(what)


async def _drop(connection: AsyncConnection) -> None:
    """Close a failed lock connection at once: a rollback over a dead network could hang."""
    with contextlib.suppress(Exception):
        await connection.invalidate()
