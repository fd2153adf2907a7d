"""Creates the database named in DATABASE_URL when it does not exist yet (local runs and first deployments)."""

import asyncio
import logging

import asyncpg
from sqlalchemy.engine import make_url

from app.config import get_settings

log = logging.getLogger(__name__)


async def create_database() -> None:
    url = make_url(get_settings().database_url)
    name = url.database
    server = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    connection = await asyncpg.connect(server)
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            # Identifiers cannot be bound parameters; the name comes from our own configuration.
            await connection.execute(f'CREATE DATABASE "{name}"')
            log.warning("created database %s", name)
    finally:
        await connection.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(create_database())
