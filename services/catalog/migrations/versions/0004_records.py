"""dated organisation history; audit of listing events

Revision ID: 0004_records
Revises: 0003
Create Date: 2026-11-27 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_records"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organisation_change",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("previous", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_org_id", sa.BigInteger(), nullable=True),
        sa.Column("recorded_by_role", sa.String(length=20), nullable=True),
        sa.Column("recorded_by_key", sa.String(length=24), nullable=True),
        sa.Column("recorded_by_person_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organisation.id"], name=op.f("fk_organisation_change_org_id_organisation")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisation_change")),
    )
    with op.batch_alter_table("organisation_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_organisation_change_org_id"), ["org_id"], unique=False)
    with op.batch_alter_table("listing_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("recorded_by", sa.String(length=100), nullable=True))
    with op.batch_alter_table("listing", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("listing", schema=None) as batch_op:
        batch_op.drop_column("status_since")
    with op.batch_alter_table("listing_event", schema=None) as batch_op:
        batch_op.drop_column("recorded_by")
        batch_op.drop_column("recorded_at")
    with op.batch_alter_table("organisation_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organisation_change_org_id"))
    op.drop_table("organisation_change")
