"""Client for the Lucca legacy API (v3 users, v4 organization structure), authenticated by API key."""

import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import AliasChoices, AliasPath, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from redis.asyncio import Redis

from app.clients.access import AccountAccess
from app.clients.http import (
    NO_ANSWER,
    PartnerAuthFailed,
    PartnerError,
    PartnerErrorTypes,
    PartnerHTTP,
    PartnerRejected,
    PartnerUnavailable,
    RateLimit,
    RetryPolicy,
    short_line,
)
from app.clients.ratelimit import SlidingWindowLimiter

PARTNER = "lucca"
USER_FIELDS = (
    "id", "firstName", "lastName", "login", "mail", "personalEmail", "jobTitle", "employeeNumber",
    "dtContractStart", "dtContractEnd", "departmentId", "department", "legalEntityId", "managerId",
    "rolePrincipalId",
)  # fmt: skip
# v4 caps `limit` below 100; 50 keeps each page well inside Lucca's 5-second request limit.
V4_PAGE_SIZE = 50
V3_MAX_PAGE_SIZE = 1000
# `like` is a substring match: a shorter operand (`a`, `.`, nothing) matches most of a directory and reads it whole.
MIN_LIKE_CHARS = 3


class LuccaError(PartnerError):
    """Any failure of a Lucca call."""


class LuccaUnavailable(LuccaError, PartnerUnavailable):
    """Lucca kept failing (429, 408, 5xx, timeouts) beyond this call's retry budget."""


class LuccaRejected(LuccaError, PartnerRejected):
    """Lucca refused the request, or answered with something this service cannot read."""


class LuccaAuthFailed(LuccaRejected, PartnerAuthFailed):
    """Lucca refused the API key (401/403)."""


LUCCA_ERRORS = PartnerErrorTypes(unavailable=LuccaUnavailable, rejected=LuccaRejected, auth_failed=LuccaAuthFailed)


def note_announcements(notices: list[str], path: str, status: int, headers: Mapping[str, str]) -> None:
    """Keep what Lucca announces about a path it will retire (or has retired), in plain words, once each."""
    sunset, deprecation = headers.get("Sunset"), headers.get("Deprecation")
    said = [
        *([f"Lucca no longer serves {path} (HTTP 410 Gone): this service needs an update to read it."]
          if status == 410 else []),
        *([f"Lucca will retire {path} on {short_line(sunset, 60)} (Sunset header)."] if sunset else []),
        *([f"Lucca marked {path} as deprecated ({short_line(deprecation, 60)})."] if deprecation else []),
    ]  # fmt: skip
    notices += [words for words in said if words not in notices]


class LuccaModel(BaseModel):
    """Read from Lucca's camelCase JSON, ignoring fields this service does not use."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class LuccaUser(LuccaModel):
    """A v3 user (employee), with the fields in USER_FIELDS."""

    id: int
    first_name: str | None = None
    last_name: str | None = None
    login: str | None = None
    mail: str | None = None
    personal_email: str | None = None
    job_title: str | None = None
    employee_number: str | None = None
    dt_contract_start: date | None = None
    dt_contract_end: date | None = None
    department_id: int | None = None
    legal_entity_id: int | None = None
    manager_id: int | None = None
    role_principal_id: int | None = None
    department_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices(AliasPath("department", "name"), "departmentName", "department_name"),
    )
    extended_data: dict[str, Any] | None = None
    modified_at: datetime | None = None

    @field_validator("dt_contract_start", "dt_contract_end", mode="before")
    @classmethod
    def _date_part(cls, value: Any) -> Any:
        # Lucca sends dates as midnight datetimes ("2014-09-01T00:00:00"); only the day matters.
        return value[:10] if isinstance(value, str) else value

    def is_employed_on(self, day: date) -> bool:
        """True unless the contract ended before `day`."""
        return self.dt_contract_end is None or self.dt_contract_end >= day


class Establishment(LuccaModel):
    """A v4 establishment (what v3 calls a legal entity, `legalEntityId` on users)."""

    id: int
    name: str
    is_archived: bool = False
    legal_unit_id: int | None = None


class Department(LuccaModel):
    """A v4 department; `parent_id` and `hierarchy` are paths like "/1/2/", not ids."""

    id: int
    name: str
    head_id: int | None = None
    is_active: bool = True
    parent_id: str | None = None
    hierarchy: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _head_of_any_generation(cls, value: Any) -> Any:
        """v4 says `headId`; v3-style answers say `headID` or `head: {id}`: all mean the department's head."""
        if isinstance(value, dict) and value.get("headId") is None:
            head = value.get("head")
            head_id = value.get("headID") or (head.get("id") if isinstance(head, dict) else None)
            if head_id is not None:
                return {**value, "headId": head_id}
        return value


