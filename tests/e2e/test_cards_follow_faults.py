"""Cards' auto_sync under faults (issue 18): two worker processes, a worker killed mid-batch, Cards answering 429
and 5xx for a while or refusing one person, one person changed three times while a run is in flight. Each person
exists once in Cards, in the right groups, and no Cards write is made twice for the same state."""

import asyncio
import json
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.directory.polling import poll_tenant
from app.models import Tenant
from app.services.context import Services
from tests.e2e import test_cards_follow as following
from tests.e2e.conftest import drain_queue, events_of, run_of
from tests.e2e.test_cards_follow import USERS, changes_runs, counted, follow, followed
from tests.e2e.test_cards_imports import calls, cards_tenant, cards_user, group_names, import_and_drain
from tests.e2e.test_recovery import wait_for_run, worker_process
from tests.factories import ADMIN, TenantHandle
from tests.sandbox_server import CardsAccount, LuccaAccount

pytestmark = pytest.mark.usefixtures("clean_state")

IMPORTED = {"users": True, "departments": "imported", "leavers": "keep"}
# A worker process's jobs at once: two workers stay well within the database's connections.
WORKER = {"WORKER_MAX_JOBS": "4"}


# The happy path's fixtures: the demo's people with Marc Vente in Sales, Claire in Cards already (group Mentors).
services, lucca, space = following.services, following.lucca, following.space


def hire_people(lucca: LuccaAccount, count: int, departments: tuple[int, ...] = (10,)) -> list[dict[str, Any]]:
    """`count` people hired in Lucca, spread over `departments`, in the order of their Lucca ids."""
    hired = []
    for index in range(count):
        mail = f"new.hire{index}@acme.fr"
        hired.append(lucca.hire(firstName=f"New{index}", lastName="Hire", mail=mail,
                                departmentId=departments[index % len(departments)]))  # fmt: skip
    return hired


async def poll(services: Services, tenant: TenantHandle) -> None:
    """One poll of Lucca, which brings its changes into the copy (the workers' pass takes it from there)."""
    async with services.sessionmaker() as session:
        tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == tenant.slug))
    assert tenant_id is not None
    await poll_tenant(services, tenant_id, 30)


