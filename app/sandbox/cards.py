"""In-memory Cards spaces and the router that answers like the Cards API (`https://api.cards-microlearning.com/v1`).

A space's base URL is `http://<sandbox>/cards/{account}/v1`; calls carry `Authorization: Bearer <token>` and
`X-Tenant: <space id>`. Users, groups and trainings are emulated, with Laravel's pages and validation errors.
"""

import json
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.sandbox.faults import ErrorStyle, PartnerError, RouteHandler, Traffic, gated_route_class
from app.sandbox.lucca_state import SlidingWindow

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
# The connector's default `rate_limit` (CardsSettings): Cards publishes none.
DEFAULT_WINDOW_SECONDS = 60.0
DEFAULT_REQUESTS_PER_WINDOW = 300
BEARER = re.compile(r"\s*Bearer\s+(\S+)\s*", re.IGNORECASE)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_STRING = 255
Source = Literal["app", "sso", "GoogleOAuth", "MicrosoftOAuth", "AppleOAuth"]
Role = Literal["user", "editor", "owner"]
Lang = Literal["fr", "en"]
CHOICES: dict[str, tuple[str, ...]] = {"source": get_args(Source), "role": get_args(Role), "lang": get_args(Lang)}
# What Laravel's `boolean` rule accepts.
FLAGS: dict[bool | int | str, bool] = {True: True, False: False, "1": True, "0": False}
OPTIONAL_STRINGS = ("email", "company", "phone")
REQUIRED_STRINGS = ("firstname", "lastname")


class CardsError(PartnerError):
    """A Cards refusal: answered with `status` and Laravel's `{"message": message}`."""


class CardsInvalid(Exception):
    """Laravel's validation failure: answered 422 with every message by field."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = dict(errors)


# ----------------------------------------------------------------------------------------------------
# Data model: Cards objects are snake_case on the wire too.


class Group(BaseModel):
    """A group of users (`{id, name}` on a user)."""

    model_config = ConfigDict(extra="ignore")

    id: int
    name: str = Field(min_length=1)
    is_public: bool = False
    enable_ranking: bool = True


class User(BaseModel):
    """A Cards user; `groups` holds group ids, `notify` the flag of the POST that created it (None: seeded)."""

    model_config = ConfigDict(extra="ignore")

    id: int
    firstname: str
    lastname: str
    email: str | None = None
    role: Role = "user"
    company: str | None = None
    phone: str | None = None
    source: Source = "app"
    enable_ranking: bool = True
    lang: Lang = "fr"
    groups: list[int] = []
    notify: bool | None = None


class Training(BaseModel):
    """A training (only what `GET /trainings/{id}` shows)."""

    model_config = ConfigDict(extra="ignore")

    id: int
    title: str
    description: str | None = None
    status: str = "publish"
    image: str | None = None
    public_url: str | None = None
    category: str | None = None


class CardsAccountSeed(BaseModel):
    """The body of `PUT /_sandbox/cards/accounts/{account}`: one space's whole state."""

    model_config = ConfigDict(extra="forbid")

    api_token: str = Field(min_length=1)
    space_id: str = Field(min_length=1)
    users: list[User] = []
    groups: list[Group] = []
    trainings: list[Training] = []
    window_seconds: float | None = Field(default=None, gt=0)
    requests_per_window: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _groups_exist(self) -> "CardsAccountSeed":
        known = {group.id for group in self.groups}
        unknown = sorted({group_id for user in self.users for group_id in user.groups} - known)
        if unknown:
            raise ValueError(f"users name groups that are not seeded: {unknown}")
        return self


