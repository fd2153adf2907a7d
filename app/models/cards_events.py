"""Cards learning events (stored before they are answered, once per event id) and what the push last wrote."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class CardsEvent(Base):
    __tablename__ = "cards_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_id"),
        # The push reads the events of one page of employees at a time, by e-mail.
        Index("ix_cards_events_tenant_id_email", "tenant_id", "email"),
    )

    # Arrival order: the last tie-break between events of the same moment.
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(200))
    # What the statistics read, set on chapter-complete and quiz-complete events only; the e-mail case-folded.
    email: Mapped[str | None] = mapped_column(String(500))
    training_id: Mapped[int | None] = mapped_column(BigInteger)
    chapter_id: Mapped[str | None] = mapped_column(String(200))
    # Cards' naive times: `data.created_at` (when the learner did it) and the event's own `created_at`.
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=False))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=False))
    progress: Mapped[Decimal | None] = mapped_column(Numeric)
    points: Mapped[Decimal | None] = mapped_column(Numeric)
    max_points: Mapped[Decimal | None] = mapped_column(Numeric)
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class CardsStatsPushed(Base):
    """The fingerprint of the statistics last written to one employee, stored once Lucca took them."""

    __tablename__ = "cards_stats_pushed"
    # Deleting a run sets `run_id` to null where it points at it.
    __table_args__ = (Index("ix_cards_stats_pushed_run_id", "run_id", postgresql_where="run_id IS NOT NULL"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    lucca_user_id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    # The run that wrote them (null when Lucca already held them): a resumed run counts its own writes once.
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    pushed_at: Mapped[datetime] = mapped_column(default=utcnow)
