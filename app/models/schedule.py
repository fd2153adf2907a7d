"""A nightly job (contract 5.5) of a connector or of the tenant's Lucca account: when it was enabled, when it
last ran, when it is due next."""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UUIDKey


class Schedule(UUIDKey, Base):
    __tablename__ = "schedules"
    __table_args__ = (
        UniqueConstraint("connector_id", "operation"),
        # A job of the tenant's Lucca account (the directory's full sync) has no connector: one per tenant.
        Index(
            "uq_schedules_tenant_id_operation",
            "tenant_id",
            "operation",
            unique=True,
            postgresql_where="connector_id IS NULL",
        ),
        # The tick looks only at enabled schedules.
        Index("ix_schedules_due_at", "due_at", postgresql_where="due_at IS NOT NULL"),
        # Deleting a run sets `last_run_id` to null where it points at it.
        Index("ix_schedules_last_run_id", "last_run_id", postgresql_where="last_run_id IS NOT NULL"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    # None for a job of the tenant's Lucca account rather than of a connector.
    connector_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"))
    operation: Mapped[str] = mapped_column(String(40))
    hour: Mapped[int]
    # The tenant's timezone when `due_at` was worked out: a changed timezone moves it.
    timezone: Mapped[str] = mapped_column(String(64))
    enabled_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    last_run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    # The first moment the local hour comes after the later of `enabled_at` and `last_run_at`; null when disabled.
    due_at: Mapped[datetime | None]
