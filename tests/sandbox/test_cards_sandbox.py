"""The Cards sandbox speaks the Cards API: token and space, Laravel pages and validation, groups, trainings, limits."""

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.clients.cards import CardsClient
from app.clients.http import RetryPolicy
from app.clients.ratelimit import SlidingWindowLimiter
from app.sandbox.app import create_sandbox_app
from app.sandbox.demo import DEMO_CARDS_ACCOUNT, DEMO_CARDS_SPACE, DEMO_CARDS_TOKEN, demo_cards_seed_payload
from app.schemas.cards import CardsSettings

AUTH = {"Authorization": f"Bearer {DEMO_CARDS_TOKEN}", "X-Tenant": DEMO_CARDS_SPACE}
BASE = f"/cards/{DEMO_CARDS_ACCOUNT}/v1"
USERS = f"{BASE}/users"
CONTROL = f"/_sandbox/cards/accounts/{DEMO_CARDS_ACCOUNT}"

Seeder = Callable[..., Awaitable[None]]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A sandbox with the demo Cards space seeded."""
    transport = httpx.ASGITransport(app=create_sandbox_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        assert (await client.put(CONTROL, json=demo_cards_seed_payload())).status_code == 204
        yield client


@pytest.fixture
def seed(client: httpx.AsyncClient) -> Seeder:
    """Replaces the demo space with the demo seed plus `overrides`."""

    async def seeding(**overrides: Any) -> None:
        response = await client.put(CONTROL, json={**demo_cards_seed_payload(), **overrides})
        assert response.status_code == 204, response.text

    return seeding


def people(count: int) -> list[dict[str, Any]]:
    return [{"id": n, "firstname": f"P{n}", "lastname": "Roy", "email": f"p{n}@acme.fr"} for n in range(1, count + 1)]


async def ok(response: Awaitable[httpx.Response], status: int = 200) -> Any:
    answer = await response
    assert answer.status_code == status, answer.text
    return answer.json()


async def sandbox_users(client: httpx.AsyncClient) -> dict[int, dict[str, Any]]:
    """The space's users as the control API sees them (groups and notify flags)."""
    items = (await ok(client.get(f"{CONTROL}/users")))["items"]
    return {item["id"]: item for item in items}


def group_names(user: dict[str, Any]) -> list[str]:
    return [group["name"] for group in user["groups"]]


def new_user(**extra: Any) -> dict[str, Any]:
    return {"firstname": "Zoë", "lastname": "Müller", "email": "zoe.muller@acme.fr", **extra}


# --- token and space ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"X-Tenant": DEMO_CARDS_SPACE}, 401),
        ({"Authorization": "Bearer wrong", "X-Tenant": DEMO_CARDS_SPACE}, 401),
        ({"Authorization": DEMO_CARDS_TOKEN, "X-Tenant": DEMO_CARDS_SPACE}, 401),
        ({"Authorization": f"Bearer {DEMO_CARDS_TOKEN}"}, 403),
        ({"Authorization": f"Bearer {DEMO_CARDS_TOKEN}", "X-Tenant": "other-space"}, 403),
    ],
)
async def test_token_and_space_are_checked(client: httpx.AsyncClient, headers: dict[str, str], status: int) -> None:
    response = await client.get(USERS, headers=headers)
    assert response.status_code == status
    assert response.json()["message"]


async def test_bearer_scheme_ignores_case(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"bearer {DEMO_CARDS_TOKEN}", "x-tenant": DEMO_CARDS_SPACE}
    assert (await client.get(USERS, headers=headers)).status_code == 200


async def test_unknown_account_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/cards/nobody/v1/users", headers=AUTH)).status_code == 404


# --- listing and paging ---------------------------------------------------------------------------