@dataclass
class CardsAccount:
    """One emulated Cards space."""

    api_token: str
    space_id: str
    window: SlidingWindow
    users: dict[int, User]
    groups: dict[int, Group]
    trainings: dict[int, Training]
    traffic: Traffic = field(default_factory=Traffic)

    def has_token(self, header: str | None) -> bool:
        """Checks `Authorization: Bearer <token>`."""
        match = BEARER.fullmatch(header or "")
        return match is not None and secrets.compare_digest(match[1].encode(), self.api_token.encode())

    def group_named(self, name: str) -> Group:
        """The group of this name, created when there is none (as Cards does for a name in `groups`)."""
        found = next((group for group in self.groups.values() if group.name == name), None)
        if found is None:
            found = Group(id=max(self.groups, default=0) + 1, name=name)
            self.groups[found.id] = found
        return found

    def email_taken(self, email: str, by_other_than: int | None) -> bool:
        """Whether another user of the space has this email, ignoring case."""
        wanted = email.casefold()
        return any(user.id != by_other_than and (user.email or "").casefold() == wanted for user in self.users.values())

    def record(self, user: User) -> dict[str, Any]:
        """The user as the API shows it: groups as `{id, name}`, no `notify`."""
        groups = [{"id": gid, "name": self.groups[gid].name} for gid in user.groups if gid in self.groups]
        return {**user.model_dump(exclude={"groups", "notify"}), "groups": groups}


@dataclass
class CardsSandbox:
    """Every emulated Cards space of one sandbox process, by account name."""

    window_seconds: float = DEFAULT_WINDOW_SECONDS
    requests_per_window: int = DEFAULT_REQUESTS_PER_WINDOW
    accounts: dict[str, CardsAccount] = field(default_factory=dict)

    def replace_account(self, name: str, seed: CardsAccountSeed) -> CardsAccount:
        """Creates or wholly replaces a space: new data, empty call log, no faults, fresh window."""
        window = SlidingWindow(
            seconds=seed.window_seconds or self.window_seconds,
            limit=seed.requests_per_window or self.requests_per_window,
        )
        account = CardsAccount(
            api_token=seed.api_token,
            space_id=seed.space_id,
            window=window,
            users={user.id: user for user in seed.users},
            groups={group.id: group for group in seed.groups},
            trainings={training.id: training for training in seed.trainings},
        )
        self.accounts[name] = account
        return account


def get_cards_sandbox(request: Request) -> CardsSandbox:
    """The Cards state of the app serving this request."""
    return cards_sandbox_of(request.app)


def cards_sandbox_of(app: FastAPI) -> CardsSandbox:
    """The Cards state `create_sandbox_app` put on the app."""
    sandbox = app.state.cards
    assert isinstance(sandbox, CardsSandbox)
    return sandbox


# ----------------------------------------------------------------------------------------------------
# Every Cards call goes through the same gate: space, token, tenant header, rate limit, faults, call log.


def cards_error(status: int, message: str, retry_after: str | None = None) -> JSONResponse:
    """An error the way Laravel words it."""
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def invalid(errors: Mapping[str, list[str]]) -> JSONResponse:
    """Laravel's 422: the first message (and how many more), every message by field."""
    messages = [message for field_messages in errors.values() for message in field_messages]
    more = len(messages) - 1
    summary = messages[0] + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")
    return JSONResponse({"message": summary, "errors": dict(errors)}, status_code=422)


CARDS_ERRORS = ErrorStyle(cards_error)


def validated(serve: RouteHandler) -> RouteHandler:
    """The endpoint, its validation failures answered as Laravel's 422."""

    async def serving(request: Request) -> Response:
        try:
            return await serve(request)
        except CardsInvalid as exc:
            return invalid(exc.errors)

    return serving


async def answer_call(account: CardsAccount, request: Request, serve: RouteHandler) -> Response:
    """Checks the token, the space and the window, then serves the call or the fault injected for it."""
    if not account.has_token(request.headers.get("authorization")):
        return cards_error(401, "Unauthenticated.")
    tenant = request.headers.get("x-tenant")
    if tenant is None or not secrets.compare_digest(tenant.encode(), account.space_id.encode()):
        return cards_error(403, "This API key does not give access to the space named by X-Tenant.")
    now = time.monotonic()
    retry_after = account.window.retry_after(now)
    if retry_after is not None:
        return cards_error(429, "Too Many Attempts.", str(retry_after))
    fault = account.traffic.take_fault(request.method, request.url.path)
    # Only calls that really reach Cards use up the window; refused and faked ones do not.
    if fault is None or fault.performs_call:
        account.window.record(now)
    return await CARDS_ERRORS.answer(request, validated(serve), fault)


