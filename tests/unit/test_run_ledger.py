"""The item ledger on the real Postgres: an item is counted once whichever attempt or writer records it, the
run's counts move with each item, and retries read the items that went through from it."""

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import select

from app.db import Sessionmaker, create_engine, create_sessionmaker
from app.models import Run, RunEvent, RunItem, Tenant
from app.services.cards_users import settled_before
from app.services.run_log import RunLog
from tests.conftest import ROOT, TEST_DATABASE


@pytest.fixture
async def sessionmaker(migrated_database: str) -> AsyncIterator[Sessionmaker]:
    engine = create_engine(migrated_database)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def new_run(sessionmaker: Sessionmaker, retry_of: uuid.UUID | None = None) -> Run:
    async with sessionmaker.begin() as session:
        tenant = Tenant(
            slug=f"ledger-{uuid.uuid4().hex[:8]}",
            name="Ledger SAS",
            timezone="Europe/Paris",
            key_hash=uuid.uuid4().hex,
            lucca_base_url="https://ledger.ilucca.net",
            lucca_api_key_encrypted="x",
            rate_limit_requests=50,
            rate_limit_per_seconds=60,
        )
        session.add(tenant)
        await session.flush()
        run = Run(tenant_id=tenant.id, connector="cards", operation="users_import", trigger="api", retry_of=retry_of)
        run.counts = {"total": 3}
        session.add(run)
    return run


async def stored(sessionmaker: Sessionmaker, run_id: uuid.UUID) -> tuple[Run, list[RunEvent], dict[str, str]]:
    async with sessionmaker() as session:
        run = await session.get(Run, run_id)
        assert run is not None
        events = list(await session.scalars(select(RunEvent).where(RunEvent.run_id == run_id)))
        items = await session.execute(select(RunItem.item_id, RunItem.outcome).where(RunItem.run_id == run_id))
        return run, events, {item: outcome for item, outcome in items}


async def test_an_item_recorded_twice_is_counted_once(sessionmaker: Sessionmaker) -> None:
    run = await new_run(sessionmaker)
    log = RunLog(sessionmaker, run.id, {})
    assert await log.item("1", "created", "create", "a@acme.fr", "Created")
    assert not await log.item("1", "linked", "link", "a@acme.fr", "Linked")
    # Another attempt (a new log, that never read the ledger) does not count it again either.
    assert not await RunLog(sessionmaker, run.id, {}).item("1", "failed", "fail", "a@acme.fr", "Refused")
    assert await log.item("2", "failed", "fail", "b@acme.fr", "Refused")
    stored_run, events, items = await stored(sessionmaker, run.id)
    assert stored_run.counts == {"total": 3, "created": 1, "failed": 1}
    assert stored_run.error == "Refused."
    assert sorted(event.message for event in events) == ["Created.", "Refused."]
    assert items == {"1": "created", "2": "failed"}
    assert "done_items" not in stored_run.state


async def test_events_carry_their_runs_tenant(sessionmaker: Sessionmaker) -> None:
    """The search by person reads a tenant's events by the tenant they hold."""
    run = await new_run(sessionmaker)
    log = RunLog(sessionmaker, run.id, {})
    await log.event("note", "people", "Started")
    await log.item("1", "created", "create", "a@acme.fr", "Created")
    _, events, _ = await stored(sessionmaker, run.id)
    assert len(events) == 2 and {event.tenant_id for event in events} == {run.tenant_id}


async def test_writers_racing_for_the_same_items_count_each_once(sessionmaker: Sessionmaker) -> None:
    """Two attempts at once (a worker thought dead, and the next): every item is counted exactly once."""
    run = await new_run(sessionmaker)
    logs = [RunLog(sessionmaker, run.id, {}) for _ in range(2)]
    items = [str(index) for index in range(30)]
    results = await asyncio.gather(
        *(log.item(item, "created", "create", item, "Created") for item in items for log in logs)
    )
    assert sum(results) == len(items)
    stored_run, events, ledger = await stored(sessionmaker, run.id)
    assert stored_run.counts["created"] == len(items) and len(events) == len(items) and len(ledger) == len(items)


