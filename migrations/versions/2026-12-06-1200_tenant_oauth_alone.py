"""A tenant may hold Lucca's API key, an OAuth client, or both; how often its directory is polled.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("tenants", "lucca_api_key_encrypted", existing_type=sa.Text(), nullable=True)
    op.add_column("tenants", sa.Column("poll_seconds", sa.Integer(), server_default=sa.text("60"), nullable=False))
    op.create_check_constraint(
        op.f("ck_tenants_lucca_credentials"),
        "tenants",
        "lucca_api_key_encrypted IS NOT NULL OR lucca_oauth_encrypted IS NOT NULL",
    )
    op.create_check_constraint(op.f("ck_tenants_poll_seconds"), "tenants", "poll_seconds BETWEEN 30 AND 3600")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_tenants_poll_seconds"), "tenants", type_="check")
    op.drop_constraint(op.f("ck_tenants_lucca_credentials"), "tenants", type_="check")
    op.drop_column("tenants", "poll_seconds")
    op.execute("DELETE FROM tenants WHERE lucca_api_key_encrypted IS NULL")
    op.alter_column("tenants", "lucca_api_key_encrypted", existing_type=sa.Text(), nullable=False)