async def guard_call(request: Request, serve: RouteHandler) -> Response:
    """Finds the space, answers the call and logs it (path as Cards sees it, `/v1/...`) with its status."""
    name = request.path_params["account"]
    account = cards_sandbox_of(request.app).accounts.get(name)
    if account is None:
        return cards_error(404, f"Unknown Cards account '{name}'")
    path = request.url.path.removeprefix(f"/cards/{name}")
    return await account.traffic.logged(request, path, answer_call(account, request, serve))


# A Cards endpoint: authenticated, rate-limited, fault-injected and logged per space.
CardsRoute = gated_route_class(guard_call)


def get_account(request: Request, account: str) -> CardsAccount:
    """The space named in the path (the gate already checked that it exists)."""
    found = cards_sandbox_of(request.app).accounts.get(account)
    if found is None:
        raise CardsError(404, f"Unknown Cards account '{account}'")
    return found


AccountDep = Annotated[CardsAccount, Depends(get_account)]


# ----------------------------------------------------------------------------------------------------
# Listing: `filters` and Laravel pages.

# What a filter type compares, per resource: the item's values as strings.
UserValues = Callable[[CardsAccount, User], set[str]]
USER_FILTERS: dict[str, UserValues] = {
    "role": lambda _, user: {user.role},
    "groups_id": lambda _, user: {str(gid) for gid in user.groups},
    "groups_name": lambda account, user: {account.groups[gid].name for gid in user.groups if gid in account.groups},
}
GROUP_FILTERS: dict[str, Callable[[Group], set[str]]] = {
    "is_public": lambda group: {filter_value(group.is_public)},
    "enable_ranking": lambda group: {filter_value(group.enable_ranking)},
}


def filter_value(value: Any) -> str:
    """A value as filters compare it: booleans as 1/0, anything else as its text."""
    return str(int(value)) if isinstance(value, bool) else str(value)


def parse_filters(raw: str | None, types: Iterable[str]) -> list[tuple[str, set[str]]]:
    """`filters` = a JSON array of `{type, values}`: AND between entries, OR inside values."""
    if raw is None:
        return []
    known = sorted(types)
    try:
        entries = json.loads(raw)
    except ValueError:
        raise CardsInvalid({"filters": ["The filters field must be a valid JSON string."]}) from None
    if not isinstance(entries, list):
        raise CardsInvalid({"filters": ["The filters field must be an array."]})
    parsed = []
    for index, entry in enumerate(entries):
        kind = entry.get("type") if isinstance(entry, dict) else None
        values = entry.get("values") if isinstance(entry, dict) else None
        if kind not in known:
            message = f"The filters.{index}.type must be one of {', '.join(known)}."
            raise CardsInvalid({f"filters.{index}.type": [message]})
        if not isinstance(values, list):
            raise CardsInvalid({f"filters.{index}.values": [f"The filters.{index}.values field must be an array."]})
        parsed.append((kind, {filter_value(value) for value in values}))
    return parsed


def parse_page(request: Request) -> tuple[int, int]:
    """`paginate` (default 100, at most 500) and `page` (Laravel reads anything but a number ≥ 1 as 1)."""
    raw_size = request.query_params.get("paginate", str(DEFAULT_PAGE_SIZE))
    if not raw_size.isdigit():
        raise CardsInvalid({"paginate": ["The paginate field must be an integer."]})
    if not 1 <= int(raw_size) <= MAX_PAGE_SIZE:
        raise CardsInvalid({"paginate": [f"The paginate field must be between 1 and {MAX_PAGE_SIZE}."]})
    raw_page = request.query_params.get("page", "1")
    page = int(raw_page) if raw_page.isdigit() and int(raw_page) >= 1 else 1
    return page, int(raw_size)