async def test_an_attempt_reads_the_done_items_once_and_keeps_them_current(sessionmaker: Sessionmaker) -> None:
    run = await new_run(sessionmaker)
    await RunLog(sessionmaker, run.id, {}).item("1", "skipped", "skip", "x", "Skipped")
    log = RunLog(sessionmaker, run.id, {})
    assert await log.done_items() == {"1"}
    await log.item("2", "linked", "link", "y", "Linked")
    assert await log.is_done("2") and not await log.is_done("3")


async def test_a_retry_redoes_only_what_did_not_go_through_in_its_lineage(sessionmaker: Sessionmaker) -> None:
    first = await new_run(sessionmaker)
    log = RunLog(sessionmaker, first.id, {})
    await log.item("1", "created", "create", "a", "Created")
    await log.item("2", "failed", "fail", "b", "Refused")
    await log.item("3", "skipped", "skip", "c", "Skipped")
    second = await new_run(sessionmaker, retry_of=first.id)
    await RunLog(sessionmaker, second.id, {}).item("2", "failed", "fail", "b", "Refused again")
    third = await new_run(sessionmaker, retry_of=second.id)
    assert await settled_before(sessionmaker, third) == {"1", "3"}
    assert await settled_before(sessionmaker, first) == set()


def alembic(database_url: str, *command: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    subprocess.run([sys.executable, "-m", "alembic", *command], cwd=ROOT, check=True, env=env, capture_output=True)


async def test_the_migration_moves_earlier_runs_done_items_into_the_ledger(migrated_database: str) -> None:
    """Runs made before the ledger keep their items (and a downgrade puts them back in the state)."""
    name = f"{TEST_DATABASE}_ledger_migration"
    postgres = ["-h", "127.0.0.1", "-U", "postgres"]
    subprocess.run(["dropdb", *postgres, "--if-exists", "--force", name], check=True)
    subprocess.run(["createdb", *postgres, name], check=True)
    url = migrated_database.rsplit("/", 1)[0] + f"/{name}"
    connection = None
    try:
        alembic(url, "upgrade", "0019")
        connection = await asyncpg.connect(url.replace("+asyncpg", ""))
        tenant = await connection.fetchval(
            """INSERT INTO tenants (id, slug, name, timezone, key_hash, lucca_base_url, lucca_api_key_encrypted,
               rate_limit_requests, rate_limit_per_seconds, created_at, updated_at)
               VALUES (gen_random_uuid(), 'old', 'Old', 'Europe/Paris', 'h', 'https://x', 'x', 50, 60, now(), now())
               RETURNING id"""
        )
        state = {"done_items": {"1": "created", "2": "failed"}, "pages_done": 3}
        run = await connection.fetchval(
            """INSERT INTO runs (id, tenant_id, connector, operation, trigger, status, counts, input, state,
               created_at, retry_at, failed_attempts, lock_waits)
               VALUES (gen_random_uuid(), $1, 'cards', 'users_import', 'api', 'running', '{}', '{}', $2::jsonb,
               now(), now(), 0, 0) RETURNING id""",
            tenant,
            json.dumps(state),
        )
        alembic(url, "upgrade", "0020")
        ledger = await connection.fetch("SELECT item_id, outcome FROM run_items WHERE run_id = $1 ORDER BY 1", run)
        assert [tuple(row) for row in ledger] == [("1", "created"), ("2", "failed")]
        assert json.loads(await connection.fetchval("SELECT state FROM runs WHERE id = $1", run)) == {"pages_done": 3}
        alembic(url, "downgrade", "0019")
        assert json.loads(await connection.fetchval("SELECT state FROM runs WHERE id = $1", run)) == state
    finally:
        if connection is not None:
            await connection.close()
        subprocess.run(["dropdb", *postgres, "--if-exists", "--force", name], check=True)
