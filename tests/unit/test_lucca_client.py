"""LuccaClient against respx-mocked Lucca, with a real Redis for the rate limit and the cache."""

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any

import httpx
import pytest
import respx
from redis.asyncio import Redis

from app.clients.http import PartnerAuthFailed, PartnerRejected, PartnerUnavailable, RateLimit, RetryPolicy
from app.clients.lucca import (
    USER_FIELDS,
    Department,
    LuccaAccount,
    LuccaAuthFailed,
    LuccaClient,
    LuccaRejected,
    LuccaUnavailable,
    LuccaUser,
    account_key,
)
from app.clients.ratelimit import SlidingWindowLimiter

API_KEY = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
FAST = RetryPolicy(base_seconds=0.01, max_seconds=0.02, in_call_seconds=0.05)


@pytest.fixture
def base_url() -> str:
    """A Lucca account of the test's own, so its rate-limit and cache keys are not shared."""
    return f"http://lucca-{uuid.uuid4().hex[:12]}.test/Acme"


@pytest.fixture
def lucca_api(base_url: str) -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=base_url) as mock:
        yield mock


@pytest.fixture
async def lucca(base_url: str) -> AsyncIterator[LuccaClient]:
    redis = Redis.from_url(os.environ["REDIS_URL"])
    account = LuccaAccount(base_url=base_url, api_key=API_KEY, rate_limit=RateLimit(100, 60))
    async with httpx.AsyncClient() as http:
        limiter = SlidingWindowLimiter(redis)
        yield LuccaClient(http, account, limiter=limiter, retry=FAST, cache=redis, cache_seconds=60)
    async for key in redis.scan_iter(match=f"*{account_key(base_url)}*"):
        await redis.delete(key)
    await redis.aclose()


def user(user_id: int, **extra: Any) -> dict[str, Any]:
    return {"id": user_id, "firstName": f"First{user_id}", "lastName": "Doe", **extra}


def users_page(request: httpx.Request, total: int) -> httpx.Response:
    """Serve Lucca's `paging=offset,limit` over `total` users."""
    offset, limit = (int(part) for part in request.url.params["paging"].split(","))
    items = [user(n) for n in range(offset, min(offset + limit, total))]
    return httpx.Response(200, json={"data": {"items": items}})


async def test_list_users_reads_every_page_with_the_api_key(lucca: LuccaClient, lucca_api: respx.MockRouter) -> None:
    route = lucca_api.get("/api/v3/users").mock(side_effect=lambda request: users_page(request, 5))
    users = await lucca.list_users(page_size=2)
    assert [u.id for u in users] == [0, 1, 2, 3, 4]
    assert [call.request.url.params["paging"] for call in route.calls] == ["0,2", "2,2", "4,2"]
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"lucca application={API_KEY}"
    assert request.url.path == "/Acme/api/v3/users"
    assert request.url.params["fields"] == ",".join(USER_FIELDS)
    assert request.url.params["formerEmployees"] == "true"


async def test_list_users_stops_on_an_exactly_full_last_page(lucca: LuccaClient, lucca_api: respx.MockRouter) -> None:
    route = lucca_api.get("/api/v3/users").mock(side_effect=lambda request: users_page(request, 4))
    assert len(await lucca.list_users(page_size=2)) == 4
    assert route.call_count == 3


async def test_list_users_filters_and_fields(lucca: LuccaClient, lucca_api: respx.MockRouter) -> None:
    route = lucca_api.get("/api/v3/users").mock(return_value=httpx.Response(200, json={"data": {"items": []}}))
    filters = {"modifiedAt": "since,2025-01-01T08:45:23"}
    await lucca.list_users(fields=["id", "extendedData"], former_employees=False, filters=filters)
    params = route.calls.last.request.url.params
    assert params["fields"] == "id,extendedData"
    assert params["modifiedAt"] == "since,2025-01-01T08:45:23"
    assert params["paging"] == "0,1000"
    assert "formerEmployees" not in params


