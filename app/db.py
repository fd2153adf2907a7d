"""Engine and session factories, the request-scoped session dependency, and the webhooks' driver pool."""

import json
from collections.abc import AsyncIterator
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

Sessionmaker = async_sessionmaker[AsyncSession]


def create_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    """Connections beyond `pool_size` are opened and closed per use: size the pool for the usual concurrency."""
    # No pre-ping: it costs a round trip per request; a connection broken by a database restart is dropped
    # by the pool on its first error instead.
    # hide_parameters: an error's text (logged with its traceback) names the statement, never the values bound to
    # it, which hold key hashes and encrypted credentials.
    return create_async_engine(database_url, pool_size=pool_size, max_overflow=10, hide_parameters=True)


def create_sessionmaker(engine: AsyncEngine) -> Sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request is the transaction: commit on success, roll back on error.

    Declared with `scope="function"` (below): the commit runs when the route function returns, *before* the
    response is sent, so an answer never reports what is not committed yet (with the default scope FastAPI would
    run it after the response has left, and the next request could miss the change).
    """
    sessionmaker: Sessionmaker = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def create_driver_pool(database_url: str, size: int) -> asyncpg.Pool:
    """asyncpg's own pool, for the webhooks' hot statements, where SQLAlchemy's checkout costs more than the
    database work. Connections open on demand, at most `size`.

    Each statement runs on its own (autocommit) and JSON goes in as text and comes out decoded. The statements
    leave no session state (no SET, LISTEN, cursor or session lock), so a connection goes back to the pool without
    asyncpg's reset query, a round trip per use; asyncpg still rolls back a transaction left open.
    """
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.create_pool(dsn, min_size=0, max_size=size, init=_json_codecs, reset=_no_session_state)


async def _json_codecs(connection: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await connection.set_type_codec(kind, encoder=str, decoder=json.loads, schema="pg_catalog")


async def _no_session_state(connection: asyncpg.Connection) -> None:
    """Nothing to reset: see `create_driver_pool`."""
