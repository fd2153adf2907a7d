"""Partner URLs lead to public hosts, and a stored secret never follows a changed URL (contract section 1)."""

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from app.schemas.common import partner_url_pattern
from tests.factories import ADMIN, create_tenant

pytestmark = pytest.mark.usefixtures("clean_state")
TALEEZ = {"api_base_url": "https://api.taleez.com/0", "api_secret": "taleez-secret-value", "default_department_id": 10}
HOSTILE = [
    "https://169.254.169.254/latest/meta-data", "https://127.0.0.1:6379", "https://10.0.0.1", "https://[::1]:5432",
    "https://zelda:hunter2pass@internal.corp", "https://2130706433", "https://0x7f.0.0.1", "https://localhost:8443",
    "https://metrics.localhost", "https://[::ffff:127.0.0.1]", "https://192.168.1.1/acme", "http://acme.ilucca.net",
]  # fmt: skip


def locs(answer: httpx.Response) -> list[list[Any]]:
    assert answer.status_code == 422, answer.text
    return [error["loc"] for error in answer.json()["detail"]]


@pytest.fixture
def production_rule(app: FastAPI) -> None:
    """The in-process app, as deployed: ALLOW_HTTP_UPSTREAMS is not set."""
    app.state.settings.allow_http_upstreams = False


def tenant_body(base_url: str) -> dict[str, Any]:
    return {"slug": "acme", "name": "Acme", "lucca": {"base_url": base_url, "api_key": "lucca-key"}}


@pytest.mark.usefixtures("production_rule")
@pytest.mark.parametrize("url", HOSTILE)
async def test_a_tenant_url_to_an_internal_host_is_422(asgi_client: httpx.AsyncClient, url: str) -> None:
    created = await asgi_client.post("/api/v1/tenants", json=tenant_body(url), headers=ADMIN)
    assert locs(created) == [["body", "lucca", "base_url"]]
    assert "hunter2" not in created.text and "zelda" not in created.text
    assert (
        await asgi_client.post("/api/v1/tenants", json=tenant_body("https://acme.ilucca.net"), headers=ADMIN)
    ).status_code == 201
    patch = {"lucca": {"base_url": url, "api_key": "new-key"}}
    patched = await asgi_client.patch("/api/v1/tenants/acme", json=patch, headers=ADMIN)
    assert locs(patched) == [["body", "lucca", "base_url"]]
    assert "hunter2" not in patched.text
    assert (await asgi_client.get("/api/v1/tenants/acme", headers=ADMIN)).json()["lucca"]["base_url"] == (
        "https://acme.ilucca.net"
    )


@pytest.mark.usefixtures("production_rule")
@pytest.mark.parametrize("url", HOSTILE)
async def test_a_connector_url_to_an_internal_host_is_422(asgi_client: httpx.AsyncClient, url: str) -> None:
    tenant = await create_tenant(asgi_client, "acme")
    path = "/api/v1/tenants/acme/connectors/taleez"
    put = await asgi_client.put(path, json={"settings": {**TALEEZ, "api_base_url": url}}, headers=tenant.auth)
    assert locs(put) == [["body", "settings", "api_base_url"]]
    assert "hunter2" not in put.text
    assert (await asgi_client.put(path, json={"settings": TALEEZ}, headers=tenant.auth)).status_code == 200
    patch = {"settings": {"api_base_url": url, "api_secret": "another-secret"}}
    patched = await asgi_client.patch(path, json=patch, headers=tenant.auth)
    assert locs(patched) == [["body", "settings", "api_base_url"]]
    assert (await asgi_client.get(path, headers=tenant.auth)).json()["settings"]["api_base_url"] == TALEEZ[
        "api_base_url"
    ]


