"""What the service reads of a Lucca directory, whichever of Lucca's two APIs it comes through (CONTRACT section 13).

A `DirectoryReader` yields `DirectoryPerson` and `DirectoryDepartment` values: the legacy API (`LegacyDirectory`, an
API key, 1,000 people a call, `modifiedAt` filter, `e_` fields) and the OAuth API (v5, 100 a call, no modified-since
filter, no `e_` fields) both speak it, so the copy and its readers do not care where a person came from.
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol

from app.clients.lucca import USER_FIELDS, V3_MAX_PAGE_SIZE, Department, LuccaClient, LuccaUser

Api = Literal["legacy", "v5"]
# The legacy fields a directory read asks for: the user fields, when the user last changed, and every `e_` field.
DIRECTORY_FIELDS = (*USER_FIELDS, "modifiedAt", "extendedData")


@dataclass(frozen=True)
class DirectoryPerson:
    """One employee (former and future ones included) as the copy holds them."""

    lucca_id: int
    first_name: str | None
    last_name: str | None
    email: str | None
    employee_number: str | None = None
    job_title: str | None = None
    department_id: int | None = None
    manager_id: int | None = None
    legal_entity_id: int | None = None
    contract_start: date | None = None
    contract_end: date | None = None
    extended: dict[str, Any] = field(default_factory=dict)
    # When Lucca last changed this person (UTC); None when the API did not say.
    modified_at: datetime | None = None


@dataclass(frozen=True)
class DirectoryDepartment:
    lucca_id: int
    name: str
    head_id: int | None = None
    parent_id: int | None = None
    active: bool = True


class DirectoryReader(Protocol):
    """Reads one tenant's directory through one of Lucca's APIs; every call counts in the account's rate limit."""

    api: Api
    # What Lucca announced while reading (a `Sunset` or `Deprecation` header, a 410), in plain words.
    notices: list[str]
    # Where the page after the last one `employee_pages` yielded starts (None after the last page): a read cut
    # there goes on from it, given back as `start`.
    resume_at: str | None

    def employee_pages(self, start: str | None = None) -> AsyncIterator[list[DirectoryPerson]]:
        """Every employee, former ones included, a page at a time (as the API pages them), from the first page or
        from `start` (a `resume_at` of an earlier read)."""
        ...

    async def departments(self) -> list[DirectoryDepartment]:
        """Every department, archived ones included."""
        ...

    async def employees_by_id(self, lucca_ids: Sequence[int]) -> list[DirectoryPerson]:
        """These employees as Lucca holds them now (ids it no longer holds are absent), in as few calls as the API
        allows: at most one call per 100 ids."""
        ...


def as_utc(moment: datetime | None) -> datetime | None:
    """Lucca's legacy API writes `modifiedAt` without an offset: it is read as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def uncolumned_fields(user: LuccaUser) -> dict[str, Any]:
    """The user fields an Elevo extra column may name that the copy has no column for, kept in `extended` under
    Lucca's names (never `e_` codes): only the legacy API has them."""
    values = {"login": user.login, "personalEmail": user.personal_email, "rolePrincipalId": user.role_principal_id}
    return {name: value for name, value in values.items() if value is not None}


def person_from_v3(user: LuccaUser) -> DirectoryPerson:
    return DirectoryPerson(
        lucca_id=user.id,
        first_name=user.first_name,
        last_name=user.last_name,
        email=user.mail,
        employee_number=user.employee_number,
        job_title=user.job_title,
        department_id=user.department_id,
        manager_id=user.manager_id,
        legal_entity_id=user.legal_entity_id,
        contract_start=user.dt_contract_start,
        contract_end=user.dt_contract_end,
        extended={**(user.extended_data or {}), **uncolumned_fields(user)},
        modified_at=as_utc(user.modified_at),
    )


def department_from_v4(department: Department) -> DirectoryDepartment:
    # v4 writes the parent as a path ("/1/2/"): its last id is the parent department.
    parent = (department.parent_id or "").strip("/").rsplit("/", 1)[-1]
    return DirectoryDepartment(
        lucca_id=department.id,
        name=department.name,
        head_id=department.head_id,
        parent_id=int(parent) if parent.isdigit() else None,
        active=department.is_active,
    )


class LegacyDirectory:
    """The directory through the API key: users from v3 (1,000 a call), departments from v4."""

    api: Api = "legacy"

    def __init__(self, lucca: LuccaClient) -> None:
        self._lucca = lucca
        self.notices = lucca.notices
        self.resume_at: str | None = None

    async def employee_pages(self, start: str | None = None) -> AsyncIterator[list[DirectoryPerson]]:
        # In id order, so that a read goes on after the last id it wrote (`start`), which people hired or deleted
        # in the meantime do not shift as they would an offset.
        filters = {"orderBy": "id,asc"} | ({"id": f"greaterthan,{int(start)}"} if start else {})
        pages = self._lucca.user_pages(fields=DIRECTORY_FIELDS, filters=filters, page_size=V3_MAX_PAGE_SIZE)
        async for page in pages:
            full = len(page) == V3_MAX_PAGE_SIZE
            self.resume_at = str(max(user.id for user in page)) if full else None
            yield [person_from_v3(user) for user in page]

    async def changed_since(self, since: datetime) -> AsyncIterator[list[DirectoryPerson]]:
        """The employees Lucca changed since `since` (`modifiedAt=since,…`): one call when nothing changed."""
        moment = since.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
        pages = self._lucca.user_pages(fields=DIRECTORY_FIELDS, filters={"modifiedAt": f"since,{moment}"})
        async for page in pages:
            yield [person_from_v3(user) for user in page]

    async def departments(self) -> list[DirectoryDepartment]:
        departments = await self._lucca.list_departments(fresh=True)
        return [department_from_v4(department) for department in departments]

    async def employees_by_id(self, lucca_ids: Sequence[int]) -> list[DirectoryPerson]:
        # The directory's fields (modifiedAt and the `e_` fields too), former employees included: 1,000 ids a call.
        people: list[DirectoryPerson] = []
        wanted = sorted(set(lucca_ids))
        for start in range(0, len(wanted), V3_MAX_PAGE_SIZE):
            chunk = ",".join(str(lucca_id) for lucca_id in wanted[start : start + V3_MAX_PAGE_SIZE])
            pages = self._lucca.user_pages(fields=DIRECTORY_FIELDS, filters={"id": chunk})
            people += [person_from_v3(user) async for page in pages for user in page]
        return people