@pytest.mark.parametrize("operand", ["", ".", "a", "  ", " @ ", "ab"])
async def test_a_like_filter_too_short_to_narrow_is_never_sent(
    lucca: LuccaClient, lucca_api: respx.MockRouter, operand: str
) -> None:
    route = lucca_api.get("/api/v3/users").mock(return_value=httpx.Response(200, json={"data": {"items": []}}))
    with pytest.raises(LuccaRejected) as refused:
        await lucca.list_users(filters={"login": f"like,{operand}"})
    assert "matches almost everyone" in refused.value.message and route.call_count == 0
    await lucca.list_users(filters={"login": "like,abc", "id": "1"})
    assert route.call_count == 1


async def test_users_by_id_asks_once_with_an_id_list(lucca: LuccaClient, lucca_api: respx.MockRouter) -> None:
    answer = {"data": {"items": [user(7), user(3)]}}
    route = lucca_api.get("/api/v3/users").mock(return_value=httpx.Response(200, json=answer))
    found = await lucca.users_by_id([7, 3, 7, 9])
    assert sorted(found) == [3, 7] and found[7].first_name == "First7"
    params = route.calls.last.request.url.params
    assert (route.call_count, params["id"], params["formerEmployees"]) == (1, "3,7,9", "true")
    assert await lucca.users_by_id([]) == {} and route.call_count == 1


async def test_user_fields_and_dates_are_parsed(lucca: LuccaClient, lucca_api: respx.MockRouter) -> None:
    raw = user(
        416,
        mail="jdoe@acme.fr",
        dtContractStart="2014-09-01T00:00:00",
        dtContractEnd="2020-03-31T00:00:00",
        departmentId=13,
        department={"id": 13, "name": "BU Timmi/Lucca", "url": "x"},
        extendedData={"e_skip": {"id": 1, "value": True}},
        unknownField=[1, 2],
    )
    lucca_api.get("/api/v3/users/416").mock(return_value=httpx.Response(200, json={"data": raw}))
    found = await lucca.get_user(416)
    assert found.dt_contract_start == date(2014, 9, 1)
    assert found.dt_contract_end == date(2020, 3, 31)
    assert found.department_name == "BU Timmi/Lucca"
    assert found.extended_data == {"e_skip": {"id": 1, "value": True}}
    assert found.is_employed_on(date(2020, 3, 31))
    assert not found.is_employed_on(date(2020, 4, 1))
    assert LuccaUser.model_validate({"id": 1}).is_employed_on(date(2099, 1, 1))


async def test_create_user_posts_a_flat_body_with_contract(lucca: LuccaClient, lucca_api: respx.MockRouter) -> None:
    route = lucca_api.post("/api/v3/users", params={"contract": "true"})
    route.mock(return_value=httpx.Response(200, json={"data": user(900, login="zoe.muller@acme.fr")}))
    body = {"firstName": "Zoë", "lastName": "Müller", "dtContractStart": "2026-12-01T00:00:00"}
    created = await lucca.create_user(body)
    assert created.id == 900 and created.login == "zoe.muller@acme.fr"
    assert json.loads(route.calls.last.request.content) == body


async def test_update_user_puts_a_flat_body(lucca: LuccaClient, lucca_api: respx.MockRouter) -> None:
    route = lucca_api.put("/api/v3/users/416").mock(return_value=httpx.Response(200, json={"data": {}}))
    await lucca.update_user(416, {"e_quote": {"value": "hi"}})
    assert json.loads(route.calls.last.request.content) == {"e_quote": {"value": "hi"}}


