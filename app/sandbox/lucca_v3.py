"""Lucca's v3 users API (API key): `fields`, `paging`, filters (`modifiedAt=since,…` included), writes."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams

from app.sandbox.lucca_filters import COMPARISONS, Filter, lucca_moment, parse_filters
from app.sandbox.lucca_gate import AccountDep, LegacyRoute
from app.sandbox.lucca_models import USER_PROPERTIES, LuccaError, LuccaModel, User, lookup, user_value
from app.sandbox.lucca_state import LuccaAccount
from app.sandbox.lucca_users import (
    REQUIRED_USER_FIELDS,
    build_user,
    check_references,
    check_required,
    read_user_body,
    write_extended_data,
)

FIELD_TOKEN = re.compile(r"([^,\[\]]+)(?:\[([^\]]*)\])?")
DEFAULT_USER_FIELDS = "id,name,url"
RELATION_FIELDS = ("id", "name", "url")
MAX_USERS_PAGE = 1000
RELATIONS = ("department", "legalEntity", "manager", "rolePrincipal")
USER_FIELD_KEYS = {name.lower(): name for name in [*USER_PROPERTIES, "url", "extendedData", *RELATIONS]}
FULL_USER_FIELDS: dict[str, list[str] | None] = dict.fromkeys(USER_FIELD_KEYS.values())


def user_properties(user: User) -> dict[str, Any]:
    """The user's own properties, plus the derived `name`."""
    properties = user.model_dump(by_alias=True, exclude={"extended_data"})
    properties["name"] = f"{user.first_name} {user.last_name}"
    return properties


@dataclass(frozen=True)
class UserView:
    """Renders one account's users as Lucca does, with URLs under the caller's base URL."""

    account: LuccaAccount
    base_url: str

    @classmethod
    def of(cls, request: Request, account: LuccaAccount, name: str) -> "UserView":
        """The view for a request made to the account `name`."""
        return cls(account, f"{str(request.base_url).rstrip('/')}/{name}")

    def related(self, resource: str, item: LuccaModel | None) -> dict[str, Any] | None:
        """A related object (department, establishment, role) with its URL."""
        if item is None:
            return None
        return {**item.model_dump(by_alias=True), "url": f"{self.base_url}/api/v3/{resource}/{item.id}"}

    def record(self, user: User) -> dict[str, Any]:
        """Every field Lucca can return for this user; relations as whole objects."""
        account = self.account
        manager = lookup(account.users, user.manager_id)
        return {
            **user_properties(user),
            "url": f"{self.base_url}/api/v3/users/{user.id}",
            "extendedData": user.extended_data,
            "department": self.related("departments", lookup(account.departments, user.department_id)),
            "legalEntity": self.establishment(user.legal_entity_id),
            "rolePrincipal": self.related("roles", lookup(account.roles, user.role_principal_id)),
            "manager": None if manager is None else self.manager_record(manager),
        }

    def establishment(self, establishment_id: int | None) -> dict[str, Any] | None:
        """The user's `legalEntity` object: v3's name for the establishment."""
        return self.related("legalentities", lookup(self.account.establishments, establishment_id))

    def manager_record(self, manager: User) -> dict[str, Any]:
        """The manager object: their properties and URL (not their own relations)."""
        return {**user_properties(manager), "url": f"{self.base_url}/api/v3/users/{manager.id}"}

    def render(self, user: User, fields: dict[str, list[str] | None]) -> dict[str, Any]:
        """The user with only the asked fields, as `?fields=` selects them."""
        return select_fields(self.record(user), fields)


def select_fields(record: dict[str, Any], fields: dict[str, list[str] | None]) -> dict[str, Any]:
    """Keeps the asked fields; an object field keeps its asked subfields (relations: id, name, url)."""
    selected: dict[str, Any] = {}
    for name, subfields in fields.items():
        key = USER_FIELD_KEYS.get(name.lower())
        if key is None:
            continue
        value = record[key]
        wanted = subfields or (RELATION_FIELDS if key in RELATIONS else None)
        if wanted and isinstance(value, dict):
            value = {sub: value[sub] for sub in wanted if sub in value}
        selected[key] = value
    return selected


def parse_fields(raw: str) -> dict[str, list[str] | None]:
    """Parses `fields=id,manager[id,name],rolePrincipal.name,collection.count`."""
    fields: dict[str, list[str] | None] = {}
    for token in FIELD_TOKEN.finditer(raw):
        name, subfields = token[1].strip(), token[2]
        if "." in name and name.lower() != "collection.count":
            name, subfields = name.split(".", 1)
        if not name:
            continue
        wanted = [sub.strip() for sub in subfields.split(",")] if subfields is not None else None
        previous = fields.get(name)
        fields[name] = wanted if previous is None else previous + (wanted or [])
    return fields


def parse_paging(raw: str | None) -> tuple[int, int]:
    """Parses v3 `paging=offset,limit` (default 0,1000)."""
    if raw is None:
        return 0, MAX_USERS_PAGE
    try:
        offset, limit = (int(part) for part in raw.split(","))
    except ValueError as exc:
        raise LuccaError(400, f"paging '{raw}' must be 'offset,limit'") from exc
    if offset < 0 or not 0 < limit <= MAX_USERS_PAGE:
        raise LuccaError(400, f"paging limit must be between 1 and {MAX_USERS_PAGE}, offset at least 0")
    return offset, limit


