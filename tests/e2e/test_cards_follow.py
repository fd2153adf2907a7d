"""Cards' auto_sync end to end (contract 5.3, section 6's `changes`): changes made in the sandbox's Lucca reach the
copy (a real poll), the poller's pass (`directory.poll_due`, as its cron runs it) queues one job per tenant, and real
arq workers bring the sandbox's Cards in line, counted call by call."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.directory.polling import poll_tenant
from app.models import Tenant
from app.sandbox.demo import demo_seed_payload, demo_user
from app.services.cards_follow import LIST_ABOVE
from app.services.context import Services
from app.workers.freshness import directory_poll_due
from tests.directory_copy import full_sync
from tests.e2e.conftest import drain_queue, events_of, runs_of
from tests.e2e.directory_helpers import running_services
from tests.e2e.test_cards_imports import calls, cards_tenant, cards_user, group_names, import_and_drain
from tests.factories import TenantHandle
from tests.sandbox_server import CardsAccount, LuccaAccount, SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")

USERS = {"users": True, "departments": "none", "leavers": "keep"}


@pytest.fixture
async def services() -> AsyncIterator[Services]:
    async with running_services() as started:
        yield started


@pytest.fixture
def lucca(sandbox: SandboxServer) -> LuccaAccount:
    """The demo's people, and Marc Vente in Sales (so that Sales is a group once imported)."""
    return sandbox.new_lucca_account(users=[*demo_seed_payload()["users"], demo_user(103, "Marc", "Vente", 11)])


@pytest.fixture
def space(sandbox: SandboxServer) -> CardsAccount:
    """Claire Martin (demo) is in Cards already, in group Mentors, which the service does not manage."""
    return sandbox.new_cards_account()


async def lucca_call(client: httpx.AsyncClient, lucca: LuccaAccount, method: str, path: str, body: Any) -> Any:
    key = {"Authorization": f"lucca application={lucca.api_key}"}
    answer = await client.request(method, f"{lucca.base_url}{path}", json=body, headers=key)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["data"]


async def change(client: httpx.AsyncClient, lucca: LuccaAccount, user_id: int, **fields: Any) -> None:
    await lucca_call(client, lucca, "PUT", f"/api/v3/users/{user_id}", fields)


async def hire(client: httpx.AsyncClient, lucca: LuccaAccount, first: str, last: str, department_id: int = 12,
               **fields: Any) -> int:  # fmt: skip
    body = {key: value for key, value in demo_user(0, first, last, department_id).items() if key != "id"}
    created = await lucca_call(client, lucca, "POST", "/api/v3/users", body | fields)
    user_id: int = created["id"]
    return user_id


async def follow(services: Services) -> None:
    """A poll brings Lucca's changes into the copy; the poller's pass, then real workers until every job (deferred
    ones too) is done."""
    async with services.sessionmaker() as session:
        tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == "acme", Tenant.deleted_at.is_(None)))
    assert tenant_id is not None
    await poll_tenant(services, tenant_id, 30)
    await directory_poll_due({"services": services})
    await drain_queue()


async def changes_runs(client: httpx.AsyncClient, tenant: TenantHandle) -> list[dict[str, Any]]:
    items = await runs_of(client, tenant, "changes")
    assert all(run["connector"] == "cards" and run["trigger"] == "change" for run in items)
    return items


