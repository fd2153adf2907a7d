"""Tenants are deleted in two steps: marked deleted (invisible, their slug free), then removed by a worker job.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 09:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint("uq_tenants_slug", "tenants", type_="unique")
    op.create_index("uq_tenants_slug", "tenants", ["slug"], unique=True, postgresql_where="deleted_at IS NULL")


def downgrade() -> None:
    # Tenants being deleted go at once (with everything that cascades from them), so their slugs are unique again.
    op.execute("DELETE FROM tenants WHERE deleted_at IS NOT NULL")
    op.drop_index("uq_tenants_slug", table_name="tenants", postgresql_where="deleted_at IS NULL")
    op.create_unique_constraint("uq_tenants_slug", "tenants", ["slug"])
    op.drop_column("tenants", "deleted_at")
