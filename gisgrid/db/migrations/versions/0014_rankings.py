"""Published rankings (一季一排名): a snapshot of inputs, figures and rule version that never changes.

``ranking_snapshot`` holds one published ranking: its period, unit kind and
jurisdiction, the rules (weights, bands, grades, N) and their version, the
inputs per unit (the counts every rate was computed from), the ids of the
cases behind it and the figures (every ranking row).  A trigger refuses any
UPDATE or DELETE: what was published stays as published, whatever happens to
the cases later (a re-run is compared with it, never written over it).

Revision ID: 0014_rankings
Revises: 0013
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from gisgrid.db.dataloss import refuse_data_loss

revision = "0014_rankings"
down_revision = "0014_inspections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ranking_snapshot",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("first_day", sa.Date, nullable=False),
        sa.Column("last_day", sa.Date, nullable=False),
        sa.Column("timezone", sa.Text, nullable=False),
        sa.Column("unit_kind", sa.String(12), nullable=False),
        sa.Column("jurisdiction_id", sa.Integer),
        sa.Column("rules", JSONB, nullable=False),
        sa.Column("rules_version", sa.Text, nullable=False),
        sa.Column("inputs", JSONB, nullable=False),
        sa.Column("case_ids", ARRAY(sa.Integer), nullable=False),
        sa.Column("figures", JSONB, nullable=False),
        sa.Column("published_by_user_id", sa.Integer),
        sa.Column("published_by", sa.Text, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ranking_snapshot"),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name="fk_ranking_snapshot_jurisdiction_id_jurisdiction",
            ondelete="RESTRICT",
        ),
        sa.CheckConstraint("unit_kind IN ('town','community','street','owner')", name="ck_ranking_snapshot_unit_kind"),
    )
    op.create_index("ix_ranking_snapshot_period", "ranking_snapshot", ["period", "unit_kind"])
    op.execute("""
        CREATE FUNCTION ranking_snapshot_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'a published ranking (snapshot %) never changes', OLD.id
                USING ERRCODE = 'integrity_constraint_violation';
        END $$""")
    op.execute("""
        CREATE TRIGGER ranking_snapshot_frozen BEFORE UPDATE OR DELETE ON ranking_snapshot
        FOR EACH ROW EXECUTE FUNCTION ranking_snapshot_frozen()""")


def downgrade() -> None:
    refuse_data_loss(revision, tables=("ranking_snapshot",))
    op.drop_table("ranking_snapshot")
    op.execute("DROP FUNCTION ranking_snapshot_frozen()")