def laravel_page(request: Request, items: list[dict[str, Any]], page: int, size: int) -> dict[str, Any]:
    """One page as a Laravel resource collection: `data`, `links` and `meta` (other query values kept in links)."""
    last = max(1, math.ceil(len(items) / size))
    shown = items[(page - 1) * size : page * size]
    start = (page - 1) * size + 1 if shown else None

    def url(number: int) -> str:
        return str(request.url.include_query_params(page=number))

    numbers = sorted({1, last, *range(max(1, page - 2), min(last, page + 2) + 1)})
    return {
        "data": shown,
        "links": {
            "first": url(1),
            "last": url(last),
            "prev": url(page - 1) if page > 1 else None,
            "next": url(page + 1) if page < last else None,
        },
        "meta": {
            "current_page": page,
            "from": start,
            "last_page": last,
            "links": [
                {"url": url(page - 1) if page > 1 else None, "label": "&laquo; Previous", "active": False},
                *({"url": url(n), "label": str(n), "active": n == page} for n in numbers),
                {"url": url(page + 1) if page < last else None, "label": "Next &raquo;", "active": False},
            ],
            "path": str(request.url.replace(query="")),
            "per_page": size,
            "to": None if start is None else start + len(shown) - 1,
            "total": len(items),
        },
    }


# ----------------------------------------------------------------------------------------------------
# Writing users: Laravel-style validation, then the changes.

# A `groups` item once checked: ("id", 12) or ("name", "Sales").
GroupRef = tuple[Literal["id", "name"], int | str]


@dataclass
class UserInput:
    """A POST or PUT body checked field by field, collecting Laravel's messages."""

    account: CardsAccount
    user_id: int | None  # None: a creation
    changes: dict[str, Any] = field(default_factory=dict)
    groups: list[GroupRef] | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def check(self, body: Mapping[str, Any]) -> None:
        """Every known field of the body; a field absent is left alone, an empty one cleared."""
        for name in REQUIRED_STRINGS:
            if name in body or self.user_id is None:
                self.check_string(name, body.get(name), required=True)
        for name in OPTIONAL_STRINGS:
            if name in body:
                self.check_string(name, body[name], required=False)
        for name, allowed in CHOICES.items():
            if name in body and body[name] not in allowed:
                self.fail(name, f"The selected {name} is invalid.")
            elif name in body:
                self.changes[name] = body[name]
        for name in ("enable_ranking", "notify"):
            if name in body:
                self.check_flag(name, body[name])
        if "groups" in body:
            self.check_groups(body["groups"])

    def check_string(self, name: str, value: Any, *, required: bool) -> None:
        if value in (None, ""):
            if required:
                self.fail(name, f"The {name} field is required.")
            else:
                self.changes[name] = None
        elif not isinstance(value, str):
            self.fail(name, f"The {name} field must be a string.")
        elif len(value) > MAX_STRING:
            self.fail(name, f"The {name} field must not be greater than {MAX_STRING} characters.")
        elif name == "email" and not EMAIL.fullmatch(value):
            self.fail(name, "The email field must be a valid email address.")
        elif name == "email" and self.account.email_taken(value, self.user_id):
            self.fail(name, "The email has already been taken.")
        else:
            self.changes[name] = value

    def check_flag(self, name: str, value: Any) -> None:
        flag = FLAGS.get(value) if isinstance(value, bool | int | str) else None
        if flag is None:
            self.fail(name, f"The {name} field must be true or false.")
        else:
            self.changes[name] = flag

    def check_groups(self, items: Any) -> None:
        if not isinstance(items, list):
            self.fail("groups", "The groups field must be an array.")
            return
        self.groups = []
        for index, item in enumerate(items):
            ref = self.group_ref(item)
            if ref is None:
                self.fail(f"groups.{index}", f"The selected groups.{index} is invalid.")
            else:
                self.groups.append(ref)

    def group_ref(self, item: Any) -> GroupRef | None:
        """An id (of an existing group) or a name; in an object, the id has priority over the name."""
        if isinstance(item, dict):
            if item.get("id") in self.account.groups:
                return self.group_ref(item["id"])
            return self.group_ref(item.get("name"))
        if isinstance(item, int) and not isinstance(item, bool):
            return ("id", item) if item in self.account.groups else None
        if isinstance(item, str) and 0 < len(item.strip()) <= MAX_STRING:
            return ("name", item.strip())
        return None

    def apply(self, base: Mapping[str, Any]) -> User:
        """The checked body applied to `base`; refused as a whole (nothing created) when a field is invalid."""
        if self.errors:
            raise CardsInvalid(self.errors)
        values = {**base, **self.changes}
        if self.groups is not None:
            # `groups` replaces the user's groups; a name without a group creates one.
            ids = [int(ref) if kind == "id" else self.account.group_named(str(ref)).id for kind, ref in self.groups]
            values["groups"] = list(dict.fromkeys(ids))
        return User.model_validate(values)


