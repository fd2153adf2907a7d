"""Client for the Cards API (`partners.md` §3.1): users, groups and trainings of one Cards space."""

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis

from app.clients.access import AccountAccess
from app.clients.http import (
    PartnerAuthFailed,
    PartnerError,
    PartnerErrorTypes,
    PartnerHTTP,
    PartnerRejected,
    PartnerUnavailable,
    RateLimit,
    RetryPolicy,
)
from app.clients.lucca import account_key, single_item
from app.clients.ratelimit import SlidingWindowLimiter
from app.schemas.cards import CardsSettings

PARTNER = "cards"
# Cards documents `paginate` up to 500: the fewest calls for a whole space.
MAX_PAGE_SIZE = 500
# The nightly push asks each training's title and link once a day per space, not once per employee.
TRAINING_CACHE_SECONDS = 86_400


class CardsError(PartnerError):
    """Any failure of a Cards call."""


class CardsUnavailable(CardsError, PartnerUnavailable):
    """Cards kept failing (429, 408, 5xx, timeouts) beyond this call's retry budget."""


class CardsRejected(CardsError, PartnerRejected):
    """Cards refused the request, or answered with something this service cannot read."""


class CardsAuthFailed(CardsRejected, PartnerAuthFailed):
    """Cards refused the API token or the space (401/403)."""


CARDS_ERRORS = PartnerErrorTypes(unavailable=CardsUnavailable, rejected=CardsRejected, auth_failed=CardsAuthFailed)


class CardsModel(BaseModel):
    """Read from Cards' snake_case JSON, ignoring fields this service does not use."""

    model_config = ConfigDict(extra="ignore")


class CardsGroup(CardsModel):
    id: int
    name: str


class CardsUser(CardsModel):
    id: int
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    source: str | None = None
    groups: list[CardsGroup] = []


class CardsTraining(CardsModel):
    id: int
    title: str
    public_url: str | None = None


