"""A tenant's two Lucca credentials (contract section 4) and its poll interval, over the real server: the key, an
OAuth client or both; 422s name the field; secrets never come back."""

from typing import Any

import httpx
import pytest

from tests.factories import ADMIN, SOFTGARDEN_SETTINGS, create_tenant

pytestmark = pytest.mark.usefixtures("clean_state")
OAUTH = {"client_id": "acme-directory", "client_secret": "oauth-secret-value"}


async def post_tenant(client: httpx.AsyncClient, **lucca: Any) -> httpx.Response:
    body = {"slug": "acme", "name": "Acme SAS", "lucca": {"base_url": "https://acme.ilucca.net", **lucca}}
    return await client.post("/api/v1/tenants", json=body, headers=ADMIN)


async def patch_lucca(client: httpx.AsyncClient, **lucca: Any) -> httpx.Response:
    return await client.patch("/api/v1/tenants/acme", json={"lucca": lucca}, headers=ADMIN)


def locs(answer: httpx.Response) -> list[list[str | int]]:
    assert answer.status_code == 422, answer.text
    return [error["loc"] for error in answer.json()["detail"]]


async def test_a_tenant_needs_the_key_oauth_or_both(client: httpx.AsyncClient) -> None:
    neither = await post_tenant(client)
    assert locs(neither) == [["body", "lucca"]]
    assert "api_key, oauth or both" in neither.json()["detail"][0]["msg"]
    assert locs(await post_tenant(client, api_key=None, oauth=None)) == [["body", "lucca"]]

    created = await post_tenant(client, oauth=OAUTH)
    assert created.status_code == 201, created.text
    lucca = created.json()["lucca"]
    assert (lucca["api_key_set"], lucca["oauth_set"], lucca["poll_seconds"]) == (False, True, 60)
    assert "oauth-secret-value" not in created.text


@pytest.mark.parametrize("seconds", [29, 3601, 60.5, "60", True])
async def test_poll_seconds_is_a_whole_number_from_30_to_3600(client: httpx.AsyncClient, seconds: Any) -> None:
    assert locs(await post_tenant(client, api_key="k", poll_seconds=seconds)) == [["body", "lucca", "poll_seconds"]]


async def test_poll_seconds_is_set_read_and_changed(client: httpx.AsyncClient) -> None:
    created = await post_tenant(client, api_key="lucca-key", poll_seconds=30)
    assert created.json()["lucca"]["poll_seconds"] == 30
    assert locs(await patch_lucca(client, poll_seconds=3601)) == [["body", "lucca", "poll_seconds"]]
    changed = await patch_lucca(client, poll_seconds=3600)
    assert changed.json()["lucca"]["poll_seconds"] == 3600
    read = await client.get("/api/v1/tenants/acme", headers=ADMIN)
    assert read.json()["lucca"]["poll_seconds"] == 3600


async def test_the_token_url_follows_the_partner_url_rules(client: httpx.AsyncClient) -> None:
    bad = await post_tenant(client, oauth={**OAUTH, "token_url": "ftp://accounts.example/token"})
    assert locs(bad) == [["body", "lucca", "oauth", "token_url"]]
    assert "ftp" not in bad.text.split('"msg"')[1]  # the 422 never repeats the URL
    created = await post_tenant(client, oauth={**OAUTH, "token_url": "https://accounts.example/connect/token/"})
    assert created.status_code == 201, created.text


async def test_a_new_token_url_or_base_url_needs_the_secret_again(client: httpx.AsyncClient) -> None:
    await post_tenant(client, oauth=OAUTH)
    moved = await patch_lucca(client, oauth={"token_url": "https://elsewhere.example/token"})
    assert locs(moved) == [["body", "lucca", "oauth", "client_secret"]]
    with_secret = await patch_lucca(
        client, oauth={"token_url": "https://elsewhere.example/token", "client_secret": "s2"}
    )
    assert with_secret.status_code == 200, with_secret.text
    # Back to Lucca's own token URL: the secret again too.
    assert locs(await patch_lucca(client, oauth={"token_url": None})) == [["body", "lucca", "oauth", "client_secret"]]
    # A tenant without a key moves to a new base URL with its OAuth secret alone.
    assert locs(await patch_lucca(client, base_url="https://other.ilucca.net")) == [
        ["body", "lucca", "oauth", "client_secret"]
    ]
    moved_account = await patch_lucca(client, base_url="https://other.ilucca.net", oauth={"client_secret": "s3"})
    assert moved_account.status_code == 200, moved_account.text
    assert moved_account.json()["lucca"]["api_key_set"] is False


async def test_one_credential_is_removed_as_long_as_the_other_stays(client: httpx.AsyncClient) -> None:
    await post_tenant(client, api_key="lucca-key")
    assert locs(await patch_lucca(client, api_key=None)) == [["body", "lucca"]]
    assert (await patch_lucca(client, oauth=None)).json()["lucca"]["oauth_set"] is False  # had none: the key stays
    given = await patch_lucca(client, oauth=OAUTH)
    assert (given.json()["lucca"]["api_key_set"], given.json()["lucca"]["oauth_set"]) == (True, True)
    without_key = await patch_lucca(client, api_key=None)
    assert (without_key.json()["lucca"]["api_key_set"], without_key.json()["lucca"]["oauth_set"]) == (False, True)
    assert locs(await patch_lucca(client, oauth=None)) == [["body", "lucca"]]
    # Both at once: the key back and OAuth gone.
    swapped = await patch_lucca(client, api_key="lucca-key-2", oauth=None)
    assert (swapped.json()["lucca"]["api_key_set"], swapped.json()["lucca"]["oauth_set"]) == (True, False)


async def test_the_key_stays_while_an_enabled_connector_needs_it(client: httpx.AsyncClient) -> None:
    tenant = await create_tenant(client, "acme", oauth=OAUTH)
    path = "/api/v1/tenants/acme/connectors/softgarden"
    body = {"enabled": True, "settings": SOFTGARDEN_SETTINGS}
    assert (await client.put(path, json=body, headers=tenant.auth)).status_code == 200
    refused = await patch_lucca(client, api_key=None)
    assert locs(refused) == [["body", "lucca", "api_key"]]
    assert "Softgarden connector creates employees" in refused.json()["detail"][0]["msg"]
    assert (await client.patch(path, json={"enabled": False}, headers=tenant.auth)).status_code == 200
    assert (await patch_lucca(client, api_key=None)).status_code == 200
    # Enabling it again without the key: 422 naming the key.
    again = await client.patch(path, json={"enabled": True}, headers=tenant.auth)
    assert locs(again) == [["body", "lucca", "api_key"]]