def single_item(body: Any) -> Any:
    """v3 wraps one item as `{"data": {...}}`; an answer without the wrapper is the item itself."""
    return body["data"] if isinstance(body, dict) and isinstance(body.get("data"), dict) else body


@dataclass(frozen=True)
class LuccaAccount:
    """Where and how to reach one Lucca account."""

    base_url: str
    api_key: str = field(repr=False)
    rate_limit: RateLimit


def account_key(base_url: str) -> str:
    """The account's identity shared by every tenant and process: host and path, lower-cased."""
    parts = urlsplit(base_url.strip())
    return f"{parts.netloc}{parts.path}".rstrip("/").lower()


def appends_value_rows(body: Mapping[str, Any]) -> bool:
    """Whether a user write adds a row to a multi-value extended field: a row without an id, or with id 0."""
    return any(
        isinstance(rows, list) and any(isinstance(row, dict) and not row.get("id") for row in rows)
        for code, rows in body.items()
        if code.startswith("e_")
    )


def next_page(cursor: str) -> str:
    """The `page` value for a v4 `next` cursor, which may also come as a full URL."""
    if "?" in cursor:
        return parse_qs(urlsplit(cursor).query).get("page", [cursor])[0]
    return cursor


def following_page(body: Mapping[str, Any], page: str) -> str | None:
    """The `page` value of the v4 page after `page`, or None when `body` was the last one."""
    if "next" in body:
        following = next_page(body["next"]) if body["next"] else None
        # A cursor that does not move would loop forever on the account's rate budget.
        return None if following == page else following
    return None if len(body["items"]) < V4_PAGE_SIZE else str(int(page) + 1)


def check_narrow(filters: Mapping[str, str]) -> None:
    """Refuse, before any call, a `like` filter too short to narrow the users it reads."""
    for name, value in filters.items():
        operator, _, operand = value.partition(",")
        if operator.strip().lower() == "like" and len(operand.strip()) < MIN_LIKE_CHARS:
            message = (
                f"Lucca was not asked for the users whose {name} contains {operand.strip()!r}: so short a search "
                "matches almost everyone."
            )
            raise LuccaRejected(PARTNER, NO_ANSWER, message)