async def test_users_come_in_a_laravel_envelope(client: httpx.AsyncClient) -> None:
    body = await ok(client.get(USERS, headers=AUTH))
    assert body["data"] == [
        {
            "id": 1,
            "firstname": "Claire",
            "lastname": "Martin",
            "email": "Claire.Martin@ACME.fr",
            "role": "user",
            "company": None,
            "phone": None,
            "source": "app",
            "enable_ranking": True,
            "lang": "fr",
            "groups": [{"id": 1, "name": "Mentors"}],
        }
    ]
    assert body["links"]["prev"] is None and body["links"]["next"] is None
    meta = body["meta"]
    assert (meta["current_page"], meta["last_page"], meta["per_page"], meta["total"]) == (1, 1, 100, 1)
    assert (meta["from"], meta["to"]) == (1, 1)
    assert meta["path"] == f"http://sandbox{USERS}"


async def test_pages_follow_paginate_and_page(client: httpx.AsyncClient, seed: Seeder) -> None:
    await seed(users=people(5), groups=[])
    first = await ok(client.get(f"{USERS}?paginate=2", headers=AUTH))
    assert [user["id"] for user in first["data"]] == [1, 2]
    assert first["links"]["next"] == f"http://sandbox{USERS}?paginate=2&page=2"
    assert (first["meta"]["last_page"], first["meta"]["total"]) == (3, 5)
    last = await ok(client.get(first["links"]["last"], headers=AUTH))
    assert [user["id"] for user in last["data"]] == [5]
    assert last["links"]["next"] is None and last["links"]["prev"] == f"http://sandbox{USERS}?paginate=2&page=2"
    assert (last["meta"]["current_page"], last["meta"]["from"], last["meta"]["to"]) == (3, 5, 5)
    labels = [link["label"] for link in last["meta"]["links"]]
    assert labels == ["&laquo; Previous", "1", "2", "3", "Next &raquo;"]
    beyond = await ok(client.get(f"{USERS}?paginate=2&page=9", headers=AUTH))
    assert beyond["data"] == [] and beyond["meta"]["from"] is None and beyond["meta"]["current_page"] == 9


async def test_a_page_that_is_not_a_number_is_the_first(client: httpx.AsyncClient) -> None:
    body = await ok(client.get(f"{USERS}?page=abc", headers=AUTH))
    assert body["meta"]["current_page"] == 1


async def test_paginate_goes_up_to_500(client: httpx.AsyncClient, seed: Seeder) -> None:
    await seed(users=people(501), groups=[])
    body = await ok(client.get(f"{USERS}?paginate=500", headers=AUTH))
    assert len(body["data"]) == 500 and body["meta"]["last_page"] == 2


@pytest.mark.parametrize("paginate", ["501", "0", "ten"])
async def test_paginate_out_of_bounds_is_a_laravel_422(client: httpx.AsyncClient, paginate: str) -> None:
    response = await client.get(f"{USERS}?paginate={paginate}", headers=AUTH)
    assert response.status_code == 422
    body = response.json()
    assert body["message"].startswith("The paginate field must")
    assert list(body["errors"]) == ["paginate"]


async def test_users_filters_by_group_name_id_and_role(client: httpx.AsyncClient, seed: Seeder) -> None:
    users = people(4)
    users[0]["groups"], users[1]["groups"], users[2]["groups"] = [1], [2], [1, 2]
    users[3]["role"] = "editor"
    await seed(users=users, groups=[{"id": 1, "name": "Sales"}, {"id": 2, "name": "Engineering"}])

    async def ids(*filters: dict[str, Any]) -> list[int]:
        params = {"filters": json.dumps(list(filters))}
        return [user["id"] for user in (await ok(client.get(USERS, params=params, headers=AUTH)))["data"]]

    assert await ids({"type": "groups_name", "values": ["Sales"]}) == [1, 3]
    assert await ids({"type": "groups_id", "values": [1, 2]}) == [1, 2, 3]
    assert await ids({"type": "groups_id", "values": [1]}, {"type": "groups_name", "values": ["Engineering"]}) == [3]
    assert await ids({"type": "role", "values": ["editor"]}) == [4]


