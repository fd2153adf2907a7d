"""What the connectors read of a tenant's directory copy (CONTRACT section 13): never a Lucca call.

Each function is one indexed query. Whole people come back as `LuccaUser` values built from the copy (the fields the
legacy API names, `extended` as its `extendedData`), so the Elevo file and the statistics push read the copy as they
read Lucca; the Cards listings and imports get `Person` tuples of the few columns they show. A person is *current*
when they are not gone from Lucca and their contract did not end before today in the tenant's time zone (Lucca's own
`formerEmployees=false`).
"""

import uuid
from datetime import date, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.lucca import Department, LuccaUser
from app.db import Sessionmaker
from app.models import Tenant
from app.models.directory import DirectoryDepartment, DirectoryEmployee, DirectoryState
from app.schemas.directory_load import DirectoryLoad

Employee = DirectoryEmployee
# The user fields the copy has no column for: the legacy API's reads keep them in `extended` under these names.
UNCOLUMNED = {"login": "login", "personalEmail": "personal_email", "rolePrincipalId": "role_principal_id"}


def today_of(tenant: Tenant) -> date:
    """Today in the tenant's time zone: whose contract ended before it is a former employee."""
    return datetime.now(ZoneInfo(tenant.timezone)).date()


def present(tenant_id: uuid.UUID) -> ColumnElement[bool]:
    """People the copy holds for the tenant who are not gone from Lucca (former employees included)."""
    return and_(Employee.tenant_id == tenant_id, Employee.gone_at.is_(None))


def current(tenant_id: uuid.UUID, today: date) -> ColumnElement[bool]:
    return and_(present(tenant_id), or_(Employee.contract_end.is_(None), Employee.contract_end >= today))


def as_user(row: Employee) -> LuccaUser:
    """A copy's row as the legacy API's user (built without validation: the copy holds valid values)."""
    extended = dict(row.extended or {})
    uncolumned = {attribute: extended.pop(field, None) for field, attribute in UNCOLUMNED.items()}
    return LuccaUser.model_construct(
        id=row.lucca_id,
        first_name=row.first_name,
        last_name=row.last_name,
        mail=row.email,
        employee_number=row.employee_number,
        job_title=row.job_title,
        dt_contract_start=row.contract_start,
        dt_contract_end=row.contract_end,
        department_id=row.department_id,
        legal_entity_id=row.legal_entity_id,
        manager_id=row.manager_id,
        extended_data=extended,
        modified_at=row.version,
        **uncolumned,
    )


def with_department_names(query: Select[Any]) -> Select[Any]:
    named = and_(
        DirectoryDepartment.tenant_id == Employee.tenant_id, DirectoryDepartment.lucca_id == Employee.department_id
    )
    return query.add_columns(DirectoryDepartment.name).outerjoin(DirectoryDepartment, named)


class Person(NamedTuple):
    """A current employee as the Cards listings and imports read them (named as the legacy API's user: `id`,
    `mail`): a plain tuple, cheap to make by the 20,000."""

    id: int
    first_name: str | None
    last_name: str | None
    mail: str | None
    department_id: int | None
    department_name: str | None


async def current_employees(session: AsyncSession, tenant_id: uuid.UUID, today: date) -> list[Person]:
    """Every current employee by Lucca id, with their department's name: only the columns the Cards listings and
    imports read."""
    named = and_(
        DirectoryDepartment.tenant_id == Employee.tenant_id, DirectoryDepartment.lucca_id == Employee.department_id
    )
    query = (
        select(Employee.lucca_id, Employee.first_name, Employee.last_name, Employee.email, Employee.department_id,
               DirectoryDepartment.name)
        .outerjoin(DirectoryDepartment, named)
        .where(current(tenant_id, today))
        .order_by(Employee.lucca_id)
    )  # fmt: skip
    return [Person._make(row) for row in await session.execute(query)]


