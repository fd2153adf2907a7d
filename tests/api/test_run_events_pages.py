"""A run's events in pages (contract section 6), over TCP from the real server: every event once, in order, even
while the run is still writing them."""

import asyncio
import base64
import uuid
from typing import Any

import httpx
import pytest

from app.db import create_engine, create_sessionmaker
from app.services.run_log import RunLog, finish_run
from tests.factories import TenantHandle, add_softgarden, create_tenant, hire_body

pytestmark = pytest.mark.usefixtures("clean_state")
WEBHOOK = "/integrations/webhooks/softgarden/candidate-hired"


async def queued_run(client: httpx.AsyncClient) -> tuple[TenantHandle, str]:
    """A hire's run, queued (no worker runs here), with no event yet."""
    tenant = await add_softgarden(client, await create_tenant(client, "acme"))
    answer = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    assert answer.status_code == 202, answer.text
    return tenant, answer.json()["run_id"]


async def page(
    client: httpx.AsyncClient, tenant: TenantHandle, run_id: str, **params: Any
) -> tuple[list[str], str | None]:
    answer = await client.get(f"/api/v1/tenants/{tenant.slug}/runs/{run_id}/events", params=params, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return [event["subject"] for event in body["items"]], body["next"]


async def write_events(database_url: str, run_id: str, count: int, finish: bool) -> None:
    engine = create_engine(database_url, pool_size=2)
    sessionmaker = create_sessionmaker(engine)
    try:
        log = RunLog(sessionmaker, uuid.UUID(run_id), {})
        for n in range(count):
            await log.event("note", f"p{n}", f"Event {n}.")
        if finish:
            await finish_run(sessionmaker, uuid.UUID(run_id))
    finally:
        await engine.dispose()


async def test_pages_give_every_event_once_in_order_and_end_with_next_null(
    client: httpx.AsyncClient, migrated_database: str
) -> None:
    tenant, run_id = await queued_run(client)
    await write_events(migrated_database, run_id, 25, finish=True)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        subjects, after = await page(client, tenant, run_id, limit=10, **({"after": after} if after else {}))
        seen += subjects
        pages += 1
        if after is None:
            break
    assert seen == [f"p{n}" for n in range(25)]
    assert pages == 3
    # The default page holds them all, and a finished run's last page says there is no more.
    assert await page(client, tenant, run_id) == (seen, None)


async def test_paging_while_the_run_writes_its_events(client: httpx.AsyncClient, migrated_database: str) -> None:
    tenant, run_id = await queued_run(client)
    writer = asyncio.create_task(write_events(migrated_database, run_id, 600, finish=True))
    seen: list[str] = []
    after: str | None = None
    read_while_writing = 0
    while True:
        subjects, next_cursor = await page(client, tenant, run_id, limit=7, **({"after": after} if after else {}))
        seen += subjects
        read_while_writing += bool(subjects) and not writer.done()
        if next_cursor is None:
            break
        after = next_cursor
    await writer
    assert seen == [f"p{n}" for n in range(600)]
    assert read_while_writing > 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"after": "not-a-cursor"}, "after"),
        ({"after": base64.urlsafe_b64encode(b"e-1").decode()}, "after"),
        ({"after": base64.urlsafe_b64encode(b"e99999999999999999999").decode()}, "after"),
        ({"after": "%%%"}, "after"),
    ],
)
async def test_a_limit_outside_or_a_cursor_not_given_out_is_a_422_naming_it(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    tenant, run_id = await queued_run(client)
    answer = await client.get(f"/api/v1/tenants/acme/runs/{run_id}/events", params=params, headers=tenant.auth)
    assert answer.status_code == 422, answer.text
    assert [error["loc"] for error in answer.json()["detail"]] == [["query", field]]


async def test_an_unfinished_run_s_last_page_points_further(client: httpx.AsyncClient, migrated_database: str) -> None:
    tenant, run_id = await queued_run(client)
    subjects, cursor = await page(client, tenant, run_id)
    assert subjects == [] and cursor is not None
    await write_events(migrated_database, run_id, 3, finish=False)
    subjects, further = await page(client, tenant, run_id, after=cursor)
    assert subjects == ["p0", "p1", "p2"] and further is not None
    assert await page(client, tenant, run_id, after=further) == ([], further)
