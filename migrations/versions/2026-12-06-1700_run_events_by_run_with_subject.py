"""A run's events by run, carrying their tenant and folded subject: the search by person that reads the tenant's
runs newest first (a common name) checks each run's events from the index alone, without reading their rows. The
new index replaces (run_id, id), built and dropped concurrently so webhooks and jobs keep writing.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_run_events_run_id_id_subject",
            "run_events",
            ["run_id", "id"],
            postgresql_include=["tenant_id", "subject_folded"],
            postgresql_concurrently=True,
        )
        op.drop_index("ix_run_events_run_id_id", table_name="run_events", postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_run_events_run_id_id", "run_events", ["run_id", "id"], postgresql_concurrently=True)
        op.drop_index("ix_run_events_run_id_id_subject", table_name="run_events", postgresql_concurrently=True)