async def employee_page(
    session: AsyncSession, tenant_id: uuid.UUID, after_id: int, limit: int, *, today: date | None = None
) -> list[LuccaUser]:
    """Up to `limit` people after Lucca id `after_id`, by id: current ones only when `today` is given, else every
    one not gone (former employees too). A whole directory is read a page at a time, never held."""
    kept = present(tenant_id) if today is None else current(tenant_id, today)
    query = select(Employee).where(kept, Employee.lucca_id > after_id).order_by(Employee.lucca_id).limit(limit)
    return [as_user(person) for person in await session.scalars(query)]


def lowered_email() -> ColumnElement[str]:
    # The expression of the index `ix_directory_employees_tenant_id_lower_email`.
    return func.lower(Employee.email)


async def current_matching(
    session: AsyncSession, tenant_id: uuid.UUID, emails: Select[Any], today: date, after_id: int, limit: int
) -> list[LuccaUser]:
    """Up to `limit` current employees after Lucca id `after_id`, by id, whose lower-cased e-mail `emails` (a
    one-column query) holds: the statistics push reads only the employees with learning events."""
    query = select(Employee).where(current(tenant_id, today), Employee.lucca_id > after_id, lowered_email().in_(emails))
    return [as_user(person) for person in await session.scalars(query.order_by(Employee.lucca_id).limit(limit))]


async def departments(session: AsyncSession, tenant_id: uuid.UUID, *, active_only: bool = False) -> list[Department]:
    """The departments the copy holds (not gone), by Lucca id, as the legacy API's v4 departments."""
    query = select(DirectoryDepartment).where(
        DirectoryDepartment.tenant_id == tenant_id, DirectoryDepartment.gone_at.is_(None)
    )
    if active_only:
        query = query.where(DirectoryDepartment.active)
    rows = await session.scalars(query.order_by(DirectoryDepartment.lucca_id))
    return [
        Department.model_construct(
            id=row.lucca_id, name=row.name, head_id=row.head_id, is_active=row.active, parent_id=None, hierarchy=None
        )
        for row in rows
    ]


async def load_state(session: AsyncSession, tenant_id: uuid.UUID) -> DirectoryLoad:
    """How far the tenant's copy is: one primary-key read of its state."""
    state = await session.get(DirectoryState, tenant_id)
    if state is not None and state.last_full_sync_at is not None:
        when = (state.fresh_at or state.last_full_sync_at).strftime("%Y-%m-%d %H:%M UTC")
        message = f"Read from the service's copy of Lucca's directory, in line with Lucca at {when}."
        return DirectoryLoad(status="ready", progress=state.sync_progress, message=message)
    if state is None or state.sync_run_id is None:
        message = (
            "Lucca's directory has not been read yet: its first full sync starts when a connector that reads it is "
            "enabled (or with POST …/lucca/directory/sync). This list fills in once it completes."
        )
        return DirectoryLoad(status="loading", progress=0, message=message)
    read = state.sync_progress
    message = (
        f"Lucca's directory is still loading ({read:,} {'person' if read == 1 else 'people'} read so far): "
        "this list fills in once its first full sync completes."
    )
    return DirectoryLoad(status="loading", progress=read, message=message)


async def change_cursor(sessionmaker: Sessionmaker, tenant_id: uuid.UUID) -> int:
    """The copy's newest `change_seq` (people and departments). Its writers hold the tenant's state row until they
    commit: sharing it waits for them, so every change up to the cursor is committed and read by what follows."""
    async with sessionmaker.begin() as session:
        await session.execute(
            select(DirectoryState.tenant_id).where(DirectoryState.tenant_id == tenant_id).with_for_update(read=True)
        )
        people = select(func.max(DirectoryEmployee.change_seq)).where(DirectoryEmployee.tenant_id == tenant_id)
        teams = select(func.max(DirectoryDepartment.change_seq)).where(DirectoryDepartment.tenant_id == tenant_id)
        newest = [await session.scalar(people), await session.scalar(teams)]
    return max((seq for seq in newest if seq is not None), default=0)
