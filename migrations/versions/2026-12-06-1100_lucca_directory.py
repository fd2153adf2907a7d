"""The tenant's copy of its Lucca directory: employees, departments, its state, and Lucca's webhook events.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("directory_change_seq")))
    op.create_table(
        "directory_departments",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("lucca_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("head_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seen_by", sa.Uuid(), nullable=True),
        sa.Column(
            "change_seq", sa.BigInteger(), server_default=sa.text("nextval('directory_change_seq')"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_directory_departments_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "lucca_id", name=op.f("pk_directory_departments")),
    )
    op.create_index(
        "ix_directory_departments_tenant_id_change_seq",
        "directory_departments",
        ["tenant_id", "change_seq"],
        unique=False,
    )
    op.create_table(
        "directory_employees",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("lucca_id", sa.Integer(), nullable=False),
        sa.Column("first_name", sa.String(length=255), nullable=True),
        sa.Column("last_name", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("employee_number", sa.String(length=50), nullable=True),
        sa.Column("job_title", sa.Text(), nullable=True),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("manager_id", sa.Integer(), nullable=True),
        sa.Column("legal_entity_id", sa.Integer(), nullable=True),
        sa.Column("contract_start", sa.Date(), nullable=True),
        sa.Column("contract_end", sa.Date(), nullable=True),
        sa.Column("extended", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seen_by", sa.Uuid(), nullable=True),
        sa.Column(
            "change_seq", sa.BigInteger(), server_default=sa.text("nextval('directory_change_seq')"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_directory_employees_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "lucca_id", name=op.f("pk_directory_employees")),
    )
    op.create_index(
        "ix_directory_employees_tenant_id_change_seq", "directory_employees", ["tenant_id", "change_seq"], unique=False
    )
    op.create_table(
        "directory_states",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("sync_run_id", sa.Uuid(), nullable=True),
        sa.Column("sync_progress", sa.Integer(), nullable=False),
        sa.Column("last_full_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_change_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fresh_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("poll_cursor", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("departments_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("webhook_status", sa.String(length=16), nullable=False),
        sa.Column("webhook_message", sa.Text(), nullable=True),
        sa.Column("webhook_endpoint_id", sa.String(length=100), nullable=True),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("webhook_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("webhook_token_hash", sa.String(length=64), nullable=True),
        sa.Column("notices", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_directory_states_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_directory_states")),
        sa.UniqueConstraint("webhook_token_hash", name=op.f("uq_directory_states_webhook_token_hash")),
    )
    op.create_table(
        "lucca_events",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_lucca_events_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "event_id", name=op.f("pk_lucca_events")),
    )
    op.create_index(
        "ix_lucca_events_tenant_id_applied_at",
        "lucca_events",
        ["tenant_id"],
        unique=False,
        postgresql_where="applied_at IS NULL",
    )


def downgrade() -> None:
    op.drop_index(
        "ix_lucca_events_tenant_id_applied_at", table_name="lucca_events", postgresql_where="applied_at IS NULL"
    )
    op.drop_table("lucca_events")
    op.drop_table("directory_states")
    op.drop_index("ix_directory_employees_tenant_id_change_seq", table_name="directory_employees")
    op.drop_table("directory_employees")
    op.drop_index("ix_directory_departments_tenant_id_change_seq", table_name="directory_departments")
    op.drop_table("directory_departments")
    op.execute(sa.schema.DropSequence(sa.Sequence("directory_change_seq")))
