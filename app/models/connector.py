"""One connector per tenant and kind: its settings, its encrypted secrets and its webhook token hash."""

import uuid
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UUIDKey


class Connector(UUIDKey, Timestamps, Base):
    __tablename__ = "connectors"
    __table_args__ = (UniqueConstraint("tenant_id", "kind"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    enabled: Mapped[bool]
    settings: Mapped[dict[str, Any]]
    secrets_encrypted: Mapped[str | None] = mapped_column(Text)
    webhook_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
