"""parked (poison) feed entries

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 12:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "parked_feed_entry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("op", sa.String(length=20), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parked_feed_entry")),
    )
    with op.batch_alter_table("parked_feed_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_parked_feed_entry_source"), ["source"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("parked_feed_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parked_feed_entry_source"))
    op.drop_table("parked_feed_entry")
