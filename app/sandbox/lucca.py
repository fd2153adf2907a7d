"""In-memory Lucca accounts and the router that answers like Lucca's API-key (v3/v4) endpoints."""

import base64
import binascii
import math
import operator
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel
from starlette.datastructures import QueryParams

from app.sandbox.faults import ErrorStyle, PartnerError, RouteHandler, Traffic, describe_errors, gated_route_class

DAY_PATTERN = re.compile(r"(\d{4}-\d{2}-\d{2})(T00:00:00(\.0+)?)?")
AUTH_PATTERN = re.compile(r"\s*lucca\s+application\s*=\s*(\S+)\s*", re.IGNORECASE)
FIELD_TOKEN = re.compile(r"([^,\[\]]+)(?:\[([^\]]*)\])?")

DEFAULT_USER_FIELDS = "id,name,url"
RELATION_FIELDS = ("id", "name", "url")
MAX_USERS_PAGE = 1000
MAX_STRUCTURE_PAGE = 100
DEFAULT_STRUCTURE_PAGE = 10


def now_lucca() -> str:
    """The current time as Lucca writes `modifiedAt`: ISO, milliseconds, no offset."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def lucca_day(value: str) -> str:
    """Normalises `YYYY-MM-DD` or `YYYY-MM-DDT00:00:00` to Lucca's `YYYY-MM-DDT00:00:00`."""
    match = DAY_PATTERN.fullmatch(value)
    if match is None:
        raise ValueError("must be a date, YYYY-MM-DD or YYYY-MM-DDT00:00:00")
    return f"{date.fromisoformat(match[1]).isoformat()}T00:00:00"


class LuccaError(PartnerError):
    """A Lucca refusal: answered with `status` and `{"Message": message}`."""


# ----------------------------------------------------------------------------------------------------
# Data model: Lucca objects are camelCase on the wire and snake_case here.


class LuccaModel(BaseModel):
    """Base of the Lucca objects an account holds."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    id: int


class LegalUnit(LuccaModel):
    """A legal company (SIREN level), v4 `legal-units`."""

    name: str
    code: str | None = None
    country_id: str | None = None
    is_archived: bool = False


class Establishment(LuccaModel):
    """An establishment (SIRET level): what v3 users call `legalEntity`."""

    name: str
    legal_unit_id: int | None = None
    code: str | None = None
    timezone_id: str = "Europe/Paris"
    is_archived: bool = False


class Department(LuccaModel):
    """A department of the v4 structure API; `headId` is its manager."""

    name: str
    code: str | None = None
    parent_id: str | int | None = None
    hierarchy: str | None = None
    is_active: bool = True
    head_id: int | None = None
    level: int = 1


class Role(LuccaModel):
    """A role, only used to name a user's `rolePrincipal`."""

    name: str


class User(LuccaModel):
    """A v3 user; `extendedData` holds the `e_*` values as Lucca reads them back."""

    first_name: str
    last_name: str
    login: str | None = None
    mail: str | None = None
    personal_email: str | None = None
    personal_mobile: str | None = None
    address: str | None = None
    job_title: str | None = None
    employee_number: str | None = None
    dt_contract_start: str | None = None
    dt_contract_end: str | None = None
    legal_entity_id: int | None = None
    department_id: int | None = None
    manager_id: int | None = None
    role_principal_id: int | None = None
    modified_at: str = Field(default_factory=now_lucca)
    extended_data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("dt_contract_start", "dt_contract_end")
    @classmethod
    def normalise_day(cls, value: str | None) -> str | None:
        """Stores contract dates the way Lucca returns them."""
        return None if value is None else lucca_day(value)

    def has_left(self, today: str) -> bool:
        """True for a former employee: the contract ended before `today` (ISO date)."""
        return self.dt_contract_end is not None and self.dt_contract_end[:10] < today


def aliases(model: type[BaseModel]) -> list[str]:
    """The wire names of a model's fields."""
    return [info.alias or name for name, info in model.model_fields.items()]


