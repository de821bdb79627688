"""People, login and roles: user accounts of persons, role grants scoped by jurisdiction, an append-only audit log.

* ``user_account``: one login per row, always of a ``person`` (an owner that
  already exists).  ``password_hash`` is argon2id; ``failed_logins`` and
  ``locked_until`` hold the lockout after repeated failures; ``session_version``
  is bumped by a password change or a disable, which ends every open session.
* ``role_grant``: a role held by a user, in a jurisdiction subtree (NULL: the
  whole deployment) or for a department.  A person may hold several roles.
  What a chief sees is not granted here: it follows ``owner_assignment`` on the
  day asked about.
* ``audit_log``: who did what, when, with the ids before and after.  Rows are
  only ever inserted: a trigger refuses UPDATE, DELETE and TRUNCATE.  It has no
  foreign keys, so a removed user or unit leaves its history intact.

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from gisgrid.db.dataloss import refuse_data_loss

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: Copied, not imported: a revision must not change when the code does.
ACCOUNT_ROLES = (
    "admin",
    "manager",
    "planner",
    "dispatcher",
    "clerk",
    "chief",
    "grid_worker",
    "inspector",
    "department",
    "api_client",
)


def upgrade() -> None:
    op.create_table(
        "user_account",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column(
            "person_id",
            sa.Integer,
            sa.ForeignKey("person.id", ondelete="RESTRICT", name="fk_user_account_person_id_person"),
            nullable=False,
        ),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("session_version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
        sa.Column("last_login_at", sa.DateTime(timezone=True)),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_user_account"),
        sa.CheckConstraint(
            "username = lower(username) AND username ~ '^[a-z0-9][a-z0-9._@-]*$'", name="ck_user_account_username"
        ),
    )
    op.create_index("uq_user_account_username", "user_account", ["username"], unique=True)
    op.create_index("ix_user_account_person_id", "user_account", ["person_id"])
    op.create_table(
        "role_grant",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("user_account.id", ondelete="CASCADE", name="fk_role_grant_user_id_user_account"),
            nullable=False,
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column(
            "jurisdiction_id",
            sa.Integer,
            sa.ForeignKey("jurisdiction.id", ondelete="CASCADE", name="fk_role_grant_jurisdiction_id_jurisdiction"),
        ),
        sa.Column(
            "department_id",
            sa.Integer,
            sa.ForeignKey("department.id", ondelete="CASCADE", name="fk_role_grant_department_id_department"),
        ),
        sa.Column("granted_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_role_grant"),
        sa.CheckConstraint(
            "role IN (" + ", ".join(f"'{r}'" for r in ACCOUNT_ROLES) + ")",
            name="ck_role_grant_role",
        ),
        sa.CheckConstraint("role <> 'department' OR department_id IS NOT NULL", name="ck_role_grant_department"),
    )
    op.create_index("ix_role_grant_user_id", "role_grant", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor_user_id", sa.Integer),
        sa.Column("actor_person_id", sa.Integer),
        sa.Column("actor_name", sa.Text, nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target_type", sa.String(24)),
        sa.Column("target_id", sa.Text),
        sa.Column("before", JSONB),
        sa.Column("after", JSONB),
        sa.Column("detail", JSONB),
        sa.Column("address", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_actor_user_id", "audit_log", ["actor_user_id", "at"])
    op.create_index("ix_audit_log_target", "audit_log", ["target_type", "target_id"])
    op.execute("""
        CREATE FUNCTION gisgrid_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$""")
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION gisgrid_audit_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION gisgrid_audit_log_append_only()"
    )


def downgrade() -> None:
    refuse_data_loss(revision, tables=("audit_log", "role_grant", "user_account"))
    op.drop_table("audit_log")
    op.execute("DROP FUNCTION IF EXISTS gisgrid_audit_log_append_only()")
    op.drop_table("role_grant")
    op.drop_table("user_account")
