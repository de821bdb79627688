"""Geometry crossing the database boundary: WKB columns in ``STORAGE_SRID`` to GeoDataFrames.

One home for reading query results with geometry, so every store reads WKB the
same way (NULL stays missing, memoryview becomes bytes, the CRS is stated).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gisgrid import crs


def geoms_from_wkb(wkb: pd.Series) -> np.ndarray:
    """A WKB column (bytes, memoryview or None) as a shapely array; None stays None."""
    if len(wkb) == 0:
        return np.empty(0, dtype=object)
    return shapely.from_wkb(wkb.map(lambda v: None if v is None else bytes(v)).to_numpy())


def geo_frame(frame: pd.DataFrame, column: str = "geom") -> gpd.GeoDataFrame:
    """``frame`` with its WKB ``column`` decoded as the geometry, in EPSG:4326 (``STORAGE_SRID``).

    ``frame`` is not modified.
    """
    table = frame.drop(columns=[column])
    geoms = geoms_from_wkb(frame[column])
    return gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(geoms, crs=crs.STORAGE_SRID, index=table.index))


def query_geo_frame(conn: sa.Connection, sql: str, params: dict | None = None, geom: str = "geom") -> gpd.GeoDataFrame:
    """Run ``sql`` (a statement with bound ``params``) and decode its WKB column ``geom``."""
    table = pd.read_sql_query(sa.text(sql), conn, params=params or {})
    return geo_frame(table, geom)
