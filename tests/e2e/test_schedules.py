"""Nightly schedules (contract 5.5): once per local day per tenant, with several workers, catching up after
downtime, waiting for the next night when enabled after the hour. "Now" is given to the tick, never slept for."""

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from arq import cron
from arq.typing import WorkerSettingsType
from arq.worker import create_worker
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import Sessionmaker, create_engine, create_sessionmaker
from app.services.schedules import SPREAD, claim_due_runs, hour_offset, next_due
from app.workers import WorkerSettings
from app.workers.settings import schedules_tick
from tests.e2e.conftest import claim_connector_runs
from tests.e2e.test_cards_stats import EVENTS, cards_tenant, lucca_calls, send
from tests.factories import ADMIN, TenantHandle
from tests.sandbox_server import CardsAccount, LuccaAccount, SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")
PARIS = "Europe/Paris"
NIGHTLY: dict[str, Any] = {"stats_sync": {"enabled": True, "hour": 2}}
# hour_offset's answers, worked out once: a change to the hash would move every tenant's night.
EXPECTED_OFFSET = 3072  # 51 min 12 s
MINUTE_RANGE = (120, 220)
MOST_IN_ONE_SECOND = 12


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("after", "timezone", "hour", "offset", "due"),
    [
        ("2026-12-01 10:00", PARIS, 2, 0, "2026-12-02 01:00"),  # the afternoon: the next night
        ("2026-12-01 00:59", PARIS, 2, 0, "2026-12-01 01:00"),  # before the hour: tonight
        ("2026-12-01 01:00", PARIS, 2, 0, "2026-12-02 01:00"),  # exactly at it (a run then): the next night
        ("2027-03-27 12:00", PARIS, 2, 0, "2027-03-28 01:00"),  # 02:00 does not exist that night: 03:00 CEST
        ("2026-10-24 12:00", PARIS, 2, 0, "2026-10-25 00:00"),  # 02:00 comes twice that night: the first one
        ("2026-12-01 00:00", "Pacific/Auckland", 2, 0, "2026-12-01 13:00"),  # already 13:00 on the 1st there
        ("2026-12-31 23:30", "UTC", 0, 0, "2027-01-01 00:00"),
        # With an offset: the hour has come but not the job's second in it; then exactly at it; then past it.
        ("2026-12-01 01:10", PARIS, 2, 1800, "2026-12-01 01:30"),
        ("2026-12-01 01:30", PARIS, 2, 1800, "2026-12-02 01:30"),
        ("2026-12-01 01:59:59", PARIS, 2, 3599, "2026-12-02 01:59:59"),
        ("2027-03-27 12:00", PARIS, 2, 3599, "2027-03-28 01:59:59"),  # 03:59:59 CEST
        ("2026-10-24 12:00", PARIS, 2, 3599, "2026-10-25 00:59:59"),  # within the first 02:00 hour
        ("2026-12-31 23:30", "UTC", 23, 3599, "2026-12-31 23:59:59"),
    ],
)
def test_the_next_local_hour(after: str, timezone: str, hour: int, offset: int, due: str) -> None:
    assert next_due(utc(after), timezone, hour, timedelta(seconds=offset)) == utc(due)


