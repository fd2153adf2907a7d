"""Client for Lucca's OAuth API (v5, `/lucca-api/…`, contract section 4) and the directory read through it.

Every call carries `Api-Version` and a client-credentials token (app.clients.lucca_oauth) and counts in the
account's one rate-limit window, the legacy API's calls included. A 401 gets one fresh token and one retry; a 403
names the scope the call needs; `application/problem+json` bodies become plain words; `Sunset`, `Deprecation` and
410 answers are kept as notices in plain words.
"""

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from app.clients.access import AccountAccess
from app.clients.http import (
    RETRYABLE_STATUSES,
    PartnerHTTP,
    RateLimit,
    RetryPolicy,
    short_line,
)
from app.clients.lucca import (
    LUCCA_ERRORS,
    PARTNER,
    LuccaAuthFailed,
    LuccaRejected,
    account_key,
    note_announcements,
)
from app.clients.lucca_directory import Api, DirectoryDepartment, DirectoryPerson
from app.clients.lucca_oauth import LuccaTokens
from app.clients.ratelimit import SlidingWindowLimiter
from app.logging import redact

API_VERSION = "2024-11-01"
PAGE_LIMIT = 100  # v5's most per page
# What the directory reads need (the README lists them per feature); webhooks need WEBHOOK_SCOPES too.
DIRECTORY_SCOPES = ("employees.readonly", "departments.readonly", "job-positions.readonly", "employments.readonly")
WEBHOOK_SCOPES = ("webhook-endpoints.readwrite",)
# Answers this client reads itself: every final refusal (a 401 asks for a fresh token, a 403 names a scope).
OWN_STATUSES = frozenset(range(400, 500)) - RETRYABLE_STATUSES
EMPLOYEES = "/lucca-api/employees"
EMBEDDED = "embedded,links"


@dataclass(frozen=True)
class WebhookEndpoint:
    """A webhook endpoint registered with Lucca; `secret` (the signing key) comes only with its creation."""

    id: str
    status: str
    url: str | None = None
    secret: str | None = field(default=None, repr=False)


def scope_needed(method: str, path: str) -> str:
    """The scope a call needs: its resource's `.readonly` for reads, `.readwrite` for writes."""
    resource = path.removeprefix("/lucca-api/").split("/")[0]
    return f"{resource}.{'readonly' if method == 'GET' else 'readwrite'}"


