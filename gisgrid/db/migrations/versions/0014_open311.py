"""Open311 GeoReport v2: what a service (category) offers other systems and what a request brings.

* ``category.service_group`` and ``category.keywords``: Open311's ``group``
  and ``keywords`` of a service (NULL: the group is the category's kind);
* ``category.attributes``: the service definition's attributes (a JSON list
  of ``{code, datatype, required, description, order, values}``; empty: the
  service has no metadata);
* ``report.media_url`` and ``report.attributes``: what an Open311 client sent
  with a request (a photo's URL, the attribute values by code);
* ``ix_report_open_geom``: a GiST index of the open cases' points. The
  duplicate search of intake (:func:`gisgrid.cases.store.find_duplicates`,
  run for every new case, an Open311 POST too) looks at open cases near the
  point; at a million cases, nine in ten closed, the full index made it scan
  every case ever reported around a busy place (350 ms; 30 ms with this one,
  measured with ``bench/interop.py`` on a loaded machine).

Revision ID: 0014_open311
Revises: 0014_frontage
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0014_open311"
down_revision = "0014_frontage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("category", sa.Column("service_group", sa.Text))
    op.add_column("category", sa.Column("keywords", sa.Text))
    op.add_column("category", sa.Column("attributes", JSONB, server_default=sa.text("'[]'::jsonb"), nullable=False))
    op.add_column("report", sa.Column("media_url", sa.Text))
    op.add_column("report", sa.Column("attributes", JSONB))
    op.create_index(
        "ix_report_open_geom",
        "report",
        ["geom"],
        postgresql_using="gist",
        postgresql_where=sa.text("status NOT IN ('closed', 'rejected', 'merged')"),
    )


def downgrade() -> None:
    op.drop_index("ix_report_open_geom", table_name="report")
    op.drop_column("report", "attributes")
    op.drop_column("report", "media_url")
    op.drop_column("category", "attributes")
    op.drop_column("category", "keywords")
    op.drop_column("category", "service_group")
