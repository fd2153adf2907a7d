"""The search by person and the failure counts by index: trigrams of run_events.subject_folded (pg_trgm, from
Postgres' contrib), and runs by (tenant_id, status, created_at) carrying the connector.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 15:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_run_events_subject_folded_trgm",
        "run_events",
        ["subject_folded"],
        postgresql_using="gin",
        postgresql_ops={"subject_folded": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_runs_tenant_id_status_created_at",
        "runs",
        ["tenant_id", "status", "created_at"],
        postgresql_include=["connector"],
    )


def downgrade() -> None:
    op.drop_index("ix_runs_tenant_id_status_created_at", table_name="runs")
    op.drop_index("ix_run_events_subject_folded_trgm", table_name="run_events")
    # The extension stays: something else may use it by now.
