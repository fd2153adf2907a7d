"""Taleez → Lucca imports (contract section 8), through the API, a real worker and the sandbox."""

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from app.clients.lucca import LuccaClient, LuccaUser
from app.sandbox.demo import demo_seed_payload, demo_taleez_seed_payload, demo_user
from tests.e2e.conftest import drain_queue, events_of, run_of
from tests.factories import ADMIN, TenantHandle, create_tenant
from tests.sandbox_server import LuccaAccount, PartnerAccount, SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")
INES = {"id": 4411, "firstName": "Inès", "lastName": "Dupré", "mail": "ines@perso.fr", "phone": "0611223344"}


@pytest.fixture
def taleez(sandbox: SandboxServer) -> PartnerAccount:
    return sandbox.new_taleez_account()


async def taleez_tenant(
    client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount, slug: str = "acme", **settings: Any
) -> TenantHandle:
    tenant = await create_tenant(client, slug, base_url=lucca.base_url, api_key=lucca.api_key)
    body = {
        "enabled": settings.pop("enabled", True),
        "settings": {
            "api_base_url": taleez.base_url,
            "api_secret": taleez.secret,
            "default_establishment_id": 1,
            "default_department_id": 10,
            "default_role_principal_id": 55,
            "professional_email_template": "{first_name}.{last_name}@acme.fr",
            **settings,
        },
    }
    body["settings"] = {key: value for key, value in body["settings"].items() if value is not None}
    answer = await client.put(f"/api/v1/tenants/{slug}/connectors/taleez", json=body, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["settings"]["api_secret"] == "***"
    return tenant


async def import_and_drain(client: httpx.AsyncClient, tenant: TenantHandle, body: dict[str, Any]) -> dict[str, Any]:
    answer = await client.post(f"/api/v1/tenants/{tenant.slug}/taleez/imports", json=body, headers=tenant.auth)
    assert answer.status_code == 202, answer.text
    await drain_queue()
    return await run_of(client, tenant, answer.json()["run_id"])


def new_users(lucca: LuccaAccount) -> list[dict[str, Any]]:
    return [user for user in lucca.users() if user["id"] > 102]


def change_taleez_candidate(taleez: PartnerAccount, candidate_id: int, **changes: Any) -> None:
    """Rebuild the sandbox's Taleez account with one candidate changed (as a recruiter editing it)."""
    seed = demo_taleez_seed_payload()
    seed["candidates"] = [
        {**candidate, **changes} if candidate["id"] == candidate_id else candidate for candidate in seed["candidates"]
    ]
    taleez.server.control.put(f"/taleez/accounts/{taleez.name}", json=seed).raise_for_status()


async def test_import_by_id_reads_taleez_and_creates_the_employee(
    client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount
) -> None:
    tenant = await taleez_tenant(client, lucca, taleez)
    body = {"candidate_id": 4411, "establishment_id": 2, "department_id": 10, "start_date": "2027-01-04"}
    run = await import_and_drain(client, tenant, body)
    assert run["status"] == "succeeded" and run["counts"]["created"] == 1
    assert run["operation"] == "candidate_import" and run["trigger"] == "api"
    [user] = new_users(lucca)
    assert {key: user.get(key) for key in (
        "firstName", "lastName", "personalEmail", "personalMobile", "legalEntityId", "departmentId",
        "rolePrincipalId", "dtContractStart", "managerId", "mail", "login")} == {
        "firstName": "Inès", "lastName": "Dupré", "personalEmail": "ines@perso.fr", "personalMobile": "0611223344",
        "legalEntityId": 2, "departmentId": 10, "rolePrincipalId": 55, "dtContractStart": "2027-01-04T00:00:00",
        "managerId": 100, "mail": "ines.dupre@acme.fr", "login": "ines.dupre@acme.fr",
    }  # fmt: skip
    calls = taleez.calls()["items"]
    assert [call["path"] for call in calls] == ["/candidates/4411"]


async def test_inline_candidate_without_template_logs_in_with_the_personal_email(
    client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount
) -> None:
    tenant = await taleez_tenant(client, lucca, taleez, professional_email_template=None)
    body = {"candidate": INES, "establishment_id": 1, "department_id": 12, "role_principal_id": 55}
    run = await import_and_drain(client, tenant, body)
    assert run["status"] == "succeeded"
    [user] = new_users(lucca)
    assert user["login"] == "ines@perso.fr" and user.get("mail") is None
    assert user["departmentId"] == 12 and user.get("managerId") is None
    assert taleez.calls()["items"] == []


async def test_an_email_that_is_not_an_address_gives_no_login(
    client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount
) -> None:
    """Without a template the login is the personal e-mail: `n/a` is none (422 inline, a failed run from Taleez)."""
    tenant = await taleez_tenant(client, lucca, taleez, professional_email_template=None)
    path = f"/api/v1/tenants/{tenant.slug}/taleez/imports"
    inline = await client.post(path, json={"candidate": {**INES, "mail": "n/a"}}, headers=tenant.auth)
    assert inline.status_code == 422 and "candidate.mail" in inline.text
    change_taleez_candidate(taleez, 4411, mail="n/a")
    run = await import_and_drain(client, tenant, {"candidate_id": 4411})
    assert run["status"] == "failed" and "no e-mail address in Taleez" in run["error"]
    assert new_users(lucca) == [] and lucca.calls()["items"] == []


async def test_defaults_fill_what_the_request_leaves_out(
    client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount
) -> None:
    tenant = await taleez_tenant(client, lucca, taleez)
    run = await import_and_drain(client, tenant, {"candidate_id": 4412})
    assert run["status"] == "succeeded"
    [user] = new_users(lucca)
    assert (user["legalEntityId"], user["departmentId"], user["rolePrincipalId"]) == (1, 10, 55)
    assert user["dtContractStart"].endswith("T00:00:00")


@pytest.mark.parametrize(
    ("department_id", "manager_id", "status", "expected_manager", "warning"),
    [
        (12, 102, "succeeded", 102, None),  # explicit, still employed
        (12, 101, "failed", None, None),  # explicit, has left: the run fails saying so
        (10, None, "succeeded", 100, None),  # the department's active head
        (11, None, "succeeded", None, "Paul Durand"),  # inactive head: warning, no manager
        (12, None, "succeeded", None, None),  # no head
    ],
)
async def test_manager_rules(
    client: httpx.AsyncClient,
    lucca: LuccaAccount,
    taleez: PartnerAccount,
    department_id: int,
    manager_id: int | None,
    status: str,
    expected_manager: int | None,
    warning: str | None,
) -> None:
    tenant = await taleez_tenant(client, lucca, taleez)
    body = {"candidate": INES, "department_id": department_id, "manager_id": manager_id}
    run = await import_and_drain(client, tenant, body)
    assert run["status"] == status
    events = await events_of(client, tenant, run["id"])
    if status == "failed":
        assert new_users(lucca) == []
        assert "no longer employed" in (run["error"] or "") and "101" in run["error"]
        return
    [user] = new_users(lucca)
    assert user.get("managerId") == expected_manager
    warnings = [event["message"] for event in events if event["level"] == "warning"]
    assert (warning is None and warnings == []) or (warning is not None and warning in warnings[0])


async def test_the_same_candidate_twice_also_concurrently_makes_one_user(
    client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount
) -> None:
    tenant = await taleez_tenant(client, lucca, taleez)
    path = f"/api/v1/tenants/{tenant.slug}/taleez/imports"
    answers = await asyncio.gather(
        *(client.post(path, json={"candidate_id": 4413}, headers=tenant.auth) for _ in range(3))
    )
    assert [answer.status_code for answer in answers] == [202, 202, 202]
    assert len({answer.json()["run_id"] for answer in answers}) == 3
    await drain_queue()
    assert len(new_users(lucca)) == 1
    runs = [await run_of(client, tenant, answer.json()["run_id"]) for answer in answers]
    assert sorted((run["counts"]["created"], run["counts"]["linked"]) for run in runs) == [(0, 1), (0, 1), (1, 0)]
    later = await import_and_drain(client, tenant, {"candidate_id": 4413})
    assert later["counts"]["linked"] == 1 and len(new_users(lucca)) == 1


@pytest.mark.parametrize(
    ("faults", "candidate_id", "status", "said"),
    [
        ([], 9999, "failed", "no candidate 9999"),
        ([{"status": 401, "count": 1}], 4411, "failed", "refused the credentials"),
        ([{"status": 503, "count": 3, "retry_after": 1}], 4411, "succeeded", None),
    ],
)
async def test_taleez_failures_end_as_the_contract_says(
    client: httpx.AsyncClient,
    lucca: LuccaAccount,
    taleez: PartnerAccount,
    faults: list[dict[str, Any]],
    candidate_id: int,
    status: str,
    said: str | None,
) -> None:
    tenant = await taleez_tenant(client, lucca, taleez)
    if faults:
        taleez.add_faults(*faults)
    run = await import_and_drain(client, tenant, {"candidate_id": candidate_id})
    assert run["status"] == status
    events = await events_of(client, tenant, run["id"])
    if said is None:
        assert len(new_users(lucca)) == 1
        return
    assert new_users(lucca) == []
    assert said in (run["error"] or "")
    assert any(event["action"] == "fail" and said in event["message"] for event in events)
    assert len(taleez.calls()["items"]) == 1  # final: not retried


async def test_lucca_429_while_importing_still_creates_once(
    client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount
) -> None:
    tenant = await taleez_tenant(client, lucca, taleez)
    lucca.add_faults({"status": 429, "count": 3, "retry_after": 1, "match": "POST /api/v3/users"})
    run = await import_and_drain(client, tenant, {"candidate_id": 4411})
    assert run["status"] == "succeeded" and len(new_users(lucca)) == 1


async def test_a_create_whose_answer_was_lost_stays_the_runs_when_the_candidate_changes_meanwhile(
    client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lucca creates the user but its answer is lost; before the run's next attempt, Inès's e-mail changes in
    Taleez. What the run created is the run's: counted created, and no second employee (ines.dupre2@)."""
    tenant = await taleez_tenant(client, lucca, taleez)
    lucca.add_faults({"match": "POST /api/v3/users", "status": 503, "after": True})
    send = LuccaClient.create_user

    async def edited_meanwhile(self: LuccaClient, body: Mapping[str, Any]) -> LuccaUser:
        try:
            return await send(self, body)
        finally:
            change_taleez_candidate(taleez, 4411, mail="ines.dupre@newmail.fr")

    monkeypatch.setattr(LuccaClient, "create_user", edited_meanwhile)
    run = await import_and_drain(client, tenant, {"candidate_id": 4411})
    assert (run["status"], run["counts"]["created"], run["counts"]["linked"]) == ("succeeded", 1, 0)
    [ines] = new_users(lucca)
    assert (ines["login"], ines["personalEmail"]) == ("ines.dupre@acme.fr", "ines@perso.fr")


async def test_missing_choices_are_422_naming_them_with_nothing_queued(
    client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount
) -> None:
    tenant = await taleez_tenant(
        client, lucca, taleez, default_establishment_id=None, default_role_principal_id=None,
        professional_email_template=None,
    )  # fmt: skip
    path = f"/api/v1/tenants/{tenant.slug}/taleez/imports"
    no_mail = {**INES, "mail": None}
    answer = await client.post(path, json={"candidate": no_mail, "department_id": 10}, headers=tenant.auth)
    assert answer.status_code == 422
    for named in ("establishment_id", "role_principal_id", "candidate.mail"):
        assert named in answer.text
    both = await client.post(path, json={"candidate": INES, "candidate_id": 4411}, headers=tenant.auth)
    assert both.status_code == 422
    neither = await client.post(path, json={"establishment_id": 1}, headers=tenant.auth)
    assert neither.status_code == 422
    runs = await client.get(f"/api/v1/tenants/{tenant.slug}/runs", headers=tenant.auth)
    assert runs.json()["items"] == []


async def test_connector_missing_or_disabled_is_409_and_tenants_are_isolated(
    client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount
) -> None:
    bare = await create_tenant(client, "bare")
    path = "/api/v1/tenants/{}/taleez/imports"
    missing = await client.post(path.format("bare"), json={"candidate_id": 4411}, headers=bare.auth)
    assert missing.status_code == 409
    tenant = await taleez_tenant(client, lucca, taleez, enabled=False)
    disabled = await client.post(path.format(tenant.slug), json={"candidate_id": 4411}, headers=tenant.auth)
    assert disabled.status_code == 409
    other = await client.post(path.format(tenant.slug), json={"candidate_id": 4411}, headers=bare.auth)
    assert other.status_code == 404
    assert (await client.post(path.format(tenant.slug), json={"candidate_id": 1}, headers=ADMIN)).status_code == 409


def replace_lucca_users(lucca: LuccaAccount, *users: dict[str, Any]) -> None:
    """Rebuild the sandbox account (as after a restart or a restore) with the demo seed plus `users`."""
    seed = demo_seed_payload()
    seed["users"] += list(users)
    lucca.server.control.put(f"/lucca/accounts/{lucca.name}", json=seed).raise_for_status()


async def test_a_link_to_a_user_who_is_now_someone_else_is_ignored_with_a_warning(
    client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount
) -> None:
    tenant = await taleez_tenant(client, lucca, taleez)
    first = await import_and_drain(client, tenant, {"candidate_id": 4411})
    [ines] = new_users(lucca)
    assert first["counts"]["created"] == 1 and ines["id"] == 103
    # The account comes back with user 103 holding someone else.
    marc = demo_user(103, "Marc", "Petit", 10, personalEmail="marc@perso.fr", dtContractStart="2026-01-05")
    replace_lucca_users(lucca, marc)

    second = await import_and_drain(client, tenant, {"candidate_id": 4411})
    assert second["status"] == "succeeded" and second["counts"]["created"] == 1 and second["counts"]["linked"] == 0
    warnings = [
        event["message"] for event in await events_of(client, tenant, second["id"]) if event["level"] == "warning"
    ]
    assert len(warnings) == 1 and "Lucca user 103" in warnings[0] and "Marc Petit" in warnings[0]
    assert "ignored" in warnings[0] and warnings[0].endswith(".")
    users = {user["id"]: user for user in new_users(lucca)}
    assert users[103]["firstName"] == "Marc"  # untouched
    assert users[104]["firstName"] == "Inès" and users[104]["personalEmail"] == "ines@perso.fr"

    # The link now names the new user: the next import links to it, without a warning.
    third = await import_and_drain(client, tenant, {"candidate_id": 4411})
    assert third["counts"]["linked"] == 1 and len(new_users(lucca)) == 2
    events = await events_of(client, tenant, third["id"])
    assert [event["level"] for event in events] == ["info"] and "user 104" in events[-1]["message"]


@pytest.mark.parametrize(
    "still_her",
    [
        {"firstName": "INES", "lastName": "dupre", "personalEmail": "other@perso.fr"},  # same names, no accents
        {"firstName": "Inès", "lastName": "Martin", "personalEmail": "INES@perso.fr"},  # married name, same email
    ],
)
async def test_a_link_to_the_same_person_is_kept(
    client: httpx.AsyncClient, lucca: LuccaAccount, taleez: PartnerAccount, still_her: dict[str, str]
) -> None:
    tenant = await taleez_tenant(client, lucca, taleez)
    await import_and_drain(client, tenant, {"candidate_id": 4411})
    her = demo_user(103, still_her["firstName"], still_her["lastName"], 10, personalEmail=still_her["personalEmail"])
    replace_lucca_users(lucca, {**her, "login": "ines.dupre@acme.fr", "mail": "ines.dupre@acme.fr"})
    again = await import_and_drain(client, tenant, {"candidate_id": 4411})
    assert again["counts"]["linked"] == 1 and [user["id"] for user in new_users(lucca)] == [103]
    events = await events_of(client, tenant, again["id"])
    assert [event["level"] for event in events] == ["info"]
