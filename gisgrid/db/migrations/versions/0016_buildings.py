"""Buildings: footprints drawn on gisgrid's own light basemap at street zooms.

``gisgrid import buildings FILE`` fills ``building`` (a polygon layer like any
other: CRS stated, bad rows reported); the basemap of a deployment with no tile
service draws them under the units from zoom 16 on.

Revision ID: 0016_buildings
Revises: 0015_frontage_scores
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

from gisgrid.db.dataloss import refuse_data_loss

revision = "0016_buildings"
down_revision = "0015_frontage_scores"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "building",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("kind", sa.String(40)),
        sa.Column("source_id", sa.String(60)),
        sa.Column("jurisdiction_id", sa.Integer, sa.ForeignKey("jurisdiction.id", ondelete="SET NULL")),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
    )
    op.create_index("ix_building_geom_gist", "building", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    refuse_data_loss(revision, tables=("building",))
    op.drop_table("building")
