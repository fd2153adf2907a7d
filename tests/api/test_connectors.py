"""Connectors: settings validated per kind, webhook tokens given once and rotated."""

import httpx
import pytest

from tests.factories import SOFTGARDEN_SETTINGS, add_softgarden, create_tenant, hire_body

pytestmark = pytest.mark.usefixtures("clean_state")
WEBHOOK = "/integrations/webhooks/softgarden/candidate-hired"


async def test_first_put_gives_a_token_once(client: httpx.AsyncClient) -> None:
    tenant = await create_tenant(client, "acme")
    path = f"/api/v1/tenants/{tenant.slug}/connectors/softgarden"
    first = await client.put(path, json={"settings": SOFTGARDEN_SETTINGS}, headers=tenant.auth)
    assert first.status_code == 200
    assert len(first.json()["webhook_token"]) == 36
    assert first.json()["settings"]["hire_statuses"] == ["hired"]
    again = await client.put(path, json={"enabled": False, "settings": SOFTGARDEN_SETTINGS}, headers=tenant.auth)
    assert "webhook_token" not in again.json()
    read = await client.get(path, headers=tenant.auth)
    assert read.status_code == 200
    assert read.json()["enabled"] is False and "webhook_token" not in read.json()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"professional_email_template": "{first}.{last_name}@acme.fr"}, "professional_email_template"),
        ({"professional_email_template": "{first_name}"}, "professional_email_template"),
        ({"default_department_id": "ten"}, "default_department_id"),
        ({"default_role_principal_id": None}, "default_role_principal_id"),
        ({"establishment_aliases": {"Acme GmbH": -1}}, "establishment_aliases"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_invalid_settings_are_422_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, object], named: str
) -> None:
    tenant = await create_tenant(client, "acme")
    path = f"/api/v1/tenants/{tenant.slug}/connectors/softgarden"
    answer = await client.put(path, json={"settings": {**SOFTGARDEN_SETTINGS, **change}}, headers=tenant.auth)
    assert answer.status_code == 422
    assert named in answer.text
    assert (await client.get(path, headers=tenant.auth)).status_code == 404


async def test_an_alias_without_any_letter_or_digit_is_422_naming_it(client: httpx.AsyncClient) -> None:
    """It could only match companies without a name; an alias in any script is a name."""
    tenant = await create_tenant(client, "acme")
    path = f"/api/v1/tenants/{tenant.slug}/connectors/softgarden"
    aliases = {"東京": 1, "Москва": 2, "— ★ —": 3}
    answer = await client.put(path, json={"settings": {**SOFTGARDEN_SETTINGS, "establishment_aliases": aliases}},
                              headers=tenant.auth)  # fmt: skip
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == ["body", "settings", "establishment_aliases", "— ★ —", "[key]"]
    assert "letter or a digit" in error["msg"]
    assert (await client.get(path, headers=tenant.auth)).status_code == 404
    del aliases["— ★ —"]
    named = await client.put(path, json={"settings": {**SOFTGARDEN_SETTINGS, "establishment_aliases": aliases}},
                             headers=tenant.auth)  # fmt: skip
    assert named.status_code == 200 and named.json()["settings"]["establishment_aliases"] == aliases


async def test_an_unknown_kind_is_404_naming_the_known_ones(client: httpx.AsyncClient) -> None:
    tenant = await create_tenant(client, "acme")
    unknown = await client.put(f"/api/v1/tenants/{tenant.slug}/connectors/workday", json={"settings": {}},
                               headers=tenant.auth)  # fmt: skip
    assert unknown.status_code == 404 and "softgarden, taleez, cards, elevo" in unknown.json()["detail"]


async def test_rotation_retires_the_old_token(client: httpx.AsyncClient) -> None:
    tenant = await add_softgarden(client, await create_tenant(client, "acme"))
    old = tenant.webhook_auth
    rotated = await client.post(
        f"/api/v1/tenants/{tenant.slug}/connectors/softgarden/rotate-token", headers=tenant.auth
    )
    assert rotated.status_code == 200
    tenant.webhook_token = rotated.json()["webhook_token"]
    assert (await client.post(WEBHOOK, json=hire_body(status="interview"), headers=old)).status_code == 401
    assert (
        await client.post(WEBHOOK, json=hire_body(status="interview"), headers=tenant.webhook_auth)
    ).status_code == 202


async def test_delete_connector(client: httpx.AsyncClient) -> None:
    tenant = await add_softgarden(client, await create_tenant(client, "acme"))
    path = f"/api/v1/tenants/{tenant.slug}/connectors/softgarden"
    assert (await client.delete(path, headers=tenant.auth)).status_code == 204
    assert (await client.get(path, headers=tenant.auth)).status_code == 404
    assert (await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)).status_code == 401
