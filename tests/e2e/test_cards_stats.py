"""Cards → Lucca statistics (contract section 9): learning events through the webhook, the push through real
workers into the Lucca sandbox's compound field, trainings from the Cards sandbox."""

import asyncio
import uuid
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest

from app.sandbox.demo import demo_seed_payload, directory_seed_payload
from tests.e2e.conftest import directory_loaded, drain_queue, events_of, run_of
from tests.factories import TenantHandle, create_tenant
from tests.sandbox_server import CardsAccount, LuccaAccount, SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")

CLAIRE, JEAN = 100, 102  # current employees of the demo account; Paul Durand (101) has left
CYBER = {"e_title": "Cybersecurity basics", "e_link": "https://app.cards.example/t/501"}
GDPR = {"e_title": "GDPR essentials", "e_link": "https://app.cards.example/t/502"}
FIELDS = ("e_title", "e_link", "e_progress", "e_score", "e_last_completion_date")
# What Claire's record holds before any push: another training, and 501 typed in by hand (with a comment of HR's).
CLAIRE_BEFORE = [
    {"id": 7001, "value": {"e_title": {"value": "Onboarding"}, "e_progress": {"value": "100%"}}},
    {"id": 7002, "value": {"e_title": {"value": "Cybersecurity basics"}, "e_progress": {"value": "10%"},
                           "e_comment": {"value": "from HR"}}},
]  # fmt: skip


def learning(
    event_id: str,
    email: str,
    training: int,
    when: str,
    progress: float,
    quiz: tuple[str, int, int] | None = None,
) -> dict[str, Any]:
    """A chapter-complete event, or with `quiz` (chapter, points, max_points) a quiz-complete one."""
    chapter, points, max_points = quiz or (f"c-{event_id}", 1, 1)
    return {
        "id": event_id,
        "type": "quiz-complete" if quiz else "chapter-complete",
        "created_at": when,
        "data": {
            "created_at": when,
            "points": points,
            "user": {"id": 1, "email": email},
            "training": {"id": training, "chapter": {"id": chapter}},
            "score": {"points": points, "max_points": max_points, "progress": progress},
        },
    }


EVENTS = [
    learning("e1", "claire.martin@acme.fr", 501, "2024-01-10 09:00:00", 0.25),
    learning("e2", "claire.martin@acme.fr", 501, "2024-01-10 09:05:00", 0.5, quiz=("q1", 1, 2)),
    learning("e3", "claire.martin@acme.fr", 501, "2024-01-11 10:00:00", 0.5, quiz=("q1", 2, 2)),  # q1 retried
    learning("e4", "Claire.Martin@ACME.fr", 501, "2024-01-12 10:00:00", 1.0, quiz=("q2", 1, 4)),
    learning("e5", "claire.martin@acme.fr", 502, "2024-01-15 08:00:00", 0.333),
    learning("e6", "JEAN.DUPONT@acme.fr", 501, "2024-01-16 08:00:00", 0.5),
    learning("e7", "paul.durand@acme.fr", 501, "2024-01-16 08:00:00", 1.0),  # a former employee
    learning("e8", "ghost@elsewhere.example", 502, "2024-01-16 08:00:00", 1.0),  # nobody in Lucca
]


def occurrence(title_and_link: dict[str, str], progress: str, score: str | None, day: str | None) -> dict[str, Any]:
    values = {**title_and_link, "e_progress": progress, "e_score": score, "e_last_completion_date": day}
    return {code: {"value": value} for code, value in values.items()}


@pytest.fixture
def lucca(sandbox: SandboxServer) -> LuccaAccount:
    users = demo_seed_payload()["users"]
    users[0]["extendedData"] = {"e_formation": CLAIRE_BEFORE}
    return sandbox.new_lucca_account(users=users)


@pytest.fixture
def cards(sandbox: SandboxServer) -> CardsAccount:
    return sandbox.new_cards_account()


