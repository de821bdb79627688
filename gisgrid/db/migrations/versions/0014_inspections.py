"""Inspection rounds (督查 announced, 暗访 unannounced), their findings, scores and patrol check-ins.

* ``inspection_checklist_item``: what a finding costs, per problem category
  (``category_id``; NULL: any category): ``found`` points per problem found,
  ``overdue`` more when it was not fixed by its deadline, ``repeat`` more
  when it had been reported before.  Defaults from one county's published
  rule: 0.2 / 0.5 / 1.
* ``inspection_round``: a planned round: kind, period (dates, inclusive),
  scope (``scope_kind`` town/street/cell and the ids), the jurisdiction it
  belongs to (the managers of it see it), an optional sample
  (``sample_kind``, ``sample_size``, ``seed``; the drawn units are in
  ``inspection_target``), who planned it, and when it ended (``ended_at``,
  with the deduction rule it was scored by in ``rule``).
* ``inspection_inspector``: the round's inspectors (user accounts).
* ``inspection_target``: the units the round covers (the whole scope, or the sample).
* ``inspection_finding``: a finding: the case it became (``report_id``),
  the checklist item, the inspector, and the units it counts against,
  frozen when it is recorded (segment, street, cell, owner, community, town).
* ``inspection_score``: a round's score per unit (``unit_kind`` person,
  department, segment, street, cell, community, town): 100 minus the
  deductions, never below 0, written when the round ends.
* ``patrol_checkin``: "patrolled here" from the phone page (coverage).
* ``report.inspection_round_id``: the round a finding's case came from
  (``report.source`` says ``inspection`` 督查 or ``unannounced`` 暗访).

Revision ID: 0014_inspections
Revises: 0013
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from gisgrid.db.dataloss import refuse_data_loss

revision = "0014_inspections"
down_revision = "0013"
branch_labels = None
depends_on = None

UNIT_KINDS = "'person','department','segment','street','cell','community','town'"


def _fk(table: str, column: str, ref: str, ondelete: str = "CASCADE"):
    return sa.ForeignKey(f"{ref}.id", ondelete=ondelete, name=f"fk_{table}_{column}_{ref}")


def upgrade() -> None:
    op.create_table(
        "inspection_checklist_item",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("category_id", sa.Integer, _fk("inspection_checklist_item", "category_id", "category")),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_en", sa.Text),
        sa.Column("found", sa.Numeric(6, 2), server_default="0.2", nullable=False),
        sa.Column("overdue", sa.Numeric(6, 2), server_default="0.5", nullable=False),
        sa.Column("repeat", sa.Numeric(6, 2), server_default="1.0", nullable=False),
        sa.Column("active", sa.Boolean, server_default=sa.true(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inspection_checklist_item"),
        sa.CheckConstraint(
            "found >= 0 AND overdue >= 0 AND repeat >= 0 AND found <= 100 AND overdue <= 100 AND repeat <= 100",
            name="ck_inspection_checklist_item_deductions",
        ),
    )
    op.create_index("ix_inspection_checklist_item_category_id", "inspection_checklist_item", ["category_id"])

    op.create_table(
        "inspection_round",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("scope_kind", sa.String(8), nullable=False),
        sa.Column("scope_ids", ARRAY(sa.Integer), nullable=False),
        sa.Column(
            "jurisdiction_id", sa.Integer, _fk("inspection_round", "jurisdiction_id", "jurisdiction", "SET NULL")
        ),
        sa.Column("sample_kind", sa.String(8)),
        sa.Column("sample_size", sa.Integer),
        sa.Column("seed", sa.BigInteger),
        sa.Column("note", sa.Text),
        sa.Column("created_by_user_id", sa.Integer),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("ended_by", sa.Text),
        sa.Column("rule", JSONB),
        sa.PrimaryKeyConstraint("id", name="pk_inspection_round"),
        sa.CheckConstraint("kind IN ('announced','unannounced')", name="ck_inspection_round_kind"),
        sa.CheckConstraint("period_end >= period_start", name="ck_inspection_round_period"),
        sa.CheckConstraint("scope_kind IN ('town','street','cell')", name="ck_inspection_round_scope_kind"),
        sa.CheckConstraint(
            "(sample_kind IS NULL AND sample_size IS NULL AND seed IS NULL) OR "
            "(sample_kind IN ('segment','cell') AND sample_size > 0 AND seed IS NOT NULL)",
            name="ck_inspection_round_sample",
        ),
    )
    op.create_index("ix_inspection_round_period", "inspection_round", ["period_end", "period_start"])

    op.create_table(
        "inspection_inspector",
        sa.Column("round_id", sa.Integer, _fk("inspection_inspector", "round_id", "inspection_round"), nullable=False),
        sa.Column("user_id", sa.Integer, _fk("inspection_inspector", "user_id", "user_account"), nullable=False),
        sa.PrimaryKeyConstraint("round_id", "user_id", name="pk_inspection_inspector"),
    )
    op.create_index("ix_inspection_inspector_user_id", "inspection_inspector", ["user_id"])

    op.create_table(
        "inspection_target",
        sa.Column("round_id", sa.Integer, _fk("inspection_target", "round_id", "inspection_round"), nullable=False),
        sa.Column("unit_kind", sa.String(8), nullable=False),
        sa.Column("unit_id", sa.Integer, nullable=False),
        sa.Column("rank", sa.Integer),
        sa.PrimaryKeyConstraint("round_id", "unit_kind", "unit_id", name="pk_inspection_target"),
        sa.CheckConstraint("unit_kind IN ('segment','cell')", name="ck_inspection_target_unit_kind"),
    )

    op.create_table(
        "inspection_finding",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("round_id", sa.Integer, _fk("inspection_finding", "round_id", "inspection_round"), nullable=False),
        sa.Column("report_id", sa.Integer, _fk("inspection_finding", "report_id", "report"), nullable=False),
        sa.Column(
            "item_id",
            sa.Integer,
            _fk("inspection_finding", "item_id", "inspection_checklist_item", "RESTRICT"),
            nullable=False,
        ),
        sa.Column("inspector_user_id", sa.Integer),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("repeat_of_id", sa.Integer),
        sa.Column("segment_id", sa.Integer),
        sa.Column("street_id", sa.Integer),
        sa.Column("cell_id", sa.Integer),
        sa.Column("person_id", sa.Integer),
        sa.Column("department_id", sa.Integer),
        sa.Column("community_id", sa.Integer),
        sa.Column("town_id", sa.Integer),
        sa.PrimaryKeyConstraint("id", name="pk_inspection_finding"),
    )
    op.create_index("ix_inspection_finding_round_id", "inspection_finding", ["round_id"])
    op.create_index("uq_inspection_finding_report_id", "inspection_finding", ["report_id"], unique=True)

    op.create_table(
        "inspection_score",
        sa.Column("round_id", sa.Integer, _fk("inspection_score", "round_id", "inspection_round"), nullable=False),
        sa.Column("unit_kind", sa.String(12), nullable=False),
        sa.Column("unit_id", sa.Integer, nullable=False),
        sa.Column("unit_name", sa.Text),
        sa.Column("score", sa.Numeric(6, 2), nullable=False),
        sa.Column("deductions", sa.Numeric(8, 2), nullable=False),
        sa.Column("found_deductions", sa.Numeric(8, 2), nullable=False),
        sa.Column("overdue_deductions", sa.Numeric(8, 2), nullable=False),
        sa.Column("repeat_deductions", sa.Numeric(8, 2), nullable=False),
        sa.Column("findings", sa.Integer, nullable=False),
        sa.Column("overdue", sa.Integer, nullable=False),
        sa.Column("repeats", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("round_id", "unit_kind", "unit_id", name="pk_inspection_score"),
        sa.CheckConstraint(f"unit_kind IN ({UNIT_KINDS})", name="ck_inspection_score_unit_kind"),
        sa.CheckConstraint("score >= 0 AND score <= 100", name="ck_inspection_score_score"),
    )
    op.create_index("ix_inspection_score_unit", "inspection_score", ["unit_kind", "unit_id"])

    op.create_table(
        "patrol_checkin",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.Integer),
        sa.Column("person_id", sa.Integer),
        sa.Column("actor_name", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("segment_id", sa.Integer),
        sa.Column("cell_id", sa.Integer),
        sa.Column("client_id", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_patrol_checkin"),
    )
    op.create_index("ix_patrol_checkin_at", "patrol_checkin", ["at"])
    op.create_index(
        "uq_patrol_checkin_client_id",
        "patrol_checkin",
        ["client_id"],
        unique=True,
        postgresql_where=sa.text("client_id IS NOT NULL"),
    )

    op.add_column(
        "report",
        sa.Column(
            "inspection_round_id", sa.Integer, _fk("report", "inspection_round_id", "inspection_round", "SET NULL")
        ),
    )
    op.create_index(
        "ix_report_inspection_round_id",
        "report",
        ["inspection_round_id"],
        postgresql_where=sa.text("inspection_round_id IS NOT NULL"),
    )


def downgrade() -> None:
    refuse_data_loss(
        revision,
        tables=(
            "patrol_checkin",
            "inspection_score",
            "inspection_finding",
            "inspection_target",
            "inspection_inspector",
            "inspection_round",
            "inspection_checklist_item",
        ),
        columns=(("report", "inspection_round_id"),),
    )
    op.drop_index("ix_report_inspection_round_id", table_name="report")
    op.drop_column("report", "inspection_round_id")
    op.drop_table("patrol_checkin")
    op.drop_table("inspection_score")
    op.drop_table("inspection_finding")
    op.drop_table("inspection_target")
    op.drop_table("inspection_inspector")
    op.drop_table("inspection_round")
    op.drop_table("inspection_checklist_item")
