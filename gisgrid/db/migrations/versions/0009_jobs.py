"""Background jobs: the ``job`` table, a queue that workers claim with ``FOR UPDATE SKIP LOCKED``.

One row per job (PNG export of the manager map, a large geocoding upload …):
its kind and parameters, its state (queued → running → done | failed), the
percent done and what it is doing, the result or a readable error, and how
many times it was started.  See :mod:`gisgrid.jobs`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from gisgrid.db.dataloss import refuse_data_loss

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("params", JSONB, server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("status", sa.String(8), server_default="queued", nullable=False),
        sa.Column("progress", sa.Float, server_default="0", nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("message_args", JSONB, nullable=True),
        sa.Column("result", JSONB, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("error_detail", JSONB, nullable=True),
        sa.Column("attempts", sa.Integer, server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer, server_default="1", nullable=False),
        sa.Column("worker", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
        sa.CheckConstraint("status IN ('queued','running','done','failed')", name=op.f("ck_job_status")),
        sa.CheckConstraint("progress >= 0 AND progress <= 100", name=op.f("ck_job_progress")),
        sa.CheckConstraint("max_attempts >= 1", name=op.f("ck_job_max_attempts")),
    )
    # the claim query takes the oldest queued job; the recovery scan looks at running ones
    op.create_index("ix_job_queued", "job", ["created_at"], postgresql_where=sa.text("status IN ('queued','running')"))


def downgrade() -> None:
    refuse_data_loss(revision, tables=("job",))
    op.drop_index("ix_job_queued", table_name="job")
    op.drop_table("job")