def problem_words(response: httpx.Response) -> str:
    """A `problem+json` body (RFC 7807: title, detail, errors by field) in one line of plain words."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return response.reason_phrase or f"HTTP {response.status_code}"
    parts = [str(body[key]) for key in ("title", "detail", "details") if isinstance(body.get(key), str) and body[key]]
    errors = body.get("errors")
    if isinstance(errors, dict):
        for name, said in errors.items():
            words = "; ".join(map(str, said)) if isinstance(said, list) else str(said)
            parts.append(f"{name}: {words}")
    sentences = " ".join(part if part.endswith((".", "!", "?")) else f"{part}." for part in parts)
    return short_line(redact(sentences)) or response.reason_phrase or f"HTTP {response.status_code}"


class LuccaV5Client:
    """Lucca's OAuth API for one account, within the account's one rate limit."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        tokens: LuccaTokens,
        *,
        limiter: SlidingWindowLimiter,
        retry: RetryPolicy,
        rate_limit: RateLimit,
    ) -> None:
        client = tokens.client
        # The account's window is shared once the account has accepted this client (app.clients.access).
        credential = f"oauth\n{client.token_url}\n{client.client_id}\n{client.client_secret}"
        self._access = AccountAccess(limiter.redis, PARTNER, account_key(base_url), credential)
        self._http = http
        self._base_url = base_url
        self._base_path = urlsplit(base_url).path.rstrip("/")
        self._tokens = tokens
        self._limiter = limiter
        self._retry = retry
        self._rate_limit = rate_limit
        # What Lucca announced (Sunset, Deprecation, 410), in plain words, once each.
        self.notices: list[str] = []

    @property
    def client_id(self) -> str:
        return self._tokens.client.client_id

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET `path` and decode its JSON body."""
        response = await self.request("GET", path, params=params)
        with self.reading(path):
            return response.json()

    async def pages(
        self, path: str, params: Mapping[str, str] | None = None, start: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every page of a collection (100 a page), following `links.next.href` until it is null; from the first
        page, or from `start` (a `page_address` of a page's next one, to go on with a read cut there)."""
        query: dict[str, str] = {**(params or {}), "limit": str(PAGE_LIMIT)}
        include = {part for part in query.get("include", "").split(",") if part} | {"links"}
        query["include"] = ",".join(sorted(include))
        if start is not None:
            parts = urlsplit(start)
            path, query = parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        while True:
            body = await self.get(path, query)
            with self.reading(path):
                if not isinstance(body, dict) or not isinstance(body["items"], list):
                    raise TypeError("not a collection")
            yield body
            following = self.next_page(body)
            if following is None:
                return
            path, query = following
            # A cursor that does not move would loop forever on the account's rate budget.
            marker = (path, tuple(sorted(query.items())))
            if marker in seen:
                return
            seen.add(marker)

    def page_address(self, body: Mapping[str, Any]) -> str | None:
        """The next page's path and query (on this account) as one string, for `pages(start=…)`; None at the end."""
        following = self.next_page(body)
        return None if following is None else f"{following[0]}?{urlencode(following[1])}"

    def next_page(self, body: Mapping[str, Any]) -> tuple[str, dict[str, str]] | None:
        """The path and query of `links.next.href`, on this client's account whatever host the link names."""
        links = body.get("links")
        following = links.get("next") if isinstance(links, dict) else None
        href = following.get("href") if isinstance(following, dict) else None
        if not isinstance(href, str) or not href:
            return None
        parts = urlsplit(href)
        path = parts.path
        if self._base_path and path.startswith(self._base_path + "/"):
            path = path.removeprefix(self._base_path)
        return path, dict(parse_qsl(parts.query, keep_blank_values=True))

    async def request(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, json: Any = None
    ) -> httpx.Response:
        """One call with a token (a 401: one fresh token, one retry); a 2xx response, or a LuccaError."""
        token = await self._tokens.token()
        response = await self._send(token, method, path, params, json)
        if response.status_code == 401:
            token = await self._tokens.renew(token)
            response = await self._send(token, method, path, params, json)
        self._note_announcements(path, response)
        if response.is_success:
            return response
        raise await self._refusal(method, path, response)

    async def _send(
        self, token: str, method: str, path: str, params: Mapping[str, str] | None, json: Any
    ) -> httpx.Response:
        sender = PartnerHTTP(
            self._http,
            partner=PARTNER,
            base_url=self._base_url,
            headers={"Authorization": f"Bearer {token}", "Api-Version": API_VERSION, "Accept": "application/json"},
            retry=self._retry,
            limiter=self._limiter,
            access=self._access,
            rate_limit=self._rate_limit,
            errors=LUCCA_ERRORS,
        )
        # A create is not resent blindly after a lost answer: Lucca may have made it.
        return await sender.request(
            method, path, params=params, json=json, replay_safe=method == "GET", own_statuses=OWN_STATUSES
        )

    def _note_announcements(self, path: str, response: httpx.Response) -> None:
        note_announcements(self.notices, path, response.status_code, response.headers)

    async def _refusal(self, method: str, path: str, response: httpx.Response) -> LuccaRejected:
        """A final refusal in plain words: the client refused, the scope missing, or what Lucca's problem says."""
        status, said = response.status_code, problem_words(response)
        client = f"OAuth client {self.client_id!r}"
        if status == 401:
            await self._access.refused()
            message = f"Lucca refused the token of {client} even fresh (HTTP 401): {said}"
            return LuccaAuthFailed(PARTNER, status, message)
        if status == 403:
            scope = scope_needed(method, path)
            message = (
                f"Lucca refused {method} {path} (HTTP 403): {client} lacks the scope {scope}. Give it that scope in "
                "Lucca's integration keys."
            )
            return LuccaAuthFailed(PARTNER, status, message)
        return LuccaRejected(PARTNER, status, f"Lucca refused {method} {path} (HTTP {status}): {said}")

    @contextlib.contextmanager
    def reading(self, path: str) -> Iterator[None]:
        """Turn an answer in an unexpected shape into a LuccaRejected that says where."""
        try:
            yield
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            message = f"Lucca answered {path} with data this service could not read ({type(exc).__name__})"
            raise LuccaRejected(PARTNER, 502, message) from exc

    async def create_webhook_endpoint(self, name: str, url: str, topics: Sequence[str]) -> WebhookEndpoint:
        """Register a webhook endpoint for these topics; the answer carries its signing secret, this once."""
        path = "/lucca-api/webhook-endpoints"
        body = {"name": name, "webhookUrl": url, "apiVersion": API_VERSION, "topics": list(topics)}
        response = await self.request("POST", path, json={**body, "businessEstablishments": None})
        with self.reading(path):
            created = response.json()
            return WebhookEndpoint(
                id=str(created["id"]),
                status=str(created.get("status") or "inactive"),
                url=created.get("webhookUrl", url),
                secret=str(created["secret"]),
            )

    async def get_webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        """A registered endpoint's status and URL."""
        path = f"/lucca-api/webhook-endpoints/{endpoint_id}"
        found = await self.get(path)
        with self.reading(path):
            return WebhookEndpoint(id=str(found["id"]), status=str(found["status"]), url=found.get("webhookUrl"))


def ref_id(value: Any) -> int | None:
    """The id of a reference object (`{"id": "32", "type": …}`), as a number; None for null or a missing one."""
    if isinstance(value, dict) and value.get("id") is not None:
        return int(value["id"])
    return None