@pytest.mark.parametrize("filters", ["not json", '{"type": "role"}', '[{"type": "email", "values": []}]'])
async def test_bad_filters_are_a_422(client: httpx.AsyncClient, filters: str) -> None:
    response = await client.get(USERS, params={"filters": filters}, headers=AUTH)
    assert response.status_code == 422
    assert next(iter(response.json()["errors"])).startswith("filters")


async def test_groups_are_paged_and_filtered(client: httpx.AsyncClient, seed: Seeder) -> None:
    groups = [{"id": n, "name": f"G{n}", "is_public": n % 2 == 0} for n in range(1, 6)]
    await seed(users=[], groups=groups)
    page = await ok(client.get(f"{BASE}/groups?paginate=2&page=2", headers=AUTH))
    assert [group["id"] for group in page["data"]] == [3, 4]
    assert page["data"][0] == {"id": 3, "name": "G3", "is_public": False, "enable_ranking": True}
    public = json.dumps([{"type": "is_public", "values": [1]}])
    page = await ok(client.get(f"{BASE}/groups", params={"filters": public}, headers=AUTH))
    assert [group["id"] for group in page["data"]] == [2, 4]


# --- single items ---------------------------------------------------------------------------------


async def test_single_user_and_training_are_wrapped_in_data(client: httpx.AsyncClient) -> None:
    assert (await ok(client.get(f"{USERS}/1", headers=AUTH)))["data"]["email"] == "Claire.Martin@ACME.fr"
    training = (await ok(client.get(f"{BASE}/trainings/501", headers=AUTH)))["data"]
    assert (training["title"], training["public_url"]) == ("Cybersecurity basics", "https://app.cards.example/t/501")


@pytest.mark.parametrize("path", ["/users/99", "/trainings/99"])
async def test_unknown_items_are_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(f"{BASE}{path}", headers=AUTH)
    assert response.status_code == 404
    assert "99" in response.json()["message"]


# --- creating users -------------------------------------------------------------------------------


async def test_create_user_stores_source_notify_and_groups(client: httpx.AsyncClient) -> None:
    body = new_user(source="sso", notify=True, groups=[1, "Engineering"])
    created = (await ok(client.post(USERS, json=body, headers=AUTH), 201))["data"]
    assert (created["id"], created["source"], group_names(created)) == (2, "sso", ["Mentors", "Engineering"])
    assert "notify" not in created
    users = await sandbox_users(client)
    assert users[2]["notify"] is True and users[1]["notify"] is None
    quiet = (await ok(client.post(USERS, json=new_user(email="x@acme.fr"), headers=AUTH), 201))["data"]
    assert (await sandbox_users(client))[quiet["id"]]["notify"] is False and quiet["source"] == "app"


