"""Versions of edited cells and segment areas (the /plan editor), and a revision counter per unit.

Every save in the editor writes one ``plan_version`` row per unit it changes
(who, when, why, the geometry after the edit; NULL for a unit removed by a
merge or a delete) and bumps the unit's ``revision``.  A save names the
revision it started from, so the second of two planners saving the same unit
at once is refused instead of overwriting the first.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

from gisgrid.db.dataloss import refuse_data_loss

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("grid_cell", sa.Column("revision", sa.Integer, nullable=False, server_default="1"))
    op.add_column("segment", sa.Column("revision", sa.Integer, nullable=False, server_default="1"))
    op.create_table(
        "plan_version",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("edit_id", sa.BigInteger, nullable=False),
        sa.Column("layer", sa.String(8), nullable=False),
        sa.Column("unit_id", sa.Integer, nullable=False),
        sa.Column("unit_code", sa.Text),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("action", sa.String(12), nullable=False),
        sa.Column("jurisdiction_id", sa.Integer),
        sa.Column("saved_by", sa.Text),
        sa.Column("saved_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False)),
        sa.PrimaryKeyConstraint("id", name="pk_plan_version"),
        sa.CheckConstraint("layer IN ('cell','segment')", name="ck_plan_version_layer"),
    )
    op.create_index("ix_plan_version_unit", "plan_version", ["layer", "unit_id", "revision"])
    op.execute("CREATE SEQUENCE plan_edit_seq")


def downgrade() -> None:
    refuse_data_loss(revision, tables=("plan_version",))
    op.execute("DROP SEQUENCE IF EXISTS plan_edit_seq")
    op.drop_index("ix_plan_version_unit", table_name="plan_version")
    op.drop_table("plan_version")
    op.drop_column("segment", "revision")
    op.drop_column("grid_cell", "revision")
