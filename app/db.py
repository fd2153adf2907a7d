"""Engine and session factories, and the request-scoped session dependency."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
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


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """The pool's asyncpg connection itself, for the few hot statements where SQLAlchemy's layers cost more
    than the database work. Each statement runs on its own (autocommit): make every one atomic by itself.

    JSON goes in as text and comes out decoded (the codecs SQLAlchemy sets on its connections).
    """
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        yield raw.driver_connection