USER_PROPERTIES = [*(name for name in aliases(User) if name != "extendedData"), "name"]
WRITABLE_USER_FIELDS = frozenset(USER_PROPERTIES) - {"id", "modifiedAt", "name"}
REQUIRED_USER_FIELDS = ("firstName", "lastName", "login", "legalEntityId", "departmentId", "rolePrincipalId")
RELATIONS = ("department", "legalEntity", "manager", "rolePrincipal")
USER_FIELD_KEYS = {name.lower(): name for name in [*USER_PROPERTIES, "url", "extendedData", *RELATIONS]}
FULL_USER_FIELDS: dict[str, list[str] | None] = dict.fromkeys(USER_FIELD_KEYS.values())


ModelT = TypeVar("ModelT", bound=LuccaModel)
ItemT = TypeVar("ItemT")


# ----------------------------------------------------------------------------------------------------
# Account state: data, rate-limit window, injected faults, call log.


class LuccaAccountSeed(BaseModel):
    """The body of `PUT /_sandbox/lucca/accounts/{account}`: an account's whole state."""

    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(min_length=1)
    legal_units: list[LegalUnit] = []
    establishments: list[Establishment] = []
    departments: list[Department] = []
    users: list[User] = []
    roles: list[Role] = []
    window_seconds: float | None = Field(default=None, gt=0)
    requests_per_window: int | None = Field(default=None, ge=1)


@dataclass
class SlidingWindow:
    """At most `limit` accepted calls in any `seconds`-long interval."""

    seconds: float
    limit: int
    accepted: deque[float] = field(default_factory=deque)

    def retry_after(self, now: float) -> int | None:
        """Whole seconds until a call would be accepted, or None when one is accepted now."""
        while self.accepted and self.accepted[0] + self.seconds <= now:
            self.accepted.popleft()
        if len(self.accepted) < self.limit:
            return None
        return max(1, math.ceil(self.accepted[0] + self.seconds - now))

    def record(self, now: float) -> None:
        """Counts an accepted call."""
        self.accepted.append(now)


@dataclass
class LuccaAccount:
    """One emulated Lucca account (a tenant domain)."""

    api_key: str
    window: SlidingWindow
    users: dict[int, User]
    establishments: dict[int, Establishment]
    departments: dict[int, Department]
    legal_units: dict[int, LegalUnit]
    roles: dict[int, Role]
    last_value_id: int = 0
    traffic: Traffic = field(default_factory=Traffic)

    @classmethod
    def from_seed(cls, seed: LuccaAccountSeed, window: SlidingWindow) -> "LuccaAccount":
        """A fresh account holding the seed's objects, keyed by id."""
        return cls(
            api_key=seed.api_key,
            window=window,
            users=by_id(seed.users),
            establishments=by_id(seed.establishments),
            departments=by_id(seed.departments),
            legal_units=by_id(seed.legal_units),
            roles=by_id(seed.roles),
            last_value_id=highest_value_id(seed.users),
        )

    def is_authorized(self, header: str | None) -> bool:
        """Checks `Authorization: lucca application=<key>`."""
        match = AUTH_PATTERN.fullmatch(header or "")
        return match is not None and secrets.compare_digest(match[1].encode(), self.api_key.encode())

    def new_user_id(self) -> int:
        """The id Lucca would give the next user."""
        return max(self.users, default=0) + 1

    def new_value_id(self) -> int:
        """A fresh id for an extended-data value row."""
        self.last_value_id += 1
        return self.last_value_id


def by_id(items: Iterable[ModelT]) -> dict[int, ModelT]:
    """Indexes Lucca objects by id."""
    return {item.id: item for item in items}


def highest_value_id(users: Iterable[User]) -> int:
    """The largest extended-data value id in use, so new rows never reuse one."""
    ids = [0]
    for user in users:
        for value in user.extended_data.values():
            rows = value if isinstance(value, list) else [value]
            ids += [row["id"] for row in rows if isinstance(row, dict) and isinstance(row.get("id"), int)]
    return max(ids)


def lookup(items: Mapping[int, ItemT], key: int | None) -> ItemT | None:
    """`items[key]`, or None when the key is null or unknown."""
    return None if key is None else items.get(key)


@dataclass
class LuccaSandbox:
    """Every emulated Lucca account of one sandbox process, by name."""

    window_seconds: float
    requests_per_window: int
    accounts: dict[str, LuccaAccount] = field(default_factory=dict)

    def replace_account(self, name: str, seed: LuccaAccountSeed) -> LuccaAccount:
        """Creates or wholly replaces an account: new data, empty call log, no faults, fresh window."""
        window = SlidingWindow(
            seconds=seed.window_seconds or self.window_seconds,
            limit=seed.requests_per_window or self.requests_per_window,
        )
        account = LuccaAccount.from_seed(seed, window)
        self.accounts[name] = account
        return account


