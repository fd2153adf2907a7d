"""Cards: the creates this service sent, kept until their link is written (a lost answer is found by its e-mail).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cards_user_creates",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("space_id", sa.String(length=200), nullable=False),
        sa.Column("lucca_user_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=500), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_cards_user_creates_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "space_id", "lucca_user_id", name=op.f("pk_cards_user_creates")),
    )


def downgrade() -> None:
    op.drop_table("cards_user_creates")