async def test_a_new_connector_url_needs_the_secret_again(client: httpx.AsyncClient) -> None:
    tenant = await create_tenant(client, "acme")
    path = "/api/v1/tenants/acme/connectors/taleez"
    assert (await client.put(path, json={"settings": TALEEZ}, headers=tenant.auth)).status_code == 200
    moved = "http://127.0.0.1:9/elsewhere"
    for settings in ({**TALEEZ, "api_base_url": moved, "api_secret": "***"}, {"api_base_url": moved}):
        put = await client.put(path, json={"settings": settings}, headers=tenant.auth)
        assert locs(put) == [["body", "settings", "api_secret"]]
        patch = await client.patch(path, json={"settings": settings}, headers=tenant.auth)
        assert locs(patch) == [["body", "settings", "api_secret"]]
    # Back to the default URL by null, or by leaving it out of a PUT, is a change too.
    assert (
        await client.put(path, json={"settings": {**TALEEZ, "api_base_url": moved}}, headers=tenant.auth)
    ).status_code == 200
    reset = await client.patch(path, json={"settings": {"api_base_url": None}}, headers=tenant.auth)
    assert locs(reset) == [["body", "settings", "api_secret"]]
    omitted = await client.put(path, json={"settings": {"default_department_id": 10}}, headers=tenant.auth)
    assert locs(omitted) == [["body", "settings", "api_secret"]]
    stored = (await client.get(path, headers=tenant.auth)).json()["settings"]
    assert stored["api_base_url"] == moved
    # The same URL (a trailing slash is no change) keeps the stored secret.
    for same in (moved, moved + "/"):
        kept = await client.patch(
            path, json={"settings": {"api_base_url": same, "api_secret": "***"}}, headers=tenant.auth
        )
        assert kept.status_code == 200, kept.text
        assert kept.json()["settings"]["api_secret"] == "***"


async def test_a_new_lucca_url_needs_the_api_key_again(client: httpx.AsyncClient) -> None:
    await create_tenant(client, "acme")
    moved = {"lucca": {"base_url": "https://other.ilucca.net"}}
    assert locs(await client.patch("/api/v1/tenants/acme", json=moved, headers=ADMIN)) == [["body", "lucca", "api_key"]]
    same = {"lucca": {"base_url": "https://acme.ilucca.net/"}, "name": "Acme Group"}
    assert (await client.patch("/api/v1/tenants/acme", json=same, headers=ADMIN)).status_code == 200
    with_key = {"lucca": {"base_url": "https://other.ilucca.net", "api_key": "other-key"}}
    answer = await client.patch("/api/v1/tenants/acme", json=with_key, headers=ADMIN)
    assert answer.status_code == 200 and answer.json()["lucca"]["base_url"] == "https://other.ilucca.net"


async def test_with_oauth_a_new_lucca_url_needs_its_client_secret_too(client: httpx.AsyncClient) -> None:
    await create_tenant(client, "acme", oauth={"client_id": "c", "client_secret": "oauth-secret"})
    moved = {"lucca": {"base_url": "https://other.ilucca.net", "api_key": "other-key"}}
    answer = await client.patch("/api/v1/tenants/acme", json=moved, headers=ADMIN)
    assert locs(answer) == [["body", "lucca", "oauth", "client_secret"]]
    with_secret = {"lucca": {**moved["lucca"], "oauth": {"client_secret": "new-oauth-secret"}}}
    assert (await client.patch("/api/v1/tenants/acme", json=with_secret, headers=ADMIN)).status_code == 200


async def test_the_document_tells_both_rules() -> None:
    document = create_app(Settings(allow_http_upstreams=False)).openapi()
    paths = document["paths"]
    lucca = paths["/api/v1/tenants/{slug}"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    lucca = lucca["properties"]["lucca"]["anyOf"][0]
    assert lucca["dependentRequired"] == {"base_url": ["api_key"]}
    for method in ("put", "patch"):
        body = paths["/api/v1/tenants/{slug}/connectors/taleez"][method]["requestBody"]["content"]["application/json"]
        settings = body["schema"]["properties"]["settings"]
        assert settings["dependentRequired"] == {"api_base_url": ["api_secret"]}
        assert "api_base_url changes" in settings["properties"]["api_secret"]["description"]
    pattern = lucca["properties"]["base_url"]["anyOf"][0]["pattern"]
    assert pattern == partner_url_pattern(False)
    for url in HOSTILE:
        assert re.fullmatch(pattern, url) is None, url
    assert re.fullmatch(pattern, "https://acme.ilucca.net") is not None
