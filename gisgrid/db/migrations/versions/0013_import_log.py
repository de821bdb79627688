"""Idempotent imports: reports found again by source and id; files recognised by their checksum.

* ``ix_report_external_id``: ``gisgrid import reports`` looks a row's id (and
  source) up here and updates the stored report instead of storing it twice.
  Not unique: databases that imported a file twice before this revision keep
  their copies (nothing is deleted by a migration); a later import updates all
  of them.
* ``import_log``: one row per imported file (layer, SHA-256 of its bytes, file
  name, row counts); the same file imported again is recognised and reported.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from gisgrid.db.dataloss import refuse_data_loss

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_report_external_id",
        "report",
        ["external_id", "source"],
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.create_table(
        "import_log",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("layer", sa.String(16), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("inserted", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, server_default="0", nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_log")),
    )
    op.create_index("ix_import_log_checksum", "import_log", ["layer", "checksum"])


def downgrade() -> None:
    refuse_data_loss(revision, tables=("import_log",))
    op.drop_index("ix_import_log_checksum", table_name="import_log")
    op.drop_table("import_log")
    op.drop_index("ix_report_external_id", table_name="report")