def get_lucca_sandbox(request: Request) -> LuccaSandbox:
    """The sandbox state of the app serving this request."""
    return lucca_sandbox_of(request.app)


def lucca_sandbox_of(app: FastAPI) -> LuccaSandbox:
    """The Lucca state `create_sandbox_app` put on the app."""
    sandbox = app.state.lucca
    assert isinstance(sandbox, LuccaSandbox)
    return sandbox


# ----------------------------------------------------------------------------------------------------
# Every Lucca call goes through the same gate: account, key, rate limit, faults, call log.


def lucca_error(status: int, message: str, retry_after: str | None = None) -> JSONResponse:
    """An error the way Lucca words it."""
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return JSONResponse({"Message": message}, status_code=status, headers=headers)


LUCCA_ERRORS = ErrorStyle(lucca_error)


async def answer_call(account: LuccaAccount, request: Request, serve: RouteHandler) -> Response:
    """Checks the key and the window, then serves the call or the fault injected for it."""
    if not account.is_authorized(request.headers.get("authorization")):
        return lucca_error(401, "Missing or invalid key: send 'Authorization: lucca application=<key>'")
    now = time.monotonic()
    retry_after = account.window.retry_after(now)
    if retry_after is not None:
        return lucca_error(429, "Too many requests, retry later", str(retry_after))
    fault = account.traffic.take_fault(request.method, request.url.path)
    # Only calls that really reach Lucca use up the window; refused and faked ones do not.
    if fault is None or fault.performs_call:
        account.window.record(now)
    return await LUCCA_ERRORS.answer(request, serve, fault)


async def guard_call(request: Request, serve: RouteHandler) -> Response:
    """Finds the account, answers the call and logs it with its status."""
    name = request.path_params["account"]
    account = get_lucca_sandbox(request).accounts.get(name)
    if account is None:
        return lucca_error(404, f"Unknown Lucca account '{name}'")
    path = request.url.path[len(name) + 1 :]
    return await account.traffic.logged(request, path, answer_call(account, request, serve))


# A Lucca endpoint: authenticated, rate-limited, fault-injected and logged per account.
LuccaRoute = gated_route_class(guard_call)


def get_account(request: Request, account: str) -> LuccaAccount:
    """The account named in the path (the gate already checked that it exists)."""
    found = get_lucca_sandbox(request).accounts.get(account)
    if found is None:
        raise LuccaError(404, f"Unknown Lucca account '{account}'")
    return found


AccountDep = Annotated[LuccaAccount, Depends(get_account)]


# ----------------------------------------------------------------------------------------------------
# Reading users: fields, filters, paging.


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


COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "since": operator.ge,
    "until": operator.le,
    "greaterthan": operator.gt,
    "lowerthan": operator.lt,
}
FILTER_OPERATORS = {"notequal", "like", "between", *COMPARISONS}


@dataclass(frozen=True)
class Filter:
    """One `?prop=[operator,]value[,value…]` condition."""

    prop: str
    operator: str
    operands: list[str]

    def accepts(self, record: Mapping[str, Any]) -> bool:
        """Whether the record's property satisfies the condition."""
        actual = record.get(self.prop)
        if self.operator == "equal":
            return any(same_value(actual, operand) for operand in self.operands)
        if self.operator == "notequal":
            return not any(same_value(actual, operand) for operand in self.operands)
        if self.operator == "like":
            # Lucca's `like` is a substring match ignoring case (not accents).
            return actual is not None and ",".join(self.operands).casefold() in str(actual).casefold()
        if actual is None:
            return False
        if self.operator == "between":
            if len(self.operands) != 2:
                raise LuccaError(400, f"{self.prop}=between needs two values: between,FROM,TO")
            low, high = (ordering_operand(actual, operand) for operand in self.operands)
            return bool(low <= ordered_value(actual) <= high)
        compare = COMPARISONS[self.operator]
        return bool(compare(ordered_value(actual), ordering_operand(actual, self.operands[0])))