def day(value: Any) -> date | None:
    """A `{"date": "YYYY-MM-DD"}` bound (or a plain date string) as a date."""
    if isinstance(value, dict):
        value = value.get("date")
    return date.fromisoformat(value[:10]) if isinstance(value, str) and value else None


def moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) and value else None


def person_from_v5(
    employee: Mapping[str, Any], position: Mapping[str, Any] | None, employment: Mapping[str, Any] | None
) -> DirectoryPerson:
    """An employee with their applicable job-position (job title, department, manager, establishment) and
    employment (contract dates); changed when the latest of the three changed. The copy's `legal_entity_id` is what
    the legacy API calls `legalEntityId`: an establishment (v4's), which v5 puts on the job-position, so a copy read
    through either API holds the same (the employment's `legalEntity` is the establishment's legal unit)."""
    position, employment = position or {}, employment or {}
    changes = [moment(part.get("lastUpdatedAt")) for part in (employee, position, employment)]
    return DirectoryPerson(
        lucca_id=int(employee["id"]),
        first_name=employee.get("givenName"),
        last_name=employee.get("familyName"),
        email=employee.get("email"),
        employee_number=employee.get("employeeNumber"),
        job_title=position.get("jobTitle"),
        department_id=ref_id(position.get("department")),
        manager_id=ref_id(position.get("manager")),
        legal_entity_id=ref_id(position.get("businessEstablishment")),
        contract_start=day(employment.get("start")),
        contract_end=day(employment.get("end")),
        extended={},  # v5 has no `e_` fields
        modified_at=max((change for change in changes if change is not None), default=None),
    )


def department_from_v5(department: Mapping[str, Any]) -> DirectoryDepartment:
    return DirectoryDepartment(
        lucca_id=int(department["id"]),
        name=str(department["name"]),
        head_id=ref_id(department.get("manager")),
        parent_id=ref_id(department.get("parent")),
        active=not department.get("isArchived", False),
    )


class V5Directory:
    """The directory through the OAuth API: employees 100 a call with their job-position and employment embedded."""

    api: Api = "v5"

    def __init__(self, client: LuccaV5Client) -> None:
        self._client = client
        self.notices = client.notices
        self.resume_at: str | None = None

    async def employee_pages(self, start: str | None = None) -> AsyncIterator[list[DirectoryPerson]]:
        async for body in self._client.pages(EMPLOYEES, {"include": EMBEDDED}, start=start):
            people = await self._people(body)
            self.resume_at = self._client.page_address(body)
            yield people

    async def employees_by_id(self, lucca_ids: Sequence[int]) -> list[DirectoryPerson]:
        people: list[DirectoryPerson] = []
        wanted = sorted(set(lucca_ids))
        for start in range(0, len(wanted), PAGE_LIMIT):
            chunk = ",".join(str(lucca_id) for lucca_id in wanted[start : start + PAGE_LIMIT])
            params = {"id": chunk, "include": EMBEDDED, "limit": str(PAGE_LIMIT)}
            people += await self._people(await self._client.get(EMPLOYEES, params))
        return people

    async def departments(self) -> list[DirectoryDepartment]:
        found: list[DirectoryDepartment] = []
        async for body in self._client.pages("/lucca-api/departments"):
            with self._client.reading("/lucca-api/departments"):
                found += [department_from_v5(item) for item in body["items"]]
        return found

    async def _people(self, body: Mapping[str, Any]) -> list[DirectoryPerson]:
        """A page's employees with their embedded job-position and employment; those Lucca did not embed are read
        in one call each per page (the spec's examples do not always embed what the employee points at)."""
        with self._client.reading(EMPLOYEES):
            items: list[dict[str, Any]] = body["items"]
            embedded = body.get("embedded") or {}
            positions = dict(embedded.get("job-position") or {})
            employments = dict(embedded.get("employment") or {})
            wanted_positions = missing(items, "applicableJobPosition", positions)
            wanted_employments = missing(items, "applicableEmployment", employments)
        positions |= await self._by_id("/lucca-api/job-positions", wanted_positions)
        employments |= await self._by_id("/lucca-api/employments", wanted_employments)
        with self._client.reading(EMPLOYEES):
            return [
                person_from_v5(
                    item,
                    positions.get(str(ref_id(item.get("applicableJobPosition")))),
                    employments.get(str(ref_id(item.get("applicableEmployment")))),
                )
                for item in items
            ]

    async def _by_id(self, path: str, ids: Sequence[str]) -> dict[str, Any]:
        """These resources by id (at most 100, one page's worth), keyed by id."""
        if not ids:
            return {}
        body = await self._client.get(path, {"id": ",".join(ids), "limit": str(PAGE_LIMIT)})
        with self._client.reading(path):
            return {str(item["id"]): item for item in body["items"]}


def missing(items: Sequence[Mapping[str, Any]], reference: str, embedded: Mapping[str, Any]) -> list[str]:
    """The ids that the items point at by `reference` and the page did not embed."""
    ids = {str(ref_id(item.get(reference))) for item in items if ref_id(item.get(reference)) is not None}
    return sorted(ids - set(embedded))
