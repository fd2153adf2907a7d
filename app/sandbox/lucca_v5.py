"""Lucca's OAuth API reads (v5, `/lucca-api/…`): employees with their embedded employment and job position, and
departments, in cursor pages (`links.next.href`), from the same state as the legacy API."""

import base64
import binascii
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import URL, QueryParams

from app.sandbox.lucca_gate import AccountDep
from app.sandbox.lucca_models import LuccaError
from app.sandbox.lucca_oauth import V5_SURFACE, v5_response
from app.sandbox.lucca_state import LuccaAccount
from app.sandbox.lucca_v5_records import STATUSES, V5View, employee_status

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
MAX_IDS = 100
INCLUDES = {"embedded", "links", "totalCount"}

router = APIRouter(prefix="/{account}", route_class=V5_SURFACE.route_class(), tags=["lucca v5"])


def csv_values(params: QueryParams, name: str) -> list[str]:
    """A multi-valued filter written `?name=a,b` (or repeated)."""
    return [value.strip() for raw in params.getlist(name) for value in raw.split(",") if value.strip()]


def encode_cursor(after_id: int) -> str:
    """An opaque cursor: the page starts after this id (pages stay right while people come and go)."""
    return "!" + base64.urlsafe_b64encode(f"after:{after_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor this sandbox made starts after."""
    try:
        text = base64.urlsafe_b64decode(cursor[1:] + "=" * (-len(cursor[1:]) % 4)).decode()
        prefix, _, after = text.partition(":")
        if cursor.startswith("!") and prefix == "after" and after.isdigit():
            return int(after)
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise LuccaError(400, f"page '{cursor}' is not a cursor this API gave (follow links.next.href)")


@dataclass(frozen=True)
class PageRequest:
    """What a collection call asks for: how many items, where to start, which extras."""

    limit: int
    after: int | None
    number: int | None
    include: frozenset[str]

    @classmethod
    def parse(cls, params: QueryParams) -> "PageRequest":
        """`limit` (default 25, at most 100), `page` (a cursor, or a page number from 1), `include`."""
        raw_limit = params.get("limit", str(DEFAULT_LIMIT))
        if not raw_limit.isdigit() or int(raw_limit) > MAX_LIMIT:
            raise LuccaError(400, f"limit must be an integer from 0 to {MAX_LIMIT}")
        include = frozenset(csv_values(params, "include"))
        if include - INCLUDES:
            raise LuccaError(400, f"include accepts {', '.join(sorted(INCLUDES))}")
        page = params.get("page")
        if page is None:
            return cls(int(raw_limit), None, None, include)
        if page.isdigit() and int(page) >= 1:
            return cls(int(raw_limit), None, int(page), include)
        return cls(int(raw_limit), decode_cursor(page), None, include)


def collect(ids: Sequence[int], start: int, accepts: Callable[[int], bool], wanted: int, step: int = 1) -> list[int]:
    """Up to `wanted` accepted ids from `ids[start]` on (backwards when `step` is -1)."""
    found: list[int] = []
    position = start
    while 0 <= position < len(ids) and len(found) < wanted:
        if accepts(ids[position]):
            found.append(ids[position])
        position += step
    return found


def collection(
    request: Request, kind: str, ids: Sequence[int], accepts: Callable[[int], bool], page: PageRequest
) -> tuple[list[int], dict[str, Any]]:
    """The ids of the asked page, and the envelope around its items: `type`, `url`, `totalCount`, `links`."""
    start = 0 if page.after is None else bisect_right(ids, page.after)
    skip = (page.number - 1) * page.limit if page.number is not None else 0
    if skip:
        skipped = collect(ids, start, accepts, skip)
        start = bisect_right(ids, skipped[-1]) if len(skipped) == skip else len(ids)
    chosen = collect(ids, start, accepts, page.limit)
    after_chosen = bisect_right(ids, chosen[-1]) if chosen else start
    envelope: dict[str, Any] = {"type": kind, "url": str(request.url)}
    if "totalCount" in page.include:
        envelope["totalCount"] = sum(1 for item_id in ids if accepts(item_id))
    if "links" in page.include:
        more = bool(chosen) and bool(collect(ids, after_chosen, accepts, 1))
        previous = collect(ids, start - 1, accepts, page.limit, step=-1)
        envelope["links"] = {
            "prev": page_link(request.url, ids, previous[-1]) if previous else None,
            "next": {"href": str(request.url.include_query_params(page=encode_cursor(chosen[-1])))} if more else None,
        }
    return chosen, envelope


def page_link(url: URL, ids: Sequence[int], first_id: int) -> dict[str, str]:
    """The link to the page that starts at `first_id`."""
    position = bisect_right(ids, first_id) - 1
    if position == 0:
        return {"href": str(url.remove_query_params("page"))}
    return {"href": str(url.include_query_params(page=encode_cursor(ids[position - 1])))}


def employee_ids(account: LuccaAccount, params: QueryParams) -> list[int]:
    """The ids `?id=a,b` names (at most 100, looked up, not scanned), else every employee's, ascending."""
    named = csv_values(params, "id")
    if not named:
        return account.user_ids()
    if len(named) > MAX_IDS:
        raise LuccaError(400, f"id accepts at most {MAX_IDS} values")
    return sorted({int(value) for value in named if value.isdigit() and int(value) in account.users})


def status_filter(params: QueryParams, today: str, account: LuccaAccount) -> Callable[[int], bool]:
    """`?status=active,upcoming,deactivated`: every status when absent."""
    statuses = set(csv_values(params, "status"))
    if statuses - set(STATUSES):
        raise LuccaError(400, f"status accepts {', '.join(STATUSES)}")
    if not statuses:
        return lambda _: True
    return lambda user_id: employee_status(account.users[user_id], today) in statuses


@router.get("/lucca-api/employees")
async def list_employees(request: Request, lucca: AccountDep) -> JSONResponse:
    """Employees by id, cursor pages; `include=embedded` adds their applicable employment and job position."""
    params = request.query_params
    page = PageRequest.parse(params)
    if params.get("sort", "id") != "id":
        raise LuccaError(400, "the sandbox sorts employees by id only")
    view = V5View.of(lucca, links="links" in page.include)
    ids = employee_ids(lucca, params)
    chosen, body = collection(request, "employees", ids, status_filter(params, view.today, lucca), page)
    users = [lucca.users[user_id] for user_id in chosen]
    body["items"] = [view.employee(user) for user in users]
    if "embedded" in page.include:
        body["embedded"] = view.embedded(users)
    return v5_response(lucca, body)


@router.get("/lucca-api/employees/{employee_id}")
async def get_employee(employee_id: str, request: Request, lucca: AccountDep) -> JSONResponse:
    """One employee, whatever their status."""
    user = lucca.users.get(int(employee_id)) if employee_id.isdigit() else None
    if user is None:
        raise LuccaError(404, "Resource may have previously been deleted.")
    include = set(csv_values(request.query_params, "include"))
    view = V5View.of(lucca, links="links" in include)
    body = view.employee(user)
    if "embedded" in include:
        body["embedded"] = view.embedded([user])
    return v5_response(lucca, body)


@router.get("/lucca-api/departments")
async def list_departments(request: Request, lucca: AccountDep) -> JSONResponse:
    """Departments by id, cursor pages; `isArchived=true|false` (both when absent)."""
    params = request.query_params
    page = PageRequest.parse(params)
    archived = params.get("isArchived")
    if archived not in (None, "true", "false"):
        raise LuccaError(400, "isArchived must be true or false")
    departments = lucca.departments

    def accepts(department_id: int) -> bool:
        return archived is None or (not departments[department_id].is_active) == (archived == "true")

    view = V5View.of(lucca, links="links" in page.include)
    chosen, body = collection(request, "departments", sorted(departments), accepts, page)
    body["items"] = [view.department(departments[department_id]) for department_id in chosen]
    return v5_response(lucca, body)


@router.get("/lucca-api/departments/{department_id}")
async def get_department(department_id: str, lucca: AccountDep) -> JSONResponse:
    """One department, archived or not."""
    department = lucca.departments.get(int(department_id)) if department_id.isdigit() else None
    if department is None:
        raise LuccaError(404, "Resource may have previously been deleted.")
    return v5_response(lucca, V5View.of(lucca).department(department))
