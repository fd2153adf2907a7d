"""What a client sees over TCP from a real uvicorn process: every answer reports only what is committed.

Each round creates, uses, rotates, patches, disables and deletes, and checks the very next request (on the same
keep-alive connection) against each answer. Several sequences run at once, so the server is under some load.
"""

import asyncio
import os
import uuid

import httpx
import pytest

from tests.factories import ADMIN, SOFTGARDEN_SETTINGS, hire_body
from tests.live_server import LiveServer

pytestmark = pytest.mark.usefixtures("clean_state")
WEBHOOK = "/integrations/webhooks/softgarden/candidate-hired"
ROUNDS = int(os.environ.get("TCP_ROUNDS", "200"))
SEQUENCES = 4


async def one_round(http: httpx.AsyncClient, slug: str) -> list[str]:
    """One create → use → rotate → patch → disable → delete round; returns what the next request missed."""
    misses: list[str] = []

    def expect(answer: httpx.Response, status: int, step: str) -> None:
        if answer.status_code != status:
            misses.append(f"{slug} {step}: {answer.status_code} {answer.text[:80]}")

    lucca = {"base_url": "https://acme.ilucca.net", "api_key": "lucca-key"}
    created = await http.post("/api/v1/tenants", json={"slug": slug, "name": "Round", "lucca": lucca}, headers=ADMIN)
    expect(created, 201, "create tenant")
    if created.status_code != 201:
        return misses
    key = {"Authorization": f"Bearer {created.json()['api_key']}"}
    expect(await http.get(f"/api/v1/tenants/{slug}", headers=key), 200, "read with the new key")

    connector = f"/api/v1/tenants/{slug}/connectors/softgarden"
    put = await http.put(connector, json={"enabled": True, "settings": SOFTGARDEN_SETTINGS}, headers=key)
    expect(put, 200, "create connector")
    first = {"Authorization": f"Bearer {put.json().get('webhook_token')}"}
    expect(await http.post(WEBHOOK, json=hire_body(applicationId="a1"), headers=first), 202, "webhook, new token")

    rotated = await http.post(f"{connector}/rotate-token", headers=key)
    expect(rotated, 200, "rotate")
    second = {"Authorization": f"Bearer {rotated.json().get('webhook_token')}"}
    expect(await http.post(WEBHOOK, json=hire_body(applicationId="a2"), headers=first), 401, "old token refused")
    expect(await http.post(WEBHOOK, json=hire_body(applicationId="a3"), headers=second), 202, "rotated token")

    patched = await http.patch(f"/api/v1/tenants/{slug}", json={"name": "Renamed"}, headers=ADMIN)
    expect(patched, 200, "patch")
    read = await http.get(f"/api/v1/tenants/{slug}", headers=key)
    if read.status_code != 200 or read.json().get("name") != "Renamed":
        misses.append(f"{slug} patch not visible: {read.status_code} {read.text[:80]}")

    disabled = await http.put(connector, json={"enabled": False, "settings": SOFTGARDEN_SETTINGS}, headers=key)
    expect(disabled, 200, "disable")
    expect(await http.post(WEBHOOK, json=hire_body(applicationId="a4"), headers=second), 403, "disabled refused")

    expect(await http.delete(f"/api/v1/tenants/{slug}", headers=ADMIN), 204, "delete")
    expect(await http.get(f"/api/v1/tenants/{slug}", headers=ADMIN), 404, "deleted tenant gone")
    expect(await http.get(f"/api/v1/tenants/{slug}", headers=key), 401, "deleted tenant's key refused")
    return misses


async def sequence(live_api: LiveServer, rounds: int) -> list[str]:
    """Rounds one after the other, on one keep-alive connection."""
    misses: list[str] = []
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(base_url=live_api.url, timeout=30, limits=limits) as http:
        for _ in range(rounds):
            misses += await one_round(http, f"r-{uuid.uuid4().hex[:12]}")
    return misses


async def test_every_answer_is_committed_before_it_leaves(live_api: LiveServer) -> None:
    per_sequence = max(1, ROUNDS // SEQUENCES)
    results = await asyncio.gather(*(sequence(live_api, per_sequence) for _ in range(SEQUENCES)))
    misses = [miss for result in results for miss in result]
    assert misses == [], f"{len(misses)} misses in {per_sequence * SEQUENCES} rounds"
