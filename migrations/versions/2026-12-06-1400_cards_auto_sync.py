"""Cards' auto_sync: per tenant, the copy's change_seq followed; per employee, what Cards was brought in line with.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cards_follow_states",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("space_id", sa.String(length=200), nullable=False),
        sa.Column("settings_key", sa.String(length=64), nullable=False),
        sa.Column("seen_seq", sa.BigInteger(), nullable=False),
        sa.Column("leavers_checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_cards_follow_states_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_cards_follow_states")),
    )
    op.create_table(
        "cards_followed_people",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("space_id", sa.String(length=200), nullable=False),
        sa.Column("lucca_user_id", sa.Integer(), nullable=False),
        sa.Column("view", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("email_key", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_cards_followed_people_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "space_id", "lucca_user_id", name=op.f("pk_cards_followed_people")),
    )
    op.create_index(
        "ix_cards_followed_people_email_key", "cards_followed_people", ["tenant_id", "space_id", "email_key"]
    )


def downgrade() -> None:
    op.drop_index("ix_cards_followed_people_email_key", table_name="cards_followed_people")
    op.drop_table("cards_followed_people")
    op.drop_table("cards_follow_states")
