"""Keeping the directory fresh: what went wrong with the last poll or event, in plain words; due polls by time.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("directory_states", sa.Column("poll_message", sa.Text(), nullable=True))
    op.create_index("ix_directory_states_next_poll_at", "directory_states", ["next_poll_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_directory_states_next_poll_at", table_name="directory_states")
    op.drop_column("directory_states", "poll_message")
