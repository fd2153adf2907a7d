"""Alerts (contract 14): channels per tenant, problems that open and close, and each alert to each channel.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_channels",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("recipients", postgresql.JSONB(), nullable=False),
        sa.Column("url_encrypted", sa.Text()),
        sa.Column("url_shown", sa.Text()),
        sa.Column("secret_encrypted", sa.Text()),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_alert_channels_tenant_id", "alert_channels", ["tenant_id"])
    op.create_table(
        "alert_problems",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("operation", sa.String(40)),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_run_id", sa.Uuid(), sa.ForeignKey("runs.id", ondelete="SET NULL")),
        sa.Column("last_run_id", sa.Uuid(), sa.ForeignKey("runs.id", ondelete="SET NULL")),
        sa.Column("resolved_by_run_id", sa.Uuid(), sa.ForeignKey("runs.id", ondelete="SET NULL")),
        sa.Column("opened_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.Column("last_alert_at", TIMESTAMP, nullable=False),
        sa.Column("resolved_at", TIMESTAMP),
    )
    op.create_index(
        "uq_alert_problems_open_key",
        "alert_problems",
        ["tenant_id", "key"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index(
        "ix_alert_problems_tenant_id_status_opened_at", "alert_problems", ["tenant_id", "status", "opened_at"]
    )
    op.create_index(
        "ix_alert_problems_open_alerted_at",
        "alert_problems",
        ["last_alert_at"],
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index(
        "ix_alert_problems_resolved_at",
        "alert_problems",
        ["resolved_at"],
        postgresql_where=sa.text("status = 'resolved'"),
    )
    for column, name in (
        ("first_run_id", "ix_alert_problems_first_run_id"),
        ("last_run_id", "ix_alert_problems_last_run_id"),
        ("resolved_by_run_id", "ix_alert_problems_resolved_by"),
    ):
        op.create_index(name, "alert_problems", [column], postgresql_where=sa.text(f"{column} IS NOT NULL"))
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("problem_id", sa.Uuid(), sa.ForeignKey("alert_problems.id", ondelete="CASCADE"), nullable=False),
        sa.Column("channel_id", sa.Uuid(), sa.ForeignKey("alert_channels.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event", sa.String(10), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("failing_since", TIMESTAMP),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("sent_at", TIMESTAMP),
    )
    op.create_index(
        "ix_alert_deliveries_pending",
        "alert_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_alert_deliveries_problem_id", "alert_deliveries", ["problem_id"])
    op.create_index("ix_alert_deliveries_channel_id", "alert_deliveries", ["channel_id"])
    op.create_index("ix_alert_deliveries_tenant_id", "alert_deliveries", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("alert_deliveries")
    op.drop_table("alert_problems")
    op.drop_table("alert_channels")
