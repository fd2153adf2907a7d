"""Merge the readers' index (0014r) with the directory's other migrations (0014w): no change of its own.

Revision ID: 0014rd
Revises: 0014w, 0014r
Create Date: 2026-12-06 12:11:00
"""

from collections.abc import Sequence

revision: str = "0014rd"
down_revision: str | tuple[str, ...] | None = ("0014w", "0014r")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
