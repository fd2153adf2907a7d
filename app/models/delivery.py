"""Inbound webhook deliveries: stored before they are answered, unique per tenant, source and external id."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UUIDKey, utcnow


class Delivery(UUIDKey, Base):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("tenant_id", "source", "external_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(40))
    # NULL for deliveries that must not use up their id (a status other than hired).
    external_id: Mapped[str | None] = mapped_column(String(200))
    # The first run, which a duplicate answers with. No foreign key: a delivery with an external id outlives its
    # run when retention deletes the run, since it is what makes a later delivery of that id a duplicate (the
    # index: the purge finds a run's deliveries).
    run_id: Mapped[uuid.UUID] = mapped_column(index=True)
    # Emptied when retention deletes the run (the candidate's details go with it).
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
