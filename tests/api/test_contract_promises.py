"""What the API promises about its input and its documents (contract section 3): every answer over the real server."""

from typing import Any

import httpx
import pytest

from app.schemas.softgarden import SoftgardenHire
from tests.factories import ADMIN, SOFTGARDEN_SETTINGS, TenantHandle, add_softgarden, create_tenant, hire_body

pytestmark = pytest.mark.usefixtures("clean_state")
WEBHOOK = "/integrations/webhooks/softgarden/candidate-hired"
TALEEZ = {"api_base_url": "https://api.taleez.com/0", "api_secret": "taleez-secret", "default_department_id": 10}


def locs(answer: httpx.Response) -> list[list[Any]]:
    assert answer.status_code == 422, answer.text
    errors = answer.json()["detail"]
    for error in errors:
        assert not error["msg"].startswith(("Value error", "Assertion failed")), error
    return [error["loc"] for error in errors]


@pytest.fixture
async def tenant(client: httpx.AsyncClient) -> TenantHandle:
    return await add_softgarden(client, await create_tenant(client, "acme"))


async def test_unknown_fields_are_422_naming_them(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    new = {"slug": "new", "name": "New", "lucca": {"base_url": "https://n.ilucca.net", "api_key": "k"}}
    connector = f"/api/v1/tenants/{tenant.slug}/connectors/softgarden"
    cases = [
        ("POST", "/api/v1/tenants", {**new, "nmae": "x"}, ["body", "nmae"]),
        ("POST", "/api/v1/tenants", {**new, "lucca": {**new["lucca"], "apikey": "k"}}, ["body", "lucca", "apikey"]),  # type: ignore[dict-item]
        ("PATCH", "/api/v1/tenants/acme", {"lucca": {"rate_limit": {"request": 3}}}, ["body", "lucca", "rate_limit", "request"]),
        ("PATCH", "/api/v1/tenants/acme", {"slug": "acme"}, ["body", "slug"]),
        ("PUT", connector, {"enabeld": False, "settings": SOFTGARDEN_SETTINGS}, ["body", "enabeld"]),
        ("PATCH", connector, {"enabeld": False}, ["body", "enabeld"]),
        ("PATCH", connector, {"settings": {"default_departement_id": 3}}, ["body", "settings", "default_departement_id"]),
        ("POST", "/api/v1/tenants/acme/taleez/imports", {"candidate_id": 4412, "departement_id": 12}, ["body", "departement_id"]),
        ("POST", "/api/v1/tenants/acme/taleez/imports", {"candidate": {"id": 1, "firstName": "A", "lastName": "B", "email": "a@b.c"}},
         ["body", "candidate", "email"]),
    ]  # fmt: skip
    for method, path, body, loc in cases:
        answer = await client.request(method, path, json=body, headers=ADMIN)
        assert locs(answer) == [loc], (method, path, answer.text)
    read = await client.get(connector, headers=ADMIN)
    assert read.json()["enabled"] is True


async def test_a_422_points_at_each_field_once_in_plain_words(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    path = f"/api/v1/tenants/{tenant.slug}/connectors/softgarden"
    settings = {**SOFTGARDEN_SETTINGS, "default_department_id": "10", "professional_email_template": "{first}@acme.fr"}
    answer = await client.put(path, json={"settings": settings}, headers=tenant.auth)
    assert sorted(locs(answer)) == [["body", "settings", "default_department_id"],
                                    ["body", "settings", "professional_email_template"]]  # fmt: skip
    assert "unknown placeholder {first}" in answer.text
    assert locs(await client.get("/api/v1/tenants/Not_A_Slug", headers=ADMIN)) == [["path", "slug"]]


async def test_webhook_errors_name_fields_as_the_sender_spells_them(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    cases = [
        (hire_body(firstName=None), ["body", "firstName"]),
        (hire_body(startDate="01/12/2026"), ["body", "startDate"]),
        (hire_body(address={"postalcode": 10115}), ["body", "address", "postalCode"]),
        (hire_body(candidateId=[1]), ["body", "candidateId"]),
    ]
    for body, loc in cases:
        assert locs(await client.post(WEBHOOK, json=body, headers=tenant.webhook_auth)) == [loc]


def test_runs_stored_with_lower_case_keys_still_validate() -> None:
    stored = {"applicationid": "a-1", "candidateid": 991, "firstname": "Zoë", "lastname": "Müller",
              "address": {"street": "Hauptstr. 1", "postalcode": "10115", "city": "Berlin", "countrycode": "DE"},
              "jobtitle": "Engineer", "startdate": "2026-12-01"}  # fmt: skip
    hire = SoftgardenHire.model_validate(stored)
    assert (hire.application_id, hire.candidate_id, hire.first_name, hire.job_title) == (
        "a-1",
        "991",
        "Zoë",
        "Engineer",
    )
    assert hire.address_line() == "Hauptstr. 1, 10115 Berlin, DE"
    again = SoftgardenHire.model_validate(hire.model_dump(mode="json", by_alias=True))
    assert again == hire
    assert SoftgardenHire.model_validate({**stored, "address": "1 rue X"}).address_line() == "1 rue X"


async def test_patch_merges_settings_and_keeps_the_rest(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    path = f"/api/v1/tenants/{tenant.slug}/connectors/softgarden"
    full = {**SOFTGARDEN_SETTINGS, "hire_statuses": ["hired", "signed"], "establishment_aliases": {"Acme GmbH": 2}}
    assert (await client.put(path, json={"settings": full}, headers=tenant.auth)).status_code == 200
    patched = await client.patch(path, json={"settings": {"establishment_aliases": {"Acme Berlin": 3}}},
                                 headers=tenant.auth)  # fmt: skip
    assert patched.status_code == 200, patched.text
    expected = {**full, "establishment_aliases": {"Acme Berlin": 3}}
    assert {key: patched.json()["settings"][key] for key in expected} == expected
    assert (await client.get(path, headers=tenant.auth)).json() == patched.json()
    reset = await client.patch(path, json={"enabled": False, "settings": {"hire_statuses": None}}, headers=tenant.auth)
    assert reset.json()["enabled"] is False and reset.json()["settings"]["hire_statuses"] == ["hired"]
    assert reset.json()["settings"]["default_department_id"] == 10
    required = await client.patch(path, json={"settings": {"default_department_id": None}}, headers=tenant.auth)
    assert locs(required) == [["body", "settings", "default_department_id"]]
    bad = await client.patch(path, json={"settings": {"default_role_principal_id": 0}}, headers=tenant.auth)
    assert locs(bad) == [["body", "settings", "default_role_principal_id"]]
    taleez = f"/api/v1/tenants/{tenant.slug}/connectors/taleez"
    assert (await client.patch(taleez, json={"enabled": True}, headers=tenant.auth)).status_code == 404


async def test_patch_keeps_an_omitted_or_masked_secret(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    path = f"/api/v1/tenants/{tenant.slug}/connectors/taleez"
    assert (await client.put(path, json={"settings": TALEEZ}, headers=tenant.auth)).status_code == 200
    for settings in ({"default_department_id": 12}, {"api_secret": "***", "default_department_id": 13}):
        answer = await client.patch(path, json={"settings": settings}, headers=tenant.auth)
        assert answer.status_code == 200, answer.text
        assert answer.json()["settings"]["api_secret"] == "***"
        assert answer.json()["settings"]["api_base_url"] == TALEEZ["api_base_url"]
    assert "taleez-secret" not in answer.text
    # The secret survived: a PUT that leaves it out still validates.
    assert (
        await client.put(path, json={"settings": {"default_department_id": 1}}, headers=tenant.auth)
    ).status_code == 200
    url = await client.patch(path, json={"settings": {"api_base_url": "ftp://taleez"}}, headers=tenant.auth)
    assert locs(url) == [["body", "settings", "api_base_url"]]


async def test_docs_work_offline_and_declare_the_bearer_schemes(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "/static-offline-docs/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text.lower()
    asset = await client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000
    spec = (await client.get("/openapi.json")).json()
    assert set(spec["components"]["securitySchemes"]) == {"operatorToken", "tenantKey", "softgardenWebhookToken"}
    paths = spec["paths"]
    assert paths["/api/v1/tenants"]["post"]["security"] == [{"operatorToken": []}]
    assert paths["/api/v1/tenants/{slug}"]["get"]["security"] == [{"operatorToken": []}, {"tenantKey": []}]
    assert paths[WEBHOOK]["post"]["security"] == [{"softgardenWebhookToken": []}]
    assert "busiest" not in paths[WEBHOOK]["post"]["description"]
    for path in ("/healthz", "/readyz", "/metrics"):
        assert "security" not in paths[path]["get"]
    for kind in ("softgarden", "taleez"):
        put = paths[f"/api/v1/tenants/{{slug}}/connectors/{kind}"]["put"]
        assert put["requestBody"]["content"]["application/json"]["examples"][kind]["value"]["settings"]
        assert {"401", "404", "413", "415", "422"} <= set(put["responses"])
    assert paths["/api/v1/tenants/{slug}"]["get"]["parameters"][0]["schema"]["pattern"] == "^[a-z0-9-]{2,40}$"


async def test_an_unsupported_method_is_405_with_allow(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    answer = await client.post(f"/api/v1/tenants/{tenant.slug}", headers=ADMIN)
    assert answer.status_code == 405
    assert {"GET", "PATCH", "DELETE"} <= {method.strip() for method in answer.headers["allow"].split(",")}


async def test_a_webhook_path_with_another_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    # The webhooks are answered before FastAPI's router (app.direct_routes): other methods still reach it.
    answer = await client.get("/integrations/webhooks/cards/some-token")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert answer.json() == {"detail": "Method Not Allowed"}
