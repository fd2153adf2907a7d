"""A tenant is one Lucca account and the connectors that run for it."""

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UUIDKey


class Tenant(UUIDKey, Timestamps, Base):
    __tablename__ = "tenants"

    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    # SHA-256 of the tenant key: the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    lucca_base_url: Mapped[str] = mapped_column(String(500))
    lucca_api_key_encrypted: Mapped[str] = mapped_column(Text)
    lucca_oauth_encrypted: Mapped[str | None] = mapped_column(Text)
    rate_limit_requests: Mapped[int]
    rate_limit_per_seconds: Mapped[int]
