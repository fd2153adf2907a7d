"""The tenant's directory copy filled by a real full sync (the API's route, a real worker), for tests of its readers."""

import httpx

from tests.e2e.conftest import drain_queue, run_of
from tests.factories import TenantHandle


async def full_sync(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    """Run the tenant's full sync (the one its connector's enabling queued, or a new one) to its end."""
    answer = await client.post(f"/api/v1/tenants/{tenant.slug}/lucca/directory/sync", headers=tenant.auth)
    assert answer.status_code == 202, answer.text
    await drain_queue()
    run = await run_of(client, tenant, answer.json()["run_id"])
    assert run["status"] == "succeeded", run
