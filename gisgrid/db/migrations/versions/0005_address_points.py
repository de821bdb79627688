"""Address points (门牌): street + house number at a point, the geocoder's most exact source.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

from gisgrid.db.dataloss import refuse_data_loss

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "address_point",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("street", sa.Text, nullable=False),
        sa.Column("housenumber", sa.Text),
        sa.Column("name", sa.Text),
        sa.Column("source_id", sa.Text),
        sa.Column(
            "jurisdiction_id",
            sa.Integer,
            sa.ForeignKey("jurisdiction.id", ondelete="SET NULL", name="fk_address_point_jurisdiction_id_jurisdiction"),
        ),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_address_point"),
    )
    op.create_index("ix_address_point_geom_gist", "address_point", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    refuse_data_loss(revision, tables=("address_point",))
    op.drop_index("ix_address_point_geom_gist", table_name="address_point")
    op.drop_table("address_point")
