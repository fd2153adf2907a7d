"""One Lucca account's state, shared by its legacy (v3/v4) and OAuth (v5) APIs: data, rate-limit window, OAuth
clients and tokens, webhook endpoints, the changes waiting to become events, and the call log."""

import asyncio
import math
from bisect import insort
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI, Request

from app.sandbox.faults import Traffic
from app.sandbox.lucca_models import (
    Department,
    Establishment,
    LegalUnit,
    LuccaAccountSeed,
    OAuthClientSeed,
    Role,
    User,
    by_id,
    highest_value_id,
    now_lucca,
)

TOKEN_LIFETIME_SECONDS = 1800


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


@dataclass(frozen=True)
class Token:
    """A bearer token the account's token endpoint gave out."""

    client_id: str
    scopes: frozenset[str]
    expires_at: float

    def expired_at(self, moment: float) -> "Token":
        """The same token, expiring at `moment` (a control shortening its life)."""
        return Token(self.client_id, self.scopes, min(self.expires_at, moment))


@dataclass(frozen=True)
class Change:
    """A person or department that changed; `before` is None on creation, `after` None on deletion."""

    kind: Literal["employee", "department"]
    before: User | Department | None
    after: User | Department | None
    at: str


@dataclass
class WebhookEndpoint:
    """A registered webhook endpoint (v5 `webhook-endpoint`), with its signing secret."""

    id: str
    name: str
    webhook_url: str
    api_version: str
    topics: list[str]
    business_establishments: list[dict[str, Any]] | None
    secret: str
    created_at: str
    status: Literal["active", "suspended", "inactive"] = "inactive"

    def wants(self, topic: str, establishment_id: str | None) -> bool:
        """Whether an event of this topic, about this business establishment, goes to this endpoint."""
        if self.status != "active" or not any(topic_matches(pattern, topic) for pattern in self.topics):
            return False
        wanted = self.business_establishments
        return wanted is None or any(establishment.get("id") == establishment_id for establishment in wanted)


def topic_matches(pattern: str, topic: str) -> bool:
    """A topic as an endpoint names it: exact (`employee.updated`) or every change of a resource (`employee.*`)."""
    resource, _, change = pattern.rpartition(".")
    return pattern == topic or (change == "*" and topic.rpartition(".")[0] == resource)


@dataclass
class Delivery:
    """One event sent (or to send) to one endpoint, with how its attempts went."""

    id: str
    event_id: str
    endpoint_id: str
    topic: str
    status: Literal["pending", "delivered", "undelivered", "failed"] = "pending"
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None


@dataclass
class WebhookState:
    """The account's endpoints, the events it produced and their deliveries (newest last)."""

    endpoints: dict[str, WebhookEndpoint] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    # Deliveries wait in the queue while paused; `resume` sends them, in order or reversed.
    paused: bool = False
    queue: deque[Delivery] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: "asyncio.Task[None] | None" = None
    last_id: int = 0
    attempts: int = 5
    retry_seconds: float = 1.0

    def new_id(self) -> str:
        """A fresh id for an endpoint, an event or a delivery."""
        self.last_id += 1
        return str(self.last_id)


@dataclass
class LuccaAccount:
    """One emulated Lucca account (a tenant domain)."""

    name: str
    api_key: str
    window: SlidingWindow
    users: dict[int, User]
    establishments: dict[int, Establishment]
    departments: dict[int, Department]
    legal_units: dict[int, LegalUnit]
    roles: dict[int, Role]
    oauth_clients: dict[str, OAuthClientSeed]
    last_value_id: int = 0
    traffic: Traffic = field(default_factory=Traffic)
    tokens: dict[str, Token] = field(default_factory=dict)
    token_lifetime_seconds: int = TOKEN_LIFETIME_SECONDS
    # `Sunset` / `Deprecation` headers every v5 answer carries, when set by a control.
    sunset: str | None = None
    deprecation: str | None = None
    webhooks: WebhookState = field(default_factory=WebhookState)
    # Where the account was last reached (`http://host:port/<name>`): the base of v5 URLs in webhook events.
    public_url: str = ""
    _sorted_ids: list[int] = field(default_factory=list)
    # Ids are never given twice, even after the user holding the highest one was deleted.
    _highest_user_id: int = 0

    @classmethod
    def from_seed(cls, name: str, seed: LuccaAccountSeed, window: SlidingWindow) -> "LuccaAccount":
        """A fresh account holding the seed's objects, keyed by id."""
        account = cls(
            name=name,
            api_key=seed.api_key,
            window=window,
            users=by_id(seed.users),
            establishments=by_id(seed.establishments),
            departments=by_id(seed.departments),
            legal_units=by_id(seed.legal_units),
            roles=by_id(seed.roles),
            oauth_clients={client.client_id: client for client in seed.oauth_clients},
            last_value_id=highest_value_id(seed.users),
            public_url=f"http://sandbox/{name}",
        )
        account._sorted_ids = sorted(account.users)
        account._highest_user_id = max(account.users, default=0)
        return account

    def new_user_id(self) -> int:
        """The id Lucca would give the next user."""
        return self._highest_user_id + 1

    def new_value_id(self) -> int:
        """A fresh id for an extended-data value row."""
        self.last_value_id += 1
        return self.last_value_id

    def user_ids(self) -> list[int]:
        """Every user id, ascending (kept sorted as users come and go, not sorted per request)."""
        return self._sorted_ids

    def save_user(self, user: User) -> User:
        """Stores a created or changed user: `modifiedAt` is now, and the change waits to become webhook events."""
        user.modified_at = now_lucca()
        before = self.users.get(user.id)
        if before is None:
            insort(self._sorted_ids, user.id)
            self._highest_user_id = max(self._highest_user_id, user.id)
        self.users[user.id] = user
        self.record(Change("employee", before, user, user.modified_at))
        return user

    def remove_user(self, user_id: int) -> User | None:
        """Deletes a user (as if Lucca's admin did); the deletion becomes an `employee.deleted` event."""
        user = self.users.pop(user_id, None)
        if user is not None:
            self._sorted_ids.remove(user_id)
            self.record(Change("employee", user, None, now_lucca()))
        return user

    def save_department(self, department: Department) -> Department:
        """Stores a created or changed department; the change waits to become a webhook event."""
        before = self.departments.get(department.id)
        self.departments[department.id] = department
        self.record(Change("department", before, department, now_lucca()))
        return department

    def record(self, change: Change) -> None:
        """Keeps the change for the webhook deliverer, when some endpoint may want it."""
        if self.webhooks.endpoints:
            self.webhooks.changes.append(change)
            self.webhooks.wake.set()

    def close(self) -> None:
        """Stops the account's webhook deliverer (the account was replaced or deleted)."""
        if self.webhooks.task is not None:
            self.webhooks.task.cancel()


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
        self.remove_account(name)
        account = LuccaAccount.from_seed(name, seed, window)
        self.accounts[name] = account
        return account

    def remove_account(self, name: str) -> None:
        """Forgets an account and stops what runs for it."""
        account = self.accounts.pop(name, None)
        if account is not None:
            account.close()


def get_lucca_sandbox(request: Request) -> LuccaSandbox:
    """The sandbox state of the app serving this request."""
    return lucca_sandbox_of(request.app)


def lucca_sandbox_of(app: FastAPI) -> LuccaSandbox:
    """The Lucca state `create_sandbox_app` put on the app."""
    sandbox = app.state.lucca
    assert isinstance(sandbox, LuccaSandbox)
    return sandbox