async def test_a_put_that_appends_a_value_row_is_not_replayed_after_a_lost_answer(
    lucca: LuccaClient, lucca_api: respx.MockRouter
) -> None:
    """Lucca may have appended the row before its gateway answered 504: sent again, it would append a second one."""
    route = lucca_api.put("/api/v3/users/416").mock(return_value=httpx.Response(504))
    appended = {"e_formation": [{"id": 7001, "value": {"e_title": {"value": "A"}}}, {"id": 0, "value": {}}]}
    with pytest.raises(LuccaUnavailable):
        await lucca.update_user(416, appended)
    assert route.call_count == 1
    # Rows updated in place by their ids land the same however often they are sent: those are retried.
    route.mock(side_effect=[httpx.Response(504), httpx.Response(200, json={"data": {}})])
    await lucca.update_user(416, {"e_formation": [{"id": 7001, "value": {"e_title": {"value": "B"}}}]})
    assert route.call_count == 3


async def test_departments_follow_next_cursors_and_are_cached(lucca: LuccaClient, lucca_api: respx.MockRouter) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params["page"]
        if cursor == "1":
            return httpx.Response(200, json={"items": [{"id": 1, "name": "IT", "headId": 7}], "next": "!abc"})
        if cursor == "!abc":
            link = f"{request.url.copy_with(query=None)}?limit=50&page=%21def"
            return httpx.Response(200, json={"items": [{"id": 2, "name": "HR", "parentId": "/1/"}], "next": link})
        assert cursor == "!def"
        return httpx.Response(200, json={"items": [{"id": 3, "name": "Ops", "isActive": False}], "next": None})

    route = lucca_api.get("/organization/structure/api/departments").mock(side_effect=page)
    departments = await lucca.list_departments()
    assert [(d.id, d.head_id, d.parent_id, d.is_active) for d in departments] == [
        (1, 7, None, True),
        (2, None, "/1/", True),
        (3, None, None, False),
    ]
    assert route.calls.last.request.url.params["limit"] == "50"
    assert route.calls.last.request.url.params["fields.root"] == "count,prev,next"
    assert route.call_count == 3
    assert await lucca.list_departments() == departments
    assert route.call_count == 3


async def test_establishments_fall_back_to_page_numbers(lucca: LuccaClient, lucca_api: respx.MockRouter) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        count = 50 if number < 3 else 7
        items = [{"id": number * 100 + n, "name": f"E{n}", "isArchived": n == 0} for n in range(count)]
        return httpx.Response(200, json={"items": items})

    route = lucca_api.get("/organization/structure/api/establishments").mock(side_effect=page)
    establishments = await lucca.list_establishments()
    assert len(establishments) == 107
    assert [call.request.url.params["page"] for call in route.calls] == ["1", "2", "3"]
    assert route.calls.last.request.url.params["isArchived"] == "true,false"
    assert establishments[0].is_archived and not establishments[1].is_archived


async def test_bad_request_surfaces_lucca_message(lucca: LuccaClient, lucca_api: respx.MockRouter) -> None:
    answer = httpx.Response(400, json={"Status": 400, "Message": "The login jdoe is already used"})
    lucca_api.post("/api/v3/users").mock(return_value=answer)
    with pytest.raises(LuccaRejected) as caught:
        await lucca.create_user({"login": "jdoe"})
    assert isinstance(caught.value, PartnerRejected)
    assert caught.value.status == 400
    assert "The login jdoe is already used" in caught.value.message
    assert API_KEY not in caught.value.message


async def test_a_key_the_account_has_not_accepted_reads_nothing_of_its_cache(
    lucca: LuccaClient, lucca_api: respx.MockRouter, base_url: str
) -> None:
    """A tenant naming another's account with a key of its own: Lucca refuses it, the account's cache stays shut."""
    departments = {"items": [{"id": 1, "name": "IT"}], "next": None}
    route = lucca_api.get("/organization/structure/api/departments").mock(
        return_value=httpx.Response(200, json=departments)
    )
    await lucca.list_departments()  # cached for the account
    route.mock(return_value=httpx.Response(401, json={"Message": "Invalid key"}))
    redis = Redis.from_url(os.environ["REDIS_URL"])
    account = LuccaAccount(base_url=base_url, api_key="another-tenants-key", rate_limit=RateLimit(100, 60))
    async with httpx.AsyncClient() as http:
        stranger = LuccaClient(http, account, limiter=SlidingWindowLimiter(redis), retry=FAST, cache=redis)
        with pytest.raises(LuccaAuthFailed):
            await stranger.list_departments()
    await redis.aclose()
    assert [department.name for department in await lucca.list_departments()] == ["IT"]  # the account's key
    assert route.call_count == 2


