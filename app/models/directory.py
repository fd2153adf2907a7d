"""The tenant's own copy of its Lucca directory (CONTRACT section 13), and what keeps it fresh.

Every connector that reads people (Cards listings and imports, the statistics push's matching, the Elevo file) reads
these tables instead of Lucca. `version` is the newest Lucca time a row's state is known at (Lucca's `modifiedAt` /
`lastUpdatedAt`, or the moment a read completed): a write carrying an older version never replaces a newer state, so
events arriving late or out of order cannot undo a change. `change_seq` comes from one global sequence, bumped on
every change of a row: followers of the directory (issue 18) keep it as their cursor.
"""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Sequence, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow

CHANGE_SEQ = Sequence("directory_change_seq")


class DirectoryEmployee(Base):
    __tablename__ = "directory_employees"
    __table_args__ = (Index("ix_directory_employees_tenant_id_change_seq", "tenant_id", "change_seq"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    lucca_id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    employee_number: Mapped[str | None] = mapped_column(String(50))
    job_title: Mapped[str | None] = mapped_column(Text)
    department_id: Mapped[int | None]
    manager_id: Mapped[int | None]
    legal_entity_id: Mapped[int | None]
    contract_start: Mapped[date | None]
    contract_end: Mapped[date | None]
    # The `e_` fields the tenant's connectors read, as Lucca's legacy API returns them ({code: value}).
    extended: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[datetime]
    # Set when a complete read no longer finds the person (or Lucca said they were deleted); cleared if they return.
    gone_at: Mapped[datetime | None]
    # The full sync that last saw this person: a completed sync sweeps those it did not see.
    seen_by: Mapped[uuid.UUID | None]
    change_seq: Mapped[int] = mapped_column(BigInteger, CHANGE_SEQ, server_default=CHANGE_SEQ.next_value())


# People by e-mail ignoring case (the statistics push matches learners so).
Index(
    "ix_directory_employees_tenant_id_lower_email",
    DirectoryEmployee.tenant_id,
    func.lower(DirectoryEmployee.email),
)


class DirectoryDepartment(Base):
    __tablename__ = "directory_departments"
    __table_args__ = (Index("ix_directory_departments_tenant_id_change_seq", "tenant_id", "change_seq"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    lucca_id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    head_id: Mapped[int | None]
    parent_id: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[datetime]
    gone_at: Mapped[datetime | None]
    seen_by: Mapped[uuid.UUID | None]
    change_seq: Mapped[int] = mapped_column(BigInteger, CHANGE_SEQ, server_default=CHANGE_SEQ.next_value())


class DirectoryState(Base):
    """One row per tenant whose directory is kept: how full and how fresh the copy is, and how it is kept fresh."""

    __tablename__ = "directory_states"
    __table_args__ = (Index("ix_directory_states_next_poll_at", "next_poll_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    # The full sync run filling the copy now, and how many people it has read (the listings' "still loading").
    sync_run_id: Mapped[uuid.UUID | None]
    sync_progress: Mapped[int] = mapped_column(default=0)
    last_full_sync_at: Mapped[datetime | None]
    last_change_at: Mapped[datetime | None]
    # When the copy was last known to be in line with Lucca (a completed poll, full sync or applied event).
    fresh_at: Mapped[datetime | None]
    # Polling (legacy API): the newest `modifiedAt` seen, when each tenant's next poll is due, departments too.
    poll_cursor: Mapped[datetime | None]
    next_poll_at: Mapped[datetime | None]
    departments_polled_at: Mapped[datetime | None]
    # Why the last poll or batch of events could not keep the copy fresh, in plain words (None once one succeeds).
    poll_message: Mapped[str | None] = mapped_column(Text)
    # Lucca's webhooks: status none|pending|active|failed, in plain words, with the endpoint Lucca gave.
    webhook_status: Mapped[str] = mapped_column(String(16), default="none")
    webhook_message: Mapped[str | None] = mapped_column(Text)
    webhook_endpoint_id: Mapped[str | None] = mapped_column(String(100))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    # SHA-256 of the random token in the webhook's URL, which names the tenant.
    webhook_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # What Lucca announced about the paths the service reads (Sunset, Deprecation, 410), in plain words.
    notices: Mapped[list[str]] = mapped_column(JSONB, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LuccaEvent(Base):
    """A Lucca webhook event, stored before it is answered; kept so that an event id seen before is ignored."""

    __tablename__ = "lucca_events"
    __table_args__ = (
        Index("ix_lucca_events_tenant_id_applied_at", "tenant_id", postgresql_where="applied_at IS NULL"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    topic: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None]
