"""The ``address_point`` table (门牌 address points) on the shared :class:`gisgrid.db.schema.Base`.

Kept beside the geocoder rather than in :mod:`gisgrid.db.schema`; importing
:mod:`gisgrid.geocode` registers it in ``Base.metadata``, so that the models
and migrations ``0005`` and ``0007`` describe one schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gisgrid.db.schema import Base, _geometry, gist


class AddressPoint(Base):
    """One address: ``street`` + ``housenumber`` at a point (EPSG:4326); ``name`` of the building or place.

    A row without a street is a landmark or POI (a school, a hospital): found by
    its name for addresses such as ``…医院门口`` (migration 0007).
    """

    __tablename__ = "address_point"
    id: Mapped[int] = mapped_column(primary_key=True)
    street: Mapped[str | None] = mapped_column(sa.Text)
    housenumber: Mapped[str | None] = mapped_column(sa.Text)
    name: Mapped[str | None] = mapped_column(sa.Text)
    source_id: Mapped[str | None] = mapped_column(sa.Text)
    jurisdiction_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jurisdiction.id", ondelete="SET NULL"))
    geom = mapped_column(_geometry("POINT"), nullable=False)
    __table_args__ = (
        gist("address_point"),
        sa.CheckConstraint("coalesce(street, '') <> '' OR coalesce(name, '') <> ''", name="street_or_name"),
    )
