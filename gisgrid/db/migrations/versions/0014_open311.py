"""Open311 GeoReport v2: what a service (category) offers other systems and what a request brings.

* ``category.service_group`` and ``category.keywords``: Open311's ``group``
  and ``keywords`` of a service (NULL: the group is the category's kind);
* ``category.attributes``: the service definition's attributes (a JSON list
  of ``{code, datatype, required, description, order, values}``; empty: the
  service has no metadata);
* ``report.media_url`` and ``report.attributes``: what an Open311 client sent
  with a request (a photo's URL, the attribute values by code).

Revision ID: 0014_open311
Revises: 0014_frontage
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from gisgrid.db.dataloss import refuse_data_loss

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


def downgrade() -> None:
    refuse_data_loss(
        revision,
        columns=(
            ("report", "attributes"),
            ("report", "media_url"),
            ("category", "keywords"),
            ("category", "service_group"),
        ),
        rows=(("category", "attributes <> '[]'::jsonb", "categories with Open311 attributes"),),
    )
    op.drop_column("report", "attributes")
    op.drop_column("report", "media_url")
    op.drop_column("category", "attributes")
    op.drop_column("category", "keywords")
    op.drop_column("category", "service_group")
