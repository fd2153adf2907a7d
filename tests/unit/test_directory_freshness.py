"""Polls spread over their interval, and what a batch of Lucca events asks to read (no I/O)."""

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from app.directory.events import plan_events
from app.directory.polling import next_slot, phase_seconds
from app.models.directory import LuccaEvent

NOW = datetime(2026, 12, 6, 9, 0, 0, 400_000, tzinfo=UTC)


def test_each_tenant_keeps_its_phase_and_a_thousand_spread_over_the_minute() -> None:
    tenants = [uuid.UUID(int=number * 7919 + 1) for number in range(1000)]
    slots = [next_slot(NOW, 60, tenant) for tenant in tenants]
    assert all(NOW < slot <= NOW + timedelta(seconds=60) for slot in slots)
    # Stable: a tenant's next slots are exactly one interval apart.
    for tenant, slot in zip(tenants[:50], slots, strict=False):
        assert next_slot(slot, 60, tenant) == slot + timedelta(seconds=60)
        assert next_slot(slot - timedelta(milliseconds=1), 60, tenant) == slot
    # Spread: no second of the minute holds more than 3 times its share.
    per_second = Counter(int(phase_seconds(tenant, 60)) for tenant in tenants)
    assert len(per_second) == 60 and max(per_second.values()) <= 50


def event(event_id: str, topic: str, data: dict[str, Any], occurred_at: datetime | None = None) -> LuccaEvent:
    return LuccaEvent(event_id=event_id, topic=topic, occurred_at=occurred_at, payload={"topic": topic, "data": data})


def test_events_name_the_employees_to_read_and_the_deleted_ones() -> None:
    plan = plan_events(
        [
            event("1", "employee.updated", {"id": "875"}),
            event("2", "employment.created", {"id": "31", "employee": {"id": "876"}}),
            event("3", "job-position.updated", {"id": 9, "employee": {"id": 877}}),
            event("4", "employee.updated", {"id": "875"}),
            event("5", "employee.deleted", {"id": "878"}, NOW),
            event("6", "ping", {}),
            event("7", "employee.updated", {"id": "not-a-number"}),
        ]
    )
    assert plan.employee_ids == {875, 876, 877, 878}
    assert plan.deleted_at == {878: NOW}
    assert not plan.departments
    assert plan.event_ids == ["1", "2", "3", "4", "5", "6", "7"]
    assert plan_events([event("8", "department.updated", {"id": "12"})]).departments