class CardsClient:
    """One Cards space, within its rate limit shared by every process through Redis."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: CardsSettings,
        *,
        limiter: SlidingWindowLimiter,
        retry: RetryPolicy,
        cache: Redis | None = None,
        cache_seconds: int = TRAINING_CACHE_SECONDS,
    ) -> None:
        self._space = settings.space_id
        account = f"{account_key(settings.api_base_url)}:{settings.space_id}"
        self._access = AccountAccess(limiter.redis, PARTNER, account, settings.api_token)
        self._http = PartnerHTTP(
            http,
            partner=PARTNER,
            base_url=settings.api_base_url,
            headers={
                "Authorization": f"Bearer {settings.api_token}",
                "X-Tenant": settings.space_id,
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            retry=retry,
            limiter=limiter,
            access=self._access,
            rate_limit=RateLimit(settings.rate_limit.requests, settings.rate_limit.per_seconds),
            errors=CARDS_ERRORS,
        )
        self._cache = cache
        self._cache_seconds = cache_seconds

    async def proven_account(self) -> str:
        """The space's shared identity (what its locks are keyed by), once Cards has accepted this token for it: one
        cheap call when that is not known yet; a refused token raises CardsAuthFailed."""
        if not await self._access.proven():
            await self._get_json("/users", {"paginate": "1", "page": "1"})
        return self._access.account

    async def user_pages(self) -> AsyncIterator[list[CardsUser]]:
        """Every user of the space, one page of up to 500 at a time."""
        async for items in self._pages("/users"):
            with self._reading("/users"):
                yield [CardsUser.model_validate(item) for item in items]

    async def users_by_email(self) -> dict[str, CardsUser]:
        """Every user of the space that has an email, keyed by the email case-folded (Cards' own uniqueness)."""
        found: dict[str, CardsUser] = {}
        async for page in self.user_pages():
            for user in page:
                if user.email:
                    found.setdefault(user.email.casefold(), user)
        return found

    async def user(self, user_id: int) -> CardsUser:
        """One user, with their groups (CardsRejected with status 404 when the space has no such user)."""
        path = f"/users/{user_id}"
        body = await self._get_json(path, {})
        with self._reading(path):
            return CardsUser.model_validate(single_item(body))

    async def create_user(
        self, *, firstname: str, lastname: str, email: str, source: str, notify: bool, groups: Sequence[int | str] = ()
    ) -> CardsUser:
        """Create a user; `source` is the login mode, `notify` has Cards email them an invitation, `groups` (ids, or
        names Cards makes groups of) the groups they start in."""
        body: dict[str, Any] = {
            "firstname": firstname, "lastname": lastname, "email": email, "source": source, "notify": notify
        }  # fmt: skip
        if groups:
            body["groups"] = list(groups)
        # Not replayed blindly: a lost answer may hide a created user, which the next listing by email finds.
        return await self._user("POST", "/users", body, replay_safe=False)

    async def set_groups(self, user_id: int, groups: Sequence[int | str]) -> CardsUser:
        """Give the user exactly these groups: ids of existing groups, names of groups Cards should create."""
        if not groups:
            # Cards reads an empty `groups` as "remove every group": never what a caller means here.
            raise ValueError("set_groups needs at least one group: an empty list would remove all of them")
        # Replayed after a lost answer: `groups` replaces the user's groups, and a name makes a group only when none
        # has it (partners.md 3.1), so the replay names the group the first PUT made instead of making another.
        return await self.update_user(user_id, {"groups": list(groups)})

    async def update_user(self, user_id: int, fields: Mapping[str, Any]) -> CardsUser:
        """Change only the given fields (Cards ignores a field the body leaves out). `groups`, when given, replaces
        the user's groups: `[]` takes them out of every group, which only a caller meaning it may send."""
        # Replayed after a lost answer: the same fields set to the same values.
        return await self._user("PUT", f"/users/{user_id}", fields)

    async def delete_user(self, user_id: int) -> bool:
        """Delete a user; False when the space has no such user (deleted already)."""
        try:
            await self._request("DELETE", f"/users/{user_id}")
        except CardsRejected as refused:
            if refused.status == 404 and not isinstance(refused, CardsAuthFailed):
                return False
            raise
        return True

    async def groups(self) -> list[CardsGroup]:
        """Every group of the space."""
        found: list[CardsGroup] = []
        async for items in self._pages("/groups"):
            with self._reading("/groups"):
                found += [CardsGroup.model_validate(item) for item in items]
        return found

    async def training(self, training_id: int) -> CardsTraining:
        """A training's title and public link, through the space's shared Redis cache when there is one and the
        token opens the space."""
        key = f"cards:cache:{self._access.account}:training:{training_id}"
        cached = await self._cache.get(key) if self._cache is not None and await self._access.proven() else None
        if cached is not None:
            return CardsTraining.model_validate_json(cached)
        path = f"/trainings/{training_id}"
        try:
            body = await self._get_json(path, {})
        except CardsRejected as refused:
            if refused.status == 404:
                message = f"Cards has no training {training_id} in space {self._space}."
                raise CardsRejected(PARTNER, 404, message) from None
            raise
        with self._reading(path):
            training = CardsTraining.model_validate(single_item(body))
        if self._cache is not None:
            await self._cache.set(key, training.model_dump_json(), ex=self._cache_seconds)
        return training

    async def _user(self, method: str, path: str, body: Mapping[str, Any], *, replay_safe: bool = True) -> CardsUser:
        """Send a user write and read the user Cards answers with."""
        response = await self._request(method, path, json=dict(body), replay_safe=replay_safe)
        with self._reading(path):
            return CardsUser.model_validate(single_item(response.json()))

    async def _pages(self, path: str) -> AsyncIterator[list[Any]]:
        """The items of a Laravel-paged list (`data`, `links`, `meta`), page after page."""
        page = 1
        while True:
            body = await self._get_json(path, {"paginate": str(MAX_PAGE_SIZE), "page": str(page)})
            with self._reading(path):
                items = body["data"]
                if not isinstance(items, list):
                    raise TypeError(f"{path} data is not a list")
                meta: Mapping[str, Any] = body.get("meta") or {}
                links: Mapping[str, Any] = body.get("links") or {}
                current = int(meta.get("current_page", page))
                last = int(meta.get("last_page", current))
            if current != page:
                # A page that does not move would loop forever on the space's rate budget.
                message = f"Cards answered page {page} of {path} with page {current}: the listing was stopped"
                raise CardsRejected(PARTNER, 502, message)
            yield items
            if not items or not links.get("next") or current >= last:
                return
            page += 1

    async def _get_json(self, path: str, params: Mapping[str, str]) -> Any:
        """GET `path` and decode its JSON body."""
        response = await self._request("GET", path, params=params)
        with self._reading(path):
            return response.json()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        replay_safe: bool = True,
    ) -> httpx.Response:
        """One call; a refused token or space says in plain words where to fix it."""
        try:
            return await self._http.request(method, path, params=params, json=json, replay_safe=replay_safe)
        except CardsAuthFailed as refused:
            message = (
                f"Cards refused the API token (HTTP {refused.status}): check it in Cards' API keys settings"
                f" and that it belongs to space {self._space}."
            )
            raise CardsAuthFailed(PARTNER, refused.status, message) from None

    @contextlib.contextmanager
    def _reading(self, path: str) -> Iterator[None]:
        """Turn an answer in an unexpected shape into a CardsRejected that says where."""
        try:
            yield
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            message = f"Cards answered {path} with data this service could not read ({type(exc).__name__})"
            raise CardsRejected(PARTNER, 502, message) from exc
