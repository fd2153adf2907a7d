"""Console links remember who made them: the operator or the tenant key (rotating the key ends the key's links).

Links made before this revision are counted as the tenant key's (nobody recorded it; they live a day at most), so a
key rotation ends them too: the safe side.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 09:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "console_links", sa.Column("minted_by", sa.String(length=20), server_default="tenant_key", nullable=False)
    )
    op.alter_column("console_links", "minted_by", server_default=None)


def downgrade() -> None:
    op.drop_column("console_links", "minted_by")
