"""Elevo: which current employees the last people file left out, and why, so a sync names only who is newly left out.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 05:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "elevo_people_left_out",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("lucca_user_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_elevo_people_left_out_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "lucca_user_id", name=op.f("pk_elevo_people_left_out")),
    )


def downgrade() -> None:
    op.drop_table("elevo_people_left_out")