def same_value(actual: Any, expected: str) -> bool:
    """Lucca equality: `null`, numbers and booleans by value, text exactly (case included: use `like` to ignore it)."""
    if expected.lower() == "null":
        return actual is None
    if actual is None:
        return False
    if isinstance(actual, bool):
        return str(actual).lower() == expected.lower()
    if isinstance(actual, int):
        return expected.lstrip("-").isdigit() and int(expected) == actual
    if is_lucca_day(actual) and DAY_PATTERN.fullmatch(expected):
        return str(actual) == lucca_day(expected)
    return str(actual) == expected


def is_lucca_day(value: Any) -> bool:
    """A contract date as this sandbox stores it (`YYYY-MM-DDT00:00:00`)."""
    return isinstance(value, str) and DAY_PATTERN.fullmatch(value) is not None


def ordered_value(actual: Any) -> Any:
    """The property's value as ordering filters compare it: dates by their day."""
    return actual[:10] if is_lucca_day(actual) else actual


def ordering_operand(actual: Any, expected: str) -> Any:
    """The operand of an ordering filter: a number for a number, a day for a date, else the text."""
    if isinstance(actual, int) and not isinstance(actual, bool):
        try:
            return int(expected)
        except ValueError as exc:
            raise LuccaError(400, f"'{expected}' is not a number") from exc
    if is_lucca_day(actual):
        day = expected.strip()[:10]
        try:
            return date.fromisoformat(day).isoformat()
        except ValueError as exc:
            raise LuccaError(400, f"'{expected}' is not a date") from exc
    return expected


def parse_filters(params: QueryParams, properties: Iterable[str]) -> list[Filter]:
    """The query parameters naming a property (any case); every other parameter is ignored."""
    names = {name.lower(): name for name in properties}
    filters = []
    for key, raw in params.multi_items():
        prop = names.get(key.lower())
        if prop is None:
            continue
        head, _, rest = raw.partition(",")
        if head.lower() in FILTER_OPERATORS:
            filters.append(Filter(prop, head.lower(), rest.split(",")))
        else:
            filters.append(Filter(prop, "equal", raw.split(",")))
    return filters


def select_users(account: LuccaAccount, params: QueryParams) -> list[User]:
    """The users the query asks for, ordered by id; former employees only when asked."""
    filters = parse_filters(params, USER_PROPERTIES)
    include_former = params.get("formerEmployees", "").lower() == "true" or any(
        condition.prop == "dtContractEnd" for condition in filters
    )
    today = date.today().isoformat()
    users = [user for _, user in sorted(account.users.items()) if include_former or not user.has_left(today)]
    if not filters:
        return users
    return [user for user in users if all(f.accepts(user_properties(user)) for f in filters)]


def find_user(account: LuccaAccount, user_id: int) -> User:
    """The user with this id, or Lucca's 404."""
    user = account.users.get(user_id)
    if user is None:
        raise LuccaError(404, f"User {user_id} not found")
    return user


# ----------------------------------------------------------------------------------------------------
# Writing users: validation, references, extended data.


async def read_user_body(request: Request) -> dict[str, Any]:
    """The JSON user body, flat or wrapped in `{"data": {...}}`."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise LuccaError(400, "The body is not valid JSON") from exc
    if isinstance(body, dict) and set(body) == {"data"} and isinstance(body["data"], dict):
        body = body["data"]
    if not isinstance(body, dict):
        raise LuccaError(400, "The body must be a JSON object")
    return body


def check_required(body: Mapping[str, Any], required: Iterable[str], partial: bool) -> None:
    """Refuses a missing (or, in an update, emptied) required field."""
    for name in required:
        if (name in body or not partial) and body.get(name) in (None, ""):
            raise LuccaError(400, f"Invalid user: {name} is required")


def build_user(base: dict[str, Any], body: Mapping[str, Any]) -> User:
    """`base` updated with the body's known user fields, validated."""
    changes = {name: value for name, value in body.items() if name in WRITABLE_USER_FIELDS}
    try:
        return User.model_validate({**base, **changes, "modifiedAt": now_lucca()})
    except ValidationError as exc:
        raise LuccaError(400, f"Invalid user: {describe_errors(exc.errors())}") from exc