async def read_body(request: Request) -> dict[str, Any]:
    """The JSON object a write sends."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise CardsError(400, "The body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise CardsError(400, "The body must be a JSON object.")
    return body


def find_user(account: CardsAccount, user_id: int) -> User:
    """The user with this id, or Laravel's 404."""
    user = account.users.get(user_id)
    if user is None:
        raise CardsError(404, f"No query results for model [User] {user_id}")
    return user


# ----------------------------------------------------------------------------------------------------
# Routes.

router = APIRouter(prefix="/cards/{account}/v1", route_class=CardsRoute, tags=["cards"])


@router.get("/users")
async def list_users(request: Request, cards: AccountDep) -> JSONResponse:
    """Users by id, `paginate`/`page`, optional `filters` (`role`, `groups_name`, `groups_id`)."""
    paging = parse_page(request)
    filters = parse_filters(request.query_params.get("filters"), USER_FILTERS)
    users = [
        cards.record(user)
        for _, user in sorted(cards.users.items())
        if all(USER_FILTERS[kind](cards, user) & values for kind, values in filters)
    ]
    return JSONResponse(laravel_page(request, users, *paging))


@router.get("/users/{user_id}")
async def get_user(user_id: int, cards: AccountDep) -> JSONResponse:
    """One user, `{"data": {...}}`."""
    return JSONResponse({"data": cards.record(find_user(cards, user_id))})


@router.post("/users")
async def create_user(request: Request, cards: AccountDep) -> JSONResponse:
    """Creates a user (`firstname` and `lastname` required, `email` unique ignoring case); 201 `{"data": {...}}`."""
    checked = UserInput(cards, None)
    checked.check(await read_body(request))
    user = checked.apply({"id": max(cards.users, default=0) + 1, "notify": False})
    cards.users[user.id] = user
    return JSONResponse({"data": cards.record(user)}, status_code=201)


@router.put("/users/{user_id}")
async def update_user(user_id: int, request: Request, cards: AccountDep) -> JSONResponse:
    """Updates the given fields (an absent field is kept); `groups` replaces the user's groups, `[]` removes all."""
    current = find_user(cards, user_id)
    body = await read_body(request)
    body.pop("notify", None)  # only a creation notifies
    checked = UserInput(cards, user_id)
    checked.check(body)
    user = checked.apply(current.model_dump())
    cards.users[user.id] = user
    return JSONResponse({"data": cards.record(user)})


@router.delete("/users/{user_id}", status_code=204)
async def delete_user(user_id: int, cards: AccountDep) -> Response:
    """Deletes a user, and so their place in every group. 204 with no body *(our choice: Cards' docs list the route
    without its answer, and 204 is what a Laravel API's `destroy` usually answers; a client should take any 2xx)*."""
    find_user(cards, user_id)
    del cards.users[user_id]
    return Response(status_code=204)


@router.get("/groups")
async def list_groups(request: Request, cards: AccountDep) -> JSONResponse:
    """Groups by id, `paginate`/`page`, optional `filters` (`is_public`, `enable_ranking`)."""
    paging = parse_page(request)
    filters = parse_filters(request.query_params.get("filters"), GROUP_FILTERS)
    groups = [
        group.model_dump()
        for _, group in sorted(cards.groups.items())
        if all(GROUP_FILTERS[kind](group) & values for kind, values in filters)
    ]
    return JSONResponse(laravel_page(request, groups, *paging))


@router.get("/trainings/{training_id}")
async def get_training(training_id: int, cards: AccountDep) -> JSONResponse:
    """One training, `{"data": {...}}`."""
    training = cards.trainings.get(training_id)
    if training is None:
        raise CardsError(404, f"No query results for model [Training] {training_id}")
    return JSONResponse({"data": training.model_dump()})
