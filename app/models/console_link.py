"""Console links: short-lived tokens that act as one tenant's key, for the console (contract section 12)."""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UUIDKey, utcnow


class ConsoleLink(UUIDKey, Base):
    __tablename__ = "console_links"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the token: the token itself is in the link's URL fragment only, shown once.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    # Who made it, `operator` or `tenant_key`: rotating the tenant key ends the links the key made.
    minted_by: Mapped[str] = mapped_column(String(20))