def check_establishment(account: LuccaAccount, establishment_id: int | None) -> None:
    """A user's `legalEntityId` must be an existing, non-archived establishment."""
    establishment = lookup(account.establishments, establishment_id)
    if establishment is None:
        raise LuccaError(400, f"legalEntityId {establishment_id} is not an existing establishment")
    if establishment.is_archived:
        raise LuccaError(400, f"establishment {establishment_id} ({establishment.name}) is archived")


def check_department(account: LuccaAccount, department_id: int | None) -> None:
    """A user's `departmentId` must be an existing department."""
    if lookup(account.departments, department_id) is None:
        raise LuccaError(400, f"departmentId {department_id} is not an existing department")


def check_manager(account: LuccaAccount, manager_id: int | None) -> None:
    """A manager, when given, must be a user whose contract has not ended."""
    if manager_id is None:
        return
    manager = account.users.get(manager_id)
    if manager is None:
        raise LuccaError(400, f"managerId {manager_id} is not an existing user")
    if manager.has_left(date.today().isoformat()):
        raise LuccaError(400, f"manager {manager_id} is not an active employee")


def check_login_free(account: LuccaAccount, user: User) -> None:
    """A login belongs to one user only, former employees included, ignoring case."""
    login = (user.login or "").casefold()
    for other in account.users.values():
        if other.id != user.id and (other.login or "").casefold() == login:
            raise LuccaError(400, f"The login '{user.login}' is already in use")


def check_references(account: LuccaAccount, user: User, body: Mapping[str, Any]) -> None:
    """Checks the references the body sets against the account's data."""
    if "legalEntityId" in body:
        check_establishment(account, user.legal_entity_id)
    if "departmentId" in body:
        check_department(account, user.department_id)
    if "managerId" in body:
        check_manager(account, user.manager_id)
    if "login" in body:
        check_login_free(account, user)


def merge_value_rows(account: LuccaAccount, rows: list[Any], changes: list[Any], key: str) -> list[Any] | None:
    """A multi-value field: id 0/missing appends, a known id updates, `"value": null` deletes."""
    merged = {row["id"]: row for row in rows if isinstance(row, dict)}
    for change in changes:
        if not isinstance(change, dict):
            raise LuccaError(400, f"{key}: each value must be an object with a 'value'")
        row_id, value = change.get("id") or 0, change.get("value")
        if row_id == 0:
            if value is not None:
                new_id = account.new_value_id()
                merged[new_id] = {"id": new_id, "value": value}
        elif row_id not in merged:
            raise LuccaError(400, f"{key} has no value with id {row_id}")
        elif value is None:
            del merged[row_id]
        else:
            merged[row_id] = {"id": row_id, "value": value}
    return list(merged.values()) or None


def merge_single_value(account: LuccaAccount, current: Any, change: Any) -> dict[str, Any] | None:
    """A single-value field: `{"value": x}` (or a bare x) sets it, `"value": null` deletes it."""
    value = change.get("value") if isinstance(change, dict) else change
    if value is None:
        return None
    value_id = current["id"] if isinstance(current, dict) else account.new_value_id()
    return {"id": value_id, "value": value}


def write_extended_data(account: LuccaAccount, user: User, body: Mapping[str, Any]) -> None:
    """Stores the `e_*` keys written at the root of the body into the user's `extendedData`."""
    for key, change in body.items():
        if not key.startswith("e_"):
            continue
        current = user.extended_data.get(key)
        if isinstance(change, list):
            rows = current if isinstance(current, list) else []
            merged: Any = merge_value_rows(account, rows, change, key)
        else:
            merged = merge_single_value(account, current, change)
        if merged is None:
            user.extended_data.pop(key, None)
        else:
            user.extended_data[key] = merged


# ----------------------------------------------------------------------------------------------------
# v4 structure API: establishments, departments, legal units.

STRUCTURE_MODELS: dict[str, type[LuccaModel]] = {
    "establishments": Establishment,
    "departments": Department,
    "legal-units": LegalUnit,
}


def structure_items(account: LuccaAccount, kind: str) -> Mapping[int, LuccaModel]:
    """The account's objects of one v4 structure collection."""
    collections: dict[str, Mapping[int, LuccaModel]] = {
        "establishments": account.establishments,
        "departments": account.departments,
        "legal-units": account.legal_units,
    }
    if kind not in collections:
        raise LuccaError(404, f"Unknown collection '{kind}'")
    return collections[kind]


