"""The item ledger: one row per item a run counted (was the `done_items` map in the run's state); and, per Cards
user link, the run whose create made the user.

Runs made before keep their items: their `done_items` move into the ledger, and out of the state.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_items",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_items_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "item_id", name=op.f("pk_run_items")),
    )
    op.execute(
        """INSERT INTO run_items (run_id, item_id, outcome, at)
           SELECT runs.id, done.key, done.value, COALESCE(runs.finished_at, runs.started_at, runs.created_at)
           FROM runs, jsonb_each_text(runs.state -> 'done_items') AS done
           WHERE jsonb_typeof(runs.state -> 'done_items') = 'object'"""
    )
    op.execute("UPDATE runs SET state = state - 'done_items' WHERE state ? 'done_items'")
    op.add_column("cards_user_links", sa.Column("created_by_run", sa.Uuid(), nullable=True))


def downgrade() -> None:
    op.drop_column("cards_user_links", "created_by_run")
    op.execute(
        """UPDATE runs SET state = runs.state || jsonb_build_object('done_items', done.items)
           FROM (SELECT run_id, jsonb_object_agg(item_id, outcome) AS items FROM run_items GROUP BY run_id) AS done
           WHERE runs.id = done.run_id"""
    )
    op.drop_table("run_items")
