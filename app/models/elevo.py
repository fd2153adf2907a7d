"""Elevo: who was in the last people file uploaded, per tenant (those absent from the next one are suspended), and
which current employees it left out (those left out again for the same reason are not news)."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class ElevoPersonSent(Base):
    """One row of the last file Elevo's server took; replaced as a whole after each successful upload."""

    __tablename__ = "elevo_people_sent"
    # Deleting a run sets `run_id` to null where it points at it.
    __table_args__ = (Index("ix_elevo_people_sent_run_id", "run_id", postgresql_where="run_id IS NOT NULL"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    lucca_user_id: Mapped[int] = mapped_column(primary_key=True)
    # How the next run names them if they are gone from Lucca by then.
    email: Mapped[str] = mapped_column(String(500))
    name: Mapped[str] = mapped_column(String(500))
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


class ElevoPersonLeftOut(Base):
    """A current employee the last file Elevo's server took left out, and the kind of reason (`skip flag`, `no
    email`, `duplicate email`); replaced as a whole after each successful upload. Departed people are not kept."""

    __tablename__ = "elevo_people_left_out"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    lucca_user_id: Mapped[int] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(50))


class ElevoPushState(Base):
    """What `push_on_change` follows, per tenant: the copy's `change_seq` the last file (or the last check that
    found nothing to send) took in, the hash of the last file Elevo's server took, and when it took it."""

    __tablename__ = "elevo_push_states"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    seen_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    sent_hash: Mapped[str | None] = mapped_column(String(64))
    uploaded_at: Mapped[datetime | None]
    # When the last run on change was queued: a failing one is not queued again before the interval.
    pushed_at: Mapped[datetime | None]
