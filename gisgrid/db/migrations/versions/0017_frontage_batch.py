"""A frontage unit's overdue case climbs one step more; rate-limit counters shared by every process.

* ``report.escalation_level`` goes up to 4: a case routed to a frontage unit
  (门前三包) escalates to its segment chief (the unit's supervisor) first, then
  二级街长 → 一级街长 → 总街长 (:data:`gisgrid.cases.workflow.UNIT_ESCALATION_ROLES`):
  level 4 is its 总街长.
* ``rate_limit``: the counters of the public report page's abuse limits
  (:mod:`gisgrid.db.ratelimits`), in the database so that the processes of
  ``gisgrid serve --processes N`` count together.  Unlogged: a counter lost in
  a crash only forgives an hour's reports.
* Frontage units and agreements are routing data now (the batch's unit step reads
  them into the routing snapshot): their changes bump ``data_version``.

Revision ID: 0017_frontage_batch
Revises: 0016_buildings
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from gisgrid.db.dataloss import refuse_data_loss

revision = "0017_frontage_batch"
down_revision = "0016_buildings"
branch_labels = None
depends_on = None

FRONTAGE_TABLES = ("frontage_unit", "frontage_agreement")


def upgrade() -> None:
    op.drop_constraint("ck_report_escalation_level", "report", type_="check")
    op.create_check_constraint("ck_report_escalation_level", "report", "escalation_level BETWEEN 0 AND 4")
    op.create_table(
        "rate_limit",
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rate_limit"),
        prefixes=["UNLOGGED"],
    )
    for table in FRONTAGE_TABLES:
        op.execute(
            f"CREATE TRIGGER bump_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION gisgrid_bump_data_version()"
        )


def downgrade() -> None:
    refuse_data_loss(revision, rows=(("report", "escalation_level = 4", "units' cases escalated to the 总街长"),))
    for table in FRONTAGE_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS bump_data_version ON {table}")
    op.drop_table("rate_limit")
    op.execute("UPDATE report SET escalation_level = 3 WHERE escalation_level = 4")
    op.drop_constraint("ck_report_escalation_level", "report", type_="check")
    op.create_check_constraint("ck_report_escalation_level", "report", "escalation_level BETWEEN 0 AND 3")
