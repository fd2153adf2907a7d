"""Lucca → Cards users and departments (contract section 9): listings and imports, through the API, real workers
and the Lucca and Cards sandboxes."""

import asyncio
import os
import random
import signal
import time
import uuid
from collections import Counter
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from app.config import Settings
from app.models import Tenant
from app.sandbox.demo import demo_seed_payload, demo_user, directory_user
from app.schemas.cards import CardsSettings
from app.services.cards_users import Directory, directory_of, ensure_account, open_space
from app.services.context import Services
from app.services.run_log import RunLog
from tests.directory_copy import full_sync
from tests.e2e.conftest import drain_queue, events_of, run_of
from tests.e2e.test_recovery import wait_for_run, worker_process
from tests.factories import TenantHandle, create_tenant
from tests.sandbox_server import CardsAccount, LuccaAccount, SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")

# Beside the demo's Claire Martin (100), Paul Durand (101, former employee) and Jean Dupont (102).
EXTRA_PEOPLE = [
    demo_user(103, "Zoé", "Sansmail", 12, mail=None),
    demo_user(104, "Ana", "Twin", 11, mail="twin@acme.fr"),
    demo_user(105, "Bob", "Twin", 11, mail="TWIN@acme.fr"),
    demo_user(106, "Léa", "Case", 12, mail="lea.case@acme.fr"),
    demo_user(107, "Marc", "Petit", 12),
]
LEGAL = {"id": 13, "name": "Legal", "code": "LEGAL", "hierarchy": "/13/", "headId": None}
# Claire (demo, "Claire.Martin@ACME.fr", group Mentors) and Léa, already in Cards under her e-mail in upper case.
CARDS_GROUPS = [{"id": 1, "name": "Mentors"}, {"id": 2, "name": "Alumni"}]
CARDS_PEOPLE = [
    {"id": 1, "firstname": "Claire", "lastname": "Martin", "email": "Claire.Martin@ACME.fr", "groups": [1]},
    {"id": 2, "firstname": "Léa", "lastname": "Case", "email": "LEA.CASE@acme.fr", "groups": [2]},
]


@pytest.fixture
def people(sandbox: SandboxServer) -> LuccaAccount:
    seed = demo_seed_payload()
    return sandbox.new_lucca_account(users=seed["users"] + EXTRA_PEOPLE, departments=[*seed["departments"], LEGAL])


@pytest.fixture
def space(sandbox: SandboxServer) -> CardsAccount:
    return sandbox.new_cards_account(users=CARDS_PEOPLE, groups=CARDS_GROUPS)


