"""Alerts (contract 14): a tenant's channels, the problems that open and close, and each alert to each channel."""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UUIDKey, utcnow


class AlertChannel(UUIDKey, Base):
    """Where a tenant's alerts go: e-mail addresses, or a webhook, Slack or Teams URL."""

    __tablename__ = "alert_channels"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    # The channel's place in the tenant's list, as it was given.
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(String(10))  # email | webhook | slack | teams
    # E-mail: the addresses.
    recipients: Mapped[list[str]] = mapped_column(JSONB, default=list)
    # Webhook, Slack, Teams: the URL, encrypted (Slack's and Teams' URLs are their own credential), and how it is
    # shown (a webhook's in full, Slack's and Teams' without their secret path).
    url_encrypted: Mapped[str | None] = mapped_column(Text)
    url_shown: Mapped[str | None] = mapped_column(Text)
    # Webhook: the Standard Webhooks signing secret (`whsec_…`), encrypted; shown once, when it is made.
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertProblem(UUIDKey, Base):
    """One thing going wrong for a tenant, open until the next success of the same kind clears it."""

    __tablename__ = "alert_problems"
    __table_args__ = (
        # The same trouble is one open problem: a second report finds it by its key.
        Index("uq_alert_problems_open_key", "tenant_id", "key", unique=True, postgresql_where="status = 'open'"),
        Index("ix_alert_problems_tenant_id_status_opened_at", "tenant_id", "status", "opened_at"),
        # The daily reminders look only at open problems.
        Index("ix_alert_problems_open_alerted_at", "last_alert_at", postgresql_where="status = 'open'"),
        # Retention finds problems resolved long ago.
        Index("ix_alert_problems_resolved_at", "resolved_at", postgresql_where="status = 'resolved'"),
        # Deleting a run (retention) sets these to null where they point at it.
        Index("ix_alert_problems_first_run_id", "first_run_id", postgresql_where="first_run_id IS NOT NULL"),
        Index("ix_alert_problems_last_run_id", "last_run_id", postgresql_where="last_run_id IS NOT NULL"),
        Index("ix_alert_problems_resolved_by", "resolved_by_run_id", postgresql_where="resolved_by_run_id IS NOT NULL"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # What makes two reports the same problem, e.g. "runs:softgarden:hire", "credentials:lucca".
    key: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(
        String(20)
    )  # runs | credentials | lucca_webhook | lucca_notice | directory_lag | schedule
    # The connector or partner concerned, and the operation for runs and schedules.
    source: Mapped[str] = mapped_column(String(20))
    operation: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | resolved
    # Plain words: what is wrong (the alert's subject line), and the latest reason given.
    title: Mapped[str] = mapped_column(String(300))
    message: Mapped[str] = mapped_column(Text)
    # How many times it was reported while open (failed runs, refused calls…).
    count: Mapped[int] = mapped_column(default=1)
    first_run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    last_run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    resolved_by_run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When its last alert (the opening one or a reminder) was queued: reminders come a day after.
    last_alert_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]


class AlertDelivery(UUIDKey, Base):
    """One alert (a problem opened, reminded or resolved) to one channel; made in the same transaction as the
    problem's change, so none is lost or made twice, and sent by whichever worker claims it first."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        Index("ix_alert_deliveries_pending", "next_attempt_at", postgresql_where="status = 'pending'"),
        Index("ix_alert_deliveries_problem_id", "problem_id"),
        Index("ix_alert_deliveries_channel_id", "channel_id"),
        # The tenant purge deletes a tenant's deliveries by this key.
        Index("ix_alert_deliveries_tenant_id", "tenant_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    problem_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert_problems.id", ondelete="CASCADE"))
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert_channels.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(10))  # opened | reminder | resolved
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    failing_since: Mapped[datetime | None]
    # The last failure in plain words (no secret: never the URL's path or a credential).
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
