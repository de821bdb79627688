"""Reports keep free space on their pages so re-assignment updates stay HOT (no index churn).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE report SET (fillfactor = 70)")


def downgrade() -> None:
    op.execute("ALTER TABLE report RESET (fillfactor)")
