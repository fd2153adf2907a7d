"""An index on every foreign key, so that deleting a run or a tenant finds what points at it without a scan.

Keys that are null on most rows (a run's retries, the run that last wrote a row) get a partial index of the rows
that hold one: only those are found when the row they point at goes, and the others cost the index nothing.
The indexes are built concurrently (outside the migration's transaction), so webhooks and jobs keep writing to
these tables meanwhile.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, only the rows that hold one)
INDEXES = (
    ("runs", "retry_of", True),
    ("runs", "retried_by", True),
    ("deliveries", "run_id", False),
    ("cards_stats_pushed", "run_id", True),
    ("elevo_people_sent", "run_id", True),
    ("schedules", "last_run_id", True),
    ("schedules", "tenant_id", False),
)


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for table, column, partial in INDEXES:
            op.create_index(
                f"ix_{table}_{column}",
                table,
                [column],
                postgresql_where=f"{column} IS NOT NULL" if partial else None,
                postgresql_concurrently=True,
            )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for table, column, _ in INDEXES:
            op.drop_index(f"ix_{table}_{column}", table_name=table, postgresql_concurrently=True)
