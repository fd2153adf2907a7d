"""Cards: which Cards user each Lucca employee became, and which group each department became, per space.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def link_columns() -> list[sa.Column[Any]]:
    """What both link tables hold besides their own ids."""
    return [
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("space_id", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "cards_user_links",
        *link_columns(),
        sa.Column("lucca_user_id", sa.Integer(), nullable=False),
        sa.Column("cards_user_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_cards_user_links_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cards_user_links")),
        sa.UniqueConstraint(
            "tenant_id", "space_id", "lucca_user_id", name=op.f("uq_cards_user_links_tenant_id_space_id_lucca_user_id")
        ),
        sa.UniqueConstraint(
            "tenant_id", "space_id", "cards_user_id", name=op.f("uq_cards_user_links_tenant_id_space_id_cards_user_id")
        ),
    )
    op.create_table(
        "cards_group_links",
        *link_columns(),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("cards_group_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_cards_group_links_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cards_group_links")),
        sa.UniqueConstraint(
            "tenant_id", "space_id", "department_id", name=op.f("uq_cards_group_links_tenant_id_space_id_department_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("cards_group_links")
    op.drop_table("cards_user_links")