def structure_record(account: LuccaAccount, item: LuccaModel) -> dict[str, Any]:
    """A v4 object; an establishment carries its `legalUnit`."""
    record = item.model_dump(by_alias=True)
    if isinstance(item, Establishment):
        unit = lookup(account.legal_units, item.legal_unit_id)
        record["legalUnit"] = None if unit is None else {"id": unit.id, "name": unit.name}
    return record


def encode_cursor(offset: int) -> str:
    """An opaque v4 page cursor."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The offset behind a cursor this sandbox returned."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, offset = text.partition(":")
        if prefix == "offset" and offset.isdigit():
            return int(offset)
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise LuccaError(400, f"page '{cursor}' is neither a page number nor a cursor")


def parse_page(params: QueryParams) -> tuple[int, int]:
    """v4 paging: `limit` (default 10, at most 100) and `page`, a 1-based number or a cursor."""
    raw_limit = params.get("limit", str(DEFAULT_STRUCTURE_PAGE))
    if not raw_limit.isdigit() or not 0 < int(raw_limit) <= MAX_STRUCTURE_PAGE:
        raise LuccaError(400, f"limit must be between 1 and {MAX_STRUCTURE_PAGE}")
    limit = int(raw_limit)
    page = params.get("page")
    if page is None:
        return 0, limit
    if not page.isdigit():
        return decode_cursor(page), limit
    if int(page) < 1:
        raise LuccaError(400, "page numbers start at 1")
    return (int(page) - 1) * limit, limit


def select_structure(account: LuccaAccount, kind: str, params: QueryParams) -> list[dict[str, Any]]:
    """The collection's objects matching the query, by id; archived ones only when asked."""
    items = structure_items(account, kind)
    properties = aliases(STRUCTURE_MODELS[kind])
    filters = parse_filters(params, properties)
    archived_asked = any(condition.prop == "isArchived" for condition in filters)
    if "isArchived" in properties and not archived_asked:
        filters.append(Filter("isArchived", "equal", ["false"]))
    records = [structure_record(account, item) for _, item in sorted(items.items())]
    return [record for record in records if all(f.accepts(record) for f in filters)]


def structure_page(records: list[dict[str, Any]], params: QueryParams) -> dict[str, Any]:
    """One v4 page; `count`, `prev` and `next` only when `fields.root` asks for them."""
    offset, limit = parse_page(params)
    body: dict[str, Any] = {"items": records[offset : offset + limit]}
    root = {name.strip() for name in params.get("fields.root", "").split(",")}
    if "count" in root:
        body["count"] = len(records)
    if "prev" in root:
        body["prev"] = encode_cursor(max(0, offset - limit)) if offset > 0 else None
    if "next" in root:
        body["next"] = encode_cursor(offset + limit) if offset + limit < len(records) else None
    return body


# ----------------------------------------------------------------------------------------------------
# Routes.

router = APIRouter(prefix="/{account}", route_class=LuccaRoute, tags=["lucca"])


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
    lucca.users[user.id] = user
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
    lucca.users[user.id] = user
    return JSONResponse({"data": UserView.of(request, lucca, account).render(user, FULL_USER_FIELDS)})


@router.get("/api/v3/departments{rest:path}")
@router.get("/api/v3/legalentities{rest:path}")
async def retired_v3() -> JSONResponse:
    """The v3 departments and legal entities endpoints are gone: 410."""
    raise LuccaError(410, "This endpoint was retired in September 2026")


@router.get("/organization/structure/api/{kind}")
async def list_structure(kind: str, request: Request, lucca: AccountDep) -> JSONResponse:
    """v4 establishments, departments or legal-units: `{"items": [...]}`, limit/page paging."""
    records = select_structure(lucca, kind, request.query_params)
    return JSONResponse(structure_page(records, request.query_params))


@router.get("/organization/structure/api/{kind}/{item_id}")
async def get_structure_item(kind: str, item_id: int, lucca: AccountDep) -> JSONResponse:
    """One v4 establishment, department or legal unit, archived or not."""
    item = structure_items(lucca, kind).get(item_id)
    if item is None:
        raise LuccaError(404, f"No {kind} item with id {item_id}")
    return JSONResponse(structure_record(lucca, item))
