"""Applying Lucca's webhook events to the directory copy: read what Lucca holds now, newest state wins.

An event is not applied field by field: it names the employees it concerns (`employee.*` → `data.id`,
`employment.*` and `job-position.*` → `data.employee.id`), and one job per tenant reads them in batches (at most one
call per 100 ids through the OAuth API, 1,000 with a key) and writes what Lucca answers. Events that arrive late,
twice or out of order are harmless so: each read is Lucca's current state, and the store keeps the newer of two
versions. An employee Lucca no longer returns is gone (at the `employee.deleted` event's time when there is one);
`department.*` reads the departments again.
"""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from app.directory import store
from app.models import Tenant
from app.models.base import utcnow
from app.models.directory import DirectoryState, LuccaEvent
from app.services.context import Services

log = logging.getLogger(__name__)

# Events taken per batch: their employees are read together (at most ten v5 calls).
EVENTS_PER_BATCH = 1000
EMPLOYEE_TOPICS = ("employee.",)
EMPLOYEE_PART_TOPICS = ("employment.", "job-position.")
DEPARTMENT_TOPICS = ("department.",)
DELETED = "employee.deleted"


@dataclass
class EventPlan:
    """What a batch of events asks for: the employees to read again, those Lucca said were deleted (and when),
    and whether the departments changed."""

    event_ids: list[str] = field(default_factory=list)
    employee_ids: set[int] = field(default_factory=set)
    deleted_at: dict[int, datetime] = field(default_factory=dict)
    departments: bool = False


def lucca_id(reference: Any) -> int | None:
    """A v5 id ("875", or 875) as the copy keys it; anything else names nothing the copy holds."""
    value = reference.get("id") if isinstance(reference, dict) else None
    text = str(value) if isinstance(value, int | str) else ""
    return int(text) if text.isdigit() and len(text) < 10 else None


def plan_events(events: Sequence[LuccaEvent]) -> EventPlan:
    plan = EventPlan()
    for event in events:
        plan.event_ids.append(event.event_id)
        data = event.payload.get("data") or {}
        if event.topic.startswith(EMPLOYEE_TOPICS):
            employee = lucca_id(data)
        elif event.topic.startswith(EMPLOYEE_PART_TOPICS):
            employee = lucca_id(data.get("employee"))
        else:
            plan.departments |= event.topic.startswith(DEPARTMENT_TOPICS)
            continue
        if employee is None:
            continue
        plan.employee_ids.add(employee)
        if event.topic == DELETED and event.occurred_at is not None:
            plan.deleted_at[employee] = max(event.occurred_at, plan.deleted_at.get(employee, event.occurred_at))
    return plan


async def apply_events(services: Services, tenant_id: uuid.UUID) -> int:
    """Apply every event of the tenant not applied yet, a batch at a time; returns how many were applied.

    Raises the reader's partner errors (the job tries again later); the events then stay unapplied."""
    applied = 0
    while True:
        async with services.sessionmaker() as session:
            tenant = await session.get(Tenant, tenant_id)
            if tenant is None or tenant.deleted_at is not None:
                return applied
            events = list(
                await session.scalars(
                    select(LuccaEvent)
                    .where(LuccaEvent.tenant_id == tenant_id, LuccaEvent.applied_at.is_(None))
                    .order_by(LuccaEvent.received_at)
                    .limit(EVENTS_PER_BATCH)
                )
            )
        if not events:
            return applied
        await apply_plan(services, tenant, plan_events(events))
        applied += len(events)


async def apply_plan(services: Services, tenant: Tenant, plan: EventPlan) -> None:
    """Read what the events name, write it, and mark the events applied, in one transaction."""
    reader = services.directory_reader(tenant)
    read_at = utcnow()
    wanted = sorted(plan.employee_ids)
    people = await reader.employees_by_id(wanted) if wanted else []
    departments = await reader.departments() if plan.departments else None
    returned = {person.lucca_id for person in people}
    async with services.sessionmaker.begin() as session:
        await store.upsert_people(session, tenant.id, people, read_at=read_at)
        gone: dict[datetime, list[int]] = {}
        for missing in (lucca_id for lucca_id in wanted if lucca_id not in returned):
            gone.setdefault(plan.deleted_at.get(missing, read_at), []).append(missing)
        for at, lucca_ids in gone.items():  # one statement per deletion time, not one per person
            await store.mark_gone(session, tenant.id, lucca_ids, at)
        if departments is not None:
            await store.upsert_departments(session, tenant.id, departments, read_at=read_at)
        await session.execute(
            update(LuccaEvent)
            .where(LuccaEvent.tenant_id == tenant.id, LuccaEvent.event_id.in_(plan.event_ids))
            .values(applied_at=utcnow())
        )
        await store.note_notices(session, tenant.id, reader.notices)
        await store.note_fresh(session, tenant.id, read_at)
        await session.execute(
            update(DirectoryState).where(DirectoryState.tenant_id == tenant.id).values(poll_message=None)
        )
    log.info(
        "applied %d Lucca event(s): %d employee(s) read, %d gone",
        len(plan.event_ids),
        len(people),
        len(wanted) - len(returned),
    )
