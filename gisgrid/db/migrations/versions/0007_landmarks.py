"""Landmarks and POIs in ``address_point``: a named place (a school, a hospital, a market) may have no street.

A row needs a street (an address point) or a name (a landmark); both is a
named building with its door plate.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from gisgrid.db.dataloss import refuse_data_loss

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("address_point", "street", existing_type=sa.Text, nullable=True)
    op.create_check_constraint(
        op.f("ck_address_point_street_or_name"),
        "address_point",
        "coalesce(street, '') <> '' OR coalesce(name, '') <> ''",
    )


def downgrade() -> None:
    refuse_data_loss(
        revision, rows=(("address_point", "street IS NULL", "address points without a street (landmarks)"),)
    )
    op.execute("DELETE FROM address_point WHERE street IS NULL")
    op.drop_constraint(op.f("ck_address_point_street_or_name"), "address_point", type_="check")
    op.alter_column("address_point", "street", existing_type=sa.Text, nullable=False)
