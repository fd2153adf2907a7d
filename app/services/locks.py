"""Cross-process locks held in Postgres, so they vanish with the connection if a process dies."""

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


def lock_key(scope: str, tenant_id: uuid.UUID) -> int:
    digest = hashlib.sha256(f"{scope}:{tenant_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@asynccontextmanager
async def tenant_lock(engine: AsyncEngine, scope: str, tenant_id: uuid.UUID) -> AsyncIterator[None]:
    """Hold a transaction-scoped advisory lock: released at the end of the block, or when the connection dies."""
    async with engine.begin() as connection:
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(scope, tenant_id)})
        yield
