"""patent dates on the replica; deals on patents not in force (override, exclusion)

Revision ID: 0004_indfix
Revises: 0003
Create Date: 2026-11-27 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_indfix"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("patent") as b:
        b.add_column(sa.Column("application_date", sa.Date(), nullable=True))
        b.add_column(sa.Column("grant_date", sa.Date(), nullable=True))
        b.add_column(sa.Column("expiry_date", sa.Date(), nullable=True))
    with op.batch_alter_table("deal") as b:
        b.add_column(
            sa.Column("excluded", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        b.add_column(sa.Column("not_in_force_reason", sa.Text(), nullable=True))
        b.add_column(sa.Column("override_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deal") as b:
        b.drop_column("override_reason")
        b.drop_column("not_in_force_reason")
        b.drop_column("excluded")
    with op.batch_alter_table("patent") as b:
        b.drop_column("expiry_date")
        b.drop_column("grant_date")
        b.drop_column("application_date")
