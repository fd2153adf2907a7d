"""Lucca's OAuth API beside the key (contract section 4): tenants with OAuth alone, shared tokens across processes,
renewal, scopes in plain words, and what needs the key refused; the sandbox over HTTP, real arq worker processes."""

import asyncio
from dataclasses import replace

import httpx
import pytest

from app.clients.lucca_directory import DirectoryDepartment, DirectoryPerson, DirectoryReader
from app.clients.lucca_v5 import DIRECTORY_SCOPES, WEBHOOK_SCOPES, V5Directory
from app.config import Settings
from app.models import Tenant
from app.sandbox.demo import DEMO_OAUTH_CLIENT_ID, DEMO_OAUTH_CLIENT_SECRET, DEMO_OAUTH_SCOPES, directory_seed_payload
from app.services.context import Services
from tests.e2e.test_cards_imports import listing, start_import
from tests.e2e.test_recovery import wait_for_run, worker_process
from tests.factories import SOFTGARDEN_SETTINGS, TenantHandle, create_tenant
from tests.sandbox_server import CardsAccount, LuccaAccount, SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")
KEY_LOC = ["body", "lucca", "api_key"]


def oauth_of(lucca: LuccaAccount, client_id: str = DEMO_OAUTH_CLIENT_ID) -> dict[str, str]:
    secret = DEMO_OAUTH_CLIENT_SECRET if client_id == DEMO_OAUTH_CLIENT_ID else f"{client_id}-secret"
    return {"client_id": client_id, "client_secret": secret, "token_url": lucca.token_url}


async def oauth_tenant(
    client: httpx.AsyncClient, lucca: LuccaAccount, cards: CardsAccount | None, slug: str = "acme", **oauth: str
) -> TenantHandle:
    """A tenant with OAuth alone (no API key), with a Cards connector when `cards` is given."""
    tenant = await create_tenant(
        client, slug, base_url=lucca.base_url, api_key=None, oauth={**oauth_of(lucca), **oauth}
    )
    if cards is not None:
        body = {"enabled": True, "settings": cards.connector_settings()}
        answer = await client.put(f"/api/v1/tenants/{slug}/connectors/cards", json=body, headers=tenant.auth)
        assert answer.status_code == 200, answer.text
    return tenant


def surface_calls(lucca: LuccaAccount) -> dict[str, int]:
    return {surface: lucca.call_counts()[surface] for surface in ("v3", "v4", "v5", "token")}


def key_refusal(answer: httpx.Response) -> str:
    """The message of a 422 that names `lucca.api_key`."""
    assert answer.status_code == 422, answer.text
    [error] = [error for error in answer.json()["detail"] if error["loc"] == KEY_LOC]
    message: str = error["msg"]
    return message