async def cards_tenant(
    client: httpx.AsyncClient, lucca: LuccaAccount, cards: CardsAccount, slug: str = "acme", **settings: Any
) -> TenantHandle:
    tenant = await create_tenant(client, slug, base_url=lucca.base_url, api_key=lucca.api_key)
    body = {"enabled": True, "settings": cards.connector_settings(**settings)}
    answer = await client.put(f"/api/v1/tenants/{slug}/connectors/cards", json=body, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    tenant.webhook_token = answer.json()["webhook_token"]
    await directory_loaded(lucca)
    return tenant


async def send(client: httpx.AsyncClient, tenant: TenantHandle, *events: dict[str, Any]) -> None:
    for event in events:
        answer = await client.post(f"/integrations/webhooks/cards/{tenant.webhook_token}", json=event)
        assert answer.status_code == 202, answer.text


async def push(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    answer = await client.post(f"/api/v1/tenants/{tenant.slug}/cards/stats/sync", headers=tenant.auth)
    assert answer.status_code == 202, answer.text
    await drain_queue()
    return await run_of(client, tenant, answer.json()["run_id"])


def counts(run: dict[str, Any]) -> dict[str, int]:
    return {key: value for key, value in run["counts"].items() if value}


def lucca_calls(lucca: LuccaAccount, method: str) -> list[dict[str, Any]]:
    return [call for call in lucca.calls()["items"] if call["method"] == method]


def compound(lucca: LuccaAccount, user_id: int, code: str = "e_formation") -> list[dict[str, Any]]:
    [user] = [user for user in lucca.users() if user["id"] == user_id]
    rows: list[dict[str, Any]] = user["extendedData"].get(code, [])
    return rows


async def stored_events(migrated_database: str) -> int:
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        return int(await connection.fetchval("SELECT count(*) FROM cards_events"))
    finally:
        await connection.close()


async def test_the_push_writes_exact_statistics_in_place_and_nothing_for_non_employees(
    client: httpx.AsyncClient, lucca: LuccaAccount, cards: CardsAccount, migrated_database: str
) -> None:
    tenant = await cards_tenant(client, lucca, cards)
    await send(client, tenant, *EVENTS)
    run = await push(client, tenant)
    assert (run["status"], counts(run)) == ("succeeded", {"total": 2, "updated": 2})

    claire = compound(lucca, CLAIRE)
    assert claire[0] == CLAIRE_BEFORE[0]
    # Updated in place (same value-row id), HR's comment kept: (2 + 1) / (2 + 4) of the latest attempts.
    assert claire[1] == {
        "id": 7002, "value": {**occurrence(CYBER, "100%", "50%", "2024-01-12"), "e_comment": {"value": "from HR"}}
    }  # fmt: skip
    assert claire[2]["id"] > 7002 and claire[2]["value"] == occurrence(GDPR, "33%", None, None)
    assert len(claire) == 3
    [jean] = compound(lucca, JEAN)
    assert jean["value"] == occurrence(CYBER, "50%", None, None)
    assert compound(lucca, 101) == []

    # One page of the directory (the key, which the push's lock needs proven, was proven by the directory's first
    # full sync), one PUT per employee with statistics, with only the fields needed.
    [listing] = lucca_calls(lucca, "GET")
    assert "fields=id%2Cmail%2CextendedData" in listing["query"] and "paging=0%2C1000" in listing["query"]
    assert sorted(call["path"] for call in lucca_calls(lucca, "PUT")) == ["/api/v3/users/100", "/api/v3/users/102"]
    # Each training asked once, then cached.
    assert sorted(call["path"] for call in cards.calls()["items"]) == ["/v1/trainings/501", "/v1/trainings/502"]
    events = await events_of(client, tenant, run["id"])
    updates = sorted(event["subject"] for event in events if event["action"] == "update")
    assert updates == ["claire.martin@acme.fr", "jean.dupont@acme.fr"]
    [note] = [event for event in events if event["action"] == "note"]
    assert note["message"].startswith("2 people have learning events but no current Lucca employee")
    assert await stored_events(migrated_database) == len(EVENTS)


async def test_a_second_push_with_nothing_new_writes_nothing_and_one_new_event_rewrites_one_employee(
    client: httpx.AsyncClient, lucca: LuccaAccount, cards: CardsAccount
) -> None:
    tenant = await cards_tenant(client, lucca, cards)
    await send(client, tenant, *EVENTS)
    await push(client, tenant)
    jean_before = compound(lucca, JEAN)
    puts = len(lucca_calls(lucca, "PUT"))

    again = await push(client, tenant)
    assert (again["status"], counts(again)) == ("succeeded", {"total": 2, "skipped": 2})
    assert len(lucca_calls(lucca, "PUT")) == puts

    await send(client, tenant, learning("e9", "jean.dupont@acme.fr", 501, "2024-02-01 08:00:00", 1.0, ("q1", 3, 3)))
    third = await push(client, tenant)
    assert counts(third) == {"total": 2, "updated": 1, "skipped": 1}
    assert [call["path"] for call in lucca_calls(lucca, "PUT")[puts:]] == ["/api/v3/users/102"]
    [jean] = compound(lucca, JEAN)
    assert jean["id"] == jean_before[0]["id"]
    assert jean["value"] == occurrence(CYBER, "100%", "100%", "2024-02-01")
    assert len(compound(lucca, CLAIRE)) == 3


async def test_a_write_whose_count_was_cut_is_counted_once_by_the_next_attempt_without_writing_again(
    client: httpx.AsyncClient, lucca: LuccaAccount, cards: CardsAccount, migrated_database: str
) -> None:
    """An attempt marked Jean's write with its run, made the PUT, and stopped before counting it: the next attempt
    of the same run finds Lucca holding the values and counts Jean updated, without a second PUT."""
    tenant = await cards_tenant(client, lucca, cards)
    await send(client, tenant, *EVENTS)
    await push(client, tenant)
    puts = len(lucca_calls(lucca, "PUT"))
    answer = await client.post(f"/api/v1/tenants/{tenant.slug}/cards/stats/sync", headers=tenant.auth)
    run_id = answer.json()["run_id"]
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        await connection.execute(
            "UPDATE cards_stats_pushed SET run_id = $1 WHERE lucca_user_id = $2", uuid.UUID(run_id), JEAN
        )
    finally:
        await connection.close()
    await drain_queue()
    run = await run_of(client, tenant, run_id)
    assert (run["status"], counts(run)) == ("succeeded", {"total": 2, "updated": 1, "skipped": 1})
    assert len(lucca_calls(lucca, "PUT")) == puts
    assert [event["subject"] for event in await events_of(client, tenant, run_id) if event["action"] == "update"] == [
        "jean.dupont@acme.fr"
    ]


async def test_a_new_occurrence_whose_answer_was_lost_is_written_once_and_counted_once(
    client: httpx.AsyncClient, lucca: LuccaAccount, cards: CardsAccount
) -> None:
    """Lucca appends Jean's new occurrence, then its gateway answers 504: the PUT is not sent again blindly; the
    next attempt reads what Lucca holds, finds the occurrence this run wrote, and counts Jean once."""
    tenant = await cards_tenant(client, lucca, cards)
    await send(client, tenant, *EVENTS)
    lucca.add_faults({"status": 504, "after": True, "match": f"PUT /api/v3/users/{JEAN}"})
    run = await push(client, tenant)
    assert (run["status"], counts(run)) == ("succeeded", {"total": 2, "updated": 2})
    [jean] = compound(lucca, JEAN)
    assert jean["value"] == occurrence(CYBER, "50%", None, None)
    assert len(compound(lucca, CLAIRE)) == 3
    assert [call["status"] for call in lucca_calls(lucca, "PUT") if call["path"].endswith(f"/{JEAN}")] == [504]
    events = await events_of(client, tenant, run["id"])
    assert sorted(event["subject"] for event in events if event["action"] == "update") == [
        "claire.martin@acme.fr", "jean.dupont@acme.fr"
    ]  # fmt: skip


async def test_custom_field_codes_are_honoured(
    client: httpx.AsyncClient, lucca: LuccaAccount, cards: CardsAccount
) -> None:
    codes = {"compound": "e_trainings", "title": "e_name", "link": "e_url", "progress": "e_done",
             "score": "e_marks", "last_completion_date": "e_finished"}  # fmt: skip
    tenant = await cards_tenant(client, lucca, cards, stats_sync={"field_codes": codes})
    await send(client, tenant, *EVENTS[5:6])
    run = await push(client, tenant)
    assert counts(run) == {"total": 1, "updated": 1}
    [jean] = compound(lucca, JEAN, "e_trainings")
    assert jean["value"] == {
        "e_name": {"value": "Cybersecurity basics"}, "e_url": {"value": CYBER["e_link"]},
        "e_done": {"value": "50%"}, "e_marks": {"value": None}, "e_finished": {"value": None},
    }  # fmt: skip
    assert compound(lucca, JEAN) == []


async def test_a_refusal_for_one_employee_fails_that_one_and_the_rest_goes_through(
    client: httpx.AsyncClient, lucca: LuccaAccount, cards: CardsAccount
) -> None:
    tenant = await cards_tenant(client, lucca, cards)
    await send(client, tenant, *EVENTS)
    lucca.add_faults({"status": 400, "match": "PUT /api/v3/users/100"})
    run = await push(client, tenant)
    assert (run["status"], counts(run)) == ("partial", {"total": 2, "updated": 1, "failed": 1})
    [failure] = [event for event in await events_of(client, tenant, run["id"]) if event["action"] == "fail"]
    assert failure["subject"] == "claire.martin@acme.fr" and failure["message"].startswith("Lucca refused")
    assert compound(lucca, CLAIRE) == CLAIRE_BEFORE
    # Nothing was remembered for her: the retry writes her, and only her.
    retry = await client.post(f"/api/v1/tenants/acme/runs/{run['id']}/retry", headers=tenant.auth)
    assert retry.status_code == 202
    await drain_queue()
    redone = await run_of(client, tenant, retry.json()["run_id"])
    assert (redone["status"], counts(redone)) == ("succeeded", {"total": 2, "updated": 1, "skipped": 1})
    assert len(compound(lucca, CLAIRE)) == 3


async def test_a_training_cards_no_longer_has_is_left_alone_with_a_note(
    client: httpx.AsyncClient, lucca: LuccaAccount, sandbox: SandboxServer
) -> None:
    cards = sandbox.new_cards_account(trainings=[{"id": 502, "title": "GDPR essentials"}])
    tenant = await cards_tenant(client, lucca, cards)
    await send(client, tenant, *EVENTS[:5])
    run = await push(client, tenant)
    assert (run["status"], counts(run)) == ("succeeded", {"total": 1, "updated": 1})
    claire = compound(lucca, CLAIRE)
    assert claire[:2] == CLAIRE_BEFORE and len(claire) == 3
    assert claire[2]["value"]["e_title"] == {"value": "GDPR essentials"} and claire[2]["value"]["e_link"] == {
        "value": None
    }
    notes = [event for event in await events_of(client, tenant, run["id"]) if event["action"] == "note"]
    assert [note["subject"] for note in notes] == ["training 501"] and notes[0]["level"] == "warning"


async def test_two_pushes_at_once_take_turns_and_never_duplicate_an_occurrence(
    client: httpx.AsyncClient, lucca: LuccaAccount, cards: CardsAccount
) -> None:
    tenant = await cards_tenant(client, lucca, cards)
    await send(client, tenant, *EVENTS)
    sync = f"/api/v1/tenants/{tenant.slug}/cards/stats/sync"
    answers = await asyncio.gather(*(client.post(sync, headers=tenant.auth) for _ in range(3)))
    await drain_queue()
    runs = [await run_of(client, tenant, answer.json()["run_id"]) for answer in answers]
    assert [run["status"] for run in runs] == ["succeeded"] * 3
    assert sum(run["counts"]["updated"] for run in runs) == 2
    assert len(lucca_calls(lucca, "PUT")) == 2
    assert len(compound(lucca, CLAIRE)) == 3 and len(compound(lucca, JEAN)) == 1


async def test_a_push_stopped_after_some_pages_resumes_after_them_and_counts_each_employee_once(
    client: httpx.AsyncClient, sandbox: SandboxServer, cards: CardsAccount
) -> None:
    # 2,500 generated employees besides the demo's (one in nine has left): three pages of 1,000 current ones.
    lucca = sandbox.new_lucca_account(**directory_seed_payload(2500))
    tenant = await cards_tenant(client, lucca, cards)
    current = sorted(user["id"] for user in lucca.users() if not has_left(user))
    people = [user for user in lucca.users() if user["id"] in (current[5], current[1200], current[-1])]
    await send(client, tenant, *(learning(f"d{p['id']}", p["mail"], 501, "2024-03-01 10:00:00", 0.5) for p in people))
    # On the last page, Lucca keeps failing long enough for the attempt to hand back to the queue.
    lucca.add_faults({"status": 503, "count": 8, "match": f"PUT /api/v3/users/{current[-1]}"})
    run = await push(client, tenant)
    assert (run["status"], counts(run)) == ("succeeded", {"total": 3, "updated": 3})
    listings = [call["query"] for call in lucca_calls(lucca, "GET") if "extendedData" in call["query"]]
    resumed = [query for query in listings if "greaterthan" in query]
    assert len(listings) - len(resumed) == 3 and resumed, listings
    # Later attempts read only what comes after the last page finished: the 2,000th current employee.
    assert all(f"id=greaterthan%2C{current[1999]}" in query for query in resumed)
    written = [call["path"] for call in lucca_calls(lucca, "PUT") if call["status"] == 200]
    assert sorted(written) == sorted(f"/api/v3/users/{person['id']}" for person in people)
    for person in people:
        assert len(compound(lucca, person["id"])) == 1


def has_left(user: dict[str, Any]) -> bool:
    """The sandbox's own rule: the contract ended before today."""
    return user["dtContractEnd"] is not None and str(user["dtContractEnd"])[:10] < date.today().isoformat()


async def test_events_of_another_tenant_are_never_pushed(
    client: httpx.AsyncClient, lucca: LuccaAccount, cards: CardsAccount, sandbox: SandboxServer
) -> None:
    tenant = await cards_tenant(client, lucca, cards)
    other = await cards_tenant(client, sandbox.new_lucca_account(), sandbox.new_cards_account(), slug="globex")
    await send(client, other, *EVENTS)
    run = await push(client, tenant)
    assert (run["status"], counts(run)) == ("succeeded", {})
    assert lucca_calls(lucca, "PUT") == []
