"""Writing the directory copy: pages of people and departments, newest state wins, mark and sweep.

Each page is one `INSERT … ON CONFLICT DO UPDATE` that replaces a row only when the incoming version is at least the
stored one and something differs (or the row was gone): `change_seq` moves only then, so followers of the directory
see real changes only. A second statement on the same keys records which full sync saw each row and lets a newer
version of an unchanged row move its version forward (so a late, older state cannot replace it). Both cost the same
for every page, however large the directory.

Every write takes the tenant's state row first: the writers of one tenant's copy (a full sync's pages, polls,
events) take turns, always locking in the same order, so two of them never deadlock on each other's rows.
"""

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, bindparam, func, literal_column, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from app.clients.lucca_directory import DirectoryDepartment as Department
from app.clients.lucca_directory import DirectoryPerson
from app.models.base import utcnow
from app.models.directory import CHANGE_SEQ, DirectoryDepartment, DirectoryEmployee, DirectoryState

Table = type[DirectoryEmployee] | type[DirectoryDepartment]

PERSON_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "employee_number",
    "job_title",
    "department_id",
    "manager_id",
    "legal_entity_id",
    "contract_start",
    "contract_end",
    "extended",
)
DEPARTMENT_FIELDS = ("name", "head_id", "parent_id", "active")


@dataclass(frozen=True)
class Upserted:
    """What a page changed in the copy: rows new to it, and rows whose state changed (or came back)."""

    added: int = 0
    updated: int = 0

    @property
    def changed(self) -> int:
        return self.added + self.updated


async def upsert_people(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    people: Sequence[DirectoryPerson],
    *,
    seen_by: uuid.UUID | None = None,
    read_at: datetime,
) -> Upserted:
    """Write a page of people as Lucca holds them; a person's version is Lucca's `modifiedAt`, else `read_at`."""
    rows = {
        person.lucca_id: {
            **{name: value for name, value in asdict(person).items() if name in PERSON_FIELDS},
            "lucca_id": person.lucca_id,
            "version": person.modified_at or read_at,
        }
        for person in people
    }
    return await upsert(session, DirectoryEmployee, PERSON_FIELDS, tenant_id, list(rows.values()), seen_by)


async def upsert_departments(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    departments: Sequence[Department],
    *,
    seen_by: uuid.UUID | None = None,
    read_at: datetime,
) -> Upserted:
    """Write departments as Lucca holds them (Lucca gives departments no modification time: `read_at` is theirs)."""
    rows = {department.lucca_id: {**asdict(department), "version": read_at} for department in departments}
    return await upsert(session, DirectoryDepartment, DEPARTMENT_FIELDS, tenant_id, list(rows.values()), seen_by)


async def upsert(
    session: AsyncSession,
    table: Table,
    fields: Sequence[str],
    tenant_id: uuid.UUID,
    rows: list[dict[str, Any]],
    seen_by: uuid.UUID | None,
) -> Upserted:
    if not rows:
        return Upserted()
    await lock_state(session, tenant_id)
    given = insert(table).values([{**row, "tenant_id": tenant_id, "seen_by": seen_by} for row in rows])
    new = given.excluded
    columns = table.__table__.c
    differs = tuple_(*(columns[name] for name in fields)).is_distinct_from(tuple_(*(new[name] for name in fields)))
    statement: ReturningInsert[Any] = given.on_conflict_do_update(
        index_elements=[columns.tenant_id, columns.lucca_id],
        set_={
            **{name: new[name] for name in fields},
            "version": new.version,
            "gone_at": None,
            "seen_by": func.coalesce(new.seen_by, columns.seen_by),
            "change_seq": CHANGE_SEQ.next_value(),
        },
        where=(new.version >= columns.version) & (differs | columns.gone_at.is_not(None)),
    ).returning(literal_column("xmax = 0"))
    inserted: list[bool] = list((await session.execute(statement)).scalars())
    await see_rows(session, table, tenant_id, rows, seen_by)
    result = Upserted(added=sum(inserted), updated=len(inserted) - sum(inserted))
    if result.changed:
        await note_change(session, tenant_id, utcnow())
    return result


async def see_rows(
    session: AsyncSession, table: Table, tenant_id: uuid.UUID, rows: list[dict[str, Any]], seen_by: uuid.UUID | None
) -> None:
    """Rows the page left as they were: mark them seen by the full sync, and move a newer version forward."""
    page = select(
        func.unnest(bindparam("ids", [row["lucca_id"] for row in rows], ARRAY(Integer))).label("lucca_id"),
        func.unnest(bindparam("versions", [row["version"] for row in rows], ARRAY(DateTime(timezone=True)))).label(
            "version"
        ),
    ).subquery()
    columns = table.__table__.c
    stale = columns.version < page.c.version
    if seen_by is not None:
        stale |= columns.seen_by.is_distinct_from(seen_by)
    await session.execute(
        update(table)
        .where(columns.tenant_id == tenant_id, columns.lucca_id == page.c.lucca_id, stale)
        .values(
            version=func.greatest(columns.version, page.c.version),
            seen_by=seen_by if seen_by is not None else columns.seen_by,
        )
        .execution_options(synchronize_session=False)
    )


