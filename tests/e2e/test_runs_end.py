"""Every run ends (finding 7): deadline overruns count toward the give-up, a huge Retry-After is capped, a retried
job resumes from its checkpoints, and the sweep never waits for a connection behind busy jobs."""

import asyncio
import contextlib
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.services.context import Services
from app.services.run_log import finish_run
from app.workers.settings import CONNECTIONS_PER_JOB, WorkerSettings, worker_pool_size
from app.workers.tasks import runs_sweep
from tests.e2e.conftest import WEBHOOK, HiringTenant, drain_queue, events_of, run_of
from tests.e2e.test_recovery import wait_for_run, worker_process
from tests.factories import hire_body
from tests.sandbox_server import LuccaAccount

pytestmark = pytest.mark.usefixtures("clean_state")


def host_of(lucca: LuccaAccount) -> str:
    return lucca.base_url.split("//")[1].split("/")[0]


def calls_to(lucca: LuccaAccount, method: str) -> list[dict[str, Any]]:
    return [call for call in lucca.calls()["items"] if call["method"] == method and call["path"] == "/api/v3/users"]


async def test_a_huge_retry_after_is_capped_and_the_run_gives_up(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    """Retry-After: 1e12 once overflowed the deferral; the job failed and the sweep re-queued the run forever."""
    tenant = await hiring_tenant()
    lucca.add_faults({"status": 429, "count": 1000, "retry_after": 1e12, "match": "GET /api/v3/users"})
    answer = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    with worker_process(GIVE_UP_AFTER_SECONDS="3"):
        run = await wait_for_run(client, tenant, answer.json()["run_id"], seconds=30)
    said = f"Lucca at {host_of(lucca)} is limiting requests (HTTP 429)"
    assert run["status"] == "failed" and run["error"] == f"Gave up after 3 seconds: {said}.", run
    notes = [event["message"] for event in await events_of(client, tenant, run["id"]) if event["level"] == "warning"]
    assert notes == [f"{said}; next try in 3 s."]
    assert len(calls_to(lucca, "GET")) == 2


async def test_a_run_that_keeps_overrunning_the_job_deadline_gives_up(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    """Each attempt used to be retried after 1 s, uncounted, restarting its Lucca calls: it never ended."""
    tenant = await hiring_tenant()
    lucca.add_faults({"delay_seconds": 10, "count": 1000, "match": "GET /api/v3/users"})
    answer = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    started = time.monotonic()
    # A job deadline of 7 - 5 = 2 s; the lookup takes 10.
    with worker_process(JOB_TIMEOUT_SECONDS="7", GIVE_UP_AFTER_SECONDS="5"):
        run = await wait_for_run(client, tenant, answer.json()["run_id"], seconds=40)
    said = "This run's work did not finish within the job's deadline of 2 s"
    assert run["status"] == "failed" and run["error"] == f"Gave up after 5 seconds: {said}.", run
    assert time.monotonic() - started < 25
    warnings = [event["message"] for event in await events_of(client, tenant, run["id"]) if event["level"] == "warning"]
    # Each overrun is a failed attempt on the backoff schedule (0.2, 0.4, 0.8 s), until 5 s after the first one.
    assert warnings[:2] == [f"{said}; next try in {wait} s." for wait in ("0.2", "0.4")]
    assert len(warnings) <= 3


async def test_a_create_cut_by_the_deadline_is_not_made_again(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    """Lucca makes the user but its answer comes after the job's deadline: the next attempt finds it, once."""
    tenant = await hiring_tenant()
    lucca.add_faults({"delay_seconds": 4, "after": True, "count": 1, "match": "POST /api/v3/users"})
    answer = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    with worker_process(JOB_TIMEOUT_SECONDS="7"):
        run = await wait_for_run(client, tenant, answer.json()["run_id"], seconds=30)
    assert run["status"] == "succeeded" and run["counts"]["created"] == 1, run
    assert len([user for user in lucca.users() if user["lastName"] == "Müller"]) == 1
    await asyncio.sleep(3)  # the sandbox logs the create once its late answer has gone
    assert len(calls_to(lucca, "POST")) == 1


async def test_a_job_whose_items_are_all_done_only_closes_the_run(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount, migrated_database: str
) -> None:
    """An attempt stopped after recording its item but before closing the run: the next one must not hire again."""
    tenant = await hiring_tenant()
    answer = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    run_id = answer.json()["run_id"]
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        await connection.execute(
            """UPDATE runs SET status = 'running', counts = jsonb_set(counts, '{created}', '1') WHERE id = $1;""",
            uuid.UUID(run_id),
        )
        await connection.execute(
            "INSERT INTO run_items (run_id, item_id, outcome, at) VALUES ($1, 'candidate', 'created', now())",
            uuid.UUID(run_id),
        )
    finally:
        await connection.close()
    await drain_queue()
    run = await run_of(client, tenant, run_id)
    assert run["status"] == "succeeded" and run["counts"]["created"] == 1, run
    assert lucca.calls()["items"] == []


async def test_the_sweep_gets_a_connection_while_every_job_holds_two() -> None:
    """Jobs hold their lock's connection and a session's: the worker's pool leaves one for the sweep."""
    services = Services.start(Settings(), pool_size=worker_pool_size(WorkerSettings.max_jobs))
    try:
        async with contextlib.AsyncExitStack() as jobs:
            for _ in range(WorkerSettings.max_jobs * CONNECTIONS_PER_JOB):
                await jobs.enter_async_context(services.engine.connect())
            assert await asyncio.wait_for(runs_sweep({"services": services}), 5) == 0
    finally:
        await services.close()


async def test_a_run_ending_on_an_error_before_counting_any_item_is_failed(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, migrated_database: str
) -> None:
    """A run whose total is only known at its end (a statistics push) and that stops on an error is not a success."""
    tenant = await hiring_tenant()
    run_id = uuid.UUID((await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)).json()["run_id"])
    engine = create_engine(migrated_database)
    try:
        connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
        await connection.execute("UPDATE runs SET counts = jsonb_set(counts, '{total}', '0') WHERE id = $1", run_id)
        await connection.close()
        run = await finish_run(create_sessionmaker(engine), run_id, error="Lucca refused the API key")
    finally:
        await engine.dispose()
    assert run.status == "failed" and run.error == "Lucca refused the API key."
