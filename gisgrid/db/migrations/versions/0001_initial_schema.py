"""Initial schema: jurisdictions, streets, segments, grid cells, owners, categories, reports.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

from gisgrid.db.dataloss import refuse_data_loss

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SRID = 4326


def _geom(kind):
    return Geometry(kind, srid=SRID, spatial_index=False)


def _gist(table, column="geom"):
    op.create_index(f"ix_{table}_{column}_gist", table, [column], postgresql_using="gist")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "jurisdiction",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("level", sa.String(12), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column(
            "parent_id",
            sa.Integer,
            sa.ForeignKey("jurisdiction.id", ondelete="SET NULL", name="fk_jurisdiction_parent_id_jurisdiction"),
        ),
        sa.Column("metric_epsg", sa.Integer),
        sa.Column("geom", _geom("MULTIPOLYGON"), nullable=False),
        sa.CheckConstraint("level IN ('county','town','community')", name="ck_jurisdiction_level"),
        sa.UniqueConstraint("code", name="uq_jurisdiction_code"),
        sa.PrimaryKeyConstraint("id", name="pk_jurisdiction"),
    )
    _gist("jurisdiction")
    op.create_table(
        "department",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("phone", sa.String(40)),
        sa.UniqueConstraint("code", name="uq_department_code"),
        sa.PrimaryKeyConstraint("id", name="pk_department"),
    )
    op.create_table(
        "person",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("phone", sa.String(40)),
        sa.Column("title", sa.Text),
        sa.Column(
            "department_id",
            sa.Integer,
            sa.ForeignKey("department.id", ondelete="SET NULL", name="fk_person_department_id_department"),
        ),
        sa.PrimaryKeyConstraint("id", name="pk_person"),
    )
    op.create_table(
        "street",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("aliases", postgresql.ARRAY(sa.Text), server_default="{}", nullable=False),
        sa.Column("road_class", sa.String(40)),
        sa.Column(
            "jurisdiction_id",
            sa.Integer,
            sa.ForeignKey("jurisdiction.id", ondelete="SET NULL", name="fk_street_jurisdiction_id_jurisdiction"),
        ),
        sa.Column("source_id", sa.String(60)),
        sa.Column("geom", _geom("MULTILINESTRING"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_street"),
    )
    _gist("street")
    op.create_index("ix_street_name", "street", ["name"])
    op.create_table(
        "segment",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "street_id",
            sa.Integer,
            sa.ForeignKey("street.id", ondelete="CASCADE", name="fk_segment_street_id_street"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer, server_default="0", nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("from_name", sa.Text),
        sa.Column("to_name", sa.Text),
        sa.Column("road_class", sa.String(40)),
        sa.Column("length_m", sa.Float),
        sa.Column("geom", _geom("LINESTRING"), nullable=False),
        sa.Column("area", _geom("MULTIPOLYGON")),
        sa.PrimaryKeyConstraint("id", name="pk_segment"),
    )
    _gist("segment")
    _gist("segment", "area")
    op.create_index("ix_segment_street_id", "segment", ["street_id"])
    op.create_table(
        "grid_cell",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column(
            "jurisdiction_id",
            sa.Integer,
            sa.ForeignKey("jurisdiction.id", ondelete="SET NULL", name="fk_grid_cell_jurisdiction_id_jurisdiction"),
        ),
        sa.Column("geom", _geom("MULTIPOLYGON"), nullable=False),
        sa.UniqueConstraint("code", name="uq_grid_cell_code"),
        sa.PrimaryKeyConstraint("id", name="pk_grid_cell"),
    )
    _gist("grid_cell")
    op.create_table(
        "owner_assignment",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "person_id",
            sa.Integer,
            sa.ForeignKey("person.id", ondelete="CASCADE", name="fk_owner_assignment_person_id_person"),
        ),
        sa.Column(
            "department_id",
            sa.Integer,
            sa.ForeignKey("department.id", ondelete="CASCADE", name="fk_owner_assignment_department_id_department"),
        ),
        sa.Column("target_type", sa.String(16), nullable=False),
        sa.Column("target_id", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_to", sa.Date),
        sa.CheckConstraint("(person_id IS NULL) <> (department_id IS NULL)", name="ck_owner_assignment_one_owner"),
        sa.CheckConstraint(
            "target_type IN ('jurisdiction','street','segment','cell')", name="ck_owner_assignment_target_type"
        ),
        sa.CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="ck_owner_assignment_dates"),
        sa.PrimaryKeyConstraint("id", name="pk_owner_assignment"),
    )
    op.create_index("ix_owner_assignment_target", "owner_assignment", ["target_type", "target_id", "valid_from"])
    op.create_table(
        "category",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_en", sa.Text),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column(
            "department_id",
            sa.Integer,
            sa.ForeignKey("department.id", ondelete="SET NULL", name="fk_category_department_id_department"),
        ),
        sa.Column("deadline_hours", sa.Float, nullable=False),
        sa.Column("working_time", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column("routing", postgresql.JSONB, server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.CheckConstraint("kind IN ('event','facility')", name="ck_category_kind"),
        sa.UniqueConstraint("code", name="uq_category_code"),
        sa.PrimaryKeyConstraint("id", name="pk_category"),
    )
    op.create_table(
        "report",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("external_id", sa.String(64)),
        sa.Column("geom", _geom("POINT")),
        sa.Column(
            "category_id",
            sa.Integer,
            sa.ForeignKey("category.id", ondelete="SET NULL", name="fk_report_category_id_category"),
        ),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("source", sa.String(40)),
        sa.Column("address", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("status", sa.String(12), server_default="reported", nullable=False),
        sa.Column("is_demo", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column("target_type", sa.String(16)),
        sa.Column("target_id", sa.Integer),
        sa.Column(
            "owner_person_id",
            sa.Integer,
            sa.ForeignKey("person.id", ondelete="SET NULL", name="fk_report_owner_person_id_person"),
        ),
        sa.Column(
            "owner_department_id",
            sa.Integer,
            sa.ForeignKey("department.id", ondelete="SET NULL", name="fk_report_owner_department_id_department"),
        ),
        sa.Column("rule", sa.String(24)),
        sa.Column("distance_m", sa.Float),
        sa.Column("ruleset_version", sa.String(24)),
        sa.CheckConstraint(
            "status IN ('reported','accepted','dispatched','handled','verified','closed')", name="ck_report_status"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_report"),
    )
    _gist("report")
    op.create_index("ix_report_reported_at", "report", ["reported_at"])


def downgrade() -> None:
    refuse_data_loss(
        revision,
        tables=(
            "report",
            "category",
            "owner_assignment",
            "grid_cell",
            "segment",
            "street",
            "person",
            "department",
            "jurisdiction",
        ),
    )
    for table in (
        "report",
        "category",
        "owner_assignment",
        "grid_cell",
        "segment",
        "street",
        "person",
        "department",
        "jurisdiction",
    ):
        op.drop_table(table)
