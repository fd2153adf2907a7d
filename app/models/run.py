"""Runs (an import, a sync or an accepted webhook delivery) and their events, item by item."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Computed, ForeignKey, Identity, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UUIDKey, utcnow

FINISHED = ("succeeded", "partial", "failed")


class Run(UUIDKey, Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_tenant_id_created_at", "tenant_id", "created_at"),
        # Lists filtered by status, and the failures of the last days counted per connector from the index alone.
        Index(
            "ix_runs_tenant_id_status_created_at", "tenant_id", "status", "created_at", postgresql_include=["connector"]
        ),
        # The sweep looks only at unfinished runs.
        Index("ix_runs_unfinished", "retry_at", postgresql_where="status IN ('queued', 'running')"),
        # Deleting a run sets these to null where they point at it; most runs are no retry, so only those are kept.
        Index("ix_runs_retry_of", "retry_of", postgresql_where="retry_of IS NOT NULL"),
        Index("ix_runs_retried_by", "retried_by", postgresql_where="retried_by IS NOT NULL"),
        # Retention finds old finished runs, oldest first.
        Index("ix_runs_finished_at", "finished_at", postgresql_where="finished_at IS NOT NULL"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    connector: Mapped[str] = mapped_column(String(20))
    operation: Mapped[str] = mapped_column(String(40))
    trigger: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # What the run works on (e.g. the candidate), and its progress within an item (survives a crash); the items
    # it has done are in its ledger (RunItem).
    input: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    retry_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    # The newest run that redid this run's work (a retry of it, or of one of its retries).
    retried_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # When the next attempt is due; since when, and how many times, the work's partner calls have failed (the
    # position in the backoff schedule, kept across job attempts).
    retry_at: Mapped[datetime] = mapped_column(default=utcnow)
    failing_since: Mapped[datetime | None]
    failed_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    # How many attempts in a row found the account's lock held by another job (not a failure: a short wait).
    lock_waits: Mapped[int] = mapped_column(default=0, server_default="0")


class RunEvent(Base):
    __tablename__ = "run_events"
    __table_args__ = (
        # A run's events in order: a page of them reads only its own rows, however many the run has. It carries
        # the tenant and the folded subject, so the search by person walking a tenant's runs (a common name)
        # checks each run's events from the index alone.
        Index("ix_run_events_run_id_id_subject", "run_id", "id", postgresql_include=["tenant_id", "subject_folded"]),
        # The search by person: trigrams find `subject_folded LIKE '%…%'` for needles of 3 characters or more,
        # among the tenant's events only (btree_gin puts the tenant in the same index).
        Index(
            "ix_run_events_tenant_id_subject_folded",
            "tenant_id",
            "subject_folded",
            postgresql_using="gin",
            postgresql_ops={"subject_folded": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    # The run's tenant, copied so the search reads one tenant's events (deleted with the run, hence no key of its own).
    tenant_id: Mapped[uuid.UUID]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    level: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(300))
    # The subject in lower case without accents, computed by Postgres (migration 0007), for the search by person.
    subject_folded: Mapped[str | None] = mapped_column(Text, Computed("fold_text(subject)", persisted=True))
    action: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)


class RunItem(Base):
    """The run's ledger: one row per item whose outcome it counted, written once (the primary key), so recording
    an item costs the same whatever the run's size, and an item done twice is counted once."""

    __tablename__ = "run_items"

    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[str] = mapped_column(Text, primary_key=True)
    outcome: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)
