"""Whose is a job, and API keys: ``job.user_id`` and ``api_key``.

* ``job.user_id``: the user who queued the job.  Its pages answer 404 to
  everybody else (admins excepted); a job queued by the system (no user) is
  seen by admins only.  No foreign key: a job is short-lived and the
  ``user_account`` rows it names are never deleted.
* ``api_key``: keys of machine clients (the ``api_client`` role), each of one
  user account, whose roles and sight it carries.  Only a SHA-256 digest of
  the secret is stored (the secret is 32 random bytes: a slow password hash
  would add nothing but a cost to every request); ``prefix`` finds the row.
  A revoked key keeps its row (``revoked_at``), so the audit log can name it.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

from gisgrid.db.dataloss import refuse_data_loss

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job", sa.Column("user_id", sa.Integer, nullable=True))
    op.create_index("ix_job_user_id", "job", ["user_id"])
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("user_account.id", ondelete="CASCADE", name="fk_api_key_user_id_user_account"),
            nullable=False,
        ),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_api_key"),
    )
    op.create_index("uq_api_key_prefix", "api_key", ["prefix"], unique=True)
    op.create_index("ix_api_key_user_id", "api_key", ["user_id"])


def downgrade() -> None:
    refuse_data_loss(revision, tables=("api_key",), columns=(("job", "user_id"),))
    op.drop_table("api_key")
    op.drop_index("ix_job_user_id", table_name="job")
    op.drop_column("job", "user_id")