async def cards_tenant(
    client: httpx.AsyncClient, lucca: LuccaAccount, cards: CardsAccount, slug: str = "acme", **settings: Any
) -> TenantHandle:
    lucca_limit = settings.pop("lucca_rate_limit", None)
    extra = {"rate_limit": lucca_limit} if lucca_limit else {}
    tenant = await create_tenant(client, slug, base_url=lucca.base_url, api_key=lucca.api_key, **extra)
    body = {"enabled": True, "settings": cards.connector_settings(**settings)}
    answer = await client.put(f"/api/v1/tenants/{slug}/connectors/cards", json=body, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    await full_sync(client, tenant)
    return tenant


async def start_import(client: httpx.AsyncClient, tenant: TenantHandle, what: str, body: dict[str, Any]) -> str:
    answer = await client.post(f"/api/v1/tenants/{tenant.slug}/cards/{what}/import", json=body, headers=tenant.auth)
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    return run_id


async def import_and_drain(
    client: httpx.AsyncClient, tenant: TenantHandle, what: str, body: dict[str, Any]
) -> dict[str, Any]:
    run_id = await start_import(client, tenant, what, body)
    await drain_queue()
    return await run_of(client, tenant, run_id)


async def listing(client: httpx.AsyncClient, tenant: TenantHandle, what: str, **params: str) -> list[dict[str, Any]]:
    answer = await client.get(f"/api/v1/tenants/{tenant.slug}/cards/{what}", params=params, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def counts(run: dict[str, Any]) -> dict[str, int]:
    return {key: value for key, value in run["counts"].items() if value}


def cards_user(cards: CardsAccount, email: str) -> dict[str, Any]:
    [user] = [user for user in cards.users() if (user["email"] or "").casefold() == email.casefold()]
    return user


def group_names(user: dict[str, Any]) -> list[str]:
    return sorted(group["name"] for group in user["groups"])


def calls(account: CardsAccount | LuccaAccount, method: str | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = account.calls()["items"]
    return [call for call in items if method is None or call["method"] == method]


async def test_the_users_listing_says_who_can_be_imported(
    client: httpx.AsyncClient, people: LuccaAccount, space: CardsAccount
) -> None:
    tenant = await cards_tenant(client, people, space)
    read_into_copy = calls(people)
    rows = await listing(client, tenant, "users")
    assert {row["lucca_id"]: row["status"] for row in rows} == {
        100: "not_imported", 102: "not_imported", 103: "missing_email", 104: "duplicate_email",
        105: "duplicate_email", 106: "not_imported", 107: "not_imported",
    }  # fmt: skip
    assert rows[0] == {"lucca_id": 100, "first_name": "Claire", "last_name": "Martin", "email": "claire.martin@acme.fr",
                       "department": "Engineering", "cards_user_id": None, "status": "not_imported"}  # fmt: skip
    # Current employees only, read from the directory's copy: neither Lucca nor Cards is called.
    assert calls(people) == read_into_copy
    assert calls(space) == []
    assert [row["lucca_id"] for row in await listing(client, tenant, "users", status="duplicate_email")] == [104, 105]

    run = await import_and_drain(client, tenant, "users", {"all": True})
    imported = await listing(client, tenant, "users", status="imported")
    assert {row["lucca_id"]: row["cards_user_id"] for row in imported} == {
        100: 1, 102: cards_user(space, "jean.dupont@acme.fr")["id"], 106: 2, 107: cards_user(space, "marc.petit@acme.fr")["id"]
    }  # fmt: skip
    assert run["status"] == "succeeded"


async def test_import_all_twice_creates_each_person_once_and_links_same_emails(
    client: httpx.AsyncClient, people: LuccaAccount, space: CardsAccount
) -> None:
    tenant = await cards_tenant(client, people, space)
    run = await import_and_drain(client, tenant, "users", {"all": True})
    assert run["status"] == "succeeded" and run["operation"] == "users_import", run
    assert counts(run) == {"total": 7, "created": 2, "linked": 2, "skipped": 3}
    emails = sorted((user["email"] or "").casefold() for user in space.users())
    assert emails == ["claire.martin@acme.fr", "jean.dupont@acme.fr", "lea.case@acme.fr", "marc.petit@acme.fr"]
    jean = cards_user(space, "jean.dupont@acme.fr")
    assert (jean["firstname"], jean["lastname"], jean["source"], jean["notify"]) == ("Jean", "Dupont", "app", False)
    events = {event["subject"]: event for event in await events_of(client, tenant, run["id"])}
    assert events["claire.martin@acme.fr"]["action"] == "link" and "Cards user 1 has this e-mail" in (
        events["claire.martin@acme.fr"]["message"])  # fmt: skip
    assert "no professional e-mail" in events["Zoé Sansmail (Lucca 103)"]["message"]
    assert events["TWIN@acme.fr"]["action"] == "skip" and "Ana Twin (Lucca 104)" in events["TWIN@acme.fr"]["message"]

    posts = len(calls(space, "POST"))
    again = await import_and_drain(client, tenant, "users", {"all": True})
    assert again["status"] == "succeeded" and counts(again) == {"total": 7, "linked": 4, "skipped": 3}
    assert len(space.users()) == 4 and len(calls(space, "POST")) == posts == 2
    assert {call["status"] for call in calls(space) + calls(people)} <= {200, 201}


async def test_notify_and_login_mode_reach_cards_from_the_settings_or_the_request(
    client: httpx.AsyncClient, people: LuccaAccount, space: CardsAccount
) -> None:
    tenant = await cards_tenant(client, people, space, notify_created_users=True, login_mode="GoogleOAuth")
    first = await import_and_drain(client, tenant, "users", {"lucca_ids": [102]})
    second = await import_and_drain(client, tenant, "users", {"lucca_ids": [107], "notify": False, "login_mode": "sso"})
    assert counts(first) == counts(second) == {"total": 1, "created": 1}
    jean, marc = cards_user(space, "jean.dupont@acme.fr"), cards_user(space, "marc.petit@acme.fr")
    assert (jean["source"], jean["notify"], marc["source"], marc["notify"]) == ("GoogleOAuth", True, "sso", False)
    [event] = await events_of(client, tenant, second["id"])
    assert event["action"] == "create" and "signs in with sso, not notified" in event["message"]


async def test_ids_that_are_not_current_employees_are_skipped_in_plain_words(
    client: httpx.AsyncClient, people: LuccaAccount, space: CardsAccount
) -> None:
    tenant = await cards_tenant(client, people, space)
    run = await import_and_drain(client, tenant, "users", {"lucca_ids": [101, 102, 424242]})
    assert run["status"] == "succeeded" and counts(run) == {"total": 3, "created": 1, "skipped": 2}
    skipped = {event["subject"]: event["message"] for event in await events_of(client, tenant, run["id"])
               if event["action"] == "skip"}  # fmt: skip
    assert set(skipped) == {"Lucca 101", "Lucca 424242"}
    assert "No current employee has this Lucca id" in skipped["Lucca 101"]


async def test_a_person_cards_refuses_fails_alone_and_a_retry_redoes_only_them(
    client: httpx.AsyncClient, people: LuccaAccount, space: CardsAccount
) -> None:
    tenant = await cards_tenant(client, people, space)
    space.add_faults({"status": 422, "match": "POST /users", "count": 1})  # Jean's creation, the first
    run = await import_and_drain(client, tenant, "users", {"all": True})
    assert run["status"] == "partial" and counts(run) == {"total": 7, "created": 1, "linked": 2, "skipped": 3,
                                                          "failed": 1}, run  # fmt: skip
    [failure] = [event for event in await events_of(client, tenant, run["id"]) if event["action"] == "fail"]
    assert failure["subject"] == "jean.dupont@acme.fr" and failure["level"] == "error"
    assert "Cards refused POST /users (HTTP 422)" in failure["message"]
    answer = await client.post(f"/api/v1/tenants/acme/runs/{run['id']}/retry", headers=tenant.auth)
    assert answer.status_code == 202, answer.text
    await drain_queue()
    retry = await run_of(client, tenant, answer.json()["run_id"])
    assert retry["status"] == "succeeded" and counts(retry) == {"total": 1, "created": 1}, retry
    assert cards_user(space, "jean.dupont@acme.fr")["source"] == "app" and len(space.users()) == 4


async def test_a_department_import_makes_one_group_and_keeps_other_groups(
    client: httpx.AsyncClient, people: LuccaAccount, space: CardsAccount
) -> None:
    tenant = await cards_tenant(client, people, space)
    run = await import_and_drain(client, tenant, "departments", {"department_ids": [10, 99]})
    assert run["status"] == "succeeded" and run["operation"] == "departments_import", run
    # Claire (Cards user 1, in Mentors) joins; Jean gets an account in the group.
    assert counts(run) == {"total": 3, "created": 1, "updated": 1, "skipped": 1}
    assert group_names(cards_user(space, "claire.martin@acme.fr")) == ["Engineering", "Mentors"]
    assert group_names(cards_user(space, "jean.dupont@acme.fr")) == ["Engineering"]
    assert [group["name"] for group in space.groups()] == ["Mentors", "Alumni", "Engineering"]
    events = await events_of(client, tenant, run["id"])
    assert any(event["subject"] == "Department 99" and event["action"] == "skip" for event in events)
    assert any(event["action"] == "create" and event["subject"] == "Engineering" for event in events)

    rows = {row["name"]: row for row in await listing(client, tenant, "departments")}
    assert rows == {
        "Engineering": {"lucca_id": 10, "name": "Engineering", "members": 2, "imported": True},
        "Sales": {"lucca_id": 11, "name": "Sales", "members": 2, "imported": False},
        "People": {"lucca_id": 12, "name": "People", "members": 3, "imported": False},
        "Legal": {"lucca_id": 13, "name": "Legal", "members": 0, "imported": False},
    }

    puts = len(calls(space, "PUT"))
    everything = await import_and_drain(client, tenant, "departments", {"all": True})
    # Engineering's members are in already (no PUT); Sales's cannot be imported; Léa keeps Alumni.
    assert counts(everything) == {"total": 7, "created": 1, "updated": 1, "linked": 2, "skipped": 3}
    assert len(calls(space, "PUT")) == puts + 2
    assert group_names(cards_user(space, "lea.case@acme.fr")) == ["Alumni", "People"]
    assert group_names(cards_user(space, "marc.petit@acme.fr")) == ["People"]
    assert [group["name"] for group in space.groups()] == ["Mentors", "Alumni", "Engineering", "People"]
    notes = [event["message"] for event in await events_of(client, tenant, everything["id"])
             if event["action"] == "note"]  # fmt: skip
    assert notes == ["Department Legal has no current employee: its Cards group will be created with its first member."]
    assert all(row["imported"] for row in await listing(client, tenant, "departments") if row["name"] != "Sales"
               and row["name"] != "Legal")  # fmt: skip


async def test_a_lost_answer_to_the_put_that_makes_a_group_leaves_one_group(
    client: httpx.AsyncClient, people: LuccaAccount, space: CardsAccount
) -> None:
    """The first member's PUT names the group for Cards to create (an upsert by name, partners.md 3.1); Cards makes
    it and the answer is lost: sent again, the PUT names a group that exists now, so Cards still holds one."""
    tenant = await cards_tenant(client, people, space)
    space.add_faults({"status": 504, "after": True, "match": "PUT /users/1"})  # Claire, Engineering's first member
    run = await import_and_drain(client, tenant, "departments", {"department_ids": [10]})
    assert (run["status"], counts(run)) == ("succeeded", {"total": 2, "created": 1, "updated": 1})
    assert [call["status"] for call in calls(space, "PUT")][:2] == [504, 200]
    assert [group["name"] for group in space.groups()] == ["Mentors", "Alumni", "Engineering"]
    assert group_names(cards_user(space, "claire.martin@acme.fr")) == ["Engineering", "Mentors"]
    assert group_names(cards_user(space, "jean.dupont@acme.fr")) == ["Engineering"]


async def test_both_rate_limits_hold_while_imports_keep_them_busy(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    directory = demo_seed_payload()["users"] + [directory_user(index) for index in range(40)]
    # Windows of 5 s: the limiter's margin (4 % of the window) absorbs the sandbox's own timing jitter.
    lucca = sandbox.new_lucca_account(users=directory, window_seconds=5, requests_per_window=10)
    cards = sandbox.new_cards_account(window_seconds=5, requests_per_window=25)
    tenant = await cards_tenant(client, lucca, cards, rate_limit={"requests": 25, "per_seconds": 5},
                                lucca_rate_limit={"requests": 10, "per_seconds": 5})  # fmt: skip
    users = await start_import(client, tenant, "users", {"all": True})
    departments = await start_import(client, tenant, "departments", {"all": True})
    await drain_queue()
    runs = [await run_of(client, tenant, run_id) for run_id in (users, departments)]
    assert [run["status"] for run in runs] == ["succeeded", "succeeded"], runs
    current = [person for person in directory if person["dtContractEnd"] is None]
    assert len(cards.users()) == len(current)
    assert [call for call in calls(cards) + calls(lucca) if call["status"] == 429] == []
    assert len(calls(cards, "POST")) == len(current) - 1  # Claire was there


async def test_an_import_spanning_several_job_attempts_goes_on_and_succeeds(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    """Each attempt gets 2 s (job timeout 7 - 5), the give-up comes after 3 s, 30 people take about 8 s at 4 per
    second: attempts cut by the deadline after getting people done go on (they used to count as failures)."""
    lucca = sandbox.new_lucca_account(users=[directory_user(index) for index in range(30)])
    cards = sandbox.new_cards_account(users=[], groups=[])
    tenant = await cards_tenant(client, lucca, cards, rate_limit={"requests": 4, "per_seconds": 1})
    run_id = await start_import(client, tenant, "users", {"all": True})
    with worker_process(JOB_TIMEOUT_SECONDS="7", GIVE_UP_AFTER_SECONDS="3"):
        run = await wait_for_run(client, tenant, run_id, seconds=90)
    current = [index for index in range(30) if index % 9 != 8]
    # A deadline that cuts a creation after Cards made the user (before or after its link) leaves it the run's.
    assert run["status"] == "succeeded" and counts(run) == {"total": len(current), "created": len(current)}, run
    assert sorted(user["email"] for user in cards.users()) == sorted(directory_user(i)["mail"] for i in current)
    # Each attempt lists the space once: there were several.
    assert len([call for call in calls(cards, "GET") if call["path"] == "/v1/users"]) >= 3
    warnings = [event for event in await events_of(client, tenant, run_id) if event["level"] != "info"]
    assert warnings == []


async def test_outages_more_than_the_give_up_apart_do_not_end_a_run_that_keeps_going(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    """The give-up (3 s here) is for work that stopped moving: each person done puts earlier failures behind."""
    lucca = sandbox.new_lucca_account(users=[directory_user(index) for index in range(40)])
    cards = sandbox.new_cards_account(users=[], groups=[])
    tenant = await cards_tenant(client, lucca, cards, rate_limit={"requests": 4, "per_seconds": 1})
    cards.add_faults({"status": 503, "match": "POST /users", "count": 1})
    run_id = await start_import(client, tenant, "users", {"all": True})
    with worker_process(GIVE_UP_AFTER_SECONDS="3"):
        deadline = time.monotonic() + 60
        while (await run_of(client, tenant, run_id))["counts"]["created"] < 20:  # 5 s on, at 4 per second
            assert time.monotonic() < deadline, "the import did not get going"
            await asyncio.sleep(0.1)
        cards.add_faults({"status": 503, "match": "POST /users", "count": 1})
        run = await wait_for_run(client, tenant, run_id, seconds=60)
    assert run["status"] == "succeeded" and counts(run) == {"total": 36, "created": 36}, run
    warnings = [event["message"] for event in await events_of(client, tenant, run_id) if event["level"] == "warning"]
    assert len(warnings) == 2 and all("is unavailable (HTTP 503); next try in" in said for said in warnings)


async def test_a_worker_killed_mid_import_finishes_without_a_duplicate(
    client: httpx.AsyncClient, people: LuccaAccount, space: CardsAccount
) -> None:
    tenant = await cards_tenant(client, people, space)
    # Jean is created, then the answer hangs: the worker dies before it knows Cards made him.
    space.add_faults({"status": 503, "match": "POST /users", "after": True, "delay_seconds": 30})
    run_id = await start_import(client, tenant, "users", {"all": True})
    with worker_process() as first_worker:
        deadline = time.monotonic() + 30
        while len(space.users()) < 3:
            assert time.monotonic() < deadline, "the worker never reached Cards"
            await asyncio.sleep(0.1)
        first_worker.send_signal(signal.SIGKILL)
    with worker_process():
        # arq takes the job up again once its in-progress mark expires (the longest job timeout, the sweep's
        # 60 s, + 10 s).
        run = await wait_for_run(client, tenant, run_id, seconds=90)
    # Jean, whom the first worker's create made, counts as created (by the run), not linked.
    assert run["status"] == "succeeded" and counts(run) == {"total": 7, "created": 2, "linked": 2, "skipped": 3}, run
    emails = [(user["email"] or "").casefold() for user in space.users()]
    assert sorted(emails) == sorted(set(emails)) and len(emails) == 4
    [jean] = [event for event in await events_of(client, tenant, run_id) if event["subject"] == "jean.dupont@acme.fr"]
    assert jean["action"] == "create" and "by an earlier attempt" in jean["message"]


async def test_a_create_whose_answer_was_lost_stays_the_runs_when_the_email_changes_meanwhile(
    client: httpx.AsyncClient, people: LuccaAccount, space: CardsAccount
) -> None:
    tenant = await cards_tenant(client, people, space)
    # Jean's create lands in Cards, its answer is lost; then his e-mail changes in Lucca before the next attempt.
    space.add_faults({"status": 504, "match": "POST /users", "after": True})
    run_id = await start_import(client, tenant, "users", {"lucca_ids": [102]})
    with worker_process():
        deadline = time.monotonic() + 30
        while not [user for user in space.users() if user["email"] == "jean.dupont@acme.fr"]:
            assert time.monotonic() < deadline, "the worker never reached Cards"
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient() as lucca:
            changed = await lucca.put(
                f"{people.base_url}/api/v3/users/102",
                json={"mail": "j.dupont@acme.fr"},
                headers={"Authorization": f"lucca application={people.api_key}"},
            )
        assert changed.status_code == 200, changed.text
        run = await wait_for_run(client, tenant, run_id, seconds=30)
    assert run["status"] == "succeeded" and counts(run) == {"total": 1, "created": 1}, run
    assert [user["email"] for user in space.users() if "dupont" in (user["email"] or "")] == ["jean.dupont@acme.fr"]


async def test_an_import_of_3000_whose_workers_are_killed_counts_each_person_once(
    client: httpx.AsyncClient, sandbox: SandboxServer, migrated_database: str
) -> None:
    """Workers SIGKILLed at random points of a 3,000-person import (both limits raised out of the way): the run
    ends with each person counted once, as created, and each a Cards user once."""
    people = [directory_user(index, leavers=False) for index in range(3000)]
    lucca = sandbox.new_lucca_account(users=people, requests_per_window=100_000)
    cards = sandbox.new_cards_account(users=[], groups=[], requests_per_window=100_000)
    tenant = await cards_tenant(client, lucca, cards, rate_limit={"requests": 100_000, "per_seconds": 60})
    run_id = await start_import(client, tenant, "users", {"all": True})
    shuffle = random.Random()
    for _ in range(3):
        with worker_process() as worker:
            reached = (await run_of(client, tenant, run_id))["counts"].get("created", 0) + shuffle.randint(50, 400)
            deadline = time.monotonic() + 600  # a worker's start and the space's listing, on a busy machine
            while (await run_of(client, tenant, run_id))["counts"].get("created", 0) < reached:
                assert time.monotonic() < deadline, "the import did not get going"
                await asyncio.sleep(shuffle.uniform(0.01, 0.2))
            worker.send_signal(signal.SIGKILL)
        # What arq does once a dead worker's in-progress mark expires (70 s here), at once.
        redis = Redis.from_url(os.environ["REDIS_URL"])
        await redis.delete(*(await redis.keys("arq:in-progress:*")) or ["none"])
        await redis.aclose()
    with worker_process():
        run = await wait_for_run(client, tenant, run_id, seconds=900)
    assert run["status"] == "succeeded" and counts(run) == {"total": 3000, "created": 3000}, run
    emails = Counter((user["email"] or "").casefold() for user in cards.users())
    assert len(emails) == 3000 and set(emails.values()) == {1}
    assert len(calls(cards, "POST")) < 3000 + 3 * 4  # at most a few creates per kill were sent again
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        ledger = await connection.fetch(
            "SELECT outcome, count(*) FROM run_items WHERE run_id = $1 GROUP BY 1", uuid.UUID(run_id)
        )
        events = await connection.fetchval("SELECT count(*) FROM run_events WHERE run_id = $1", uuid.UUID(run_id))
    finally:
        await connection.close()
    assert [tuple(row) for row in ledger] == [("created", 3000)] and events == 3000


async def test_a_person_the_runs_cut_attempt_created_and_linked_counts_as_created(
    client: httpx.AsyncClient, people: LuccaAccount, space: CardsAccount
) -> None:
    """An attempt created Jean in Cards and linked him, then was cut (its deadline) before counting him: the next
    attempt finds the link, and Jean counts as created by the run, not linked."""
    tenant = await cards_tenant(client, people, space)
    run_id = await start_import(client, tenant, "users", {"lucca_ids": [102]})
    services = Services.start(Settings())
    try:
        async with services.sessionmaker() as session:
            stored = await session.scalar(select(Tenant).where(Tenant.slug == tenant.slug))
        assert stored is not None
        employees, _ = await directory_of(services, stored)
        [jean] = [person for person in employees if person.id == 102]
        settings = CardsSettings.model_validate(space.connector_settings())
        log = RunLog(services.sessionmaker, uuid.UUID(run_id), {})
        cut = await open_space(services, stored, settings, log, source=settings.login_mode, notify=False)
        account = await ensure_account(cut, jean, Directory.of(employees))
        assert account is not None and account.created
    finally:
        await services.close()
    await drain_queue()
    run = await run_of(client, tenant, run_id)
    assert run["status"] == "succeeded" and counts(run) == {"total": 1, "created": 1}, run
    [event] = await events_of(client, tenant, run_id)
    assert event["action"] == "create" and "by an earlier attempt" in event["message"], event
    assert len(calls(space, "POST")) == 1
