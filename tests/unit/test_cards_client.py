"""CardsClient against respx-mocked Cards, with a real Redis for the rate limit and the training cache."""

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import respx
from redis.asyncio import Redis

from app.clients.cards import CardsAuthFailed, CardsClient, CardsRejected, CardsUnavailable
from app.clients.http import RetryPolicy
from app.clients.ratelimit import SlidingWindowLimiter
from app.schemas.cards import CardsSettings

TOKEN = "cards-token-5f4e3d2c1b0a"
FAST = RetryPolicy(base_seconds=0.01, max_seconds=0.02, in_call_seconds=0.05)


@pytest.fixture
def base_url() -> str:
    """A Cards host of the test's own, so its rate-limit and cache keys are not shared."""
    return f"http://cards-{uuid.uuid4().hex[:12]}.test/v1"


@pytest.fixture
def settings(base_url: str) -> CardsSettings:
    return CardsSettings.model_validate(
        {"api_base_url": base_url, "api_token": TOKEN, "space_id": "acme-space", "rate_limit": {"requests": 100}}
    )


@pytest.fixture
def cards_api(base_url: str) -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=base_url) as mock:
        yield mock


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(os.environ["REDIS_URL"])
    yield client
    await client.aclose()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def cards(
    http: httpx.AsyncClient, settings: CardsSettings, redis: Redis, base_url: str
) -> AsyncIterator[CardsClient]:
    yield CardsClient(http, settings, limiter=SlidingWindowLimiter(redis), retry=FAST, cache=redis)
    host = base_url.split("//")[1]
    async for key in redis.scan_iter(match=f"*{host}*"):
        await redis.delete(key)


def user(user_id: int, **extra: Any) -> dict[str, Any]:
    return {"id": user_id, "firstname": f"First{user_id}", "lastname": "Doe", "email": f"u{user_id}@acme.fr", **extra}


