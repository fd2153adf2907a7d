"""Lucca's webhook events applied to the copy (CONTRACT 13): read once per batch, newest state wins, once per id."""

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from app.clients.lucca_directory import DirectoryPerson
from app.directory import store
from app.models.base import utcnow
from app.models.directory import LuccaEvent
from tests.e2e.conftest import drain_queue
from tests.e2e.directory_helpers import (
    arm_webhook,
    clear_calls,
    employee,
    filled_tenant,
    running_services,
    signed_event,
    state_of,
    user_calls,
)
from tests.factories import create_tenant
from tests.sandbox_server import LuccaAccount

SECRET = "endpoint-signing-secret-0123456789"


async def deliver(client: httpx.AsyncClient, token: str, event_id: str, lucca_id: int, at: str, **extra: Any) -> int:
    topic = extra.pop("topic", "employee.updated")
    body, headers = signed_event(SECRET, event_id, topic, {"id": str(lucca_id), **extra}, at)
    answer = await client.post(f"/integrations/webhooks/lucca/{token}", content=body, headers=headers)
    return answer.status_code


async def test_the_same_event_twice_is_applied_once_and_an_older_one_leaves_the_newer_state(
    client: httpx.AsyncClient, lucca: LuccaAccount
) -> None:
    await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key)
    async with running_services() as services:
        tenant = await filled_tenant(services)
        token = await arm_webhook(services, tenant.id, SECRET)
        someone = lucca.users()[0]["id"]
        clear_calls(lucca)

        lucca.change_person(someone, firstName="Older")
        older_at = lucca.users()[0]["modifiedAt"]
        lucca.change_person(someone, firstName="Newer")
        newer_at = lucca.users()[0]["modifiedAt"]
        # The newer event comes first, twice; the older one after it.
        assert await deliver(client, token, "evt-2", someone, newer_at) == 202
        assert await deliver(client, token, "evt-2", someone, newer_at) == 200
        await drain_queue()
        assert len(user_calls(lucca)) == 1
        assert await deliver(client, token, "evt-1", someone, older_at) == 202
        await drain_queue()

        person = await employee(services, tenant.id, someone)
        assert person is not None and person.first_name == "Newer"
        # Two batches, each one read of the employees they name; the resend made none.
        assert len(user_calls(lucca)) == 2
        async with services.sessionmaker() as session:
            events = {event.event_id: event.applied_at for event in await session.scalars(select(LuccaEvent))}
        assert set(events) == {"evt-1", "evt-2"} and all(events.values())
        state = await state_of(services, tenant.id)
        assert state.fresh_at is not None and state.last_change_at is not None


async def test_a_deleted_employee_is_marked_gone_and_many_changes_are_read_in_few_calls(
    client: httpx.AsyncClient, lucca: LuccaAccount
) -> None:
    await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key)
    async with running_services() as services:
        tenant = await filled_tenant(services)
        token = await arm_webhook(services, tenant.id, SECRET)
        ids = [user["id"] for user in lucca.users()]
        clear_calls(lucca)
        for number, lucca_id in enumerate(ids):
            lucca.change_person(lucca_id, jobTitle=f"Title {number}")
            assert await deliver(client, token, f"evt-{lucca_id}", lucca_id, "2026-12-06T09:00:00Z") == 202
        unknown = max(ids) + 1000
        deleted = "2026-12-06T09:30:00Z"
        assert await deliver(client, token, "evt-del", unknown, deleted, topic="employee.deleted") == 202
        await drain_queue()
        assert len(user_calls(lucca)) == 1  # every employee named, read in one call (the key reads 1,000 a call)
        for number, lucca_id in enumerate(ids):
            person = await employee(services, tenant.id, lucca_id)
            assert person is not None and person.job_title == f"Title {number}"
        # Known to the copy, then deleted in Lucca: gone at the event's time.
        former = DirectoryPerson(unknown, "Left", "Company", None, modified_at=datetime(2026, 12, 1, tzinfo=UTC))
        async with services.sessionmaker.begin() as session:
            await store.upsert_people(session, tenant.id, [former], read_at=utcnow())
        assert await deliver(client, token, "evt-del-2", unknown, deleted, topic="employee.deleted") == 202
        await drain_queue()
        gone = await employee(services, tenant.id, unknown)
        assert gone is not None and gone.gone_at is not None and gone.gone_at.isoformat().startswith("2026-12-06T09:30")
