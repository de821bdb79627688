"""Assignment history of reports, and a data version that bumps when routing data changes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from gisgrid.db.dataloss import refuse_data_loss

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ROUTING_TABLES = ("segment", "grid_cell", "jurisdiction", "owner_assignment", "category", "person", "department")


def upgrade() -> None:
    op.create_table(
        "report_assignment",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "report_id",
            sa.Integer,
            sa.ForeignKey("report.id", ondelete="CASCADE", name="fk_report_assignment_report_id_report"),
            nullable=False,
        ),
        sa.Column("assigned_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("ruleset_version", sa.String(24), nullable=False),
        sa.Column("rule", sa.String(24), nullable=False),
        sa.Column("target_type", sa.String(16)),
        sa.Column("target_id", sa.Integer),
        sa.Column("segment_id", sa.Integer),
        sa.Column("distance_m", sa.Float),
        sa.Column("owner_person_id", sa.Integer),
        sa.Column("owner_department_id", sa.Integer),
        sa.Column("owner_name", sa.Text),
        sa.Column("chain", sa.Text),
        sa.Column("reason", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_report_assignment"),
    )
    op.create_index("ix_report_assignment_report_id", "report_assignment", ["report_id", "id"])
    op.add_column("report", sa.Column("owner_name", sa.Text))
    op.add_column("report", sa.Column("reason", sa.Text))
    op.create_table(
        "data_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_data_version"),
    )
    op.execute("INSERT INTO data_version (id, version) VALUES (1, 0)")
    op.execute("""
        CREATE FUNCTION gisgrid_bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN UPDATE data_version SET version = version + 1 WHERE id = 1; RETURN NULL; END $$""")
    for table in ROUTING_TABLES:
        op.execute(
            f"CREATE TRIGGER bump_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION gisgrid_bump_data_version()"
        )


def downgrade() -> None:
    refuse_data_loss(revision, tables=("report_assignment",), columns=(("report", "owner_name"), ("report", "reason")))
    for table in ROUTING_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS bump_data_version ON {table}")
    op.execute("DROP FUNCTION IF EXISTS gisgrid_bump_data_version()")
    op.drop_table("data_version")
    op.drop_column("report", "reason")
    op.drop_column("report", "owner_name")
    op.drop_table("report_assignment")
