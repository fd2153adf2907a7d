"""Cards learning events, statistics pushed, and the nightly schedules.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 15:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cards_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=500), nullable=True),
        sa.Column("training_id", sa.BigInteger(), nullable=True),
        sa.Column("chapter_id", sa.String(length=200), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("progress", sa.Numeric(), nullable=True),
        sa.Column("points", sa.Numeric(), nullable=True),
        sa.Column("max_points", sa.Numeric(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_cards_events_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cards_events")),
        sa.UniqueConstraint("tenant_id", "event_id", name=op.f("uq_cards_events_tenant_id_event_id")),
    )
    op.create_index("ix_cards_events_tenant_id_email", "cards_events", ["tenant_id", "email"], unique=False)
    op.create_table(
        "cards_stats_pushed",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("lucca_user_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_cards_stats_pushed_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_cards_stats_pushed_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "lucca_user_id", name=op.f("pk_cards_stats_pushed")),
    )
    op.create_table(
        "schedules",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("connector_id", sa.Uuid(), nullable=False),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_id", sa.Uuid(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connector_id"], ["connectors.id"], name=op.f("fk_schedules_connector_id_connectors"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["last_run_id"], ["runs.id"], name=op.f("fk_schedules_last_run_id_runs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_schedules_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("connector_id", "operation", name=op.f("uq_schedules_connector_id_operation")),
    )
    op.create_index("ix_schedules_due_at", "schedules", ["due_at"], unique=False, postgresql_where="due_at IS NOT NULL")


def downgrade() -> None:
    op.drop_index("ix_schedules_due_at", table_name="schedules", postgresql_where="due_at IS NOT NULL")
    op.drop_table("schedules")
    op.drop_table("cards_stats_pushed")
    op.drop_index("ix_cards_events_tenant_id_email", table_name="cards_events")
    op.drop_table("cards_events")
