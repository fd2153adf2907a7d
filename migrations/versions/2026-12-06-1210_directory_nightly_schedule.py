"""The directory's nightly full sync: a schedule of the tenant's Lucca account, without a connector.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("schedules", "connector_id", existing_type=sa.Uuid(), nullable=True)
    op.create_index(
        "uq_schedules_tenant_id_operation",
        "schedules",
        ["tenant_id", "operation"],
        unique=True,
        postgresql_where=sa.text("connector_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_schedules_tenant_id_operation", table_name="schedules")
    op.execute("DELETE FROM schedules WHERE connector_id IS NULL")
    op.alter_column("schedules", "connector_id", existing_type=sa.Uuid(), nullable=False)
