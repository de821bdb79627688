"""A GiST index of the open cases' points.

The duplicate search of intake (:func:`gisgrid.cases.duplicates.find_duplicates`,
run for every new case, an Open311 POST too) looks at open cases near the
point.  At a million cases, nine in ten closed, the full index made it scan
every case ever reported around a busy place (350 ms; 30 ms with this one,
measured with ``bench/interop.py`` on a loaded machine).  The index holds the
open cases only: a tenth of a running deployment's.

Revision ID: 0014_open_cases_index
Revises: 0014_map_bins
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_open_cases_index"
down_revision = "0014_map_bins"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_report_open_geom",
        "report",
        ["geom"],
        postgresql_using="gist",
        postgresql_where=sa.text("status NOT IN ('closed', 'rejected', 'merged')"),
    )


def downgrade() -> None:
    op.drop_index("ix_report_open_geom", table_name="report")