class LuccaClient:
    """Lucca API-key client: users (v3) and organization structure (v4), within the account's rate limit."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        account: LuccaAccount,
        *,
        limiter: SlidingWindowLimiter,
        retry: RetryPolicy,
        cache: Redis | None = None,
        cache_seconds: int = 300,
    ) -> None:
        self._access = AccountAccess(limiter.redis, PARTNER, account_key(account.base_url), account.api_key)
        self._http = PartnerHTTP(
            http,
            partner=PARTNER,
            base_url=account.base_url,
            headers={"Authorization": f"lucca application={account.api_key}"},
            retry=retry,
            limiter=limiter,
            access=self._access,
            rate_limit=account.rate_limit,
            errors=LUCCA_ERRORS,
        )
        self._cache = cache
        self._cache_seconds = cache_seconds
        # What Lucca announced (Sunset, Deprecation, 410) about the paths read, in plain words, once each.
        self.notices: list[str] = []

    async def proven_account(self) -> str:
        """The account's shared identity (what its locks are keyed by), once it has accepted this key: one cheap
        call when that is not known yet; a refused key raises LuccaAuthFailed."""
        if not await self._access.proven():
            await self._get_json("/api/v3/users", {"fields": "id", "paging": "0,1"})
        return self._access.account

    async def list_users(
        self,
        *,
        fields: Sequence[str] = USER_FIELDS,
        former_employees: bool = True,
        filters: Mapping[str, str] | None = None,
        page_size: int = V3_MAX_PAGE_SIZE,
    ) -> list[LuccaUser]:
        """Every user matching `filters`, former employees included by default, read page by page."""
        pages = self.user_pages(fields=fields, former_employees=former_employees, filters=filters, page_size=page_size)
        return [user async for page in pages for user in page]

    async def user_pages(
        self,
        *,
        fields: Sequence[str] = USER_FIELDS,
        former_employees: bool = True,
        filters: Mapping[str, str] | None = None,
        page_size: int = V3_MAX_PAGE_SIZE,
    ) -> AsyncIterator[list[LuccaUser]]:
        """The users matching `filters`, one page at a time: a whole directory without holding all of it."""
        if not 1 <= page_size <= V3_MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {V3_MAX_PAGE_SIZE}")
        check_narrow(filters or {})
        params = {"fields": ",".join(fields), **(filters or {})}
        if former_employees:
            params["formerEmployees"] = "true"
        offset = 0
        while True:
            params["paging"] = f"{offset},{page_size}"
            body = await self._get_json("/api/v3/users", params)
            with self._reading("/api/v3/users"):
                page = [LuccaUser.model_validate(item) for item in body["data"]["items"]]
            yield page
            offset += len(page)
            if len(page) < page_size:
                return

    async def users_by_id(self, user_ids: Iterable[int], fields: Sequence[str] = USER_FIELDS) -> dict[int, LuccaUser]:
        """These users by id in one call (`id=1,2`), former employees included; ids Lucca does not hold are absent."""
        wanted = sorted(set(user_ids))
        if not wanted:
            return {}
        users = await self.list_users(fields=fields, filters={"id": ",".join(str(user_id) for user_id in wanted)})
        return {user.id: user for user in users if user.id in wanted}

    async def get_user(self, user_id: int, fields: Sequence[str] = USER_FIELDS) -> LuccaUser:
        """One user by id."""
        path = f"/api/v3/users/{user_id}"
        body = await self._get_json(path, {"fields": ",".join(fields)})
        with self._reading(path):
            return LuccaUser.model_validate(single_item(body))

    async def create_user(self, body: Mapping[str, Any]) -> LuccaUser:
        """Create a user with their work contract; `body` is Lucca's flat user object."""
        path = "/api/v3/users"
        # Not replayed blindly: a lost answer may hide a created user, which the hire's lookup will find.
        response = await self._http.request(
            "POST", path, params={"contract": "true"}, json=dict(body), replay_safe=False
        )
        with self._reading(path):
            return LuccaUser.model_validate(single_item(response.json()))

    async def update_user(self, user_id: int, body: Mapping[str, Any]) -> None:
        """Update a user; `body` is flat, extended data (`e_*`) at its root."""
        # Not replayed blindly when it appends a value row: a lost answer may hide the row, which a replay would
        # append again; the caller reads what Lucca holds before trying again.
        path = f"/api/v3/users/{user_id}"
        await self._http.request("PUT", path, json=dict(body), replay_safe=not appends_value_rows(body))

    async def list_establishments(self) -> list[Establishment]:
        """Every establishment, archived ones included."""
        path = "/organization/structure/api/establishments"
        items = await self._cached("establishments", path, {"isArchived": "true,false"})
        with self._reading(path):
            return [Establishment.model_validate(item) for item in items]

    async def list_departments(self, *, fresh: bool = False) -> list[Department]:
        """Every department; `fresh` reads Lucca rather than the account's shared cache (and refreshes the cache)."""
        path = "/organization/structure/api/departments"
        items = await self._cached("departments", path, {}, fresh=fresh)
        with self._reading(path):
            return [Department.model_validate(item) for item in items]

    async def _cached(self, name: str, path: str, params: Mapping[str, str], fresh: bool = False) -> list[Any]:
        """A v4 list, through the account's shared Redis cache when there is one and the key opens the account."""
        key = f"lucca:cache:{self._access.account}:{name}"
        cached = None
        if not fresh and self._cache is not None and await self._access.proven():
            cached = await self._cache.get(key)
        if cached is not None:
            items: list[Any] = json.loads(cached)
            return items
        items = await self._list_v4(path, params)  # its 2xx answers prove the key
        if self._cache is not None:
            await self._cache.set(key, json.dumps(items), ex=self._cache_seconds)
        return items

    async def _list_v4(self, path: str, params: Mapping[str, str]) -> list[Any]:
        """Every item of a v4 list: follow `next` cursors, or count pages when the answer has no `next`."""
        base = {**params, "limit": str(V4_PAGE_SIZE), "fields.root": "count,prev,next"}
        items: list[Any] = []
        page: str | None = "1"
        while page is not None:
            body = await self._get_json(path, {**base, "page": page})
            with self._reading(path):
                items += body["items"]
                page = following_page(body, page)
        return items

    async def _get_json(self, path: str, params: Mapping[str, str]) -> Any:
        """GET `path` and decode its JSON body."""
        try:
            response = await self._http.request("GET", path, params=params)
        except LuccaRejected as refused:
            note_announcements(self.notices, path, refused.status, {})
            raise
        note_announcements(self.notices, path, response.status_code, response.headers)
        with self._reading(path):
            return response.json()

    @contextlib.contextmanager
    def _reading(self, path: str) -> Iterator[None]:
        """Turn an answer in an unexpected shape into a LuccaRejected that says where."""
        try:
            yield
        except (KeyError, TypeError, ValueError) as exc:
            message = f"Lucca answered {path} with data this service could not read ({type(exc).__name__})"
            raise LuccaRejected(PARTNER, 502, message) from exc