async def test_a_key_is_proven_by_one_cheap_call_before_the_accounts_locks(
    lucca: LuccaClient, lucca_api: respx.MockRouter, base_url: str
) -> None:
    route = lucca_api.get("/api/v3/users").mock(return_value=httpx.Response(200, json={"data": {"items": [user(1)]}}))
    assert await lucca.proven_account() == account_key(base_url)
    assert await lucca.proven_account() == account_key(base_url)
    assert route.call_count == 1 and dict(route.calls.last.request.url.params) == {"fields": "id", "paging": "0,1"}
    route.mock(return_value=httpx.Response(401, json={"Message": "Invalid key"}))
    redis = Redis.from_url(os.environ["REDIS_URL"])
    account = LuccaAccount(base_url=base_url, api_key="another-tenants-key", rate_limit=RateLimit(100, 60))
    async with httpx.AsyncClient() as http:
        stranger = LuccaClient(http, account, limiter=SlidingWindowLimiter(redis), retry=FAST, cache=redis)
        with pytest.raises(LuccaAuthFailed, match="Lucca refused the credentials"):
            await stranger.proven_account()
    await redis.aclose()


async def test_lucca_errors_are_partner_errors(lucca: LuccaClient, lucca_api: respx.MockRouter) -> None:
    lucca_api.get("/api/v3/users/1").mock(return_value=httpx.Response(401, json={"Message": "Invalid key"}))
    lucca_api.get("/api/v3/users/2").mock(return_value=httpx.Response(503))
    with pytest.raises(LuccaAuthFailed) as auth:
        await lucca.get_user(1)
    assert isinstance(auth.value, PartnerAuthFailed)
    with pytest.raises(LuccaUnavailable) as unavailable:
        await lucca.get_user(2)
    assert isinstance(unavailable.value, PartnerUnavailable)


async def test_unreadable_answer_is_a_rejection(lucca: LuccaClient, lucca_api: respx.MockRouter) -> None:
    lucca_api.get("/api/v3/users").mock(return_value=httpx.Response(200, json={"items": []}))
    with pytest.raises(LuccaRejected, match="could not read"):
        await lucca.list_users()


def test_account_key_and_repr_hide_nothing_wrong() -> None:
    assert account_key("https://Acme.ilucca.net/") == "acme.ilucca.net"
    assert account_key("http://127.0.0.1:8000/Acme/") == "127.0.0.1:8000/acme"
    account = LuccaAccount(base_url="https://acme.ilucca.net", api_key=API_KEY, rate_limit=RateLimit(50, 60))
    assert API_KEY not in repr(account)


async def test_rate_limit_is_keyed_by_account(lucca: LuccaClient, lucca_api: respx.MockRouter, base_url: str) -> None:
    lucca_api.get("/api/v3/users/1").mock(return_value=httpx.Response(200, json={"data": user(1)}))
    await lucca.get_user(1)
    redis = Redis.from_url(os.environ["REDIS_URL"])
    assert await redis.zcard(f"ratelimit:lucca:{account_key(base_url)}") == 1
    await redis.aclose()


def test_department_head_is_read_from_any_generation_of_the_field() -> None:
    assert Department.model_validate({"id": 1, "name": "IT", "headId": 7}).head_id == 7
    assert Department.model_validate({"id": 1, "name": "IT", "headID": 8}).head_id == 8
    assert Department.model_validate({"id": 1, "name": "IT", "head": {"id": 9, "name": "X"}}).head_id == 9
    assert Department.model_validate({"id": 1, "name": "IT", "head": None}).head_id is None
