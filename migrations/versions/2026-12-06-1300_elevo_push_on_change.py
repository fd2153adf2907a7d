"""Elevo's push_on_change: per tenant, the copy's change_seq seen, the hash of the last file and its time.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "elevo_push_states",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("seen_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("sent_hash", sa.String(length=64), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_elevo_push_states_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_elevo_push_states")),
    )


def downgrade() -> None:
    op.drop_table("elevo_push_states")
