"""LuccaTokens, LuccaV5Client and V5Directory against respx-mocked Lucca, with a real Redis for the shared token and
the rate limit."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import respx
from redis.asyncio import Redis

from app.clients.http import RateLimit, RetryPolicy, window_key
from app.clients.lucca import LuccaAuthFailed, LuccaRejected, account_key
from app.clients.lucca_directory import DirectoryDepartment, DirectoryPerson
from app.clients.lucca_oauth import LuccaTokens, OAuthClient
from app.clients.lucca_v5 import API_VERSION, DIRECTORY_SCOPES, LuccaV5Client, V5Directory
from app.clients.ratelimit import SlidingWindowLimiter
from app.crypto import SecretBox

FAST = RetryPolicy(base_seconds=0.01, max_seconds=0.02, in_call_seconds=0.05)
SECRET = "client-secret-0f1e2d3c4b5a"
BOX = SecretBox("unit-test-secret-key-for-the-token-store")


@pytest.fixture
def base_url() -> str:
    """A Lucca account of the test's own, so its token, rate-limit and proof keys are not shared."""
    return f"http://lucca-{uuid.uuid4().hex[:12]}.test/acme"


@pytest.fixture
def token_url() -> str:
    return f"http://accounts-{uuid.uuid4().hex[:12]}.test/connect/token"


@pytest.fixture
def oauth_client(token_url: str) -> OAuthClient:
    return OAuthClient(client_id="acme-cards", client_secret=SECRET, token_url=token_url)


@pytest.fixture
def lucca_api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(os.environ["REDIS_URL"])
    yield client
    async for key in client.scan_iter(match="lucca:token:*"):
        await client.delete(key)
    await client.aclose()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def tokens_for(http: httpx.AsyncClient, redis: Redis, client: OAuthClient, base_url: str) -> LuccaTokens:
    return LuccaTokens(http, redis, BOX, client, base_url, DIRECTORY_SCOPES, FAST)


@pytest.fixture
def v5(http: httpx.AsyncClient, redis: Redis, oauth_client: OAuthClient, base_url: str) -> LuccaV5Client:
    tokens = tokens_for(http, redis, oauth_client, base_url)
    limiter = SlidingWindowLimiter(redis)
    return LuccaV5Client(http, base_url, tokens, limiter=limiter, retry=FAST, rate_limit=RateLimit(100, 60))


def grant(lifetime: int = 1800) -> httpx.Response:
    return httpx.Response(200, json={"access_token": uuid.uuid4().hex, "token_type": "Bearer", "expires_in": lifetime})


def employee(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(n),
        "type": "employee",
        "givenName": f"Given{n}",
        "familyName": "Doe",
        "email": f"e{n}@acme.fr",
        "employeeNumber": f"E{n}",
        "applicableJobPosition": {"id": f"{n}0", "type": "job-position"},
        "applicableEmployment": {"id": f"{n}1", "type": "employment"},
        "lastUpdatedAt": "2026-01-01T10:00:00Z",
        **extra,
    }


def position(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{n}0",
        "jobTitle": f"Job {n}",
        "department": {"id": "32"},
        "manager": {"id": "416"},
        "businessEstablishment": {"id": "5"},
        "lastUpdatedAt": "2026-02-01T10:00:00Z",
        **extra,
    }


def employment(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{n}1",
        "legalEntity": {"id": "123"},
        "start": {"date": "2024-01-01"},
        "end": None,
        "lastUpdatedAt": "2025-01-01T10:00:00Z",
        **extra,
    }


def envelope(items: list[dict[str, Any]], next_href: str | None, embed: bool = True) -> dict[str, Any]:
    ids = [int(item["id"]) for item in items]
    return {
        "type": "employees",
        "items": items,
        "links": {"prev": None, "next": {"href": next_href} if next_href else None},
        "embedded": {
            "job-position": {f"{n}0": position(n) for n in ids} if embed else {},
            "employment": {f"{n}1": employment(n) for n in ids} if embed else {},
        },
    }