def select_users(account: LuccaAccount, params: QueryParams) -> list[User]:
    """The users the query asks for, ordered by id; former employees only when asked."""
    filters = parse_filters(params, USER_PROPERTIES)
    include_former = params.get("formerEmployees", "").lower() == "true" or any(
        condition.prop == "dtContractEnd" for condition in filters
    )
    today = date.today().isoformat()
    tests = [user_test(condition) for condition in filters]
    candidates = (account.users[user_id] for user_id in candidate_ids(account, filters))
    return [
        user
        for user in candidates
        if (include_former or not user.has_left(today)) and all(test(user) for test in tests)
    ]


def user_test(condition: Filter) -> Callable[[User], bool]:
    """The condition as a test of one user; `modifiedAt` bounds are parsed once and compared as text (a poll's
    `modifiedAt=since,…` scans the whole directory)."""
    if condition.prop == "modifiedAt" and condition.operator in COMPARISONS:
        compare, bound = COMPARISONS[condition.operator], lucca_moment(condition.operands[0])
        return lambda user: bool(compare(user.modified_at, bound))
    return lambda user: condition.accepts(user_value(user, condition.prop))


def candidate_ids(account: LuccaAccount, filters: list[Filter]) -> list[int]:
    """The ids worth testing: those an `id=a,b` filter names (looked up, not scanned), else every id in order."""
    for condition in filters:
        if condition.prop == "id" and condition.operator == "equal":
            named = {int(operand) for operand in condition.operands if operand.strip().lstrip("-").isdigit()}
            return sorted(user_id for user_id in named if user_id in account.users)
    return account.user_ids()


def find_user(account: LuccaAccount, user_id: int) -> User:
    """The user with this id, or Lucca's 404."""
    user = account.users.get(user_id)
    if user is None:
        raise LuccaError(404, f"User {user_id} not found")
    return user


router = APIRouter(prefix="/{account}", route_class=LegacyRoute, tags=["lucca"])


@router.get("/api/v3/users")
async def list_users(account: str, request: Request, lucca: AccountDep) -> JSONResponse:
    """v3 users: `fields`, `paging`, filters, `formerEmployees`; `{"data": {"items": [...]}}`."""
    params = request.query_params
    fields = parse_fields(params.get("fields") or DEFAULT_USER_FIELDS)
    offset, limit = parse_paging(params.get("paging"))
    users = select_users(lucca, params)
    view = UserView.of(request, lucca, account)
    data: dict[str, Any] = {"items": [view.render(user, fields) for user in users[offset : offset + limit]]}
    if "collection.count" in fields:
        data["count"] = len(users)
    return JSONResponse({"data": data})


@router.get("/api/v3/users/{user_id}")
async def get_user(account: str, user_id: int, request: Request, lucca: AccountDep) -> JSONResponse:
    """One v3 user, `{"data": {...}}`, former employees included."""
    fields = parse_fields(request.query_params.get("fields") or DEFAULT_USER_FIELDS)
    user = find_user(lucca, user_id)
    return JSONResponse({"data": UserView.of(request, lucca, account).render(user, fields)})


@router.post("/api/v3/users")
async def create_user(account: str, request: Request, lucca: AccountDep) -> JSONResponse:
    """Creates a user (`?contract=true` also requires `dtContractStart`); 201 with the full user."""
    body = await read_user_body(request)
    with_contract = request.query_params.get("contract", "false").lower() == "true"
    required = (*REQUIRED_USER_FIELDS, "dtContractStart") if with_contract else REQUIRED_USER_FIELDS
    check_required(body, required, partial=False)
    user = build_user({"id": lucca.new_user_id()}, body)
    check_references(lucca, user, body)
    write_extended_data(lucca, user, body)
    lucca.save_user(user)
    full = UserView.of(request, lucca, account).render(user, FULL_USER_FIELDS)
    return JSONResponse({"data": full}, status_code=201)


@router.put("/api/v3/users/{user_id}")
async def update_user(account: str, user_id: int, request: Request, lucca: AccountDep) -> JSONResponse:
    """Updates the given fields; `e_*` keys at the root write extended data."""
    body = await read_user_body(request)
    current = find_user(lucca, user_id)
    check_required(body, REQUIRED_USER_FIELDS, partial=True)
    user = build_user(current.model_dump(by_alias=True), body)
    check_references(lucca, user, body)
    write_extended_data(lucca, user, body)
    lucca.save_user(user)
    return JSONResponse({"data": UserView.of(request, lucca, account).render(user, FULL_USER_FIELDS)})


@router.get("/api/v3/departments{rest:path}")
@router.get("/api/v3/legalentities{rest:path}")
async def retired_v3() -> JSONResponse:
    """The v3 departments and legal entities endpoints are gone: 410."""
    raise LuccaError(410, "This endpoint was retired in September 2026")
