"""Links between a Lucca user and a partner record (a Softgarden application, a Taleez candidate, ...)."""

import uuid

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UUIDKey


class Link(UUIDKey, Timestamps, Base):
    __tablename__ = "links"
    __table_args__ = (UniqueConstraint("tenant_id", "partner", "external_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    partner: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(200))
    lucca_user_id: Mapped[int]
