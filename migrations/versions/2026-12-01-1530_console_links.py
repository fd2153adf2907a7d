"""Console links (tokens acting as a tenant's key until they expire), and event subjects folded for search.

`subject_folded` is the subject in lower case without accents ("Zoë" → "zoe"), computed by Postgres itself from
core functions (no `unaccent` extension needed), so every writer of run_events gets it, raw SQL included.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Lower case, decomposed (NFD), combining marks dropped, and the letters decomposition keeps whole spelled out.
FOLD_TEXT = r"""
CREATE FUNCTION fold_text(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN translate(
    replace(replace(replace(replace(
        regexp_replace(normalize(lower(value), NFD), '[\u0300-\u036f]', '', 'g'),
        'ß', 'ss'), 'æ', 'ae'), 'œ', 'oe'), 'þ', 'th'),
    'øłđðı', 'oldde')
"""


def upgrade() -> None:
    op.create_table(
        "console_links",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_console_links_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_links_token_hash")),
    )
    op.create_index(op.f("ix_console_links_tenant_id"), "console_links", ["tenant_id"], unique=False)
    op.execute(FOLD_TEXT)
    op.add_column(
        "run_events",
        sa.Column("subject_folded", sa.Text(), sa.Computed("fold_text(subject)", persisted=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("run_events", "subject_folded")
    op.execute("DROP FUNCTION fold_text(text)")
    op.drop_index(op.f("ix_console_links_tenant_id"), table_name="console_links")
    op.drop_table("console_links")