def laravel_page(request: httpx.Request, total: int, size: int = 2) -> httpx.Response:
    """Serve `page` of `total` users as Laravel does, `size` per page whatever `paginate` says."""
    page = int(request.url.params["page"])
    last = max(1, -(-total // size))
    items = [user(n) for n in range((page - 1) * size + 1, min(page * size, total) + 1)]
    link = f"{request.url.copy_with(query=None)}?page="
    return httpx.Response(
        200,
        json={
            "data": items,
            "links": {
                "first": f"{link}1",
                "last": f"{link}{last}",
                "prev": f"{link}{page - 1}" if page > 1 else None,
                "next": f"{link}{page + 1}" if page < last else None,
            },
            "meta": {"current_page": page, "from": 1, "last_page": last, "per_page": size, "to": 2, "total": total},
        },
    )


async def test_users_are_read_over_every_page_with_token_and_space(
    cards: CardsClient, cards_api: respx.MockRouter
) -> None:
    route = cards_api.get("/users").mock(side_effect=lambda request: laravel_page(request, 5))
    pages = [[u.id for u in page] async for page in cards.user_pages()]
    assert pages == [[1, 2], [3, 4], [5]]
    assert [call.request.url.params["page"] for call in route.calls] == ["1", "2", "3"]
    request = route.calls.last.request
    assert request.url.params["paginate"] == "500"
    assert request.url.path == "/v1/users"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["X-Tenant"] == "acme-space"
    assert (request.headers["Accept"], request.headers["Content-Type"]) == ("application/json",) * 2


async def test_users_by_email_ignores_case_and_users_without_email(
    cards: CardsClient, cards_api: respx.MockRouter
) -> None:
    items = [user(1, email="Zoe.Muller@Acme.fr", groups=[{"id": 3, "name": "Sales"}]), user(2, email=None)]
    cards_api.get("/users").mock(return_value=httpx.Response(200, json={"data": items, "links": {"next": None}}))
    found = await cards.users_by_email()
    assert list(found) == ["zoe.muller@acme.fr"]
    assert found["zoe.muller@acme.fr"].groups[0].name == "Sales"


async def test_a_page_that_does_not_move_stops_the_listing(cards: CardsClient, cards_api: respx.MockRouter) -> None:
    stuck = {"data": [user(1)], "links": {"next": "x?page=2"}, "meta": {"current_page": 1, "last_page": 9}}
    route = cards_api.get("/users").mock(return_value=httpx.Response(200, json=stuck))
    with pytest.raises(CardsRejected, match="answered page 2 of /users with page 1"):
        await cards.users_by_email()
    assert route.call_count == 2


async def test_a_list_in_an_unexpected_shape_says_where(cards: CardsClient, cards_api: respx.MockRouter) -> None:
    cards_api.get("/groups").mock(return_value=httpx.Response(200, json={"items": []}))
    with pytest.raises(CardsRejected, match="Cards answered /groups with data this service could not read"):
        await cards.groups()


async def test_groups_are_paged_like_users(cards: CardsClient, cards_api: respx.MockRouter) -> None:
    def groups_page(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        body = {"data": [{"id": page, "name": f"G{page}"}], "meta": {"current_page": page, "last_page": 2}}
        return httpx.Response(200, json={**body, "links": {"next": "more" if page < 2 else None}})

    cards_api.get("/groups").mock(side_effect=groups_page)
    assert [(group.id, group.name) for group in await cards.groups()] == [(1, "G1"), (2, "G2")]


async def test_429_with_retry_after_is_waited_then_succeeds(
    http: httpx.AsyncClient, settings: CardsSettings, redis: Redis, cards_api: respx.MockRouter
) -> None:
    # Retry-After: 0 is waited at least 0.25 s (so it cannot spin): within this call's budget of 1 s.
    cards = CardsClient(http, settings, limiter=SlidingWindowLimiter(redis), retry=replace(FAST, in_call_seconds=1))
    limited = httpx.Response(429, headers={"Retry-After": "0"}, json={"message": "Too Many Attempts."})
    route = cards_api.get("/trainings/7").mock(
        side_effect=[limited, httpx.Response(200, json={"id": 7, "title": "Safety", "public_url": None})]
    )
    assert (await cards.training(7)).title == "Safety"
    assert route.call_count == 2


async def test_outages_beyond_the_call_budget_are_unavailable(cards: CardsClient, cards_api: respx.MockRouter) -> None:
    cards_api.get("/groups").mock(return_value=httpx.Response(503))
    with pytest.raises(CardsUnavailable, match="Cards at cards-"):
        await cards.groups()


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_token_is_auth_failed_in_plain_words(
    cards: CardsClient, cards_api: respx.MockRouter, status: int
) -> None:
    route = cards_api.get("/users").mock(
        return_value=httpx.Response(status, json={"message": f"Unauthenticated {TOKEN}"})
    )
    with pytest.raises(CardsAuthFailed) as caught:
        await cards.users_by_email()
    assert route.call_count == 1
    assert caught.value.status == status
    assert caught.value.message == (
        f"Cards refused the API token (HTTP {status}): check it in Cards' API keys settings"
        " and that it belongs to space acme-space."
    )
    assert TOKEN not in str(caught.value)


async def test_create_user_posts_the_import_fields_once(cards: CardsClient, cards_api: respx.MockRouter) -> None:
    route = cards_api.post("/users").mock(return_value=httpx.Response(201, json={"data": user(9, source="sso")}))
    created = await cards.create_user(
        firstname="Zoë", lastname="Müller", email="zoe@acme.fr", source="sso", notify=True
    )
    assert (created.id, created.source, created.groups) == (9, "sso", [])
    body = json.loads(route.calls.last.request.content)
    assert body == {"firstname": "Zoë", "lastname": "Müller", "email": "zoe@acme.fr", "source": "sso", "notify": True}


async def test_create_user_is_not_replayed_after_a_timeout(cards: CardsClient, cards_api: respx.MockRouter) -> None:
    route = cards_api.post("/users").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(CardsUnavailable):
        await cards.create_user(firstname="A", lastname="B", email="a@acme.fr", source="app", notify=False)
    assert route.call_count == 1


async def test_a_refused_create_carries_the_validation_message(cards: CardsClient, cards_api: respx.MockRouter) -> None:
    taken = {"message": "The email has already been taken.", "errors": {"email": ["The email has already been taken."]}}
    cards_api.post("/users").mock(return_value=httpx.Response(422, json=taken))
    with pytest.raises(CardsRejected, match=r"HTTP 422.*The email has already been taken") as caught:
        await cards.create_user(firstname="A", lastname="B", email="a@acme.fr", source="app", notify=False)
    assert caught.value.status == 422


async def test_set_groups_puts_the_full_list_of_ids_and_names(cards: CardsClient, cards_api: respx.MockRouter) -> None:
    answer = user(4, groups=[{"id": 3, "name": "Sales"}, {"id": 8, "name": "Engineering"}])
    route = cards_api.put("/users/4").mock(return_value=httpx.Response(200, json=answer))
    updated = await cards.set_groups(4, [3, "Engineering"])
    assert json.loads(route.calls.last.request.content) == {"groups": [3, "Engineering"]}
    assert [group.id for group in updated.groups] == [3, 8]


async def test_set_groups_refuses_an_empty_list(cards: CardsClient, cards_api: respx.MockRouter) -> None:
    with pytest.raises(ValueError, match="empty list would remove all"):
        await cards.set_groups(4, [])
    assert cards_api.calls.call_count == 0


@pytest.mark.parametrize("wrapped", [False, True])
async def test_single_items_may_come_bare_or_wrapped(
    cards: CardsClient, cards_api: respx.MockRouter, wrapped: bool
) -> None:
    item = {"id": 5, "title": "Onboarding", "public_url": "https://cards.example/t/5", "status": "publish"}
    cards_api.get("/trainings/5").mock(return_value=httpx.Response(200, json={"data": item} if wrapped else item))
    training = await cards.training(5)
    assert (training.id, training.title, training.public_url) == (5, "Onboarding", "https://cards.example/t/5")


async def test_a_training_is_asked_once_then_read_from_the_cache(
    cards: CardsClient, cards_api: respx.MockRouter, redis: Redis
) -> None:
    route = cards_api.get("/trainings/5").mock(return_value=httpx.Response(200, json={"id": 5, "title": "Onboarding"}))
    first = await cards.training(5)
    assert await cards.training(5) == first
    assert route.call_count == 1
    keys = [key async for key in redis.scan_iter(match="cards:cache:*:acme-space:training:5")]
    assert len(keys) == 1 and 0 < await redis.ttl(keys[0]) <= 86_400


async def test_a_token_the_space_has_not_accepted_reads_nothing_of_its_cache(
    cards: CardsClient, cards_api: respx.MockRouter, settings: CardsSettings, redis: Redis, http: httpx.AsyncClient
) -> None:
    """A tenant naming another's space with a token of its own: Cards refuses it, the space's titles stay unread."""
    route = cards_api.get("/trainings/5").mock(return_value=httpx.Response(200, json={"id": 5, "title": "Onboarding"}))
    await cards.training(5)  # cached for the space
    route.mock(return_value=httpx.Response(401, json={"message": "Unauthenticated."}))
    other = settings.model_copy(update={"api_token": "another-tenants-token"})
    stranger = CardsClient(http, other, limiter=SlidingWindowLimiter(redis), retry=FAST, cache=redis)
    with pytest.raises(CardsAuthFailed):
        await stranger.training(5)
    assert (await cards.training(5)).title == "Onboarding" and route.call_count == 2


async def test_an_unknown_training_is_rejected_saying_so(cards: CardsClient, cards_api: respx.MockRouter) -> None:
    cards_api.get("/trainings/404").mock(return_value=httpx.Response(404, json={"message": "Not found"}))
    with pytest.raises(CardsRejected, match="Cards has no training 404 in space acme-space") as caught:
        await cards.training(404)
    assert caught.value.status == 404


async def test_a_single_item_in_an_unexpected_shape_says_where(cards: CardsClient, cards_api: respx.MockRouter) -> None:
    cards_api.put("/users/4").mock(return_value=httpx.Response(200, json={"data": {"name": "no id"}}))
    with pytest.raises(CardsRejected, match="Cards answered /users/4 with data this service could not read"):
        await cards.set_groups(4, [1])


async def test_each_space_has_its_own_shared_limiter_key(
    http: httpx.AsyncClient, settings: CardsSettings, redis: Redis, cards_api: respx.MockRouter, base_url: str
) -> None:
    cards_api.get("/groups").mock(return_value=httpx.Response(200, json={"data": []}))
    limiter = SlidingWindowLimiter(redis)
    for space in ("space-a", "space-b", "space-a"):
        other = settings.model_copy(update={"space_id": space})
        await CardsClient(http, other, limiter=limiter, retry=FAST).groups()
    host = base_url.split("//")[1].lower()
    for space, calls in (("space-a", 2), ("space-b", 1)):
        assert await redis.zcard(f"ratelimit:cards:{host}:{space}") == calls