async def test_two_worker_processes_make_one_token_request_between_them(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    lucca = sandbox.new_lucca_account()
    # Two tenants on one Lucca account and OAuth client (two Cards spaces): one token serves every process.
    tenants = [await oauth_tenant(client, lucca, sandbox.new_cards_account(), slug) for slug in ("acme", "acme-fr")]
    # Token requests take a second: the second worker asks while the first one's request is in flight.
    lucca.add_faults({"match": "POST /connect/token", "delay_seconds": 1.0, "count": 5})
    runs = [await start_import(client, tenant, "users", {"all": True}) for tenant in tenants]
    with worker_process(), worker_process():
        done = [await wait_for_run(client, tenant, run, seconds=60) for tenant, run in zip(tenants, runs, strict=True)]
    assert [run["status"] for run in done] == ["succeeded", "succeeded"], done
    # Claire Martin (in the demo space already) and Jean Dupont, in each space.
    assert [(run["counts"]["linked"], run["counts"]["created"]) for run in done] == [(1, 1), (1, 1)]
    # The API process reads with the same token: still one request.
    assert {row["lucca_id"] for row in await listing(client, tenants[0], "users")} == {100, 102}
    calls = surface_calls(lucca)
    assert calls["token"] == 1
    assert calls["v3"] == calls["v4"] == 0
    # Departments and employees: per import, for the listing, and per tenant's first full sync of the directory
    # (enabling Cards starts it).
    assert calls["v5"] == 10


async def test_an_expired_token_is_renewed_once(
    client: httpx.AsyncClient, sandbox: SandboxServer, lucca: LuccaAccount
) -> None:
    tenant = await oauth_tenant(client, lucca, sandbox.new_cards_account())
    assert len(await listing(client, tenant, "users")) == 2
    lucca.control("POST", "/oauth/expire-tokens")
    assert len(await listing(client, tenant, "users")) == 2
    assert surface_calls(lucca) == {"v3": 0, "v4": 0, "v5": 5, "token": 2}  # one 401, retried once
    refused = [call for call in lucca.calls()["items"] if call["status"] == 401]
    assert len(refused) == 1

    # A short-lived token is renewed before it expires, without a 401.
    lucca.control("PATCH", "/settings", json={"token_lifetime_seconds": 2})
    lucca.control("POST", "/oauth/expire-tokens")
    assert len(await listing(client, tenant, "users")) == 2  # 401, then a token that lives 2 s
    await asyncio.sleep(1.5)  # past half its life
    assert len(await listing(client, tenant, "users")) == 2
    assert surface_calls(lucca)["token"] == 4
    assert len([call for call in lucca.calls()["items"] if call["status"] == 401]) == 2


async def test_a_missing_scope_fails_in_plain_words_naming_it(
    client: httpx.AsyncClient, sandbox: SandboxServer, lucca: LuccaAccount
) -> None:
    scopes = [scope for scope in DEMO_OAUTH_SCOPES if scope != "job-positions.readonly"]
    lucca.control("PUT", "/oauth-clients/narrow", json={"client_secret": "narrow-secret", "scopes": scopes})
    tenant = await oauth_tenant(client, lucca, sandbox.new_cards_account(), **oauth_of(lucca, "narrow"))
    answer = await client.get(f"/api/v1/tenants/{tenant.slug}/cards/users", headers=tenant.auth)
    assert answer.status_code == 502, answer.text
    assert answer.json()["detail"] == (
        "Lucca refused OAuth client 'narrow' the scope job-positions.readonly (The client may not have the requested "
        "scope): give the client the scope job-positions.readonly in Lucca's integration keys."
    )
    assert surface_calls(lucca)["v5"] == 0

    check = await client.post(f"/api/v1/tenants/{tenant.slug}/connectors/cards/check", headers=tenant.auth)
    [lucca_check] = [item for item in check.json()["checks"] if item["partner"] == "lucca"]
    assert not lucca_check["ok"] and "the scope job-positions.readonly" in lucca_check["message"]


async def test_the_check_of_a_tenant_with_oauth_alone_is_one_v5_call(
    client: httpx.AsyncClient, sandbox: SandboxServer, lucca: LuccaAccount
) -> None:
    tenant = await oauth_tenant(client, lucca, sandbox.new_cards_account())
    check = await client.post(f"/api/v1/tenants/{tenant.slug}/connectors/cards/check", headers=tenant.auth)
    [lucca_check] = [item for item in check.json()["checks"] if item["partner"] == "lucca"]
    assert lucca_check["ok"], lucca_check
    assert "accepted the OAuth client 'demo-oauth-client'" in lucca_check["message"]
    assert surface_calls(lucca) == {"v3": 0, "v4": 0, "v5": 1, "token": 1}


async def test_a_tenant_without_a_key_cannot_enable_what_needs_it_and_lists_cards_users_through_oauth(
    client: httpx.AsyncClient, sandbox: SandboxServer, lucca: LuccaAccount
) -> None:
    cards = sandbox.new_cards_account()
    tenant = await oauth_tenant(client, lucca, cards)
    connectors = f"/api/v1/tenants/{tenant.slug}/connectors"

    softgarden = await client.put(
        f"{connectors}/softgarden", json={"enabled": True, "settings": SOFTGARDEN_SETTINGS}, headers=tenant.auth
    )
    assert "creates employees in Lucca" in key_refusal(softgarden)
    taleez_settings = {"api_base_url": f"{sandbox.url}/taleez/none", "api_secret": "s"}
    taleez = await client.put(
        f"{connectors}/taleez", json={"enabled": True, "settings": taleez_settings}, headers=tenant.auth
    )
    key_refusal(taleez)
    stats = {"settings": {"stats_sync": {"enabled": True}}}
    assert "statistics push" in key_refusal(await client.patch(f"{connectors}/cards", json=stats, headers=tenant.auth))
    push = await client.post(f"/api/v1/tenants/{tenant.slug}/cards/stats/sync", headers=tenant.auth)
    key_refusal(push)
    imported = await client.post(
        f"/api/v1/tenants/{tenant.slug}/taleez/imports", json={"candidate_id": 4411}, headers=tenant.auth
    )
    key_refusal(imported)
    # Saved disabled, a Taleez connector waits for the key.
    disabled = await client.put(
        f"{connectors}/taleez", json={"enabled": False, "settings": taleez_settings}, headers=tenant.auth
    )
    assert disabled.status_code == 200, disabled.text
    assert surface_calls(lucca) == {"v3": 0, "v4": 0, "v5": 0, "token": 0}

    rows = await listing(client, tenant, "users")
    assert rows == [
        {"lucca_id": 100, "first_name": "Claire", "last_name": "Martin", "email": "claire.martin@acme.fr",
         "department": "Engineering", "cards_user_id": None, "status": "not_imported"},
        {"lucca_id": 102, "first_name": "Jean", "last_name": "Dupont", "email": "jean.dupont@acme.fr",
         "department": "Engineering", "cards_user_id": None, "status": "not_imported"},
    ]  # fmt: skip
    assert surface_calls(lucca) == {"v3": 0, "v4": 0, "v5": 2, "token": 1}

    # With the key given, the statistics push may be enabled; the key cannot be removed while it is.
    tenant_path = f"/api/v1/tenants/{tenant.slug}"
    admin = {"Authorization": "Bearer test-operator-token"}
    keyed = await client.patch(tenant_path, json={"lucca": {"api_key": lucca.api_key}}, headers=admin)
    assert keyed.json()["lucca"]["api_key_set"] is True
    assert (await client.patch(f"{connectors}/cards", json=stats, headers=tenant.auth)).status_code == 200
    removed = await client.patch(tenant_path, json={"lucca": {"api_key": None}}, headers=admin)
    assert "statistics push" in key_refusal(removed)
    assert (await client.get(tenant_path, headers=admin)).json()["lucca"]["api_key_set"] is True


async def read_all(reader: DirectoryReader) -> tuple[dict[int, DirectoryPerson], list[DirectoryDepartment]]:
    people = {person.lucca_id: person async for page in reader.employee_pages() for person in page}
    return people, sorted(await reader.departments(), key=lambda department: department.lucca_id)


async def test_both_apis_read_the_same_directory(sandbox: SandboxServer, migrated_database: str) -> None:
    lucca = sandbox.new_lucca_account(**directory_seed_payload(247))  # 250 people: three v5 pages
    services = Services.start(Settings())
    try:
        tenant = Tenant(
            lucca_base_url=lucca.base_url,
            lucca_api_key_encrypted=services.box.encrypt(lucca.api_key),
            lucca_oauth_encrypted=services.box.encrypt_json(oauth_of(lucca)),
            rate_limit_requests=50,
            rate_limit_per_seconds=60,
        )
        legacy = services.directory_reader(tenant)
        assert legacy.api == "legacy"
        v5 = V5Directory(services.lucca_v5(tenant))
        legacy_people, legacy_departments = await read_all(legacy)
        v5_people, v5_departments = await read_all(v5)
    finally:
        await services.close()
    assert len(v5_people) == 250
    assert v5_departments == legacy_departments
    # The same people, field by field; only the legacy API reads `e_` fields.
    assert {key: replace(person, extended={}) for key, person in legacy_people.items()} == v5_people
    assert surface_calls(lucca) == {"v3": 1, "v4": 1, "v5": 4, "token": 1}  # 3 pages of employees, 1 of departments


async def test_webhook_endpoints_and_sunset_notices_through_the_v5_client(
    sandbox: SandboxServer, lucca: LuccaAccount, migrated_database: str
) -> None:
    lucca.control("PATCH", "/settings", json={"sunset": "Sat, 01 Jan 2028 00:00:00 GMT"})
    services = Services.start(Settings())
    try:
        tenant = Tenant(
            lucca_base_url=lucca.base_url,
            lucca_api_key_encrypted=None,
            lucca_oauth_encrypted=services.box.encrypt_json(oauth_of(lucca)),
            rate_limit_requests=50,
            rate_limit_per_seconds=60,
        )
        v5 = services.lucca_v5(tenant, scopes=(*DIRECTORY_SCOPES, *WEBHOOK_SCOPES))
        # Nobody answers the activation echo there: Lucca keeps the endpoint inactive.
        created = await v5.create_webhook_endpoint("lucca-connectors", "http://127.0.0.1:9/hook", ["employee.*"])
        found = await v5.get_webhook_endpoint(created.id)
        reader = services.directory_reader(tenant)
        assert len(await reader.departments()) == 3
    finally:
        await services.close()
    assert (created.status, bool(created.secret)) == ("inactive", True)
    assert (found.id, found.status, found.url, found.secret) == (
        created.id,
        "inactive",
        "http://127.0.0.1:9/hook",
        None,
    )
    sunset = "on Sat, 01 Jan 2028 00:00:00 GMT (Sunset header)."
    assert v5.notices == [
        f"Lucca will retire /lucca-api/webhook-endpoints {sunset}",
        f"Lucca will retire /lucca-api/webhook-endpoints/{created.id} {sunset}",
    ]
    assert reader.notices == [f"Lucca will retire /lucca-api/departments {sunset}"]


async def test_token_requests_do_not_count_and_both_apis_share_one_window(
    client: httpx.AsyncClient, sandbox: SandboxServer, lucca: LuccaAccount
) -> None:
    tenant = await oauth_tenant(client, lucca, sandbox.new_cards_account())
    admin = {"Authorization": "Bearer test-operator-token"}
    limited = {"lucca": {"rate_limit": {"requests": 2, "per_seconds": 60}}}
    assert (await client.patch(f"/api/v1/tenants/{tenant.slug}", json=limited, headers=admin)).status_code == 200
    # Two v5 calls and a token request: within 2 calls a minute, since the token request is not Lucca's to count.
    assert len(await listing(client, tenant, "users")) == 2
    assert surface_calls(lucca) == {"v3": 0, "v4": 0, "v5": 2, "token": 1}
    # With the key, the listing reads v3: its first call proves the key and joins the account's window, which the
    # v5 calls filled, so the next one waits longer than a listing may.
    keyed = {"lucca": {"api_key": lucca.api_key}}
    assert (await client.patch(f"/api/v1/tenants/{tenant.slug}", json=keyed, headers=admin)).status_code == 200
    assert len(await listing(client, tenant, "users")) == 2
    waiting = await client.get(f"/api/v1/tenants/{tenant.slug}/cards/users", headers=tenant.auth)
    assert waiting.status_code == 503, waiting.text
    assert "rate limit (2 calls per 60 s)" in waiting.json()["detail"]
    assert surface_calls(lucca) == {"v3": 1, "v4": 0, "v5": 2, "token": 1}
