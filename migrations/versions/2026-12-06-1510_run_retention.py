"""Retention: a delivery keeps its id (what makes a second delivery a duplicate) after its run is purged, and the
purge finds old finished runs by an index. Events in pages: a run's events are walked by (run, id), so a page
costs the same however many events the run has (the index on the run alone is replaced by it). The indexes are
built concurrently (outside the migration's transaction), so webhooks and jobs keep writing meanwhile.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Deleting a run used to delete its deliveries; a delivery now outlives its run and keeps the run's id.
    op.drop_constraint(op.f("fk_deliveries_run_id_runs"), "deliveries", type_="foreignkey")
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_runs_finished_at",
            "runs",
            ["finished_at"],
            postgresql_where=sa.text("finished_at IS NOT NULL"),
            postgresql_concurrently=True,
        )
        op.create_index("ix_run_events_run_id_id", "run_events", ["run_id", "id"], postgresql_concurrently=True)
        op.drop_index("ix_run_events_run_id", table_name="run_events", postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_run_events_run_id", "run_events", ["run_id"], postgresql_concurrently=True)
        op.drop_index("ix_run_events_run_id_id", table_name="run_events", postgresql_concurrently=True)
        op.drop_index("ix_runs_finished_at", table_name="runs", postgresql_concurrently=True)
    op.execute("DELETE FROM deliveries WHERE NOT EXISTS (SELECT FROM runs WHERE runs.id = deliveries.run_id)")
    op.create_foreign_key(
        op.f("fk_deliveries_run_id_runs"),
        "deliveries",
        "runs",
        ["run_id"],
        ["id"],
        ondelete="CASCADE",
        initially="DEFERRED",
        deferrable=True,
    )
