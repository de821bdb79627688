"""Batch geocoding of written addresses (Chinese and Latin) into points with a quality code.

``parse`` (text → :class:`ParsedAddress`), ``gazetteer`` (names, address points,
intersections, house-number series from GeoDataFrames), ``match`` (one address →
:class:`GeocodeResult`) and ``batch`` (tables and CSV/XLSX files, resumable).
"""

from gisgrid.geocode.batch import RESULT_COLUMNS, GeocodeFileResult, geocode_file, geocode_table, read_table
from gisgrid.geocode.gazetteer import Gazetteer, addresses_frame
from gisgrid.geocode.match import QUALITIES, GeocodeResult, geocode
from gisgrid.geocode.parse import ParsedAddress, parse_address, street_key

__all__ = [
    "QUALITIES",
    "RESULT_COLUMNS",
    "Gazetteer",
    "GeocodeFileResult",
    "GeocodeResult",
    "ParsedAddress",
    "addresses_frame",
    "geocode",
    "geocode_file",
    "geocode_table",
    "parse_address",
    "read_table",
    "street_key",
]

import gisgrid.geocode.models  # noqa: E402,F401 - registers address_point in gisgrid.db.schema.Base.metadata
