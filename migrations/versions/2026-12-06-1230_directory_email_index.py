"""The directory copy's people by e-mail ignoring case: an index on (tenant_id, lower(email)).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_directory_employees_tenant_id_lower_email",
        "directory_employees",
        ["tenant_id", sa.literal_column("lower(email)")],
    )


def downgrade() -> None:
    op.drop_index("ix_directory_employees_tenant_id_lower_email", table_name="directory_employees")