async def test_email_is_unique_in_the_space_ignoring_case(client: httpx.AsyncClient) -> None:
    response = await client.post(USERS, json=new_user(email="claire.martin@acme.FR"), headers=AUTH)
    assert response.status_code == 422
    assert response.json() == {
        "message": "The email has already been taken.",
        "errors": {"email": ["The email has already been taken."]},
    }
    assert list(await sandbox_users(client)) == [1]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lastname": "Roy"}, "firstname"),
        ({"firstname": "", "lastname": "Roy"}, "firstname"),
        ({"firstname": "Zoé"}, "lastname"),
        (new_user(email="not-an-email"), "email"),
        (new_user(source="ldap"), "source"),
        (new_user(lang="de"), "lang"),
        (new_user(role="admin"), "role"),
        (new_user(notify="yes"), "notify"),
        (new_user(groups="Sales"), "groups"),
        (new_user(groups=[1, 42]), "groups.1"),
        (new_user(firstname=7), "firstname"),
    ],
)
async def test_invalid_users_are_refused_and_nothing_is_created(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post(USERS, json=body, headers=AUTH)
    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert list(await sandbox_users(client)) == [1]
    assert [group["name"] for group in (await ok(client.get(f"{CONTROL}/groups")))["items"]] == ["Mentors"]


async def test_several_errors_are_counted_in_the_message(client: httpx.AsyncClient) -> None:
    response = await client.post(USERS, json={"source": "ldap"}, headers=AUTH)
    assert response.json()["message"] == "The firstname field is required. (and 2 more errors)"


async def test_a_body_that_is_not_an_object_is_400(client: httpx.AsyncClient) -> None:
    assert (await client.post(USERS, content=b"[1]", headers=AUTH)).status_code == 400
    assert (await client.post(USERS, content=b"{", headers=AUTH)).status_code == 400


# --- updating users and their groups --------------------------------------------------------------


async def test_put_groups_replaces_them_all(client: httpx.AsyncClient) -> None:
    updated = (await ok(client.put(f"{USERS}/1", json={"groups": ["Sales"]}, headers=AUTH)))["data"]
    assert group_names(updated) == ["Sales"]
    assert (updated["firstname"], updated["email"]) == ("Claire", "Claire.Martin@ACME.fr")


async def test_put_groups_empty_removes_every_group(client: httpx.AsyncClient) -> None:
    assert (await ok(client.put(f"{USERS}/1", json={"groups": []}, headers=AUTH)))["data"]["groups"] == []


async def test_put_without_groups_keeps_them(client: httpx.AsyncClient) -> None:
    updated = (await ok(client.put(f"{USERS}/1", json={"company": "Acme"}, headers=AUTH)))["data"]
    assert (updated["company"], group_names(updated)) == ("Acme", ["Mentors"])


async def test_a_name_creates_the_group_once_and_then_names_it(client: httpx.AsyncClient) -> None:
    await ok(client.post(USERS, json=new_user(), headers=AUTH), 201)
    await ok(client.put(f"{USERS}/1", json={"groups": [1, "Engineering"]}, headers=AUTH))
    await ok(client.put(f"{USERS}/2", json={"groups": ["Engineering"]}, headers=AUTH))
    groups = (await ok(client.get(f"{CONTROL}/groups")))["items"]
    assert [(group["id"], group["name"], group["members"]) for group in groups] == [
        (1, "Mentors", 1),
        (2, "Engineering", 2),
    ]


async def test_an_id_has_priority_over_a_name(client: httpx.AsyncClient) -> None:
    body = {"groups": [{"id": 1, "name": "Ignored"}, {"id": 999, "name": "Created"}, 1]}
    updated = (await ok(client.put(f"{USERS}/1", json=body, headers=AUTH)))["data"]
    assert group_names(updated) == ["Mentors", "Created"]


async def test_put_checks_email_uniqueness_against_others_only(client: httpx.AsyncClient) -> None:
    await ok(client.post(USERS, json=new_user(), headers=AUTH), 201)
    same = await client.put(f"{USERS}/1", json={"email": "CLAIRE.martin@acme.fr"}, headers=AUTH)
    assert same.status_code == 200
    taken = await client.put(f"{USERS}/1", json={"email": "Zoe.Muller@acme.fr", "groups": ["New"]}, headers=AUTH)
    assert taken.status_code == 422 and "email" in taken.json()["errors"]
    users = await sandbox_users(client)
    assert group_names(users[1]) == ["Mentors"] and users[1]["email"] == "CLAIRE.martin@acme.fr"


async def test_put_to_an_unknown_user_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.put(f"{USERS}/99", json={"groups": [1]}, headers=AUTH)).status_code == 404


async def test_put_names_and_email_alone_keeps_the_groups(client: httpx.AsyncClient) -> None:
    body = {"firstname": "Clara", "lastname": "Martin-Roy", "email": "clara.martin@acme.fr"}
    updated = (await ok(client.put(f"{USERS}/1", json=body, headers=AUTH)))["data"]
    assert (updated["firstname"], updated["lastname"], updated["email"]) == tuple(body.values())
    assert group_names(updated) == ["Mentors"]
    assert group_names((await sandbox_users(client))[1]) == ["Mentors"]


# --- deleting users -------------------------------------------------------------------------------


