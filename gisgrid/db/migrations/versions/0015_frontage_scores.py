"""Inspection rounds score frontage units (门前三包) too.

A finding whose case went to a frontage unit (``report.frontage_unit_id``)
deducts from that unit's score, and the units on a round's segments score 100
when nothing was found against them: ``inspection_score.unit_kind`` gains
``frontage``.

Revision ID: 0015_frontage_scores
Revises: 0014_open_cases_index
Create Date: 2026-12-07
"""

from alembic import op

from gisgrid.db.dataloss import refuse_data_loss

revision = "0015_frontage_scores"
down_revision = "0014_open_cases_index"
branch_labels = None
depends_on = None

BEFORE = "'person','department','segment','street','cell','community','town'"
AFTER = BEFORE + ",'frontage'"


def upgrade() -> None:
    op.drop_constraint("ck_inspection_score_unit_kind", "inspection_score", type_="check")
    op.create_check_constraint("ck_inspection_score_unit_kind", "inspection_score", f"unit_kind IN ({AFTER})")


def downgrade() -> None:
    refuse_data_loss(revision, rows=(("inspection_score", "unit_kind = 'frontage'", "frontage units' scores"),))
    op.execute("DELETE FROM inspection_score WHERE unit_kind = 'frontage'")
    op.drop_constraint("ck_inspection_score_unit_kind", "inspection_score", type_="check")
    op.create_check_constraint("ck_inspection_score_unit_kind", "inspection_score", f"unit_kind IN ({BEFORE})")
