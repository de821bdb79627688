"""Reading and writing layers: GeoJSON, GeoPackage, Shapefile, CSV and XLSX.

:func:`read_layer` validates every row on the way in (reporting rejected and
repaired rows with their 1-based data row numbers) and converts geometries to
storage lon/lat (EPSG:4326); :func:`write_layer` and :func:`to_geojson_bytes`
write them out (RFC 7946 GeoJSON; CSV/XLSX safe from formula injection).
"""

from gisgrid.io.read import READ_FORMATS, ReadResult, RowProblem, read_layer
from gisgrid.io.write import (
    WRITE_FORMATS,
    TableWriter,
    csv_bytes,
    neutralise_formula,
    neutralise_frame,
    to_geojson_bytes,
    write_layer,
    write_table,
    write_workbook,
)

__all__ = [
    "READ_FORMATS",
    "WRITE_FORMATS",
    "ReadResult",
    "RowProblem",
    "TableWriter",
    "csv_bytes",
    "neutralise_formula",
    "neutralise_frame",
    "read_layer",
    "to_geojson_bytes",
    "write_layer",
    "write_table",
    "write_workbook",
]
