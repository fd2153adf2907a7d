"""Elevo: who was in the last people file uploaded, per tenant.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "elevo_people_sent",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("lucca_user_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=500), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_elevo_people_sent_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_elevo_people_sent_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "lucca_user_id", name=op.f("pk_elevo_people_sent")),
    )


def downgrade() -> None:
    op.drop_table("elevo_people_sent")
