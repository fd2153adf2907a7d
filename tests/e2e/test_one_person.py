"""One person, one employee, however two runs interleave (contract sections 7 and 8).

Each test holds one run in the middle (a sandbox delay on its create, or a create whose answer is lost and which
lands only later) while the other run does its lookup, so the interleaving that once made two users is forced.
"""

from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from app.clients.lucca import LuccaClient, LuccaUnavailable, LuccaUser
from app.sandbox.demo import demo_seed_payload
from tests.e2e.conftest import WEBHOOK, drain_queue, run_of
from tests.factories import add_softgarden, create_tenant, hire_body
from tests.sandbox_server import LuccaAccount, PartnerAccount, SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")
LEA = {"id": 9001, "firstName": "Lea", "lastName": "Roux"}  # no personal e-mail: names and start date decide
TEMPLATE = "{first_name}.{last_name}@acme.fr"
HOLD_THE_CREATE = {"match": "POST /api/v3/users", "delay_seconds": 1.5, "count": 1}


@pytest.fixture
def taleez(sandbox: SandboxServer) -> PartnerAccount:
    return sandbox.new_taleez_account()


def new_users(lucca: LuccaAccount) -> list[dict[str, Any]]:
    return [user for user in lucca.users() if user["id"] > 102]


async def taleez_tenant(client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount, slug: str) -> Any:
    tenant = await create_tenant(client, slug, base_url=lucca.base_url, api_key=lucca.api_key)
    settings = {"api_base_url": taleez.base_url, "api_secret": taleez.secret, "default_establishment_id": 1,
                "default_department_id": 10, "default_role_principal_id": 55,
                "professional_email_template": TEMPLATE}  # fmt: skip
    path = f"/api/v1/tenants/{slug}/connectors/taleez"
    answer = await client.put(path, json={"enabled": True, "settings": settings}, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    return tenant


async def queue_import(client: httpx.AsyncClient, tenant: Any, body: Mapping[str, Any]) -> str:
    answer = await client.post(f"/api/v1/tenants/{tenant.slug}/taleez/imports", json=body, headers=tenant.auth)
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    return run_id


async def outcomes(client: httpx.AsyncClient, tenant: Any, run_ids: list[str]) -> list[tuple[str, int, int]]:
    runs = [await run_of(client, tenant, run_id) for run_id in run_ids]
    return sorted((run["status"], run["counts"]["created"], run["counts"]["linked"]) for run in runs)


async def test_the_same_candidate_twice_with_different_start_dates_makes_one_user(
    client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount
) -> None:
    tenant = await taleez_tenant(client, lucca, taleez, "acme")
    lucca.add_faults(HOLD_THE_CREATE)  # the first run's create takes 1.5 s: the second run starts meanwhile
    run_ids = [
        await queue_import(client, tenant, {"candidate": LEA, "start_date": start})
        for start in ("2027-01-04", "2027-02-01")
    ]
    await drain_queue()
    [lea] = new_users(lucca)
    assert lea["login"] == "lea.roux@acme.fr"
    assert await outcomes(client, tenant, run_ids) == [("succeeded", 0, 1), ("succeeded", 1, 0)]


async def test_two_tenants_on_one_lucca_account_make_one_user(client: httpx.AsyncClient, lucca: LuccaAccount) -> None:
    tenants = []
    for slug, base_url in (("acme", lucca.base_url), ("acme-hr", f"{lucca.base_url}/")):
        tenant = await create_tenant(client, slug, base_url=base_url, api_key=lucca.api_key)
        tenants.append(await add_softgarden(client, tenant))
    lucca.add_faults(HOLD_THE_CREATE)
    run_ids = []
    for tenant in tenants:
        answer = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
        assert answer.status_code == 202, answer.text
        run_ids.append(answer.json()["run_id"])
    await drain_queue()
    [zoe] = new_users(lucca)
    assert zoe["login"] == "zoe.muller@acme.fr"
    results = [await outcomes(client, tenant, [run_id]) for tenant, run_id in zip(tenants, run_ids, strict=True)]
    assert sorted(result[0] for result in results) == [("succeeded", 0, 1), ("succeeded", 1, 0)]


async def test_a_create_that_timed_out_and_landed_later_is_the_same_user_not_a_namesake(
    client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first POST gets no answer and reaches Lucca only after the retry's lookup: Lucca then says "login in use"."""
    tenant = await taleez_tenant(client, lucca, taleez, "acme")
    send = LuccaClient.create_user
    held: list[dict[str, Any]] = []

    async def lands_late(self: LuccaClient, body: Mapping[str, Any]) -> LuccaUser:
        if not held:
            held.append(dict(body))
            raise LuccaUnavailable("lucca", "Lucca did not answer (timed out)")
        if len(held) == 1:
            held.append(dict(body))
            await send(self, held[0])  # the lost create lands now, after the retry looked and found no one
        return await send(self, body)

    monkeypatch.setattr(LuccaClient, "create_user", lands_late)
    run_id = await queue_import(client, tenant, {"candidate": LEA, "start_date": "2027-01-04"})
    await drain_queue()
    [lea] = new_users(lucca)
    assert lea["login"] == "lea.roux@acme.fr"
    assert len(held) == 2 and held[1]["login"] == "lea.roux@acme.fr"
    assert await outcomes(client, tenant, [run_id]) == [("succeeded", 1, 0)]


async def test_a_lost_create_that_lands_between_the_retrys_lookups_is_the_runs_own(
    client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first POST gets no answer and lands only after the retry looked for the person, before it looked for
    namesakes: the login then seems taken, but this run sent it, so its holder is looked at, never a suffix taken."""
    tenant = await taleez_tenant(client, lucca, taleez, "acme")
    send, read = LuccaClient.create_user, LuccaClient.list_users
    lost: list[Mapping[str, Any]] = []
    landed: list[LuccaUser] = []

    async def answer_lost(self: LuccaClient, body: Mapping[str, Any]) -> LuccaUser:
        if not lost:
            lost.append(body)
            raise LuccaUnavailable("lucca", "Lucca did not answer (timed out)")
        return await send(self, body)

    async def lands_before_the_namesakes(self: LuccaClient, **options: Any) -> list[LuccaUser]:
        if lost and not landed and "login" in (options.get("filters") or {}):
            landed.append(await send(self, lost[0]))
        return await read(self, **options)

    monkeypatch.setattr(LuccaClient, "create_user", answer_lost)
    monkeypatch.setattr(LuccaClient, "list_users", lands_before_the_namesakes)
    run_id = await queue_import(client, tenant, {"candidate": LEA, "start_date": "2027-01-04"})
    await drain_queue()
    [lea] = new_users(lucca)
    assert lea["login"] == "lea.roux@acme.fr" and [user.id for user in landed] == [lea["id"]]
    assert await outcomes(client, tenant, [run_id]) == [("succeeded", 1, 0)]


async def test_a_softgarden_create_whose_answer_was_lost_stays_the_runs_when_the_settings_change_meanwhile(
    client: httpx.AsyncClient, lucca: LuccaAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Softgarden run reads its candidate from the stored delivery, but the settings when it works: a template
    changed before the next attempt must not make a second user (muller.zoe@) of the one the lost answer created."""
    tenant = await add_softgarden(client, await create_tenant(client, "acme", base_url=lucca.base_url,
                                                              api_key=lucca.api_key))  # fmt: skip
    lucca.add_faults({"match": "POST /api/v3/users", "status": 503, "after": True})
    send = LuccaClient.create_user

    async def settings_changed_meanwhile(self: LuccaClient, body: Mapping[str, Any]) -> LuccaUser:
        try:
            return await send(self, body)
        finally:
            template = {"professional_email_template": "{last_name}.{first_name}@acme.fr"}
            path = f"/api/v1/tenants/{tenant.slug}/connectors/softgarden"
            assert (await client.patch(path, json={"settings": template}, headers=tenant.auth)).status_code == 200

    monkeypatch.setattr(LuccaClient, "create_user", settings_changed_meanwhile)
    answer = await client.post(WEBHOOK, json=hire_body(email=None), headers=tenant.webhook_auth)
    await drain_queue()
    [zoe] = new_users(lucca)
    assert zoe["login"] == "zoe.muller@acme.fr"
    assert [call["status"] for call in lucca.calls()["items"] if call["method"] == "POST"] == [503]
    assert await outcomes(client, tenant, [answer.json()["run_id"]]) == [("succeeded", 1, 0)]


async def test_a_former_namesake_holding_the_login_in_capitals_gives_the_next_suffix(
    client: httpx.AsyncClient, sandbox: SandboxServer, taleez: PartnerAccount
) -> None:
    """Logins compare ignoring case, former employees included, though Lucca's equality filter is strict."""
    hidden = {"id": 90, "firstName": "Lea", "lastName": "Roux", "login": "LEA.ROUX@acme.fr", "legalEntityId": 1,
              "departmentId": 10, "rolePrincipalId": 55, "dtContractStart": "2020-01-01",
              "dtContractEnd": "2021-01-01"}  # fmt: skip
    lucca = sandbox.new_lucca_account(users=[*demo_seed_payload()["users"], hidden])
    tenant = await taleez_tenant(client, lucca, taleez, "acme")
    run_id = await queue_import(client, tenant, {"candidate": LEA, "start_date": "2027-01-04"})
    await drain_queue()
    [lea] = new_users(lucca)
    assert lea["login"] == "lea.roux2@acme.fr"
    assert await outcomes(client, tenant, [run_id]) == [("succeeded", 1, 0)]
