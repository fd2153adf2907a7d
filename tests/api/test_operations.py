"""Health, readiness, metrics, OpenAPI, and isolation between tenants' webhook tokens."""

import asyncpg
import httpx
import pytest

from tests.factories import ADMIN, add_softgarden, create_tenant, hire_body

pytestmark = pytest.mark.usefixtures("clean_state")
WEBHOOK = "/integrations/webhooks/softgarden/candidate-hired"


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ok"}


async def test_metrics_count_requests_and_deliveries(asgi_client: httpx.AsyncClient) -> None:
    tenant = await add_softgarden(asgi_client, await create_tenant(asgi_client, "acme"))
    await asgi_client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    await asgi_client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    text = (await asgi_client.get("/metrics")).text
    assert 'webhook_deliveries_total{outcome="duplicate",source="softgarden"} 1' in text
    assert 'route="/integrations/webhooks/softgarden/candidate-hired",status="202"} 1' in text
    assert "queue_depth 1" in text
    assert tenant.webhook_token and tenant.webhook_token not in text


async def test_openapi_documents_every_route_with_examples(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in ("/api/v1/tenants", "/api/v1/tenants/{slug}/connectors/softgarden",
                 "/api/v1/tenants/{slug}/connectors/taleez", "/api/v1/tenants/{slug}/runs/{run_id}/retry",
                 WEBHOOK, "/healthz", "/readyz", "/metrics"):  # fmt: skip
        assert path in paths, path
    webhook_body = paths[WEBHOOK]["post"]["requestBody"]["content"]["application/json"]
    assert webhook_body["examples"]["hired"]["value"]["applicationId"]
    assert {"applicationId", "firstName", "lastName", "startDate"} <= set(webhook_body["schema"]["properties"])


async def test_a_webhook_token_acts_only_in_its_own_tenant(client: httpx.AsyncClient, migrated_database: str) -> None:
    acme = await add_softgarden(client, await create_tenant(client, "acme"))
    other = await add_softgarden(client, await create_tenant(client, "other"))
    answer = await client.post(WEBHOOK, json=hire_body(), headers=acme.webhook_auth)
    assert answer.status_code == 202
    acme_runs = (await client.get("/api/v1/tenants/acme/runs", headers=ADMIN)).json()["items"]
    other_runs = (await client.get("/api/v1/tenants/other/runs", headers=ADMIN)).json()["items"]
    assert [run["id"] for run in acme_runs] == [answer.json()["run_id"]] and other_runs == []
    # The same applicationId in another tenant is a different delivery.
    assert (await client.post(WEBHOOK, json=hire_body(), headers=other.webhook_auth)).status_code == 202
    assert (
        await client.get(f"/api/v1/tenants/acme/runs/{answer.json()['run_id']}", headers=other.auth)
    ).status_code == 404
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        dump = str(await connection.fetch("SELECT * FROM connectors"))
    finally:
        await connection.close()
    assert acme.webhook_token and acme.webhook_token not in dump
