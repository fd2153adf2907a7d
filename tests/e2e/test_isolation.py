"""No tenant can read, slow down or block another tenant's work through what it configures (contract section 2):
a tenant naming another's Lucca account or Cards space, with a key that does not open it or with a limit of its own,
neither takes from its rate-limit window, nor holds its locks while waiting, nor reads its caches."""

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.clients.lucca import account_key
from tests.directory_copy import full_sync
from tests.e2e.conftest import WEBHOOK, drain_queue, events_of, run_of
from tests.e2e.test_cards_stats import EVENTS, compound, learning, send
from tests.e2e.test_recovery import wait_for_run, worker_process
from tests.factories import TenantHandle, add_softgarden, create_tenant, hire_body
from tests.sandbox_server import CardsAccount, LuccaAccount, SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")

JUNK = "junk-credential-0123456789"
FLOOD = {"requests": 100_000, "per_seconds": 1}
TRICKLE = {"requests": 1, "per_seconds": 86_400}
# What A's work takes on its own, with room for a loaded machine; a job holding A's lock would keep it 10 s (the
# tests' job deadline).
PROMPT_SECONDS = 7.0


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(os.environ["REDIS_URL"])
    yield client
    await client.aclose()


async def add_cards(client: httpx.AsyncClient, tenant: TenantHandle, space: CardsAccount, **settings: Any) -> None:
    body = {"enabled": True, "settings": space.connector_settings(**settings)}
    answer = await client.put(f"/api/v1/tenants/{tenant.slug}/connectors/cards", json=body, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    tenant.webhook_token = answer.json()["webhook_token"]


async def cards_tenant(
    client: httpx.AsyncClient, slug: str, lucca: LuccaAccount, space: CardsAccount, **settings: Any
) -> TenantHandle:
    tenant = await create_tenant(client, slug, base_url=lucca.base_url, api_key=lucca.api_key)
    await add_cards(client, tenant, space, **settings)
    return tenant


async def check(client: httpx.AsyncClient, tenant: TenantHandle, kind: str) -> dict[str, dict[str, Any]]:
    """The connection check's answer, by partner."""
    answer = await client.post(f"/api/v1/tenants/{tenant.slug}/connectors/{kind}/check", headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    return {item["partner"]: item for item in answer.json()["checks"]}


async def queue(client: httpx.AsyncClient, tenant: TenantHandle, path: str, body: dict[str, Any]) -> str:
    answer = await client.post(f"/api/v1/tenants/{tenant.slug}/{path}", json=body, headers=tenant.auth)
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    return run_id


async def hire(client: httpx.AsyncClient, tenant: TenantHandle, number: int) -> str:
    body = hire_body(applicationId=f"{tenant.slug}-{number}", firstName=f"Ana{number}", lastName="Other",
                     email=f"ana{number}.{tenant.slug}@x.fr")  # fmt: skip
    answer = await client.post(WEBHOOK, json=body, headers=tenant.webhook_auth)
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    return run_id


async def test_a_junk_cards_token_on_another_tenants_space_takes_nothing_of_its_window(
    client: httpx.AsyncClient, sandbox: SandboxServer, redis: Redis
) -> None:
    space = sandbox.new_cards_account()
    acme = await cards_tenant(client, "acme", sandbox.new_lucca_account(), space, rate_limit={"requests": 3})
    mallory = await cards_tenant(
        client, "mallory", sandbox.new_lucca_account(), space, api_token=JUNK, rate_limit=FLOOD
    )
    for _ in range(3):
        refused = await check(client, mallory, "cards")
        assert not refused["cards"]["ok"] and "Cards refused the API token" in refused["cards"]["message"]
    checked = await check(client, acme, "cards")
    assert checked["cards"]["ok"], checked
    window = f"ratelimit:cards:{account_key(space.base_url)}:{space.space_id}"
    assert await redis.zcard(window) == 1  # Acme's own call, and none of Mallory's


async def test_a_junk_lucca_key_on_another_tenants_account_takes_nothing_of_its_window(
    client: httpx.AsyncClient, lucca: LuccaAccount, redis: Redis
) -> None:
    acme = await add_softgarden(client, await create_tenant(
        client, "acme", base_url=lucca.base_url, api_key=lucca.api_key, rate_limit={"requests": 3, "per_seconds": 60}
    ))  # fmt: skip
    mallory = await add_softgarden(
        client, await create_tenant(client, "mallory", base_url=lucca.base_url, api_key=JUNK, rate_limit=FLOOD)
    )
    for _ in range(3):
        refused = await check(client, mallory, "softgarden")
        assert not refused["lucca"]["ok"] and "Lucca refused the API key" in refused["lucca"]["message"]
    checked = await check(client, acme, "softgarden")
    assert checked["lucca"]["ok"], checked
    assert await redis.zcard(f"ratelimit:lucca:{account_key(lucca.base_url)}") == 1


@pytest.mark.parametrize("token", ["junk", "valid"])
async def test_a_tenant_waiting_on_a_tiny_limit_does_not_hold_up_an_import_into_the_same_space(
    client: httpx.AsyncClient, sandbox: SandboxServer, token: str
) -> None:
    """Mallory names Acme's space with a limit of one call a day: with a junk token its import never takes the
    space's lock; with a valid one it gives the lock up as soon as Acme's import waits for it."""
    space = sandbox.new_cards_account(users=[], groups=[])
    acme = await cards_tenant(client, "acme", sandbox.new_lucca_account(), space)
    mallory = await cards_tenant(client, "mallory", sandbox.new_lucca_account(), space,
                                 api_token=JUNK if token == "junk" else space.api_token, rate_limit=TRICKLE)  # fmt: skip
    await check(client, mallory, "cards")  # the one call of Mallory's day
    for tenant in (acme, mallory):
        await full_sync(client, tenant)  # their directories' copies, which the imports read
    waiting = await queue(client, mallory, "cards/users/import", {"all": True})
    with worker_process():
        deadline = time.monotonic() + 15
        while (await run_of(client, mallory, waiting))["status"] == "queued":
            assert time.monotonic() < deadline, "the worker did not start"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)  # Mallory's job has its lock by now, if it may take it
        started = time.monotonic()
        importing = await queue(client, acme, "cards/users/import", {"all": True})
        run = await wait_for_run(client, acme, importing, seconds=30)
        took = time.monotonic() - started
        mallorys = await run_of(client, mallory, waiting)
    assert run["status"] == "succeeded" and run["counts"]["created"] == 2, run
    assert took < PROMPT_SECONDS, f"Acme's import took {took:.1f} s"
    # Mallory's run waits for its slot (outside the lock, or deferred once it gave way): no failure, no event.
    assert mallorys["status"] in ("queued", "running"), mallorys
    assert await events_of(client, mallory, waiting) == []


@pytest.mark.parametrize("key", ["junk", "valid"])
async def test_a_tenant_waiting_on_a_tiny_limit_does_not_hold_another_tenants_hire_lock(
    client: httpx.AsyncClient, lucca: LuccaAccount, key: str
) -> None:
    acme = await add_softgarden(client, await create_tenant(client, "acme", base_url=lucca.base_url,
                                                            api_key=lucca.api_key))  # fmt: skip
    mallory = await add_softgarden(client, await create_tenant(
        client, "mallory", base_url=lucca.base_url, api_key=JUNK if key == "junk" else lucca.api_key, rate_limit=TRICKLE
    ))  # fmt: skip
    await check(client, mallory, "softgarden")  # the one call of Mallory's day
    waiting = await hire(client, mallory, 1)
    with worker_process():
        deadline = time.monotonic() + 15
        while (await run_of(client, mallory, waiting))["status"] == "queued":
            assert time.monotonic() < deadline, "the worker did not start"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        started = time.monotonic()
        run = await wait_for_run(client, acme, await hire(client, acme, 1), seconds=30)
        took = time.monotonic() - started
    assert run["status"] == "succeeded" and run["counts"]["created"] == 1, run
    assert took < PROMPT_SECONDS, f"Acme's hire took {took:.1f} s"


@pytest.mark.parametrize("key", ["junk", "valid"])
async def test_a_tenant_waiting_on_a_tiny_limit_does_not_hold_another_tenants_statistics_push(
    client: httpx.AsyncClient, lucca: LuccaAccount, sandbox: SandboxServer, key: str
) -> None:
    acme = await cards_tenant(client, "acme", lucca, sandbox.new_cards_account())
    await send(client, acme, *EVENTS)
    mallory = await create_tenant(client, "mallory", base_url=lucca.base_url,
                                  api_key=JUNK if key == "junk" else lucca.api_key, rate_limit=TRICKLE)  # fmt: skip
    await add_cards(client, mallory, sandbox.new_cards_account())
    await check(client, mallory, "cards")  # the one Lucca call of Mallory's day
    waiting = await queue(client, mallory, "cards/stats/sync", {})
    with worker_process():
        deadline = time.monotonic() + 15
        while (await run_of(client, mallory, waiting))["status"] == "queued":
            assert time.monotonic() < deadline, "the worker did not start"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        started = time.monotonic()
        run = await wait_for_run(client, acme, await queue(client, acme, "cards/stats/sync", {}), seconds=30)
        took = time.monotonic() - started
    assert run["status"] == "succeeded" and run["counts"]["updated"] == 2, run
    assert took < PROMPT_SECONDS, f"Acme's push took {took:.1f} s"


async def test_a_junk_cards_token_cannot_read_another_tenants_cached_trainings(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    space = sandbox.new_cards_account()
    acme = await cards_tenant(client, "acme", sandbox.new_lucca_account(), space)
    await send(client, acme, *EVENTS)
    await queue(client, acme, "cards/stats/sync", {})
    await drain_queue()  # Acme's push has the titles of trainings 501 and 502 cached
    mallory_lucca = sandbox.new_lucca_account()
    mallory = await cards_tenant(client, "mallory", mallory_lucca, space, api_token=JUNK)
    await send(client, mallory, learning("m1", "jean.dupont@acme.fr", 501, "2024-01-16 08:00:00", 0.5))
    pushing = await queue(client, mallory, "cards/stats/sync", {})
    await drain_queue()
    run = await run_of(client, mallory, pushing)
    assert run["status"] == "failed" and "Cards refused the API token" in run["error"], run
    assert compound(mallory_lucca, 102) == []


async def test_a_junk_lucca_key_cannot_read_another_tenants_cached_establishments(
    client: httpx.AsyncClient, lucca: LuccaAccount, sandbox: SandboxServer
) -> None:
    acme = await add_softgarden(client, await create_tenant(client, "acme", base_url=lucca.base_url,
                                                            api_key=lucca.api_key))  # fmt: skip
    await hire(client, acme, 1)
    await drain_queue()  # Acme's hire has the account's establishments cached
    mallory = await add_softgarden(client, await create_tenant(client, "mallory", base_url=lucca.base_url,
                                                               api_key=JUNK))  # fmt: skip
    body = hire_body(applicationId="m-1", company="Nowhere Ltd")
    answer = await client.post(WEBHOOK, json=body, headers=mallory.webhook_auth)
    assert answer.status_code == 202, answer.text
    await drain_queue()
    run = await run_of(client, mallory, answer.json()["run_id"])
    assert run["status"] == "failed" and "Lucca refused" in run["error"], run
    said = " ".join(event["message"] for event in await events_of(client, mallory, run["id"]))
    assert "Acme Paris" not in said, said
