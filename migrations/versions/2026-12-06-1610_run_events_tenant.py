"""The search by person reads one tenant's events: run_events gets its run's tenant, filled from runs in batches
(a big table is never updated in one statement), and the trigram index on the folded subject becomes one on
(tenant, trigrams) with btree_gin (Postgres' contrib), built concurrently, so webhooks and jobs keep writing.

Events written meanwhile by code older than this revision (without a tenant) are filled before the column is made
NOT NULL; from that point on such code can no longer write events: deploy the new code right after.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 16:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH_IDS = 10_000
FILL = """
    UPDATE run_events SET tenant_id = runs.tenant_id FROM runs
    WHERE runs.id = run_events.run_id AND run_events.tenant_id IS NULL
"""


def upgrade() -> None:
    op.add_column("run_events", sa.Column("tenant_id", sa.Uuid(), nullable=True))
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        first, last = bind.execute(sa.text("SELECT min(id), max(id) FROM run_events")).one()
        # One committed statement per range of ids, walked by the primary key.
        for start in range(first or 0, (last or -1) + 1, BATCH_IDS):
            bind.execute(sa.text(f"{FILL} AND run_events.id >= :start AND run_events.id < :end"),
                         {"start": start, "end": start + BATCH_IDS})  # fmt: skip
        # From here rows without a tenant are refused; those written meanwhile are filled, then the check is
        # proven without blocking writes, and NOT NULL takes it as proof instead of reading the table under its lock.
        bind.execute(sa.text("ALTER TABLE run_events ADD CONSTRAINT ck_run_events_tenant_id "
                             "CHECK (tenant_id IS NOT NULL) NOT VALID"))  # fmt: skip
        bind.execute(sa.text(FILL))
        bind.execute(sa.text("ALTER TABLE run_events VALIDATE CONSTRAINT ck_run_events_tenant_id"))
    op.alter_column("run_events", "tenant_id", nullable=False)
    op.drop_constraint(op.f("ck_run_events_tenant_id"), "run_events", type_="check")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_run_events_tenant_id_subject_folded",
            "run_events",
            ["tenant_id", "subject_folded"],
            postgresql_using="gin",
            postgresql_ops={"subject_folded": "gin_trgm_ops"},
            postgresql_concurrently=True,
        )
        op.drop_index("ix_run_events_subject_folded_trgm", table_name="run_events", postgresql_concurrently=True)
        # The planner's statistics of the new column (a job's run list may ask before autovacuum would).
        op.execute("ANALYZE run_events")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_run_events_subject_folded_trgm",
            "run_events",
            ["subject_folded"],
            postgresql_using="gin",
            postgresql_ops={"subject_folded": "gin_trgm_ops"},
            postgresql_concurrently=True,
        )
        op.drop_index("ix_run_events_tenant_id_subject_folded", table_name="run_events", postgresql_concurrently=True)
    op.drop_column("run_events", "tenant_id")
    # The extension stays: something else may use it by now.
