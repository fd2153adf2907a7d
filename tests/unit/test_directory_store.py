"""The directory store on the real Postgres: newest state wins, only real changes move `change_seq`, mark and sweep."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.clients.lucca_directory import DirectoryDepartment as Department
from app.clients.lucca_directory import DirectoryPerson
from app.db import Sessionmaker, create_engine, create_sessionmaker
from app.directory import store
from app.models import Tenant
from app.models.directory import DirectoryDepartment, DirectoryEmployee

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
async def sessionmaker(migrated_database: str) -> AsyncIterator[Sessionmaker]:
    engine = create_engine(migrated_database)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def tenant_id(sessionmaker: Sessionmaker) -> uuid.UUID:
    tenant = Tenant(
        slug=f"store-{uuid.uuid4().hex[:8]}",
        name="Store SAS",
        timezone="Europe/Paris",
        key_hash=uuid.uuid4().hex,
        lucca_base_url="https://store.ilucca.net",
        lucca_api_key_encrypted="x",
        rate_limit_requests=50,
        rate_limit_per_seconds=60,
    )
    async with sessionmaker.begin() as session:
        session.add(tenant)
    return tenant.id


def person(lucca_id: int, modified_at: datetime | None = T0, **fields: object) -> DirectoryPerson:
    base = DirectoryPerson(
        lucca_id=lucca_id,
        first_name="Claire",
        last_name=f"Martin{lucca_id}",
        email=f"p{lucca_id}@acme.fr",
        department_id=10,
        extended={"e_skip": False},
        modified_at=modified_at,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


async def rows(sessionmaker: Sessionmaker, tenant_id: uuid.UUID) -> dict[int, DirectoryEmployee]:
    async with sessionmaker() as session:
        found = await session.scalars(select(DirectoryEmployee).where(DirectoryEmployee.tenant_id == tenant_id))
        return {row.lucca_id: row for row in found}


async def upsert(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID, *people: DirectoryPerson, seen_by: uuid.UUID | None = None
) -> store.Upserted:
    async with sessionmaker.begin() as session:
        return await store.upsert_people(session, tenant_id, people, seen_by=seen_by, read_at=T0 + timedelta(hours=1))


async def test_new_people_are_added_and_an_unchanged_page_changes_nothing(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID
) -> None:
    assert await upsert(sessionmaker, tenant_id, person(1), person(2)) == store.Upserted(added=2)
    before = await rows(sessionmaker, tenant_id)
    assert before[1].email == "p1@acme.fr" and before[1].extended == {"e_skip": False}
    assert before[1].version == T0

    assert await upsert(sessionmaker, tenant_id, person(1), person(2)) == store.Upserted()
    after = await rows(sessionmaker, tenant_id)
    assert {key: row.change_seq for key, row in after.items()} == {key: row.change_seq for key, row in before.items()}
    async with sessionmaker() as session:
        state = await store.state(session, tenant_id)
    assert state is not None and state.last_change_at is not None


async def test_a_change_moves_change_seq_and_an_older_version_is_ignored(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID
) -> None:
    await upsert(sessionmaker, tenant_id, person(1), person(2))
    before = await rows(sessionmaker, tenant_id)
    newer = person(1, modified_at=T0 + timedelta(minutes=5), email="claire@acme.fr")
    assert await upsert(sessionmaker, tenant_id, newer) == store.Upserted(updated=1)
    changed = await rows(sessionmaker, tenant_id)
    assert changed[1].email == "claire@acme.fr" and changed[1].change_seq > before[1].change_seq
    assert changed[2].change_seq == before[2].change_seq

    # An older state read late (an event out of order) does not replace the newer one.
    older = person(1, modified_at=T0 + timedelta(minutes=1), email="old@acme.fr")
    assert await upsert(sessionmaker, tenant_id, older) == store.Upserted()
    after = await rows(sessionmaker, tenant_id)
    assert after[1].email == "claire@acme.fr" and after[1].change_seq == changed[1].change_seq


async def test_a_newer_version_of_an_unchanged_row_moves_its_version_only(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID
) -> None:
    await upsert(sessionmaker, tenant_id, person(1, modified_at=None))
    before = (await rows(sessionmaker, tenant_id))[1]
    async with sessionmaker.begin() as session:
        later = T0 + timedelta(hours=3)
        assert await store.upsert_people(session, tenant_id, [person(1, modified_at=None)], read_at=later) == (
            store.Upserted()
        )
    after = (await rows(sessionmaker, tenant_id))[1]
    assert after.version == T0 + timedelta(hours=3) and after.change_seq == before.change_seq
    # So a state read before that, arriving late, is older and ignored.
    stale = person(1, modified_at=T0 + timedelta(hours=2), email="stale@acme.fr")
    assert await upsert(sessionmaker, tenant_id, stale) == store.Upserted()


async def test_gone_and_back(sessionmaker: Sessionmaker, tenant_id: uuid.UUID) -> None:
    await upsert(sessionmaker, tenant_id, person(1), person(2))
    deleted_at = T0 + timedelta(minutes=10)
    async with sessionmaker.begin() as session:
        assert await store.mark_gone(session, tenant_id, [1], deleted_at) == 1
        assert await store.mark_gone(session, tenant_id, [1], deleted_at) == 0
    gone = await rows(sessionmaker, tenant_id)
    assert gone[1].gone_at == deleted_at and gone[2].gone_at is None
    # A state from before the deletion does not bring them back; a newer one does.
    assert await upsert(sessionmaker, tenant_id, person(1)) == store.Upserted()
    back = person(1, modified_at=T0 + timedelta(minutes=20))
    assert await upsert(sessionmaker, tenant_id, back) == store.Upserted(updated=1)
    after = await rows(sessionmaker, tenant_id)
    assert after[1].gone_at is None and after[1].change_seq > gone[1].change_seq


async def test_the_sweep_marks_gone_only_who_the_completed_read_did_not_see(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    await upsert(sessionmaker, tenant_id, person(1), person(2), person(3), seen_by=first)
    started = T0 + timedelta(hours=2)
    # The second read sees 1 and 2 (unchanged); meanwhile a poll writes person 4, created after the read started.
    await upsert(sessionmaker, tenant_id, person(1), person(2), seen_by=second)
    await upsert(sessionmaker, tenant_id, person(4, modified_at=started + timedelta(seconds=5)))
    async with sessionmaker.begin() as session:
        await store.upsert_departments(
            session, tenant_id, [Department(10, "Sales"), Department(11, "Old")], seen_by=first, read_at=T0
        )
        await store.upsert_departments(session, tenant_id, [Department(10, "Sales")], seen_by=second, read_at=started)
    before = await rows(sessionmaker, tenant_id)
    swept_at = started + timedelta(minutes=1)
    async with sessionmaker.begin() as session:
        assert await store.sweep(session, tenant_id, second, swept_at, started_at=started) == 1
    after = await rows(sessionmaker, tenant_id)
    assert {key for key, row in after.items() if row.gone_at} == {3}
    assert after[3].change_seq > before[3].change_seq and after[1].change_seq == before[1].change_seq
    async with sessionmaker() as session:
        departments = {
            row.lucca_id: row.gone_at
            for row in await session.scalars(
                select(DirectoryDepartment).where(DirectoryDepartment.tenant_id == tenant_id)
            )
        }
    assert departments == {10: None, 11: swept_at}
    # Swept again: nobody else goes, and who is gone stays gone once.
    async with sessionmaker.begin() as session:
        assert await store.sweep(session, tenant_id, second, swept_at, started_at=started) == 0


async def test_the_state_is_made_once_and_its_moments_never_go_back(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID
) -> None:
    async with sessionmaker.begin() as session:
        await store.note_fresh(session, tenant_id, T0 + timedelta(minutes=5))
        await store.note_fresh(session, tenant_id, T0)
        await store.note_notices(session, tenant_id, ["Lucca will retire /api/v3/users on 2027-06-01.", "x", "x"])
        await store.note_notices(session, tenant_id, ["x"])
    async with sessionmaker() as session:
        state = await store.ensure_state(session, tenant_id)
    assert state.fresh_at == T0 + timedelta(minutes=5)
    assert state.notices == ["Lucca will retire /api/v3/users on 2027-06-01.", "x"]
