"""Runs remember their latest retry and how many attempts of their work have failed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("retried_by", sa.Uuid(), nullable=True))
    op.create_foreign_key(op.f("fk_runs_retried_by_runs"), "runs", "runs", ["retried_by"], ["id"], ondelete="SET NULL")
    op.add_column("runs", sa.Column("failed_attempts", sa.Integer(), server_default="0", nullable=False))
    # Runs retried before this revision point at their newest direct retry.
    op.execute(
        """
        UPDATE runs SET retried_by = (
            SELECT retry.id FROM runs AS retry WHERE retry.retry_of = runs.id
            ORDER BY retry.created_at DESC, retry.id DESC LIMIT 1
        )
        """
    )


def downgrade() -> None:
    op.drop_column("runs", "failed_attempts")
    op.drop_constraint(op.f("fk_runs_retried_by_runs"), "runs", type_="foreignkey")
    op.drop_column("runs", "retried_by")
