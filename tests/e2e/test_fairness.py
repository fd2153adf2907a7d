"""One tenant's backlog is slow on its own account, never the others' (finding 6: jobs waited in the lock)."""

import asyncio
import contextlib
import itertools

import httpx
import pytest

from tests.e2e.conftest import WEBHOOK, drain_queue, run_of
from tests.e2e.test_recovery import wait_for_run
from tests.factories import TenantHandle, add_softgarden, create_tenant, hire_body
from tests.sandbox_server import LuccaAccount, SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")
BACKLOG = 30
CREATE_SECONDS = 1.5


async def tenant_on(client: httpx.AsyncClient, slug: str, lucca: LuccaAccount) -> TenantHandle:
    return await add_softgarden(
        client, await create_tenant(client, slug, base_url=lucca.base_url, api_key=lucca.api_key)
    )


async def post_hire(client: httpx.AsyncClient, tenant: TenantHandle, number: int) -> str:
    body = hire_body(
        applicationId=f"{tenant.slug}-{number}", firstName=f"Ana{number}", lastName="Backlog", email=f"ana{number}@x.fr"
    )
    answer = await client.post(WEBHOOK, json=body, headers=tenant.webhook_auth)
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    return run_id


async def test_a_neighbours_hire_is_not_held_up_by_a_slow_backlog(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    slow_lucca, other_lucca = sandbox.new_lucca_account(), sandbox.new_lucca_account()
    slow, other = await tenant_on(client, "slow", slow_lucca), await tenant_on(client, "other", other_lucca)
    slow_lucca.add_faults({"delay_seconds": CREATE_SECONDS, "count": BACKLOG, "match": "POST /api/v3/users"})
    backlog = [await post_hire(client, slow, number) for number in range(BACKLOG)]

    workers = [asyncio.create_task(drain_queue()) for _ in range(2)]
    try:
        await asyncio.sleep(1)  # the backlog fills every worker slot first
        neighbour = await post_hire(client, other, 0)
        run = await wait_for_run(client, other, neighbour, 120)  # a guard against hanging, not a measure
        assert run["status"] == "succeeded" and run["counts"]["created"] == 1
        statuses = [(await run_of(client, slow, run_id))["status"] for run_id in backlog]
        # The neighbour's hire went through while most of the backlog was still waiting: it did not queue behind it.
        assert statuses.count("succeeded") < BACKLOG // 2, statuses
    finally:
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
    creates = [call for call in slow_lucca.calls()["items"] if call["method"] == "POST"]
    # Hires of one account stay one at a time: no two creates overlapped.
    starts = sorted(call["at"] for call in creates)
    assert all(later - earlier >= CREATE_SECONDS - 0.05 for earlier, later in itertools.pairwise(starts))
