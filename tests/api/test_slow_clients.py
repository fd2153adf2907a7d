"""Slow senders over real TCP: while they trickle their bodies, they hold no database connection, and they get 408.

Before the bodies were read ahead of the database (app/json_body.py `received_body`), 61 such senders held the
whole pool (50 + 10 overflow) and an unrelated `GET …/runs` waited 30 s for a connection, then answered 500.
"""

import asyncio
import logging
import time

import httpx
import pytest

from app.config import Settings
from app.json_body import BODY_READ_SECONDS
from tests.factories import ADMIN, TenantHandle, add_softgarden, create_tenant
from tests.live_server import LiveServer

pytestmark = pytest.mark.usefixtures("clean_state")
log = logging.getLogger(__name__)
WEBHOOK = "/integrations/webhooks/softgarden/candidate-hired"
# One more than the pool holds with its overflow (10): 61 with the default pool of 50.
SLOW_CLIENTS = Settings().api_database_pool_size + 11
PROMPT_SECONDS = 3.0


async def start_slow_request(
    live_api: LiveServer, method: str, path: str, token: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Send the headers of a 100-byte JSON body and its first 9 bytes, then nothing more."""
    reader, writer = await asyncio.open_connection("127.0.0.1", live_api.port)
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")  # fmt: skip
    writer.write(head.encode() + b'{"settin')
    await writer.drain()
    return reader, writer


async def status_of(reader: asyncio.StreamReader, deadline: float) -> int:
    line = await asyncio.wait_for(reader.readline(), timeout=max(deadline - time.monotonic(), 0.1))
    return int(line.split()[1])


@pytest.fixture
async def tenant(client: httpx.AsyncClient) -> TenantHandle:
    return await add_softgarden(client, await create_tenant(client, "acme"))


async def test_slow_bodies_hold_no_connection_and_get_408(
    client: httpx.AsyncClient, live_api: LiveServer, tenant: TenantHandle
) -> None:
    assert tenant.webhook_token
    routes = [("POST", WEBHOOK, tenant.webhook_token), ("PUT", "/api/v1/tenants/acme/connectors/softgarden", tenant.key),
              ("POST", "/api/v1/tenants/acme/taleez/imports", tenant.key), ("PATCH", "/api/v1/tenants/acme",
              ADMIN["Authorization"].removeprefix("Bearer "))]  # fmt: skip
    started = time.monotonic()
    slow = [await start_slow_request(live_api, *routes[index % len(routes)]) for index in range(SLOW_CLIENTS)]
    wrong = await start_slow_request(live_api, "POST", WEBHOOK, "00000000-0000-0000-0000-000000000000")
    try:
        await asyncio.sleep(0.5)  # every slow sender is in, waiting on its body
        latencies = []
        for _ in range(5):
            asked = time.monotonic()
            runs = await client.get("/api/v1/tenants/acme/runs", headers=tenant.auth, timeout=PROMPT_SECONDS)
            latencies.append(time.monotonic() - asked)
            assert runs.status_code == 200, runs.text
        deadline = started + BODY_READ_SECONDS + 10
        statuses = await asyncio.gather(*(status_of(reader, deadline) for reader, _ in slow))
        answered = time.monotonic() - started
        wrong_status = await status_of(wrong[0], deadline)
    finally:
        for _, writer in [*slow, wrong]:
            writer.close()
    worst = max(latencies) * 1000
    log.info("%d slow senders; GET runs in %.0f ms at worst; 408s after %.1f s", SLOW_CLIENTS, worst, answered)
    assert max(latencies) < PROMPT_SECONDS
    assert statuses == [408] * SLOW_CLIENTS
    assert BODY_READ_SECONDS - 1 <= answered <= BODY_READ_SECONDS + 10
    # Credentials are still checked first: a wrong token with a slow body gets 401, not 408.
    assert wrong_status == 401
    assert (await client.get("/api/v1/tenants/acme", headers=tenant.auth)).json()["name"] == "acme SAS"