async def followed(
    client: httpx.AsyncClient, services: Services, tenant: TenantHandle, space: CardsAccount
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Follow, then the one new changes run, its events, and the Cards calls it made (forgotten after)."""
    before = len(await changes_runs(client, tenant))
    space.clear_calls()
    await follow(services)
    runs = await changes_runs(client, tenant)
    assert len(runs) == before + 1, runs
    made = calls(space)
    space.clear_calls()
    return runs[0], await events_of(client, tenant, runs[0]["id"]), made


def counted(run: dict[str, Any]) -> dict[str, int]:
    return {key: value for key, value in run["counts"].items() if value}


async def test_switching_on_brings_fifty_people_in_once_then_nothing_without_a_change(
    client: httpx.AsyncClient, sandbox: SandboxServer, space: CardsAccount, services: Services
) -> None:
    seed = demo_seed_payload()
    fifty = [demo_user(200 + index, f"Person{index}", "Fifty", 10 + index % 3) for index in range(50)]
    lucca = sandbox.new_lucca_account(users=seed["users"] + fifty)
    tenant = await cards_tenant(client, lucca, space)  # auto_sync off: nothing follows
    await follow(services)
    assert await changes_runs(client, tenant) == []

    answer = await client.patch(
        "/api/v1/tenants/acme/connectors/cards", json={"settings": {"auto_sync": USERS}}, headers=tenant.auth
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["settings"]["auto_sync"] == USERS
    run, events, made = await followed(client, services, tenant, space)
    # 50 new people and Jean Dupont created; Claire Martin linked by her e-mail (Paul Durand left: not in Cards).
    assert (run["status"], counted(run)) == ("succeeded", {"total": 52, "created": 51, "linked": 1})
    assert len({user["email"].casefold() for user in space.users()}) == len(space.users()) == 52
    assert [call["method"] for call in made].count("POST") == 51
    assert any("linked, not created" in event["message"] for event in events)

    # Nothing changed since: no run, no call.
    await follow(services)
    assert len(await changes_runs(client, tenant)) == 1
    assert calls(space) == []


async def test_hire_rename_and_a_person_without_e_mail_until_it_appears(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount, services: Services
) -> None:
    tenant = await cards_tenant(client, lucca, space, auto_sync=USERS)
    await followed(client, services, tenant, space)  # switched on: the space brought in line once

    zoe = await hire(client, lucca, "Zoé", "Lambert", mail="zoe.lambert@acme.fr", login="zoe.lambert@acme.fr")
    run, events, made = await followed(client, services, tenant, space)
    assert counted(run) == {"total": 1, "created": 1}
    assert [(call["method"], call["path"]) for call in made] == [("POST", "/v1/users")]
    assert cards_user(space, "zoe.lambert@acme.fr")["firstname"] == "Zoé"
    assert events[-1]["action"] == "create" and events[-1]["subject"] == "zoe.lambert@acme.fr"

    await change(client, lucca, zoe, firstName="Zoë")
    run, events, made = await followed(client, services, tenant, space)
    assert counted(run) == {"total": 1, "updated": 1}
    [put] = made
    assert (put["method"], put["body"]) == ("PUT", {"firstname": "Zoë"})  # only what changed, no `groups`
    assert cards_user(space, "zoe.lambert@acme.fr")["firstname"] == "Zoë"
    assert "Renamed in Cards from Zoé Lambert to Zoë Lambert." in events[-1]["message"]

    # A change Cards does not show: no run, no call.
    await change(client, lucca, zoe, jobTitle="Analyst")
    await follow(services)
    assert len(await changes_runs(client, tenant)) == 3
    assert calls(space) == []

    nomail = await hire(client, lucca, "Sans", "Adresse", mail=None)
    run, events, made = await followed(client, services, tenant, space)
    assert (counted(run), made) == ({"total": 1, "skipped": 1}, [])
    assert "no professional e-mail" in events[-1]["message"]
    await change(client, lucca, nomail, mail="sans.adresse@acme.fr")
    run, _, made = await followed(client, services, tenant, space)
    assert counted(run) == {"total": 1, "created": 1}
    assert cards_user(space, "sans.adresse@acme.fr")["lastname"] == "Adresse"


async def test_more_renames_in_a_run_than_list_above_read_no_user(
    client: httpx.AsyncClient, sandbox: SandboxServer, space: CardsAccount, services: Services
) -> None:
    people = [demo_user(300 + index, f"Person{index}", "Many", 10) for index in range(LIST_ABOVE + 5)]
    lucca = sandbox.new_lucca_account(users=[*demo_seed_payload()["users"], *people])
    tenant = await cards_tenant(client, lucca, space, auto_sync=USERS)
    await followed(client, services, tenant, space)  # switched on: the space brought in line once

    for person in people:
        await change(client, lucca, person["id"], firstName=f"{person['firstName']}b")
    run, _, made = await followed(client, services, tenant, space)
    assert counted(run) == {"total": len(people), "updated": len(people)}
    # Each rename is sent from what Cards was last given: one PUT each, neither a user read nor the space listed.
    assert [call["method"] for call in made] == ["PUT"] * len(people)
    assert cards_user(space, "person0.many@acme.fr")["firstname"] == "Person0b"


async def test_a_move_changes_the_department_group_and_keeps_the_others(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount, services: Services
) -> None:
    tenant = await cards_tenant(client, lucca, space)
    imported = await import_and_drain(client, tenant, "departments", {"department_ids": [10, 11]})
    assert imported["status"] == "succeeded"
    assert group_names(cards_user(space, "claire.martin@acme.fr")) == ["Engineering", "Mentors"]
    answer = await client.patch(
        "/api/v1/tenants/acme/connectors/cards",
        json={"settings": {"auto_sync": {"departments": "imported"}}},
        headers=tenant.auth,
    )
    assert answer.status_code == 200, answer.text
    await follow(services)  # switched on: in line already

    await change(client, lucca, 100, departmentId=11)  # Claire moves from Engineering to Sales
    run, events, made = await followed(client, services, tenant, space)
    assert counted(run) == {"total": 1, "updated": 1}
    assert group_names(cards_user(space, "claire.martin@acme.fr")) == ["Mentors", "Sales"]
    assert [call["method"] for call in made] == ["GET", "PUT"]  # her groups read first: a PUT replaces them all
    assert "Moved from group Engineering to group Sales, keeping Mentors." in events[-1]["message"]

    await change(client, lucca, 100, departmentId=12)  # to People, not imported: she leaves Sales only
    await followed(client, services, tenant, space)
    assert group_names(cards_user(space, "claire.martin@acme.fr")) == ["Mentors"]


async def test_departments_none_touches_no_group(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount, services: Services
) -> None:
    tenant = await cards_tenant(client, lucca, space)
    await import_and_drain(client, tenant, "departments", {"department_ids": [10, 11]})
    answer = await client.patch(
        "/api/v1/tenants/acme/connectors/cards", json={"settings": {"auto_sync": USERS}}, headers=tenant.auth
    )
    assert answer.status_code == 200, answer.text
    await follow(services)
    space.clear_calls()

    await change(client, lucca, 100, departmentId=11)
    await follow(services)
    assert calls(space) == []
    assert group_names(cards_user(space, "claire.martin@acme.fr")) == ["Engineering", "Mentors"]


async def test_all_makes_a_group_for_a_new_department(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount, services: Services
) -> None:
    auto = {"users": True, "departments": "all", "leavers": "keep"}
    tenant = await cards_tenant(client, lucca, space, auto_sync=auto)
    run, _, _ = await followed(client, services, tenant, space)
    assert run["status"] == "succeeded"
    assert group_names(cards_user(space, "claire.martin@acme.fr")) == ["Engineering", "Mentors"]
    assert group_names(cards_user(space, "jean.dupont@acme.fr")) == ["Engineering"]

    lucca.server.control.put(f"/lucca/accounts/{lucca.name}/departments/14", json={
        "name": "Research", "code": "RES", "hierarchy": "/14/", "isActive": True}).raise_for_status()  # fmt: skip
    await full_sync(client, tenant)  # departments come with the next full sync or the 15-minute poll
    await change(client, lucca, 102, departmentId=14)
    run, events, _ = await followed(client, services, tenant, space)
    assert counted(run) == {"total": 1, "updated": 1}
    assert group_names(cards_user(space, "jean.dupont@acme.fr")) == ["Research"]
    assert any(event["message"].startswith("Cards group Research") for event in events)


@pytest.mark.parametrize("leavers", ["keep", "remove_from_groups", "delete"])
async def test_a_leaver_under_each_rule(
    client: httpx.AsyncClient, lucca: LuccaAccount, space: CardsAccount, services: Services, leavers: str
) -> None:
    auto = {"users": True, "departments": "imported", "leavers": leavers}
    tenant = await cards_tenant(client, lucca, space)
    await import_and_drain(client, tenant, "departments", {"department_ids": [10]})
    answer = await client.patch(
        "/api/v1/tenants/acme/connectors/cards", json={"settings": {"auto_sync": auto}}, headers=tenant.auth
    )
    assert answer.status_code == 200, answer.text
    await follow(services)
    space.clear_calls()

    await change(client, lucca, 100, dtContractEnd="2020-01-31")  # Claire left
    if leavers == "keep":
        await follow(services)
        assert calls(space) == []
        assert group_names(cards_user(space, "claire.martin@acme.fr")) == ["Engineering", "Mentors"]
        return
    run, events, _ = await followed(client, services, tenant, space)
    [event] = [event for event in events if event["subject"] == "claire.martin@acme.fr"]
    assert "Left the company (contract ended on 2020-01-31)" in event["message"]
    if leavers == "delete":
        assert counted(run) == {"total": 1, "suspended": 1}
        assert "deleted" in event["message"]
        assert [user for user in space.users() if user["email"] == "claire.martin@acme.fr"] == []
    else:
        assert counted(run) == {"total": 1, "updated": 1}
        assert group_names(cards_user(space, "claire.martin@acme.fr")) == ["Mentors"]
        assert "Taken out of group Engineering, keeping Mentors." in event["message"]