def test_each_tenants_job_has_a_stable_offset_spread_over_its_hour() -> None:
    tenant = uuid.UUID("8c1d7a5e-3b2f-4e8a-9c0d-1f2e3d4c5b6a")
    # Fixed by the tenant's id and the operation alone: the same in any process, after any restart.
    assert hour_offset(tenant, "stats_sync") == timedelta(seconds=EXPECTED_OFFSET)
    assert hour_offset(tenant, "people_sync") != hour_offset(tenant, "stats_sync")
    offsets = [hour_offset(uuid.UUID(int=index), "stats_sync") for index in range(10_000)]
    assert all(timedelta(0) <= offset < SPREAD and offset.microseconds == 0 for offset in offsets)
    # 10,000 tenants due at one hour: every minute of it gets its share (167 on average), no second more than a few.
    by_minute = Counter(int(offset.total_seconds()) // 60 for offset in offsets)
    by_second = Counter(offsets)
    assert len(by_minute) == 60 and MINUTE_RANGE[0] <= min(by_minute.values())
    assert max(by_minute.values()) <= MINUTE_RANGE[1] and max(by_second.values()) <= MOST_IN_ONE_SECOND


@pytest.fixture
async def engines() -> AsyncIterator[list[AsyncEngine]]:
    """Three database pools, as three worker processes would have."""
    pools = [create_engine(os.environ["DATABASE_URL"], pool_size=2) for _ in range(3)]
    yield pools
    for pool in pools:
        await pool.dispose()


@pytest.fixture
def cards(sandbox: SandboxServer) -> CardsAccount:
    return sandbox.new_cards_account()


@pytest.fixture
def sessionmaker(engines: list[AsyncEngine]) -> Sessionmaker:
    return create_sessionmaker(engines[0])


async def schedule_row(database_url: str, slug: str = "acme") -> dict[str, Any]:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        row = await connection.fetchrow(
            "SELECT schedules.* FROM schedules JOIN tenants ON tenants.id = schedules.tenant_id "
            "WHERE slug = $1 AND schedules.connector_id IS NOT NULL",
            slug,
        )
    finally:
        await connection.close()
    return dict(row) if row else {}


async def runs(client: httpx.AsyncClient, tenant: TenantHandle) -> list[dict[str, Any]]:
    answer = await client.get(f"/api/v1/tenants/{tenant.slug}/runs", params={"operation": "stats_sync"}, headers=ADMIN)
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def settings_patch(client: httpx.AsyncClient, tenant: TenantHandle, **settings: Any) -> None:
    path = f"/api/v1/tenants/{tenant.slug}/connectors/cards"
    answer = await client.patch(path, json={"settings": settings}, headers=ADMIN)
    assert answer.status_code == 200, answer.text


async def test_several_workers_ticking_at_once_make_one_run_per_local_day(
    client: httpx.AsyncClient,
    lucca: LuccaAccount,
    cards: CardsAccount,
    engines: list[AsyncEngine],
    migrated_database: str,
) -> None:
    tenant = await cards_tenant(client, lucca, cards, **NIGHTLY)
    due = (await schedule_row(migrated_database))["due_at"]
    ticks = [create_sessionmaker(engine) for engine in engines]

    async def tick_all(now: datetime) -> list[Any]:
        claimed = await asyncio.gather(*(claim_connector_runs(tick, now) for tick in ticks for _ in range(2)))
        return [run_id for run_ids in claimed for run_id in run_ids]

    assert await tick_all(due - timedelta(seconds=1)) == []
    [run_id] = await tick_all(due)
    assert await tick_all(due + timedelta(hours=3)) == []
    [next_night] = await tick_all(due + timedelta(days=1, minutes=5))
    listed = await runs(client, tenant)
    assert {run["id"] for run in listed} == {str(run_id), str(next_night)}
    assert {(run["trigger"], run["connector"], run["status"]) for run in listed} == {("schedule", "cards", "queued")}


async def test_a_service_down_at_the_hour_catches_up_once_when_it_is_back(
    client: httpx.AsyncClient, lucca: LuccaAccount, cards: CardsAccount, sessionmaker: Sessionmaker,
    migrated_database: str,
) -> None:  # fmt: skip
    await cards_tenant(client, lucca, cards, **NIGHTLY)
    due = (await schedule_row(migrated_database))["due_at"]
    # Down for three nights: one push when back, not three; then the next night as usual.
    back = due + timedelta(days=2, hours=7)
    assert len(await claim_connector_runs(sessionmaker, back)) == 1
    assert await claim_connector_runs(sessionmaker, back + timedelta(minutes=1)) == []
    stored = await schedule_row(migrated_database)
    offset = hour_offset(stored["tenant_id"], "stats_sync")
    assert stored["last_run_at"] == back and stored["due_at"] == next_due(back, PARIS, 2, offset)
    assert stored["due_at"] - back < timedelta(days=1)
    assert len(await claim_connector_runs(sessionmaker, stored["due_at"])) == 1


async def test_enabling_after_the_hour_waits_for_the_next_night(
    client: httpx.AsyncClient, lucca: LuccaAccount, cards: CardsAccount, sessionmaker: Sessionmaker,
    migrated_database: str,
) -> None:  # fmt: skip
    before = datetime.now(UTC)
    passed = (before.astimezone(ZoneInfo(PARIS)).hour - 1) % 24  # an hour that has passed today (or late yesterday)
    tenant = await cards_tenant(client, lucca, cards, stats_sync={"enabled": True, "hour": passed})
    stored = await schedule_row(migrated_database)
    assert stored["enabled_at"] >= before and stored["due_at"] - stored["enabled_at"] > timedelta(hours=20)
    assert await claim_connector_runs(sessionmaker, stored["enabled_at"] + timedelta(minutes=1)) == []
    assert len(await claim_connector_runs(sessionmaker, stored["due_at"])) == 1
    assert [run["trigger"] for run in await runs(client, tenant)] == ["schedule"]


async def test_the_schedule_follows_the_settings_and_the_tenants_timezone(
    client: httpx.AsyncClient, lucca: LuccaAccount, cards: CardsAccount, sessionmaker: Sessionmaker,
    migrated_database: str,
) -> None:  # fmt: skip
    tenant = await cards_tenant(client, lucca, cards)
    assert await schedule_row(migrated_database) == {}  # stats_sync.enabled is false by default
    await settings_patch(client, tenant, **NIGHTLY)
    enabled = await schedule_row(migrated_database)
    offset = hour_offset(enabled["tenant_id"], "stats_sync")
    assert enabled["due_at"] == next_due(enabled["enabled_at"], PARIS, 2, offset)

    await settings_patch(client, tenant, stats_sync={"enabled": True, "hour": 23})
    moved = await schedule_row(migrated_database)
    assert (moved["enabled_at"], moved["due_at"]) == (
        enabled["enabled_at"],
        next_due(enabled["enabled_at"], PARIS, 23, offset),
    )

    answer = await client.patch(f"/api/v1/tenants/{tenant.slug}", json={"timezone": "Asia/Tokyo"}, headers=ADMIN)
    assert answer.status_code == 200
    # The next tick moves the night to Tokyo's, without running anything before it.
    assert await claim_connector_runs(sessionmaker, enabled["enabled_at"] + timedelta(seconds=1)) == []
    tokyo = await schedule_row(migrated_database)
    tokyo_due = next_due(enabled["enabled_at"], "Asia/Tokyo", 23, offset)
    assert (tokyo["timezone"], tokyo["due_at"]) == ("Asia/Tokyo", tokyo_due)

    for change in ({"settings": {"stats_sync": {"enabled": False}}}, {"enabled": False}):
        await settings_patch(client, tenant, **NIGHTLY)
        path = f"/api/v1/tenants/{tenant.slug}/connectors/cards"
        assert (await client.patch(path, json=change, headers=ADMIN)).status_code == 200
        assert (await schedule_row(migrated_database))["due_at"] is None
        assert await claim_connector_runs(sessionmaker, datetime.now(UTC) + timedelta(days=30)) == []
    await client.patch(f"/api/v1/tenants/{tenant.slug}/connectors/cards", json={"enabled": True}, headers=ADMIN)
    assert (await schedule_row(migrated_database))["enabled_at"] > enabled["enabled_at"]
    assert await runs(client, tenant) == []


async def test_a_tick_with_nothing_due_is_one_query(
    client: httpx.AsyncClient, lucca: LuccaAccount, cards: CardsAccount, engines: list[AsyncEngine]
) -> None:
    await cards_tenant(client, lucca, cards, **NIGHTLY)
    ticks = create_sessionmaker(engines[0])
    assert await claim_due_runs(ticks) == []  # the pool's first connection sets itself up
    statements: list[str] = []
    event.listen(engines[0].sync_engine, "before_cursor_execute", lambda *call: statements.append(call[2]))
    assert await claim_due_runs(ticks) == []
    assert len(statements) == 1 and statements[0].lstrip().startswith("SELECT")


async def worker_with_the_tick() -> None:
    """A real arq worker in burst mode whose only schedule is the tick, run at its start."""
    tick = cron(schedules_tick, name="schedules.tick", second=0, run_at_startup=True)
    worker = create_worker(cast(WorkerSettingsType, WorkerSettings), burst=True, poll_delay=0.05, cron_jobs=[tick])
    try:
        await worker.main()
    finally:
        await worker.close()


async def test_two_real_workers_starting_after_the_hour_push_each_tenant_once(
    client: httpx.AsyncClient, sandbox: SandboxServer, migrated_database: str
) -> None:
    tenants = []
    for slug in ("acme", "globex"):
        lucca, cards = sandbox.new_lucca_account(), sandbox.new_cards_account()
        tenant = await cards_tenant(client, lucca, cards, slug=slug, **NIGHTLY)
        await send(client, tenant, *EVENTS)
        tenants.append((tenant, lucca))
    # Both were enabled three days ago and the service was down since: due.
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        await connection.execute("UPDATE schedules SET enabled_at = enabled_at - interval '3 days', due_at = now()")
    finally:
        await connection.close()
    await asyncio.gather(worker_with_the_tick(), worker_with_the_tick())
    for tenant, lucca in tenants:
        [run] = await runs(client, tenant)
        assert (run["trigger"], run["status"], run["counts"]["updated"]) == ("schedule", "succeeded", 2)
        assert len(lucca_calls(lucca, "PUT")) == 2