async def mark_gone(session: AsyncSession, tenant_id: uuid.UUID, lucca_ids: Sequence[int], at: datetime) -> int:
    """People Lucca says are deleted: gone from `at` on (an older state read later does not bring them back)."""
    if not lucca_ids:
        return 0
    await lock_state(session, tenant_id)
    marked = await session.execute(
        update(DirectoryEmployee)
        .where(
            DirectoryEmployee.tenant_id == tenant_id,
            DirectoryEmployee.lucca_id.in_(lucca_ids),
            DirectoryEmployee.gone_at.is_(None),
        )
        .values(gone_at=at, version=func.greatest(DirectoryEmployee.version, at), change_seq=CHANGE_SEQ.next_value())
        .returning(DirectoryEmployee.lucca_id)
        .execution_options(synchronize_session=False)
    )
    count = len(marked.all())
    if count:
        await note_change(session, tenant_id, at)
    return count


async def sweep(
    session: AsyncSession, tenant_id: uuid.UUID, sync_run_id: uuid.UUID, at: datetime, *, started_at: datetime
) -> int:
    """After a complete read by `sync_run_id`: mark gone the people and departments it did not see. Only rows
    known at a version before the read started: one a poll or an event wrote while it read is not swept.
    Returns how many people went."""
    await lock_state(session, tenant_id)
    gone = 0
    for table in (DirectoryEmployee, DirectoryDepartment):
        columns = table.__table__.c
        swept = await session.execute(
            update(table)
            .where(
                columns.tenant_id == tenant_id,
                columns.gone_at.is_(None),
                columns.seen_by.is_distinct_from(sync_run_id),
                columns.version < started_at,
            )
            .values(gone_at=at, change_seq=CHANGE_SEQ.next_value())
            .returning(columns.lucca_id)
            .execution_options(synchronize_session=False)
        )
        count = len(swept.all())
        if count:
            await note_change(session, tenant_id, at)
        if table is DirectoryEmployee:
            gone = count
    return gone


async def state(session: AsyncSession, tenant_id: uuid.UUID) -> DirectoryState | None:
    return await session.get(DirectoryState, tenant_id)


async def ensure_state(session: AsyncSession, tenant_id: uuid.UUID, *, lock: bool = False) -> DirectoryState:
    """The tenant's directory state, made if missing; `lock` holds its row until the transaction ends (what
    changes how the copy is kept takes turns on it)."""
    await session.execute(insert(DirectoryState).values(tenant_id=tenant_id).on_conflict_do_nothing())
    query = select(DirectoryState).where(DirectoryState.tenant_id == tenant_id)
    if lock:
        query = query.with_for_update()
    found = await session.scalar(query.execution_options(populate_existing=True))
    assert found is not None
    return found


async def lock_state(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Hold the tenant's state row (made if missing) until the transaction ends: taken before any row of the copy."""
    await session.execute(insert(DirectoryState).values(tenant_id=tenant_id).on_conflict_do_nothing())
    await session.execute(
        select(DirectoryState.tenant_id).where(DirectoryState.tenant_id == tenant_id).with_for_update()
    )


async def note_change(session: AsyncSession, tenant_id: uuid.UUID, at: datetime) -> None:
    """A row of the copy changed at `at`."""
    await _note_moment(session, tenant_id, "last_change_at", at)


async def note_fresh(session: AsyncSession, tenant_id: uuid.UUID, at: datetime) -> None:
    """The copy was known to be in line with Lucca at `at` (a completed read)."""
    await _note_moment(session, tenant_id, "fresh_at", at)


async def _note_moment(session: AsyncSession, tenant_id: uuid.UUID, column: str, at: datetime) -> None:
    """Set a moment of the state, never backwards (workers may finish out of order)."""
    statement = insert(DirectoryState).values(tenant_id=tenant_id, **{column: at})
    current = DirectoryState.__table__.c[column]
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[DirectoryState.tenant_id],
            set_={column: func.greatest(current, statement.excluded[column]), "updated_at": utcnow()},
        )
    )


async def note_notices(
    session: AsyncSession, tenant_id: uuid.UUID, notices: Sequence[str], *, complete: bool = False
) -> list[str]:
    """Keep what Lucca announced about the paths the service reads (each notice once); returns the new ones. A
    complete read's notices replace the kept ones: what Lucca no longer announces is gone."""
    if not notices and not complete:
        return []
    found = await ensure_state(session, tenant_id, lock=True)
    kept = list(found.notices or [])
    new = [notice for notice in dict.fromkeys(notices) if notice not in kept]
    found.notices = list(dict.fromkeys(notices)) if complete else kept + new
    await session.flush()
    return new