async def test_delete_removes_the_user_from_the_space_and_every_group(client: httpx.AsyncClient) -> None:
    created = (await ok(client.post(USERS, json=new_user(groups=[1, "Sales"]), headers=AUTH), 201))["data"]
    deleted = await client.delete(f"{USERS}/{created['id']}", headers=AUTH)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (await client.get(f"{USERS}/{created['id']}", headers=AUTH)).status_code == 404
    assert list(await sandbox_users(client)) == [1]
    groups = (await ok(client.get(f"{CONTROL}/groups")))["items"]
    assert [(group["name"], group["members"]) for group in groups] == [("Mentors", 1), ("Sales", 0)]
    # Their e-mail is free again.
    assert (await client.post(USERS, json=new_user(), headers=AUTH)).status_code == 201


async def test_deleting_an_unknown_user_is_404_and_every_call_is_logged(client: httpx.AsyncClient) -> None:
    missing = await client.delete(f"{USERS}/99", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json() == {"message": "No query results for model [User] 99"}
    assert (await client.delete(f"{USERS}/1", headers=AUTH)).status_code == 204
    assert (await client.delete(f"{USERS}/1")).status_code == 401
    log = await ok(client.get(f"{CONTROL}/calls"))
    assert [(call["method"], call["path"], call["status"]) for call in log["items"]] == [
        ("DELETE", "/v1/users/99", 404),
        ("DELETE", "/v1/users/1", 204),
        ("DELETE", "/v1/users/1", 401),
    ]


# --- rate limit, faults and call log --------------------------------------------------------------


async def test_over_the_window_is_429_with_retry_after(client: httpx.AsyncClient, seed: Seeder) -> None:
    await seed(window_seconds=60, requests_per_window=2)
    statuses = [(await client.get(USERS, headers=AUTH)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = await client.get(USERS, headers=AUTH)
    assert limited.json() == {"message": "Too Many Attempts."}
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    calls = await ok(client.get(f"{CONTROL}/calls"))
    assert calls["count_by_status"] == {"200": 2, "429": 2}


async def test_faults_answer_instead_and_the_log_keeps_the_v1_path(client: httpx.AsyncClient) -> None:
    fault = {"status": 503, "retry_after": 2, "match": "PUT /users/1"}
    assert (await client.post(f"{CONTROL}/faults", json=fault)).status_code == 204
    assert (await client.get(f"{USERS}/1", headers=AUTH)).status_code == 200
    failed = await client.put(f"{USERS}/1", json={"groups": []}, headers=AUTH)
    assert (failed.status_code, failed.headers["Retry-After"]) == (503, "2")
    assert group_names((await sandbox_users(client))[1]) == ["Mentors"]
    assert (await client.put(f"{USERS}/1", json={"groups": []}, headers=AUTH)).status_code == 200
    log = await ok(client.get(f"{CONTROL}/calls"))
    assert [(call["method"], call["path"], call["status"]) for call in log["items"]] == [
        ("GET", "/v1/users/1", 200),
        ("PUT", "/v1/users/1", 503),
        ("PUT", "/v1/users/1", 200),
    ]
    assert (await client.delete(f"{CONTROL}/calls")).status_code == 204
    assert (await ok(client.get(f"{CONTROL}/calls")))["items"] == []


async def test_429_with_retry_after_for_the_next_calls(client: httpx.AsyncClient) -> None:
    fault = {"status": 429, "retry_after": 7, "count": 2}
    assert (await client.post(f"{CONTROL}/faults", json=fault)).status_code == 204
    for _ in range(2):
        limited = await client.get(USERS, headers=AUTH)
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
        assert limited.json()["message"]
    assert (await client.get(USERS, headers=AUTH)).status_code == 200


async def test_500_for_a_while_then_answers_again(client: httpx.AsyncClient) -> None:
    fault = {"status": 500, "for_seconds": 3600, "match": "POST /users"}
    assert (await client.post(f"{CONTROL}/faults", json=fault)).status_code == 204
    # Every matching call meanwhile fails, however many; others are served.
    assert [(await client.post(USERS, json=new_user(), headers=AUTH)).status_code for _ in range(3)] == [500] * 3
    assert (await client.get(USERS, headers=AUTH)).status_code == 200
    assert list(await sandbox_users(client)) == [1]
    assert (await client.delete(f"{CONTROL}/faults")).status_code == 204
    assert (await client.post(USERS, json=new_user(), headers=AUTH)).status_code == 201


async def test_a_fault_for_a_while_ends_by_itself(client: httpx.AsyncClient) -> None:
    await client.post(f"{CONTROL}/faults", json={"status": 500, "for_seconds": 0.05})
    assert (await client.get(USERS, headers=AUTH)).status_code == 500
    await asyncio.sleep(0.1)
    assert (await client.get(USERS, headers=AUTH)).status_code == 200
    assert (await client.post(f"{CONTROL}/faults", json={"status": 500, "for_seconds": 0})).status_code == 422


async def test_a_lost_answer_still_creates_the_user(client: httpx.AsyncClient) -> None:
    await client.post(f"{CONTROL}/faults", json={"status": 504, "match": "POST /users", "after": True})
    assert (await client.post(USERS, json=new_user(), headers=AUTH)).status_code == 504
    assert [user["email"] for user in (await sandbox_users(client)).values()][-1] == "zoe.muller@acme.fr"


# --- control API ----------------------------------------------------------------------------------


async def test_seed_is_validated(client: httpx.AsyncClient) -> None:
    base = demo_cards_seed_payload()
    for bad in ({**base, "api_token": ""}, {**base, "users": [{"id": 1}]}, {**base, "groups": []}, {"api_token": "t"}):
        assert (await client.put(CONTROL, json=bad)).status_code == 422


async def test_replacing_or_deleting_a_space_resets_it(client: httpx.AsyncClient, seed: Seeder) -> None:
    await ok(client.post(USERS, json=new_user(), headers=AUTH), 201)
    await client.post(f"{CONTROL}/faults", json={"status": 500})
    await seed()
    assert list(await sandbox_users(client)) == [1]
    assert (await client.get(USERS, headers=AUTH)).status_code == 200
    assert (await client.delete(CONTROL)).status_code == 204
    assert (await client.get(USERS, headers=AUTH)).status_code == 404
    assert (await client.get(f"{CONTROL}/users")).status_code == 404


# --- the client reads what the sandbox serves -----------------------------------------------------


async def test_the_cards_client_works_against_the_sandbox(client: httpx.AsyncClient, seed: Seeder) -> None:
    await seed(users=people(1100), groups=[{"id": 1, "name": "Mentors"}])
    settings = CardsSettings.model_validate(
        {"api_base_url": f"http://sandbox{BASE}", "api_token": DEMO_CARDS_TOKEN, "space_id": DEMO_CARDS_SPACE}
    )
    redis = Redis.from_url(os.environ["REDIS_URL"])
    try:
        retry = RetryPolicy(base_seconds=0.01, max_seconds=0.02, in_call_seconds=0.1)
        cards = CardsClient(client, settings, limiter=SlidingWindowLimiter(redis), retry=retry)
        by_email = await cards.users_by_email()
        assert len(by_email) == 1100 and by_email["p7@acme.fr"].id == 7
        created = await cards.create_user(
            firstname="Zoë", lastname="Müller", email="zoe@acme.fr", source="sso", notify=True
        )
        updated = await cards.set_groups(created.id, [1, "Engineering"])
        assert [group.name for group in updated.groups] == ["Mentors", "Engineering"]
        assert [group.name for group in await cards.groups()] == ["Mentors", "Engineering"]
        assert (await cards.training(502)).title == "GDPR essentials"
    finally:
        await redis.delete(f"ratelimit:cards:sandbox/cards/{DEMO_CARDS_ACCOUNT}/v1:{DEMO_CARDS_SPACE}")
        await redis.aclose()
    assert (await sandbox_users(client))[created.id]["notify"] is True
    paths = [call["query"] for call in (await ok(client.get(f"{CONTROL}/calls")))["items"][:3]]
    assert paths == ["paginate=500&page=1", "paginate=500&page=2", "paginate=500&page=3"]
