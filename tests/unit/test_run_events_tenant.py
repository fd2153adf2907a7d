"""Migration 0024 on the real Postgres: events written before it get their run's tenant, range after range of ids,
and the search's index becomes the tenant's trigrams."""

import subprocess

import asyncpg

from tests.conftest import TEST_DATABASE
from tests.unit.test_run_ledger import alembic

POSTGRES = ["-h", "127.0.0.1", "-U", "postgres"]
NEW_TENANT = """
    INSERT INTO tenants (id, slug, name, timezone, key_hash, lucca_base_url, lucca_api_key_encrypted,
                         rate_limit_requests, rate_limit_per_seconds, created_at, updated_at)
    VALUES (gen_random_uuid(), $1, $1, 'Europe/Paris', $1, 'https://x', 'x', 50, 60, now(), now()) RETURNING id
"""
NEW_RUN = """
    INSERT INTO runs (id, tenant_id, connector, operation, trigger, status, counts, input, state, created_at,
                      retry_at, failed_attempts, lock_waits)
    VALUES (gen_random_uuid(), $1, 'cards', 'users_import', 'api', 'succeeded', '{}', '{}', '{}', now(), now(), 0, 0)
    RETURNING id
"""
NEW_EVENT = """
    INSERT INTO run_events (id, run_id, at, level, subject, action, message)
    VALUES ($1, $2, now(), 'info', 'Zoë Müller', 'create', 'Created.')
"""
INDEXES = "SELECT array_agg(indexname::text ORDER BY indexname) FROM pg_indexes WHERE tablename = 'run_events'"


async def test_the_migration_gives_earlier_events_their_runs_tenant(migrated_database: str) -> None:
    name = f"{TEST_DATABASE}_events_tenant_migration"
    subprocess.run(["dropdb", *POSTGRES, "--if-exists", "--force", name], check=True)
    subprocess.run(["createdb", *POSTGRES, name], check=True)
    url = migrated_database.rsplit("/", 1)[0] + f"/{name}"
    connection = None
    try:
        alembic(url, "upgrade", "0023")
        connection = await asyncpg.connect(url.replace("+asyncpg", ""))
        tenants = [await connection.fetchval(NEW_TENANT, slug) for slug in ("acme", "globex")]
        runs = [await connection.fetchval(NEW_RUN, tenant) for tenant in tenants]
        # Ids far apart: several batches, one of them empty.
        owners = {1: runs[0], 2: runs[1], 10_500: runs[0], 31_000: runs[1]}
        for event_id, run_id in owners.items():
            await connection.execute(NEW_EVENT, event_id, run_id)
        alembic(url, "upgrade", "0024")
        rows = await connection.fetch("SELECT id, tenant_id FROM run_events ORDER BY id")
        assert {row["id"]: row["tenant_id"] for row in rows} == {
            event_id: tenants[runs.index(run_id)] for event_id, run_id in owners.items()
        }
        assert (
            await connection.fetchval(
                "SELECT is_nullable FROM information_schema.columns "
                "WHERE table_name = 'run_events' AND column_name = 'tenant_id'"
            )
            == "NO"
        )
        assert not await connection.fetchval("SELECT count(*) FROM pg_constraint WHERE conname LIKE 'ck_run_events%'")
        assert await connection.fetchval(INDEXES) == [
            "ix_run_events_run_id_id", "ix_run_events_tenant_id_subject_folded", "pk_run_events"
        ]  # fmt: skip
        alembic(url, "downgrade", "0023")
        assert await connection.fetchval(INDEXES) == [
            "ix_run_events_run_id_id", "ix_run_events_subject_folded_trgm", "pk_run_events"
        ]  # fmt: skip
        assert await connection.fetchval("SELECT count(*) FROM run_events") == len(owners)
    finally:
        if connection is not None:
            await connection.close()
        subprocess.run(["dropdb", *POSTGRES, "--if-exists", "--force", name], check=True)
