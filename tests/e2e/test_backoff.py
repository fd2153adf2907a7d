"""A failing partner's backoff goes on across job attempts, in words naming the partner (contract section 1)."""

import asyncio
import itertools
import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import WEBHOOK, HiringTenant, drain_queue, events_of, run_of
from tests.e2e.test_recovery import worker_process
from tests.factories import add_softgarden, create_tenant, hire_body
from tests.sandbox_server import LuccaAccount, free_port

pytestmark = pytest.mark.usefixtures("clean_state")
# tests/conftest.py: RETRY_BASE_SECONDS=0.2, RETRY_MAX_SECONDS=2, RETRY_IN_CALL_SECONDS=1.
# Waits 0.2 and 0.4 fit in one call's budget of 1 s; 0.8 would not, so from there each wait is a deferred job.
# The third failure is a 429 with Retry-After: 1, which is the wait; the doubling then goes on from the count.
EXPECTED_GAPS = [0.2, 0.4, 1.0, 1.6, 2.0, 2.0]
# A deferred job waits for arq's poll (0.05 s in drain_queue) and opens a run: some slack, never less than asked.
SLACK_SECONDS = 0.6


def user_list_calls(lucca: LuccaAccount) -> list[dict[str, Any]]:
    return [call for call in lucca.calls()["items"] if call["method"] == "GET" and call["path"] == "/api/v3/users"]


async def test_the_waits_double_across_job_attempts_and_honour_retry_after(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant()
    lucca.add_faults(
        {"status": 503, "count": 2, "match": "GET /api/v3/users"},
        {"status": 429, "count": 1, "retry_after": 1, "match": "GET /api/v3/users"},
        {"status": 503, "count": 3, "match": "GET /api/v3/users"},
    )
    answer = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    await drain_queue()
    run = await run_of(client, tenant, answer.json()["run_id"])
    assert run["status"] == "succeeded" and run["counts"]["created"] == 1

    # Up to the first lookup that succeeds (the hire then makes its other lookups).
    calls = user_list_calls(lucca)
    calls = calls[: next(index for index, call in enumerate(calls) if call["status"] == 200) + 1]
    assert [call["status"] for call in calls] == [503, 503, 429, 503, 503, 503, 200]
    gaps = [later["at"] - earlier["at"] for earlier, later in itertools.pairwise(calls)]
    for gap, expected in zip(gaps, EXPECTED_GAPS, strict=True):
        assert expected - 0.02 <= gap <= expected + SLACK_SECONDS, (gaps, EXPECTED_GAPS)

    notes = [event["message"] for event in await events_of(client, tenant, run["id"]) if event["level"] == "warning"]
    host = lucca.base_url.split("//")[1].split("/")[0]
    assert notes == [
        f"Lucca at {host} is limiting requests (HTTP 429); next try in 1 s.",
        f"Lucca at {host} is unavailable (HTTP 503); next try in 1.6 s.",
        f"Lucca at {host} is unavailable (HTTP 503); next try in 2 s.",
        f"Lucca at {host} is unavailable (HTTP 503); next try in 2 s.",
    ]


async def test_an_unreachable_lucca_gives_up_in_plain_words(client: httpx.AsyncClient) -> None:
    port = free_port()  # nothing listens there
    tenant = await add_softgarden(
        client, await create_tenant(client, "acme", base_url=f"http://127.0.0.1:{port}/acme", api_key="k")
    )
    answer = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    run_id = answer.json()["run_id"]
    with worker_process(GIVE_UP_AFTER_SECONDS="4"):
        deadline = time.monotonic() + 60
        while (run := await run_of(client, tenant, run_id))["status"] != "failed":
            assert time.monotonic() < deadline, run
            await asyncio.sleep(0.25)
    said = f"Lucca at 127.0.0.1:{port} did not answer (connection refused)"
    assert run["error"] == f"Gave up after 4 seconds: {said}."
    events = await events_of(client, tenant, run_id)
    notes = [event["message"] for event in events if event["action"] == "note"]
    # In-process waits 0.2 and 0.4, then deferred: 0.8, 1.6, 2, ... until 4 s after the first failure.
    assert notes[:3] == [f"{said}; next try in {wait} s." for wait in ("0.8", "1.6", "2")]
    assert events[-1]["action"] == "fail" and events[-1]["message"] == run["error"]
    assert "Error" not in str(events)
