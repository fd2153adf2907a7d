"""Retention (contract section 11): aged runs are deleted with their events, and exactly those; what prevents
duplicates stays. Runs come from real deliveries and retries; only their age and outcome are set in Postgres."""

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.services.retention import purge_expired_runs
from app.workers.tasks import runs_retention
from tests.factories import TenantHandle, add_softgarden, create_tenant, hire_body

pytestmark = pytest.mark.usefixtures("clean_state")
WEBHOOK = "/integrations/webhooks/softgarden/candidate-hired"
RETENTION_DAYS = 90


async def deliver(client: httpx.AsyncClient, tenant: TenantHandle, **changes: Any) -> uuid.UUID:
    answer = await client.post(WEBHOOK, json=hire_body(**changes), headers=tenant.webhook_auth)
    assert answer.status_code == 202, answer.text
    return uuid.UUID(answer.json()["run_id"])


async def retry(client: httpx.AsyncClient, tenant: TenantHandle, run_id: uuid.UUID) -> uuid.UUID:
    answer = await client.post(f"/api/v1/tenants/{tenant.slug}/runs/{run_id}/retry", headers=tenant.auth)
    assert answer.status_code == 202, answer.text
    return uuid.UUID(answer.json()["run_id"])


async def end(db: asyncpg.Connection, run_id: uuid.UUID, status: str, days_ago: int | None) -> None:
    """The run ended `days_ago` days ago with `status` (None: it is still running), and holds three events."""
    finished = None if days_ago is None else timedelta(days=days_ago)
    await db.execute(
        "UPDATE runs SET status = $2, created_at = now() - $3::interval - interval '1 hour', finished_at = now() - $4::interval "
        "WHERE id = $1",
        run_id, status, timedelta(days=days_ago or RETENTION_DAYS + 10), finished,
    )  # fmt: skip
    await db.execute(
        "INSERT INTO run_events (run_id, tenant_id, at, level, subject, action, message) "
        "SELECT $1, (SELECT tenant_id FROM runs WHERE id = $1), now(), 'info', 'p' || n, 'note', 'Event.' "
        "FROM generate_series(1, 3) AS n",
        run_id,
    )


async def test_aged_runs_go_with_their_events_and_exactly_those(
    client: httpx.AsyncClient, app: FastAPI, migrated_database: str
) -> None:
    acme = await add_softgarden(client, await create_tenant(client, "acme"))
    globex = await add_softgarden(client, await create_tenant(client, "globex"))
    db = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        old_hire = await deliver(client, acme, applicationId="old-hire")
        old_other_tenant = await deliver(client, globex, applicationId="old-hire")
        old_skip = await deliver(client, acme, applicationId="old-skip", status="Interview")
        young = await deliver(client, acme, applicationId="young")
        old_unfinished = await deliver(client, acme, applicationId="old-unfinished")
        just_kept = await deliver(client, acme, applicationId="just-kept")
        for run_id, status, days in [
            (old_hire, "succeeded", 100), (old_other_tenant, "partial", 91), (old_skip, "succeeded", 120),
            (young, "succeeded", 10), (old_unfinished, "running", None), (just_kept, "failed", 89),
        ]:  # fmt: skip
            await end(db, run_id, status, days)
        # Lineages: an old failure retried lately; one retried long ago; one whose retry is still running.
        retried_lately = await deliver(client, acme, applicationId="retried-lately")
        await end(db, retried_lately, "failed", 100)
        late_retry = await retry(client, acme, retried_lately)
        await end(db, late_retry, "succeeded", 5)
        retried_long_ago = await deliver(client, acme, applicationId="retried-long-ago")
        await end(db, retried_long_ago, "failed", 100)
        first_retry = await retry(client, acme, retried_long_ago)
        await end(db, first_retry, "failed", 99)
        second_retry = await retry(client, acme, first_retry)
        await end(db, second_retry, "partial", 98)
        retrying = await deliver(client, acme, applicationId="retrying")
        await end(db, retrying, "failed", 100)
        running_retry = await retry(client, acme, retrying)
        await end(db, running_retry, "running", None)
        events_of_kept = await db.fetchval(
            "SELECT count(*) FROM run_events WHERE run_id = ANY($1)",
            [young, old_unfinished, just_kept, retried_lately, late_retry, retrying, running_retry],
        )
        gone = {old_hire, old_other_tenant, old_skip, retried_long_ago, first_retry, second_retry}

        assert await purge_expired_runs(app.state.services.sessionmaker, RETENTION_DAYS, pause=0) == len(gone)

        kept = {row["id"] for row in await db.fetch("SELECT id FROM runs")}
        assert kept == {young, old_unfinished, just_kept, retried_lately, late_retry, retrying, running_retry}
        assert await db.fetchval("SELECT count(*) FROM run_events") == events_of_kept == 7 * 3
        # The kept lineages still point at their retries.
        assert await db.fetchval("SELECT retried_by FROM runs WHERE id = $1", retried_lately) == late_retry
        assert await db.fetchval("SELECT retry_of FROM runs WHERE id = $1", running_retry) == retrying
        # A hire's delivery keeps its id (without the candidate), a delivery of another status goes.
        deliveries = {row["external_id"]: row for row in await db.fetch("SELECT * FROM deliveries")}
        assert deliveries["old-hire"]["run_id"] in (old_hire, old_other_tenant)
        assert all(deliveries[name]["payload"] == "{}" for name in ("old-hire", "retried-long-ago"))
        assert await db.fetchval("SELECT count(*) FROM deliveries WHERE external_id IS NULL") == 0
        assert await db.fetchval("SELECT count(*) FROM deliveries WHERE payload <> '{}'") == 5
    finally:
        await db.close()

    # The hire delivered before the purge is still a duplicate, answered with its first run's id.
    again = await client.post(WEBHOOK, json=hire_body(applicationId="old-hire"), headers=acme.webhook_auth)
    assert again.status_code == 200, again.text
    assert again.json() == {"run_id": str(old_hire), "duplicate": True}
    assert (await client.get(f"/api/v1/tenants/acme/runs/{old_hire}", headers=acme.auth)).status_code == 404
    # Nothing is left to delete.
    assert await purge_expired_runs(app.state.services.sessionmaker, RETENTION_DAYS, pause=0) == 0


async def test_the_daily_job_runs_once_a_day_and_goes_on_past_its_deadline(
    client: httpx.AsyncClient, app: FastAPI, migrated_database: str
) -> None:
    acme = await add_softgarden(client, await create_tenant(client, "acme"))
    old = await deliver(client, acme, applicationId="old")
    db = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        await end(db, old, "succeeded", 200)
        services = app.state.services
        # A deadline already past: nothing is deleted, and the caller is told some are left.
        assert await purge_expired_runs(services.sessionmaker, RETENTION_DAYS, deadline=0, pause=0) is None
        assert await db.fetchval("SELECT count(*) FROM runs") == 1
        # The first worker's job of the day deletes; another worker's, the same day, does nothing.
        assert await runs_retention({"services": services, "job_try": 1}) == 1
        await end(db, await deliver(client, acme, applicationId="older"), "failed", 300)
        assert await runs_retention({"services": services, "job_try": 1}) is None
        assert await db.fetchval("SELECT count(*) FROM runs") == 1
        # A new attempt of the day's job (after a deadline or a dead worker) goes on.
        assert await runs_retention({"services": services, "job_try": 2}) == 1
    finally:
        await db.close()
