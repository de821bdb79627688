"""Frontage duty (门前三包): units, their frontages and agreements; signboards; the public channel.

* ``frontage_unit``: a shop, institution or residential building that answers
  for the pavement in front of it.  ``location`` is its point or footprint
  (any geometry type), ``frontage`` the part of its segment's frontage area in
  front of it (derived by :mod:`gisgrid.frontage.derive`, or drawn by a
  planner: ``frontage_source = 'planner'``).  ``person_id`` is its contact as
  a person, so that a case can be assigned to the unit and reach an inbox.
* ``frontage_agreement``: the signed agreement (责任书) — signed date,
  expiry, the duties, a scanned document under the data folder.
* ``category.frontage_duty``: reports of such a category in a unit's
  frontage go to the unit (:mod:`gisgrid.routing.frontage`).
* ``street.commercial``: a shopping street, whose frontage the audit expects
  units to answer for.
* ``report.frontage_unit_id``: the unit a case was routed to (the case stays
  on its segment, whose chief supervises); ``report.public_token``: the
  secret with which a resident follows a report made on the public page.
* ``signboard_print``: what each printed signboard said, so that an owner
  change lists the boards to print again.
* ``frontage_ranking``: a published monthly red and black list (红黑榜) with its
  rules and rows, kept as published.

Revision ID: 0014_frontage
Revises: 0013
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from gisgrid.db.dataloss import refuse_data_loss

revision = "0014_frontage"
down_revision = "0014_rankings"
branch_labels = None
depends_on = None

UNIT_KINDS = "'shop','institution','residential'"


def upgrade() -> None:
    op.add_column("category", sa.Column("frontage_duty", sa.Boolean, server_default=sa.false(), nullable=False))
    op.add_column("street", sa.Column("commercial", sa.Boolean, server_default=sa.false(), nullable=False))
    op.create_table(
        "frontage_unit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("uscc", sa.String(18)),
        sa.Column("contact_name", sa.Text),
        sa.Column("contact_phone", sa.String(40)),
        sa.Column("address", sa.Text),
        sa.Column("segment_id", sa.Integer, sa.ForeignKey("segment.id", ondelete="SET NULL")),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("person.id", ondelete="SET NULL")),
        sa.Column("location", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
        sa.Column("frontage", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False)),
        sa.Column("frontage_source", sa.String(8), server_default="derived", nullable=False),
        sa.Column("revision", sa.Integer, server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"kind IN ({UNIT_KINDS})", name="ck_frontage_unit_kind"),
        sa.CheckConstraint("frontage_source IN ('derived','planner')", name="ck_frontage_unit_frontage_source"),
    )
    op.create_index("ix_frontage_unit_segment_id", "frontage_unit", ["segment_id"])
    op.create_index("ix_frontage_unit_frontage_gist", "frontage_unit", ["frontage"], postgresql_using="gist")
    op.create_index("ix_frontage_unit_location_gist", "frontage_unit", ["location"], postgresql_using="gist")
    op.create_index("uq_frontage_unit_uscc", "frontage_unit", ["uscc"], unique=True,
                    postgresql_where=sa.text("uscc IS NOT NULL"))  # fmt: skip
    op.create_table(
        "frontage_agreement",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("unit_id", sa.Integer, sa.ForeignKey("frontage_unit.id", ondelete="CASCADE"), nullable=False),
        sa.Column("signed_on", sa.Date, nullable=False),
        sa.Column("expires_on", sa.Date, nullable=False),
        sa.Column("duties", ARRAY(sa.Text), server_default="{}", nullable=False),
        sa.Column("document_path", sa.Text),
        sa.Column("document_name", sa.Text),
        sa.Column("created_by", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("expires_on > signed_on", name="ck_frontage_agreement_dates"),
    )
    op.create_index("ix_frontage_agreement_unit_id", "frontage_agreement", ["unit_id", "expires_on"])
    op.add_column(
        "report",
        sa.Column(
            "frontage_unit_id",
            sa.Integer,
            sa.ForeignKey("frontage_unit.id", ondelete="SET NULL", name="fk_report_frontage_unit_id_frontage_unit"),
        ),
    )
    op.add_column("report", sa.Column("public_token", sa.String(48)))
    op.create_index("ix_report_frontage_unit_id", "report", ["frontage_unit_id"],
                    postgresql_where=sa.text("frontage_unit_id IS NOT NULL"))  # fmt: skip
    op.create_table(
        "signboard_print",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("segment_id", sa.Integer, sa.ForeignKey("segment.id", ondelete="CASCADE"), nullable=False),
        sa.Column("content", JSONB, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("printed_by", sa.Text),
        sa.Column("printed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_signboard_print_segment_id", "signboard_print", ["segment_id", "id"])
    op.create_table(
        "frontage_ranking",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("jurisdiction_id", sa.Integer, sa.ForeignKey("jurisdiction.id", ondelete="SET NULL")),
        sa.Column("rules", JSONB, nullable=False),
        sa.Column("rows", JSONB, nullable=False),
        sa.Column("published_by", sa.Text),
        sa.Column("published_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    refuse_data_loss(
        revision,
        tables=("frontage_ranking", "signboard_print", "frontage_agreement", "frontage_unit"),
        columns=(("report", "public_token"), ("report", "frontage_unit_id")),
        rows=(
            ("street", "commercial", "streets marked as shopping streets"),
            ("category", "frontage_duty", "categories marked as frontage duty (门前三包)"),
        ),
    )
    op.drop_table("frontage_ranking")
    op.drop_table("signboard_print")
    op.drop_index("ix_report_frontage_unit_id", table_name="report")
    op.drop_column("report", "public_token")
    op.drop_column("report", "frontage_unit_id")
    op.drop_table("frontage_agreement")
    op.drop_table("frontage_unit")
    op.drop_column("street", "commercial")
    op.drop_column("category", "frontage_duty")
