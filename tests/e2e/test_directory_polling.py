"""Polling Lucca with the API key (CONTRACT 13): a change found, one call when nothing changed, failures said."""

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
from sqlalchemy import update

from app.models.base import utcnow
from app.models.directory import DirectoryState
from tests.e2e.directory_helpers import (
    clear_calls,
    employee,
    filled_tenant,
    poll_now,
    running_services,
    state_of,
    user_calls,
)
from tests.factories import create_oauth_tenant, create_tenant
from tests.sandbox_server import LuccaAccount


async def test_polling_finds_a_change_and_idle_polls_make_one_call(
    client: httpx.AsyncClient, lucca: LuccaAccount
) -> None:
    await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key, poll_seconds=30)
    async with running_services() as services:
        tenant = await filled_tenant(services)
        someone = lucca.users()[0]["id"]
        before = await employee(services, tenant.id, someone)
        assert before is not None and before.first_name != "Renamed"

        lucca.change_person(someone, firstName="Renamed")
        await poll_now(services, tenant.id)
        after = await employee(services, tenant.id, someone)
        assert after is not None and after.first_name == "Renamed"
        assert after.change_seq > before.change_seq
        state = await state_of(services, tenant.id)
        assert state.poll_cursor is not None and state.poll_message is None
        assert state.fresh_at is not None and state.fresh_at > before.version
        assert state.departments_polled_at is not None
        assert state.next_poll_at is not None and state.next_poll_at > state.fresh_at

        # Nothing changed since: each poll is one call (departments wait their 15 minutes).
        clear_calls(lucca)
        for _ in range(3):
            await poll_now(services, tenant.id)
        calls = lucca.calls()["items"]
        assert len(calls) == 3
        assert all(call["path"] == "/api/v3/users" for call in calls)
        cursor = (await state_of(services, tenant.id)).poll_cursor
        assert cursor == state.poll_cursor  # never backwards; the change is less than a minute old


async def test_a_poll_moves_the_cursor_past_what_is_settled_so_old_changes_are_not_read_again(
    client: httpx.AsyncClient, lucca: LuccaAccount
) -> None:
    # The newest change seen is an hour old (a bulk change, then quiet): each poll asked from a minute before it, so
    # every poll read those people again. A poll moves the cursor to a minute before it began.
    await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key, poll_seconds=30)
    async with running_services() as services:
        tenant = await filled_tenant(services)
        hour_ago = utcnow() - timedelta(hours=1)
        async with services.sessionmaker.begin() as session:
            await session.execute(
                update(DirectoryState).where(DirectoryState.tenant_id == tenant.id).values(poll_cursor=hour_ago)
            )
        clear_calls(lucca)
        started = utcnow()
        await poll_now(services, tenant.id)
        [first] = user_calls(lucca)
        assert since_of(first) <= hour_ago - timedelta(minutes=1) + timedelta(seconds=1)
        cursor = (await state_of(services, tenant.id)).poll_cursor
        assert cursor is not None and cursor >= started - timedelta(minutes=1)

        clear_calls(lucca)
        await poll_now(services, tenant.id)
        [second] = user_calls(lucca)
        assert since_of(second) >= started - timedelta(minutes=2)


def since_of(call: dict[str, Any]) -> datetime:
    """The moment a poll's `modifiedAt=since,<moment>` asks from (sent in UTC without an offset)."""
    [value] = parse_qs(call["query"])["modifiedAt"]
    operator, moment = value.split(",", 1)
    assert operator == "since"
    return datetime.fromisoformat(moment).replace(tzinfo=UTC)


async def test_a_failing_poll_says_why_on_the_state_and_the_next_one_clears_it(
    client: httpx.AsyncClient, lucca: LuccaAccount
) -> None:
    handle = await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key)
    async with running_services() as services:
        tenant = await filled_tenant(services)
        lucca.add_faults({"status": 401, "count": 1, "match": "/api/v3/users"})
        await poll_now(services, tenant.id)
        shown = await client.get("/api/v1/tenants/acme/lucca/directory", headers=handle.auth)
        assert shown.status_code == 200
        assert "refused the credentials" in shown.json()["message"]
        await poll_now(services, tenant.id)
        shown = await client.get("/api/v1/tenants/acme/lucca/directory", headers=handle.auth)
        assert shown.json()["message"] is None and shown.json()["mode"] == "polling"
        assert len(user_calls(lucca)) >= 2


async def test_with_oauth_alone_a_poll_reads_everyone_through_v5(
    client: httpx.AsyncClient, lucca: LuccaAccount
) -> None:
    # A small budget: 5 calls a minute, so the read's calls (employees and departments) space the next poll.
    await create_oauth_tenant(client, "acme", lucca, rate_limit={"requests": 5, "per_seconds": 60})
    async with running_services() as services:
        tenant = await filled_tenant(services)
        someone = lucca.users()[0]["id"]
        lucca.change_person(someone, lastName="Through-V5")
        clear_calls(lucca)
        await poll_now(services, tenant.id)
        person = await employee(services, tenant.id, someone)
        assert person is not None and person.last_name == "Through-V5"
        counts = lucca.call_counts()
        assert counts["v3"] == 0 and counts["v5"] >= 2  # employees' pages and the departments
        state = await state_of(services, tenant.id)
        assert state.poll_message is None
        # At most a quarter of the budget: 2 calls x 4 x 60 s / 5 calls = 96 s to the next poll, not poll_seconds.
        assert state.next_poll_at is not None and state.fresh_at is not None
        assert (state.next_poll_at - state.fresh_at).total_seconds() >= 96
