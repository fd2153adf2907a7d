"""Retrying a run (contract section 6): over TCP, with a real worker; a retry points back, the run points at it."""

import asyncio

import httpx
import pytest

from tests.e2e.conftest import WEBHOOK, HiringTenant, drain_queue, run_of
from tests.factories import SOFTGARDEN_SETTINGS, TenantHandle, hire_body

pytestmark = pytest.mark.usefixtures("clean_state")


async def retry(client: httpx.AsyncClient, tenant: TenantHandle, run_id: str) -> httpx.Response:
    return await client.post(f"/api/v1/tenants/{tenant.slug}/runs/{run_id}/retry", headers=tenant.auth)


async def failed_hire(client: httpx.AsyncClient, hiring_tenant: HiringTenant) -> tuple[TenantHandle, str]:
    """A hire whose company matches no establishment: its run fails until an alias is set."""
    tenant = await hiring_tenant()
    answer = await client.post(WEBHOOK, json=hire_body(company="Acme Roma"), headers=tenant.webhook_auth)
    await drain_queue()
    run_id: str = answer.json()["run_id"]
    assert (await run_of(client, tenant, run_id))["status"] == "failed"
    return tenant, run_id


async def test_a_retry_is_shown_both_ways_and_blocks_another_until_it_fails(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant
) -> None:
    tenant, first = await failed_hire(client, hiring_tenant)
    original = await run_of(client, tenant, first)
    assert (original["retry_of"], original["retried_by"]) == (None, None)

    accepted = await retry(client, tenant, first)
    assert accepted.status_code == 202
    second = accepted.json()["run_id"]
    assert (await run_of(client, tenant, first))["retried_by"] == second
    assert (await run_of(client, tenant, second))["retry_of"] == first
    listed = (await client.get(f"/api/v1/tenants/{tenant.slug}/runs", headers=tenant.auth)).json()["items"]
    assert {run["id"]: (run["retry_of"], run["retried_by"]) for run in listed} == {
        first: (None, second), second: (first, None)
    }  # fmt: skip
    queued = await retry(client, tenant, first)
    assert queued.status_code == 409 and second in queued.json()["detail"] and "queued" in queued.json()["detail"]

    await drain_queue()  # still no alias: the retry fails too, so the first run may be retried again
    assert (await run_of(client, tenant, second))["status"] == "failed"
    third = (await retry(client, tenant, first)).json()["run_id"]
    assert (await run_of(client, tenant, first))["retried_by"] == third

    settings = {**SOFTGARDEN_SETTINGS, "establishment_aliases": {"Acme Roma": 1}}
    path = f"/api/v1/tenants/{tenant.slug}/connectors/softgarden"
    assert (await client.put(path, json={"settings": settings}, headers=tenant.auth)).status_code == 200
    await drain_queue()
    assert (await run_of(client, tenant, third))["status"] == "succeeded"
    # The work is done: neither the first run nor its other failed retry can be retried; the 409 names the retry.
    for run_id in (first, second):
        refused = await retry(client, tenant, run_id)
        assert refused.status_code == 409 and third in refused.json()["detail"], refused.text
    assert (await run_of(client, tenant, first))["retried_by"] == third
    assert (await run_of(client, tenant, second))["retried_by"] is None  # a sibling of the retry, not retried itself
    assert (await retry(client, tenant, third)).status_code == 409


async def test_a_run_that_is_queued_or_succeeded_cannot_be_retried(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant
) -> None:
    tenant = await hiring_tenant()
    answer = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    run_id = answer.json()["run_id"]
    assert (await retry(client, tenant, run_id)).status_code == 409
    await drain_queue()
    refused = await retry(client, tenant, run_id)
    assert refused.status_code == 409 and "succeeded" in refused.json()["detail"]
    assert (await run_of(client, tenant, run_id))["retried_by"] is None


async def test_two_concurrent_retries_of_one_run_make_one_retry(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant
) -> None:
    tenant, first = await failed_hire(client, hiring_tenant)
    for _ in range(3):
        answers = await asyncio.gather(retry(client, tenant, first), retry(client, tenant, first))
        assert sorted(answer.status_code for answer in answers) == [202, 409]
        [accepted] = [answer for answer in answers if answer.status_code == 202]
        [refused] = [answer for answer in answers if answer.status_code == 409]
        assert accepted.json()["run_id"] in refused.json()["detail"]
        assert (await run_of(client, tenant, first))["retried_by"] == accepted.json()["run_id"]
        await drain_queue()  # the retry fails (no alias yet), so the next round may retry again
    runs = (await client.get(f"/api/v1/tenants/{tenant.slug}/runs", headers=tenant.auth)).json()["items"]
    assert len(runs) == 4 and all(run["status"] == "failed" for run in runs)


async def test_a_retry_of_a_retry_is_the_latest_retry_of_the_whole_lineage(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant
) -> None:
    tenant, first = await failed_hire(client, hiring_tenant)
    second = (await retry(client, tenant, first)).json()["run_id"]
    await drain_queue()
    third = (await retry(client, tenant, second)).json()["run_id"]
    assert (await run_of(client, tenant, third))["retry_of"] == second
    assert [(await run_of(client, tenant, run_id))["retried_by"] for run_id in (first, second)] == [third, third]
    for run_id in (first, second):
        refused = await retry(client, tenant, run_id)
        assert refused.status_code == 409 and third in refused.json()["detail"]
