"""The hire's rules: establishments, managers, outages and retries (contract sections 6 and 7)."""

import logging
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from app.sandbox.demo import demo_seed_payload, demo_user
from tests.e2e.conftest import WEBHOOK, HiringTenant, drain_queue, events_of, run_of
from tests.factories import add_softgarden, create_tenant, hire_body
from tests.sandbox_server import LuccaAccount, SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")


def created(lucca: LuccaAccount) -> list[dict[str, Any]]:
    return [user for user in lucca.users() if user["id"] not in (100, 101, 102)]


async def hire_and_drain(client: httpx.AsyncClient, webhook_auth: dict[str, str], **changes: Any) -> str:
    answer = await client.post(WEBHOOK, json=hire_body(**changes), headers=webhook_auth)
    assert answer.status_code == 202, answer.text
    await drain_queue()
    run_id: str = answer.json()["run_id"]
    return run_id


async def test_lucca_429_then_500_still_creates_once(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant()
    lucca.add_faults(
        {"status": 429, "count": 4, "retry_after": 1},
        {"status": 500, "count": 4},
        {"status": 503, "match": "POST /api/v3/users", "count": 2, "after": True},
    )
    run_id = await hire_and_drain(client, tenant.webhook_auth)
    run = await run_of(client, tenant, run_id)
    assert run["status"] == "succeeded" and run["counts"]["created"] == 1
    assert len(created(lucca)) == 1
    statuses = lucca.calls()["count_by_status"]
    assert statuses.get("429") == 4 and statuses.get("500") == 4


async def test_inactive_head_is_left_out_with_a_warning(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant(default_department_id=11)
    run_id = await hire_and_drain(client, tenant.webhook_auth)
    [user] = created(lucca)
    assert user.get("managerId") is None and user["departmentId"] == 11
    warnings = [event for event in await events_of(client, tenant, run_id) if event["level"] == "warning"]
    assert len(warnings) == 1 and "Paul Durand" in warnings[0]["message"]


async def test_no_head_means_no_manager(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant(default_department_id=12)
    run_id = await hire_and_drain(client, tenant.webhook_auth)
    assert (await run_of(client, tenant, run_id))["status"] == "succeeded"
    assert created(lucca)[0].get("managerId") is None


async def test_unknown_company_fails_naming_known_establishments_and_retry_after_fix_succeeds(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant()
    run_id = await hire_and_drain(client, tenant.webhook_auth, company="Acme Roma")
    run = await run_of(client, tenant, run_id)
    assert run["status"] == "failed" and run["counts"]["failed"] == 1
    [failure] = [event for event in await events_of(client, tenant, run_id) if event["action"] == "fail"]
    assert "'Acme Roma'" in failure["message"]
    assert "Acme Paris" in failure["message"] and "Acme Berlin" in failure["message"]
    assert "Acme Lyon" not in failure["message"]  # archived
    assert created(lucca) == []

    settings = {"professional_email_template": "{first_name}.{last_name}@acme.fr", "default_department_id": 10,
                "default_role_principal_id": 55, "establishment_aliases": {"Acme Roma": 1}}  # fmt: skip
    path = f"/api/v1/tenants/{tenant.slug}/connectors/softgarden"
    assert (await client.put(path, json={"settings": settings}, headers=tenant.auth)).status_code == 200
    retry = await client.post(f"/api/v1/tenants/{tenant.slug}/runs/{run_id}/retry", headers=tenant.auth)
    assert retry.status_code == 202
    await drain_queue()
    retried = await run_of(client, tenant, retry.json()["run_id"])
    assert retried["trigger"] == "retry" and retried["status"] == "succeeded"
    assert [user["legalEntityId"] for user in created(lucca)] == [1]
    again = await client.post(f"/api/v1/tenants/{tenant.slug}/runs/{retry.json()['run_id']}/retry", headers=tenant.auth)
    assert again.status_code == 409


async def test_names_match_ignoring_case_accents_and_punctuation(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant()
    await hire_and_drain(client, tenant.webhook_auth, company="  ACME  bérlin. ")
    assert [user["legalEntityId"] for user in created(lucca)] == [2]


NO_EMAIL_SAME_DAY = {"email": None, "startDate": "2027-01-04"}


async def test_names_in_any_script_without_personal_email_starting_the_same_day_are_each_one_employee(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    """Compared letter by letter in their own script (王伟 is not 李娜), spelled in ASCII for the address."""
    tenant = await hiring_tenant()
    people = {("伟", "王"): "wei.wang@acme.fr", ("娜", "李"): "na.li@acme.fr", ("Иван", "Петров"): "ivan.petrov@acme.fr",
              ("Σοφία", "Παππά"): "sofia.pappa@acme.fr", ("محمد", "علي"): "mhmd.ly@acme.fr"}  # fmt: skip
    run_ids = []
    for number, (first, last) in enumerate(people):
        names = {"applicationId": f"app-{number}", "firstName": first, "lastName": last}
        run_ids.append(await hire_and_drain(client, tenant.webhook_auth, **names, **NO_EMAIL_SAME_DAY))
    runs = [await run_of(client, tenant, run_id) for run_id in run_ids]
    assert [(run["status"], run["counts"]["created"]) for run in runs] == [("succeeded", 1)] * len(people)
    assert {(user["firstName"], user["lastName"]): user["login"] for user in created(lucca)} == people
    # The same person again (another application, the names in capitals): linked, not created.
    names = {"applicationId": "app-again", "firstName": "ИВАН", "lastName": "ПЕТРОВ"}
    again = await hire_and_drain(client, tenant.webhook_auth, **names, **NO_EMAIL_SAME_DAY)
    assert (await run_of(client, tenant, again))["counts"]["linked"] == 1 and len(created(lucca)) == len(people)
    # Searching runs by person keeps every script's letters too, ignoring case and accents.
    found = await client.get(f"/api/v1/tenants/{tenant.slug}/runs", params={"subject": "иван петров"},
                             headers=tenant.auth)  # fmt: skip
    assert sorted(run["id"] for run in found.json()["items"]) == sorted([run_ids[2], again])


async def test_an_alias_in_any_script_matches_its_own_company_only(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant(establishment_aliases={"東京": 1})
    tokyo = await hire_and_drain(client, tenant.webhook_auth, applicationId="tokyo", company="東京")
    osaka = await hire_and_drain(client, tenant.webhook_auth, applicationId="osaka", company="大阪",
                                 email="kenji@perso.example")  # fmt: skip
    assert (await run_of(client, tenant, tokyo))["status"] == "succeeded"
    assert [user["legalEntityId"] for user in created(lucca)] == [1]
    failed = await run_of(client, tenant, osaka)
    assert failed["status"] == "failed" and "No establishment matches company '大阪'" in failed["error"]


async def test_a_name_of_only_symbols_fails_in_plain_words_before_any_lucca_call(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant()
    run_id = await hire_and_drain(client, tenant.webhook_auth, firstName="☺", lastName="★ ★", email=None)
    run = await run_of(client, tenant, run_id)
    assert (run["status"], run["counts"]["failed"]) == ("failed", 1)
    assert run["error"] == (
        "The candidate's first name '☺' has no letter or digit, so no address can be made from it and no one can be "
        "matched by it. Nothing was sent to Lucca."
    )
    assert lucca.calls()["items"] == [] and created(lucca) == []


async def test_a_local_part_too_short_to_narrow_the_lookup_is_looked_up_whole(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    """`login=like,li` would read most of the directory: the namesakes of `li@acme.fr` are asked for by the whole
    address, and Lucca's "in use" finds the suffixes' holders (the third Li is refused li2@, then takes li3@)."""
    tenant = await hiring_tenant(professional_email_template="{first_name}@acme.fr")
    for number, last in enumerate(("Wang", "Zhang", "Chen")):
        person = {"applicationId": f"li-{number}", "firstName": "Li", "lastName": last, "email": f"li.{last}@perso.cn"}
        run_id = await hire_and_drain(client, tenant.webhook_auth, **person)
        assert (await run_of(client, tenant, run_id))["counts"]["created"] == 1
    assert [user["login"] for user in created(lucca)] == ["li@acme.fr", "li2@acme.fr", "li3@acme.fr"]
    queries = [parse_qs(call["query"]) for call in lucca.calls()["items"] if call["path"] == "/api/v3/users"]
    likes = [value for query in queries for values in query.values() for value in values if value.startswith("like,")]
    assert likes and all(len(value) >= len("like,li@acme.fr") for value in likes), likes


async def test_a_personal_email_that_is_not_an_address_finds_no_one(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    """Someone in Lucca also has `n/a` as personal e-mail: not the same person; the names and start date decide."""
    other = demo_user(200, "Marc", "Petit", 10, personalEmail="N/A", dtContractStart="2026-01-05")
    account = sandbox.new_lucca_account(users=[*demo_seed_payload()["users"], other])
    tenant = await add_softgarden(
        client, await create_tenant(client, "acme", base_url=account.base_url, api_key=account.api_key)
    )
    run_id = await hire_and_drain(client, tenant.webhook_auth, email="n/a")
    assert (await run_of(client, tenant, run_id))["counts"]["created"] == 1
    assert [user["login"] for user in created(account) if user["id"] != 200] == ["zoe.muller@acme.fr"]
    users_calls = [call for call in account.calls()["items"] if call["path"] == "/api/v3/users"]
    filters = {name for call in users_calls for name in parse_qs(call["query"])}
    assert "dtContractStart" in filters and "personalEmail" not in filters


async def test_archived_establishment_never_matches(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant()
    run_id = await hire_and_drain(client, tenant.webhook_auth, company="Acme Lyon")
    assert (await run_of(client, tenant, run_id))["status"] == "failed"


async def test_two_matching_establishments_fail_naming_both(client: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    establishments = [*demo_seed_payload()["establishments"], {"id": 4, "name": "ACME Berlin", "legalUnitId": 1}]
    account = sandbox.new_lucca_account(establishments=establishments)
    handle = await add_softgarden(
        client, await create_tenant(client, "twins", base_url=account.base_url, api_key=account.api_key)
    )
    run_id = await hire_and_drain(client, handle.webhook_auth)
    [failure] = [event for event in await events_of(client, handle, run_id) if event["action"] == "fail"]
    assert "Acme Berlin (2)" in failure["message"] and "ACME Berlin (4)" in failure["message"]


async def test_establishment_outside_the_configuration_is_skipped(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant(establishment_ids=[1])
    run_id = await hire_and_drain(client, tenant.webhook_auth)
    run = await run_of(client, tenant, run_id)
    assert run["status"] == "succeeded" and run["counts"]["skipped"] == 1
    assert created(lucca) == []


async def test_missing_company_uses_the_default_establishment_and_arrival_day(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant(default_establishment_id=1)
    await hire_and_drain(client, tenant.webhook_auth, company=None, startDate=None)
    [user] = created(lucca)
    assert user["legalEntityId"] == 1
    assert user["dtContractStart"].endswith("T00:00:00")


async def test_no_secret_reaches_logs_or_events(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = await hiring_tenant()
    lucca.add_faults({"status": 503, "count": 2}, {"status": 401, "match": "POST /api/v3/users"})
    run_id = await hire_and_drain(client, tenant.webhook_auth)
    events = await events_of(client, tenant, run_id)
    assert (await run_of(client, tenant, run_id))["status"] == "failed"
    text = caplog.text + str(events)
    assert tenant.webhook_token and tenant.key
    for secret in (lucca.api_key, tenant.webhook_token, tenant.key, "test-operator-token"):
        assert secret not in text


async def test_a_connector_disabled_after_delivery_runs_no_job(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant()
    answer = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    settings = {"professional_email_template": "{first_name}@acme.fr", "default_department_id": 10,
                "default_role_principal_id": 55}  # fmt: skip
    path = f"/api/v1/tenants/{tenant.slug}/connectors/softgarden"
    await client.put(path, json={"enabled": False, "settings": settings}, headers=tenant.auth)
    await drain_queue()
    run = await run_of(client, tenant, answer.json()["run_id"])
    assert run["status"] == "failed" and "disabled" in (run["error"] or "")
    assert [event["action"] for event in await events_of(client, tenant, run["id"])] == ["fail"]
    assert created(lucca) == []
    assert lucca.calls()["items"] == []
