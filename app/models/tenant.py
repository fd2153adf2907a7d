"""A tenant is one Lucca account and the connectors that run for it."""

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UUIDKey


class Tenant(UUIDKey, Timestamps, Base):
    __tablename__ = "tenants"
    # A deleted tenant's slug is free at once, while its rows are still being removed.
    __table_args__ = (
        Index("uq_tenants_slug", "slug", unique=True, postgresql_where="deleted_at IS NULL"),
        # Lucca's legacy API (the key), its OAuth API (a client), or both (contract section 4).
        CheckConstraint(
            "lucca_api_key_encrypted IS NOT NULL OR lucca_oauth_encrypted IS NOT NULL", name="lucca_credentials"
        ),
        CheckConstraint("poll_seconds BETWEEN 30 AND 3600", name="poll_seconds"),
    )

    slug: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    # SHA-256 of the tenant key: the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    lucca_base_url: Mapped[str] = mapped_column(String(500))
    lucca_api_key_encrypted: Mapped[str | None] = mapped_column(Text)
    # {"client_id", "client_secret", "token_url"?} encrypted as one JSON object.
    lucca_oauth_encrypted: Mapped[str | None] = mapped_column(Text)
    rate_limit_requests: Mapped[int]
    rate_limit_per_seconds: Mapped[int]
    # How often the directory is polled when Lucca's webhooks do not keep it fresh (contract section 13).
    poll_seconds: Mapped[int] = mapped_column(default=60, server_default=text("60"))
    # Set by DELETE: from then on every lookup passes the tenant by (key, slug, links, webhook tokens, runs), while
    # a worker job removes its rows in small batches (app.services.tenants.purge_tenant), the tenant's own last.
    deleted_at: Mapped[datetime | None]
