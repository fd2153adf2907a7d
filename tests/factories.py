"""Building tenants and connectors through the public API, as an operator would."""

import os
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from app.sandbox.demo import DEMO_OAUTH_CLIENT_ID, DEMO_OAUTH_CLIENT_SECRET
from app.schemas.softgarden import HIRE_EXAMPLE
from tests.sandbox_server import LuccaAccount

ADMIN = {"Authorization": "Bearer test-operator-token"}
SOFTGARDEN_SETTINGS = {
    "professional_email_template": "{first_name}.{last_name}@acme.fr",
    "default_department_id": 10,
    "default_role_principal_id": 55,
}


@dataclass
class TenantHandle:
    slug: str
    key: str
    webhook_token: str | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def webhook_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.webhook_token}"}


async def create_tenant(
    client: httpx.AsyncClient, slug: str, base_url: str = "https://acme.ilucca.net", **lucca: Any
) -> TenantHandle:
    body = {"slug": slug, "name": f"{slug} SAS", "lucca": {"base_url": base_url, "api_key": "lucca-key", **lucca}}
    answer = await client.post("/api/v1/tenants", json=body, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return TenantHandle(slug=slug, key=answer.json()["api_key"])


async def create_oauth_tenant(
    client: httpx.AsyncClient, slug: str, lucca: LuccaAccount, client_id: str = DEMO_OAUTH_CLIENT_ID, **more: Any
) -> TenantHandle:
    """A tenant on the sandbox's Lucca account with an OAuth client alone: the demo's, or one registered there with
    the secret `<client_id>-secret`."""
    secret = DEMO_OAUTH_CLIENT_SECRET if client_id == DEMO_OAUTH_CLIENT_ID else f"{client_id}-secret"
    oauth = {"client_id": client_id, "client_secret": secret, "token_url": lucca.token_url}
    return await create_tenant(client, slug, base_url=lucca.base_url, api_key=None, oauth=oauth, **more)


async def add_softgarden(client: httpx.AsyncClient, tenant: TenantHandle, **settings: Any) -> TenantHandle:
    body = {"enabled": True, "settings": {**SOFTGARDEN_SETTINGS, **settings}}
    answer = await client.put(f"/api/v1/tenants/{tenant.slug}/connectors/softgarden", json=body, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    tenant.webhook_token = answer.json()["webhook_token"]
    return tenant


async def queued_jobs() -> int:
    """Jobs in the arq queue, left out the directory's first full sync, which enabling Cards or Elevo queues."""
    redis = Redis.from_url(os.environ["REDIS_URL"])
    connection = await asyncpg.connect(os.environ["DATABASE_URL"].replace("+asyncpg", ""))
    try:
        directory = await connection.fetch("SELECT id FROM runs WHERE operation = 'directory_sync'")
        queued = {member.decode() for member in await redis.zrange("arq:queue", 0, -1)}
        return len(queued - {f"run:{row['id']}" for row in directory})
    finally:
        await redis.aclose()
        await connection.close()


def hire_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {**HIRE_EXAMPLE, "applicationId": "app-0001"}
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}