async def until(what: str, seconds: float, check: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        await asyncio.sleep(0.2)


async def finished_runs(client: httpx.AsyncClient, tenant: TenantHandle, count: int) -> list[dict[str, Any]]:
    """Wait for `count` changes runs, every one finished; newest first."""
    runs: list[dict[str, Any]] = []

    async def done() -> bool:
        nonlocal runs
        runs = await changes_runs(client, tenant)
        return len(runs) >= count and all(run["status"] in ("succeeded", "partial", "failed") for run in runs)

    await until(f"{count} finished changes run(s)", 120, done)
    assert len(runs) == count, runs
    return runs


def adds_up(run: dict[str, Any]) -> bool:
    outcomes = ("created", "linked", "updated", "skipped", "suspended", "failed")
    counts: dict[str, int] = run["counts"]
    return sum(counts[outcome] for outcome in outcomes) == counts["total"]


def once_each(space: CardsAccount) -> list[str]:
    """The space's e-mails (case-folded), checked to be each one user's."""
    emails = [(user["email"] or "").casefold() for user in space.users()]
    assert len(emails) == len(set(emails)), Counter(emails).most_common(3)
    return sorted(emails)


def creations(space: CardsAccount) -> Counter[str]:
    """POST /users calls per e-mail (case-folded), whatever Cards answered."""
    return Counter(call["body"]["email"].casefold() for call in calls(space, "POST") if call["path"] == "/v1/users")


def writes_per_user(space: CardsAccount) -> dict[str, list[Any]]:
    """The bodies of the PUTs to each user, in order."""
    writes: dict[str, list[Any]] = {}
    for call in calls(space, "PUT"):
        writes.setdefault(call["path"], []).append(call["body"])
    return writes


def no_failure(events: list[dict[str, Any]]) -> bool:
    return all(event["action"] != "fail" and event["level"] != "error" for event in events)


async def set_auto_sync(client: httpx.AsyncClient, tenant: TenantHandle, auto: dict[str, Any]) -> None:
    answer = await client.patch(
        f"/api/v1/tenants/{tenant.slug}/connectors/cards", json={"settings": {"auto_sync": auto}}, headers=tenant.auth
    )
    assert answer.status_code == 200, answer.text


async def test_two_workers_follow_a_batch_in_one_run_creating_each_person_once(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount, services: Services
) -> None:
    auto = {"users": True, "departments": "all", "leavers": "keep"}
    # 10 Cards calls a second: the runs last long enough for both workers' passes and sweeps to see them.
    tenant = await cards_tenant(client, lucca, space, auto_sync=auto, rate_limit={"requests": 10, "per_seconds": 1})
    # No poll of the workers' own splits the batch: this test polls when the batch is made.
    answer = await client.patch("/api/v1/tenants/acme", json={"lucca": {"poll_seconds": 3600}}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    with worker_process(**WORKER), worker_process(**WORKER):
        # Switched on: the workers' passes bring the space in line once.
        [in_line] = await finished_runs(client, tenant, 1)
        assert (in_line["status"], counted(in_line)) == ("succeeded", {"total": 3, "created": 2, "linked": 1})

        hired = hire_people(lucca, 12, departments=(10, 11, 12))
        lucca.change_person(102, firstName="Jean-Pierre")  # rename
        lucca.change_person(100, departmentId=11)  # Claire moves to Sales
        lucca.change_person(103, lastName="Ventes", departmentId=12)  # Marc renamed and moved to People (no group)
        await poll(services, tenant)
        batch, _ = await finished_runs(client, tenant, 2)

    assert batch["status"] == "succeeded" and adds_up(batch), batch
    assert counted(batch) == {"total": 15, "created": 12, "updated": 3}
    # Each person in one run only: the batch's people have no event in the first run.
    first = {event["subject"] for event in await events_of(client, tenant, in_line["id"])}
    second = {event["subject"] for event in await events_of(client, tenant, batch["id"]) if event["action"] != "note"}
    batch_people = {"claire.martin@acme.fr", "jean.dupont@acme.fr", "marc.vente@acme.fr"}
    batch_people |= {person["mail"] for person in hired}
    assert first & {person["mail"] for person in hired} == set() and second >= batch_people
    emails = once_each(space)
    assert emails == sorted(["claire.martin@acme.fr", "jean.dupont@acme.fr", "marc.vente@acme.fr",
                             *(person["mail"] for person in hired)])  # fmt: skip
    assert set(creations(space).values()) == {1} and "claire.martin@acme.fr" not in creations(space)
    # Groups: each department's once, each person in theirs, Claire's own kept.
    assert sorted(group["name"] for group in space.groups()) == ["Engineering", "Mentors", "People", "Sales"]
    assert group_names(cards_user(space, "claire.martin@acme.fr")) == ["Mentors", "Sales"]
    assert group_names(cards_user(space, "jean.dupont@acme.fr")) == ["Engineering"]
    assert cards_user(space, "jean.dupont@acme.fr")["firstname"] == "Jean-Pierre"
    marc = cards_user(space, "marc.vente@acme.fr")
    assert (marc["lastname"], group_names(marc)) == ("Ventes", ["People"])
    names = {10: "Engineering", 11: "Sales", 12: "People"}
    for person in hired:
        assert group_names(cards_user(space, person["mail"])) == [names[person["departmentId"]]]


async def test_a_worker_killed_mid_batch_leaves_every_hire_created_once(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount, services: Services
) -> None:
    tenant = await cards_tenant(client, lucca, space, auto_sync=USERS)
    await followed(client, services, tenant, space)  # switched on: Claire linked, Jean and Marc created
    hired = hire_people(lucca, 30)
    await poll(services, tenant)
    # Ten creations go through; the eleventh is made in Cards but its answer never comes: the worker dies waiting.
    space.add_faults({"match": "POST /users", "count": 10},
                     {"status": 503, "match": "POST /users", "after": True, "delay_seconds": 30})  # fmt: skip
    with worker_process(**WORKER) as first_worker:
        await until("the eleventh creation", 60, lambda: has_users(space, 3 + 11))
        first_worker.send_signal(signal.SIGKILL)
    [killed, _] = await changes_runs(client, tenant)
    assert killed["status"] == "running", killed
    with worker_process(**WORKER):
        # arq takes the job up again once its in-progress mark expires (the sweep's 60 s + 10 s).
        run = await wait_for_run(client, tenant, killed["id"], seconds=120)

    assert run["status"] == "succeeded" and counted(run) == {"total": 30, "created": 30}, run
    assert once_each(space) == sorted(
        ["claire.martin@acme.fr", "jean.dupont@acme.fr", "marc.vente@acme.fr", *(person["mail"] for person in hired)]
    )
    # One creation asked for each hire: the eleventh, whose answer was lost, was found by its e-mail instead.
    posted = creations(space)
    assert max(posted.values()) == 1 and set(posted) >= {person["mail"] for person in hired if person != hired[10]}
    events = await events_of(client, tenant, run["id"])
    [eleventh] = [event for event in events if event["subject"] == hired[10]["mail"]]
    assert eleventh["action"] == "create" and "by an earlier attempt" in eleventh["message"]


async def has_users(space: CardsAccount, count: int) -> bool:
    return len(space.users()) >= count


async def test_a_worker_killed_while_cards_moves_a_person_counts_the_move_once_and_sends_it_once(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount, services: Services
) -> None:
    tenant = await cards_tenant(client, lucca, space)
    await import_and_drain(client, tenant, "departments", {"department_ids": [10, 11]})
    await set_auto_sync(client, tenant, IMPORTED)
    await follow(services)
    lucca.change_person(100, departmentId=11)  # Claire (Cards user 1) and Jean move to Sales
    lucca.change_person(102, departmentId=11)
    await poll(services, tenant)
    space.clear_calls()
    # Cards moves Claire, but its answer never comes: the worker dies waiting.
    space.add_faults({"status": 503, "match": "PUT /users/1", "after": True, "delay_seconds": 30})

    async def claire_moved() -> bool:
        return group_names(cards_user(space, "claire.martin@acme.fr")) == ["Mentors", "Sales"]

    with worker_process(**WORKER) as first_worker:
        await until("Claire's move", 60, claire_moved)
        first_worker.send_signal(signal.SIGKILL)
    killed, *_ = await changes_runs(client, tenant)
    with worker_process(**WORKER):
        run = await wait_for_run(client, tenant, killed["id"], seconds=120)

    assert run["status"] == "succeeded" and counted(run) == {"total": 2, "updated": 2}, run
    assert group_names(cards_user(space, "jean.dupont@acme.fr")) == ["Sales"]
    assert await claire_moved()
    # Her move sent once (its call logged, or not, as the killed worker's connection went), read back after.
    assert len(writes_per_user(space).get("/v1/users/1", [])) <= 1
    [claire] = [
        event for event in await events_of(client, tenant, run["id"]) if event["subject"] == "claire.martin@acme.fr"
    ]
    assert "Moved from group Engineering to group Sales, keeping Mentors." in claire["message"], claire


async def test_cards_answering_429_and_5xx_for_a_while_delays_the_batch_and_nothing_fails(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount, services: Services
) -> None:
    tenant = await cards_tenant(client, lucca, space)
    await import_and_drain(client, tenant, "departments", {"department_ids": [10, 11]})
    await set_auto_sync(client, tenant, IMPORTED)
    await follow(services)  # switched on: in line already
    hired = hire_people(lucca, 6, departments=(10, 11, 12))
    lucca.change_person(102, firstName="Jean-Pierre")
    lucca.change_person(100, departmentId=11)
    lucca.change_person(103, departmentId=10)
    space.add_faults(
        # A 429 storm on every call for 8 s (the run starts 3 s on: changes arriving together share it), then 5xx.
        {"status": 429, "retry_after": 1, "for_seconds": 8},
        {"status": 500, "match": "POST /users", "count": 1},  # a creation refused before Cards acted
        {"status": 500, "match": "POST /users", "after": True, "count": 1},  # one Cards made, its answer lost
        {"status": 502, "count": 2},
        {"status": 503, "retry_after": 1, "count": 1},
    )
    run, events, made = await followed(client, services, tenant, space)

    assert run["status"] == "succeeded" and counted(run) == {"total": 9, "created": 6, "updated": 3}, run
    assert no_failure(events), [event for event in events if not no_failure([event])]
    waits = [event["message"] for event in events if event["level"] == "warning"]
    assert any("(HTTP 429)" in said for said in waits) and any("(HTTP 500)" in said for said in waits), waits
    assert {call["status"] for call in made} >= {429, 500, 502, 503}
    assert len([call for call in made if call["status"] == 429]) >= 3
    once_each(space)
    # At most one creation Cards answered for each hire, and every hire there once.
    answered = Counter(call["body"]["email"] for call in made if call["method"] == "POST" and call["status"] == 201)
    assert max(answered.values()) == 1
    for person in hired:
        wanted = {10: ["Engineering"], 11: ["Sales"], 12: []}[person["departmentId"]]
        assert group_names(cards_user(space, person["mail"])) == wanted
    assert group_names(cards_user(space, "claire.martin@acme.fr")) == ["Mentors", "Sales"]
    assert group_names(cards_user(space, "marc.vente@acme.fr")) == ["Engineering"]
    assert cards_user(space, "jean.dupont@acme.fr")["firstname"] == "Jean-Pierre"


async def test_a_person_cards_refuses_fails_alone_and_the_retry_redoes_only_them(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount, services: Services
) -> None:
    tenant = await cards_tenant(client, lucca, space, auto_sync=USERS)
    await followed(client, services, tenant, space)
    refused, *others = hire_people(lucca, 3)
    space.add_faults({"status": 422, "match": "POST /users", "count": 1})  # the first hire's creation
    run, events, _ = await followed(client, services, tenant, space)

    assert run["status"] == "partial" and counted(run) == {"total": 3, "created": 2, "failed": 1}, run
    [failure] = [event for event in events if event["action"] == "fail"]
    assert (failure["subject"], failure["level"]) == (refused["mail"], "error")
    assert "Cards refused POST /users (HTTP 422)" in failure["message"]
    assert all(cards_user(space, person["mail"]) for person in others)

    answer = await client.post(f"/api/v1/tenants/{tenant.slug}/runs/{run['id']}/retry", headers=tenant.auth)
    assert answer.status_code == 202, answer.text
    await drain_queue()
    retry = await run_of(client, tenant, answer.json()["run_id"])
    assert retry["status"] == "succeeded" and counted(retry) == {"total": 1, "created": 1}, retry
    assert [call["body"]["email"] for call in calls(space, "POST")] == [refused["mail"]]
    assert calls(space, "PUT") == []
    assert [event["subject"] for event in await events_of(client, tenant, retry["id"])] == [refused["mail"]]
    once_each(space)
    # Nothing left for auto_sync to do: the next pass makes no run.
    space.clear_calls()
    await follow(services)
    answer = await client.get(f"/api/v1/tenants/{tenant.slug}/runs", params={"operation": "changes"},
                              headers=tenant.auth)  # fmt: skip
    assert [run["trigger"] for run in answer.json()["items"]] == ["retry", "change", "change"]
    assert calls(space) == []


async def test_one_person_changed_three_times_during_a_run_ends_in_their_last_state_written_once(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount, services: Services
) -> None:
    tenant = await cards_tenant(client, lucca, space)
    await import_and_drain(client, tenant, "departments", {"department_ids": [10, 11]})
    await set_auto_sync(client, tenant, IMPORTED)
    await follow(services)  # switched on: in line already (a run that finds nothing to do)
    before = len(await changes_runs(client, tenant))
    sales = next(group["id"] for group in space.groups() if group["name"] == "Sales")
    space.clear_calls()
    hired = hire_people(lucca, 6)
    hugo = hired[0]
    await poll(services, tenant)
    # Each creation takes 3 s: the run is in flight for about 18 s.
    space.add_faults({"match": "POST /users", "delay_seconds": 3, "count": 6})
    with worker_process(JOB_TIMEOUT_SECONDS="60", **WORKER):
        await until("the run's first creation", 60, lambda: has_users(space, 4))
        started = time.monotonic()
        # Jean (not in the run) and the first hire (done by the run already): rename, rename, move, each polled.
        for change in ({"firstName": "Jeannot"}, {"firstName": "Jean-Marc"}, {"departmentId": 11}):
            lucca.change_person(102, **change)
            lucca.change_person(hugo["id"], **{"lastName": "Hire-Renamed"} | change)
            await poll(services, tenant)
        assert time.monotonic() - started < 10
        running, *_ = await changes_runs(client, tenant)
        assert running["status"] == "running", "the run ended before the changes: they were not made during it"
        newest, earliest, *_ = await finished_runs(client, tenant, before + 2)

    assert counted(earliest) == {"total": 6, "created": 6} and earliest["id"] == running["id"]
    assert newest["status"] == "succeeded" and counted(newest) == {"total": 2, "updated": 2}, newest
    # The next pass finds nothing more to do.
    space_calls = calls(space)
    await follow(services)
    assert len(await changes_runs(client, tenant)) == before + 2 and calls(space) == space_calls
    # The last state is what Cards has, written in one PUT each: the states in between were never sent.
    jean = cards_user(space, "jean.dupont@acme.fr")
    assert (jean["firstname"], group_names(jean)) == ("Jean-Marc", ["Sales"])
    last = cards_user(space, hugo["mail"])
    assert (last["firstname"], last["lastname"], group_names(last)) == ("Jean-Marc", "Hire-Renamed", ["Sales"])
    writes = writes_per_user(space)
    assert writes[f"/v1/users/{jean['id']}"] == [{"firstname": "Jean-Marc", "groups": [sales]}]
    assert writes[f"/v1/users/{last['id']}"] == [{"firstname": "Jean-Marc", "lastname": "Hire-Renamed",
                                                  "groups": [sales]}]  # fmt: skip
    assert creations(space)[hugo["mail"]] == 1
    for bodies in writes.values():
        assert len({json.dumps(body, sort_keys=True) for body in bodies}) == len(bodies)


async def test_a_create_whose_answer_was_lost_then_a_rename_ends_with_the_new_name_in_cards(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount, services: Services
) -> None:
    tenant = await cards_tenant(client, lucca, space, auto_sync=USERS)
    await followed(client, services, tenant, space)
    [hired] = hire_people(lucca, 1)
    await poll(services, tenant)
    # Cards makes the user, then answers 500 six seconds later: the run tries again, finding them by e-mail.
    space.add_faults({"status": 500, "match": "POST /users", "after": True, "delay_seconds": 6})
    with worker_process(**WORKER):
        await until("the creation", 60, lambda: has_users(space, 4))
        # Renamed with a new e-mail while the answer is on its way: the next attempt reads the new state.
        lucca.change_person(hired["id"], firstName="Renamed", mail="renamed.hire@acme.fr")
        await poll(services, tenant)
        [run, *_] = await finished_runs(client, tenant, 2)
    await follow(services)  # what the pass makes of the change, now that the run is over

    assert run["status"] == "succeeded" and counted(run) == {"total": 1, "created": 1}, run
    assert "renamed.hire@acme.fr" in once_each(space) and hired["mail"] not in once_each(space)
    assert cards_user(space, "renamed.hire@acme.fr")["firstname"] == "Renamed"
    assert creations(space)[hired["mail"]] == 1 and "renamed.hire@acme.fr" not in creations(space)


@pytest.mark.parametrize(
    ("change", "said", "groups"),
    [
        ({"departmentId": 11}, "Moved from group Engineering to group Sales, keeping Mentors.", ["Mentors", "Sales"]),
        ({"dtContractEnd": "2020-01-31"}, "Left the company (contract ended on 2020-01-31)", ["Mentors"]),
        ({"firstName": "Clara"}, "Renamed in Cards from Claire Martin to Clara Martin.", ["Engineering", "Mentors"]),
    ],
)
async def test_a_write_whose_answers_were_lost_counts_once_when_cards_shows_it_on_the_next_attempt(
    client: httpx.AsyncClient,
    lucca: LuccaAccount,
    space: CardsAccount,
    services: Services,
    change: dict[str, Any],
    said: str,
    groups: list[str],
) -> None:
    tenant = await cards_tenant(client, lucca, space)
    await import_and_drain(client, tenant, "departments", {"department_ids": [10, 11]})
    await set_auto_sync(client, tenant, IMPORTED | {"leavers": "remove_from_groups"})
    await follow(services)
    lucca.change_person(100, **change)  # Claire (Cards user 1) moves to Sales, leaves, or is renamed
    # Cards makes the change each time, but answers 503: the attempt stops; the next reads Cards, changed already,
    # and sends nothing more.
    space.add_faults({"status": 503, "match": "PUT /users/1", "after": True, "count": 10})
    run, events, made = await followed(client, services, tenant, space)

    assert run["status"] == "succeeded" and counted(run) == {"total": 1, "updated": 1}, run
    assert group_names(cards_user(space, "claire.martin@acme.fr")) == groups
    assert [call["status"] for call in made if call["method"] == "PUT"] == [503] * 3
    [claire] = [event for event in events if event["subject"] == "claire.martin@acme.fr"]
    assert claire["action"] == "update" and said in claire["message"], claire


async def test_a_group_made_by_a_create_whose_answer_was_lost_is_the_departments_group(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount, services: Services
) -> None:
    tenant = await cards_tenant(client, lucca, space, auto_sync={"users": True, "departments": "all"})
    await followed(client, services, tenant, space)  # groups Engineering and Sales made; People has nobody yet
    first, second = hire_people(lucca, 2, departments=(12,))
    # The first hire's create makes group People in Cards, its answer is lost; the run tries again.
    space.add_faults({"status": 500, "match": "POST /users", "after": True, "count": 1})
    run, events, made = await followed(client, services, tenant, space)

    assert run["status"] == "succeeded" and counted(run) == {"total": 2, "created": 2}, run
    assert [group["name"] for group in space.groups()].count("People") == 1
    assert group_names(cards_user(space, first["mail"])) == group_names(cards_user(space, second["mail"])) == ["People"]
    # Nothing written twice: one creation each, no PUT.
    assert [(call["method"], call["status"]) for call in made if call["method"] != "GET"] == [
        ("POST", 500),
        ("POST", 201),
    ]
    assert any(event["message"].startswith("Cards group People") for event in events)