async def test_a_token_is_asked_form_encoded_and_shared_by_every_client(
    http: httpx.AsyncClient, redis: Redis, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    route = lucca_api.post(oauth_client.token_url).mock(side_effect=lambda request: grant())
    first = await tokens_for(http, redis, oauth_client, base_url).token()
    # Another process's client (a fresh object) finds the stored token: no second request.
    assert await tokens_for(http, redis, oauth_client, base_url).token() == first
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form == {
        "grant_type": "client_credentials",
        "client_id": "acme-cards",
        "client_secret": SECRET,
        "scope": " ".join(sorted(DIRECTORY_SCOPES)),
    }
    # Stored encrypted: neither the token nor the secret is readable in Redis.
    for key in [key async for key in redis.scan_iter(match="lucca:token:*")]:
        raw = await redis.get(key)
        assert raw is None or first.encode() not in raw


async def test_a_token_stored_under_another_secret_key_is_asked_again(
    http: httpx.AsyncClient, redis: Redis, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    route = lucca_api.post(oauth_client.token_url).mock(side_effect=lambda request: grant())
    await tokens_for(http, redis, oauth_client, base_url).token()
    rotated = LuccaTokens(http, redis, SecretBox("another-secret-key-after-rotation"), oauth_client, base_url,
                          DIRECTORY_SCOPES, FAST)  # fmt: skip
    assert await rotated.token()
    assert route.call_count == 2


async def test_a_grant_without_expires_in_is_kept_a_few_minutes(
    http: httpx.AsyncClient, redis: Redis, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    route = lucca_api.post(oauth_client.token_url).mock(return_value=httpx.Response(200, json={"access_token": "t"}))
    tokens = tokens_for(http, redis, oauth_client, base_url)
    assert [await tokens.token(), await tokens.token()] == ["t", "t"]
    assert route.call_count == 1


async def test_concurrent_clients_make_one_token_request(
    http: httpx.AsyncClient, redis: Redis, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    async def slow_grant(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.2)
        return grant()

    route = lucca_api.post(oauth_client.token_url).mock(side_effect=slow_grant)
    got = await asyncio.gather(*(tokens_for(http, redis, oauth_client, base_url).token() for _ in range(8)))
    assert route.call_count == 1
    assert len(set(got)) == 1


async def test_a_token_is_renewed_before_it_expires(
    http: httpx.AsyncClient, redis: Redis, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    route = lucca_api.post(oauth_client.token_url).mock(side_effect=lambda request: grant(lifetime=1))
    tokens = tokens_for(http, redis, oauth_client, base_url)
    first = await tokens.token()
    await asyncio.sleep(0.6)  # past half its 1-second life: renewed before it expires
    assert await tokens.token() != first
    assert route.call_count == 2


async def test_a_wrong_secret_never_gets_the_stored_token(
    http: httpx.AsyncClient, redis: Redis, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    route = lucca_api.post(oauth_client.token_url).mock(side_effect=lambda request: grant())
    await tokens_for(http, redis, oauth_client, base_url).token()
    other = OAuthClient(client_id=oauth_client.client_id, client_secret="guessed", token_url=oauth_client.token_url)
    await tokens_for(http, redis, other, base_url).token()
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (401, {"error": "invalid_client"}, "refused OAuth client 'acme-cards'"),
        (400, {"error": "invalid_client"}, "check its client_id and client_secret"),
    ],
)
async def test_a_refused_client_or_scope_is_said_in_plain_words(
    http: httpx.AsyncClient,
    redis: Redis,
    oauth_client: OAuthClient,
    base_url: str,
    lucca_api: respx.MockRouter,
    status: int,
    body: dict[str, str],
    words: str,
) -> None:
    lucca_api.post(oauth_client.token_url).mock(return_value=httpx.Response(status, json=body))
    with pytest.raises(LuccaAuthFailed) as refused:
        await tokens_for(http, redis, oauth_client, base_url).token()
    assert words in refused.value.message
    assert SECRET not in refused.value.message


async def test_a_refused_scope_is_named_alone(
    http: httpx.AsyncClient, redis: Redis, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    def token(request: httpx.Request) -> httpx.Response:
        scopes = dict(httpx.QueryParams(request.content.decode()))["scope"].split()
        if "employments.readonly" in scopes:
            return httpx.Response(400, json={"error": "invalid_scope"})
        return grant()

    lucca_api.post(oauth_client.token_url).mock(side_effect=token)
    with pytest.raises(LuccaAuthFailed) as refused:
        await tokens_for(http, redis, oauth_client, base_url).token()
    assert refused.value.message == (
        "Lucca refused OAuth client 'acme-cards' the scope employments.readonly (invalid_scope): give the client the "
        "scope employments.readonly in Lucca's integration keys."
    )


async def test_v5_calls_carry_the_version_and_token_and_count_in_the_accounts_window(
    v5: LuccaV5Client, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter, redis: Redis
) -> None:
    lucca_api.post(oauth_client.token_url).mock(
        return_value=httpx.Response(200, json={"access_token": "tok-1", "expires_in": 1800})
    )
    route = lucca_api.get(f"{base_url}/lucca-api/departments").mock(
        return_value=httpx.Response(200, json={"items": [], "links": {"next": None}})
    )
    await v5.get("/lucca-api/departments")
    await v5.get("/lucca-api/departments")
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert request.headers["Api-Version"] == API_VERSION
    # Proven by the first 2xx, the second call counted in the account's window, the legacy API's one.
    assert await redis.zcard(window_key("lucca", account_key(base_url))) >= 1


async def test_a_401_gets_one_fresh_token_and_one_retry(
    v5: LuccaV5Client, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    tokens = iter(["stale", "fresh", "never"])
    token_route = lucca_api.post(oauth_client.token_url).mock(
        side_effect=lambda request: httpx.Response(200, json={"access_token": next(tokens), "expires_in": 1800})
    )

    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer stale":
            return httpx.Response(401, json={"title": "Unauthorized", "status": 401})
        return httpx.Response(200, json={"id": "7", "status": "active"})

    route = lucca_api.get(f"{base_url}/lucca-api/webhook-endpoints/7").mock(side_effect=answer)
    found = await v5.get_webhook_endpoint("7")
    assert found.status == "active"
    assert route.call_count == 2
    assert token_route.call_count == 2


async def test_a_401_twice_is_refused_without_a_third_try(
    v5: LuccaV5Client, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    lucca_api.post(oauth_client.token_url).mock(side_effect=lambda request: grant())
    route = lucca_api.get(f"{base_url}/lucca-api/departments").mock(
        return_value=httpx.Response(401, json={"title": "Unauthorized", "status": 401})
    )
    with pytest.raises(LuccaAuthFailed, match="acme-cards"):
        await v5.get("/lucca-api/departments")
    assert route.call_count == 2


async def test_a_403_names_the_scope_the_call_needs(
    v5: LuccaV5Client, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    lucca_api.post(oauth_client.token_url).mock(side_effect=lambda request: grant())
    lucca_api.get(f"{base_url}/lucca-api/employees").mock(
        return_value=httpx.Response(403, json={"title": "Unauthorized", "status": 403})
    )
    with pytest.raises(LuccaAuthFailed) as refused:
        await v5.get("/lucca-api/employees")
    assert "lacks the scope employees.readonly" in refused.value.message


async def test_a_problem_body_becomes_plain_words(
    v5: LuccaV5Client, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    lucca_api.post(oauth_client.token_url).mock(side_effect=lambda request: grant())
    problem = {
        "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": {"limit": ["Maximum is 100."]},
    }
    lucca_api.get(f"{base_url}/lucca-api/employees").mock(
        return_value=httpx.Response(400, json=problem, headers={"Content-Type": "application/problem+json"})
    )
    with pytest.raises(LuccaRejected) as refused:
        await v5.get("/lucca-api/employees")
    assert refused.value.message == (
        "Lucca refused GET /lucca-api/employees (HTTP 400): One or more validation errors occurred. "
        "limit: Maximum is 100."
    )


async def test_sunset_deprecation_and_410_become_notices(
    v5: LuccaV5Client, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    lucca_api.post(oauth_client.token_url).mock(side_effect=lambda request: grant())
    headers = {"Sunset": "Sat, 31 Dec 2027 23:59:59 GMT", "Deprecation": "@1767225600"}
    lucca_api.get(f"{base_url}/lucca-api/departments").mock(
        return_value=httpx.Response(200, json={"items": []}, headers=headers)
    )
    lucca_api.get(f"{base_url}/lucca-api/employees").mock(return_value=httpx.Response(410, json={"title": "Gone"}))
    await v5.get("/lucca-api/departments")
    await v5.get("/lucca-api/departments")
    with pytest.raises(LuccaRejected):
        await v5.get("/lucca-api/employees")
    assert v5.notices == [
        "Lucca will retire /lucca-api/departments on Sat, 31 Dec 2027 23:59:59 GMT (Sunset header).",
        "Lucca marked /lucca-api/departments as deprecated (@1767225600).",
        "Lucca no longer serves /lucca-api/employees (HTTP 410 Gone): this service needs an update to read it.",
    ]


async def test_employee_pages_follow_the_cursor_with_embedded_positions_and_employments(
    v5: LuccaV5Client, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    lucca_api.post(oauth_client.token_url).mock(side_effect=lambda request: grant())

    def pages(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page") == "!c2":
            return httpx.Response(200, json=envelope([employee(3)], None))
        return httpx.Response(
            200, json=envelope([employee(1), employee(2)], f"{base_url}/lucca-api/employees?page=!c2&limit=100")
        )

    route = lucca_api.get(f"{base_url}/lucca-api/employees").mock(side_effect=pages)
    got = [page async for page in V5Directory(v5).employee_pages()]
    assert [[person.lucca_id for person in page] for page in got] == [[1, 2], [3]]
    first = route.calls[0].request.url.params
    assert first["limit"] == "100"
    assert set(first["include"].split(",")) == {"embedded", "links"}
    assert route.calls[1].request.url.params["page"] == "!c2"
    assert got[0][0] == DirectoryPerson(
        lucca_id=1,
        first_name="Given1",
        last_name="Doe",
        email="e1@acme.fr",
        employee_number="E1",
        job_title="Job 1",
        department_id=32,
        manager_id=416,
        legal_entity_id=5,  # the establishment, as the legacy API's legalEntityId
        contract_start=date(2024, 1, 1),
        contract_end=None,
        extended={},
        modified_at=datetime(2026, 2, 1, 10, tzinfo=UTC),  # the job-position's, the latest of the three
    )


async def test_what_a_page_does_not_embed_is_read_in_one_call_each(
    v5: LuccaV5Client, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    lucca_api.post(oauth_client.token_url).mock(side_effect=lambda request: grant())
    lucca_api.get(f"{base_url}/lucca-api/employees").mock(
        return_value=httpx.Response(200, json=envelope([employee(1), employee(2)], None, embed=False))
    )
    positions = lucca_api.get(f"{base_url}/lucca-api/job-positions").mock(
        return_value=httpx.Response(200, json={"items": [position(1), position(2, jobTitle="Boss")]})
    )
    employments = lucca_api.get(f"{base_url}/lucca-api/employments").mock(
        return_value=httpx.Response(200, json={"items": [employment(1), employment(2, end={"date": "2026-03-31"})]})
    )
    people = await V5Directory(v5).employees_by_id([2, 1])
    assert positions.call_count == 1 and employments.call_count == 1
    assert positions.calls.last.request.url.params["id"] == "10,20"
    assert {person.lucca_id: (person.job_title, person.contract_end) for person in people} == {
        1: ("Job 1", None),
        2: ("Boss", date(2026, 3, 31)),
    }


async def test_employees_by_id_asks_100_a_call(
    v5: LuccaV5Client, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    lucca_api.post(oauth_client.token_url).mock(side_effect=lambda request: grant())

    def by_id(request: httpx.Request) -> httpx.Response:
        ids = [int(part) for part in request.url.params["id"].split(",")]
        return httpx.Response(200, json=envelope([employee(n) for n in ids], None))

    route = lucca_api.get(f"{base_url}/lucca-api/employees").mock(side_effect=by_id)
    people = await V5Directory(v5).employees_by_id(list(range(1, 251)))
    assert len(people) == 250
    assert [len(call.request.url.params["id"].split(",")) for call in route.calls] == [100, 100, 50]


async def test_departments_are_read_through_their_pages(
    v5: LuccaV5Client, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    lucca_api.post(oauth_client.token_url).mock(side_effect=lambda request: grant())
    finance = {"id": "32", "name": "Finances", "isArchived": False, "parent": None, "manager": {"id": "416"}}
    old = {"id": "33", "name": "Old", "isArchived": True, "parent": {"id": "32"}, "manager": None}

    def pages(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page"):
            return httpx.Response(200, json={"items": [old], "links": {"next": None}})
        return httpx.Response(
            200, json={"items": [finance], "links": {"next": {"href": f"{base_url}/lucca-api/departments?page=2"}}}
        )

    lucca_api.get(f"{base_url}/lucca-api/departments").mock(side_effect=pages)
    assert await V5Directory(v5).departments() == [
        DirectoryDepartment(lucca_id=32, name="Finances", head_id=416, parent_id=None, active=True),
        DirectoryDepartment(lucca_id=33, name="Old", head_id=None, parent_id=32, active=False),
    ]


async def test_a_webhook_endpoint_is_created_with_its_secret(
    v5: LuccaV5Client, oauth_client: OAuthClient, base_url: str, lucca_api: respx.MockRouter
) -> None:
    lucca_api.post(oauth_client.token_url).mock(side_effect=lambda request: grant())
    route = lucca_api.post(f"{base_url}/lucca-api/webhook-endpoints").mock(
        return_value=httpx.Response(
            201, json={"id": "456", "status": "inactive", "secret": "whsecret", "webhookUrl": "https://x.test/h"}
        )
    )
    created = await v5.create_webhook_endpoint("directory", "https://x.test/h", ["employee.created"])
    assert (created.id, created.status, created.secret) == ("456", "inactive", "whsecret")
    sent = route.calls.last.request
    assert sent.headers["Api-Version"] == API_VERSION
    assert httpx.Response(200, content=sent.content).json() == {
        "name": "directory",
        "webhookUrl": "https://x.test/h",
        "apiVersion": API_VERSION,
        "topics": ["employee.created"],
        "businessEstablishments": None,
    }
