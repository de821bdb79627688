"""The gazetteer from the database: streets, address points (门牌) and jurisdictions.

A deployment may cover places far apart (the sample data holds Sha Tin,
Beijing, Shenzhen and Helsinki), while a :class:`Gazetteer` works in one metric
CRS.  :func:`load_gazetteer` therefore builds one gazetteer per metric CRS (the
``metric_epsg`` of each feature's jurisdiction) and returns them as an
:class:`AreaGazetteers`, which geocodes an address against each and keeps the
best result.  With one area this is exactly :func:`gisgrid.geocode.geocode`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gisgrid import crs
from gisgrid.config import TextLimits
from gisgrid.geocode.batch import added_names, geocode_table
from gisgrid.geocode.gazetteer import Gazetteer
from gisgrid.geocode.match import QUALITIES, GeocodeResult, geocode

LOGGER = logging.getLogger(__name__)

#: Quality codes, best first (rank 0 = address point).
QUALITY_RANK = {q: i for i, q in enumerate(QUALITIES)}


@dataclass
class AreaGazetteers:
    """One :class:`Gazetteer` per metric CRS of the data; ``signature`` identifies the data it was built from."""

    areas: dict[int, Gazetteer] = field(default_factory=dict)
    signature: tuple = ()

    def __len__(self) -> int:
        return len(self.areas)

    def geocode(self, address: str | None) -> GeocodeResult:
        """The best result over the areas: located before failed, then highest confidence, then best quality."""
        results = [geocode(address, gaz) for gaz in self.areas.values()]
        if not results:
            return GeocodeResult(np.nan, np.nan, "failed", 0.0, None, "the gazetteer is empty: import streets first")
        return max(results, key=lambda r: (r.ok, r.confidence, -QUALITY_RANK.get(r.quality, 99)))

    def geocode_table(
        self,
        frame: pd.DataFrame,
        column: str,
        *,
        caches: dict | None = None,
        limits: TextLimits | None = None,
        malformed: dict[int, str] | None = None,
    ) -> pd.DataFrame:
        """:func:`gisgrid.geocode.geocode_table` against every area, keeping per row the best result.

        Parameters
        ----------
        frame : pandas.DataFrame
            Not modified.
        column : str
            Column of written addresses.
        caches : dict, optional
            Per-area result caches shared between calls (chunks of one file).
        limits : TextLimits, optional
            The longest address and cell read (see :func:`gisgrid.geocode.geocode_table`).
        malformed : dict of int to str, optional
            Rows that could not be read, by index label, with the reason (they fail).

        Returns
        -------
        pandas.DataFrame
            ``frame`` with :data:`gisgrid.geocode.RESULT_COLUMNS` added (rows in = rows out).
        """
        caches = {} if caches is None else caches
        if not self.areas:
            from gisgrid.errors import InputError

            raise InputError("the gazetteer is empty: import streets (and address points) first")
        names = added_names(frame.columns)
        added = list(names.values())
        best = None
        best_key = None
        for epsg, gaz in self.areas.items():
            out = geocode_table(
                frame, column, gaz, cache=caches.setdefault(epsg, {}), limits=limits, malformed=malformed
            )
            quality, confidence = out[names["quality"]], out[names["confidence"]]
            key = (
                quality.ne("failed").to_numpy(dtype=float) * 10.0
                + confidence.to_numpy(dtype=float)
                - quality.map(QUALITY_RANK).to_numpy(dtype=float) * 1e-3
            )
            if best is None:
                best, best_key = out, key
            else:
                better = key > best_key
                if better.any():
                    best = best.copy()
                    best.loc[better, added] = out.loc[better, added].to_numpy()
                    best_key = np.where(better, key, best_key)
        return best


def gazetteer_signature(conn: sa.Connection) -> tuple:
    """Changes whenever streets, address points or jurisdictions change (cheap: counts and max ids)."""
    row = conn.execute(
        sa.text("""
        SELECT (SELECT count(*) || ':' || coalesce(max(id), 0) FROM street),
               (SELECT count(*) || ':' || coalesce(max(id), 0) FROM address_point),
               (SELECT version FROM data_version WHERE id = 1)""")
    ).first()
    return tuple(row)


def _fill_epsg(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Features whose jurisdiction has no metric CRS get the one of their own position."""
    missing = frame["epsg"].isna() | (frame["epsg"] == 0)
    if missing.any():
        pts = frame.geometry[missing].representative_point()
        frame.loc[missing, "epsg"] = [crs.metric_crs_for(p.x, p.y) for p in pts]
    frame["epsg"] = frame["epsg"].astype(int)
    return frame


def load_gazetteer(conn: sa.Connection, *, jurisdiction_code: str | None = None) -> AreaGazetteers:
    """Build the gazetteers from the ``street``, ``address_point`` and ``jurisdiction`` tables.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    jurisdiction_code : str, optional
        Only streets and address points of this jurisdiction and those below it.

    Returns
    -------
    AreaGazetteers
        One gazetteer per metric CRS in use; empty when there are no streets.
        Address points with a ``name`` (a building, school, park) also serve as
        landmarks for addresses such as ``…门口``.
    """
    scope = ""
    params = {}
    if jurisdiction_code:
        scope = """ AND jurisdiction_id IN (WITH RECURSIVE sub AS (
                      SELECT id FROM jurisdiction WHERE code = :code
                      UNION ALL SELECT j.id FROM jurisdiction j JOIN sub ON j.parent_id = sub.id)
                    SELECT id FROM sub)"""
        params = {"code": jurisdiction_code}
        if conn.execute(sa.text("SELECT 1 FROM jurisdiction WHERE code = :code"), params).first() is None:
            from gisgrid.errors import InputError

            raise InputError(f"jurisdiction {jurisdiction_code} not found")
    signature = gazetteer_signature(conn)

    def frame(sql: str) -> gpd.GeoDataFrame:
        rows = pd.DataFrame(conn.execute(sa.text(sql), params).mappings().all())
        if rows.empty:
            return gpd.GeoDataFrame({"epsg": pd.Series(dtype=int)}, geometry=gpd.GeoSeries([], crs=crs.STORAGE_SRID))
        geom = shapely.from_wkb(rows.pop("wkb").map(bytes).to_numpy())
        return _fill_epsg(gpd.GeoDataFrame(rows, geometry=geom, crs=crs.STORAGE_SRID))

    streets = frame(f"""
        SELECT s.name, s.aliases, j.code AS jurisdiction_code, j.metric_epsg AS epsg, ST_AsBinary(s.geom) AS wkb
        FROM street s LEFT JOIN jurisdiction j ON j.id = s.jurisdiction_id WHERE true {
        scope.replace("jurisdiction_id", "s.jurisdiction_id")
    }""")
    addresses = frame(f"""
        SELECT a.street, a.housenumber, a.name, j.metric_epsg AS epsg, ST_AsBinary(a.geom) AS wkb
        FROM address_point a LEFT JOIN jurisdiction j ON j.id = a.jurisdiction_id WHERE true {
        scope.replace("jurisdiction_id", "a.jurisdiction_id")
    }""")
    jurisdictions = frame("""
        SELECT name, code, metric_epsg AS epsg, ST_AsBinary(geom) AS wkb FROM jurisdiction""")
    out = AreaGazetteers(signature=signature)
    for epsg in sorted(set(streets["epsg"])):
        mine = streets[streets["epsg"] == epsg]
        adr = addresses[addresses["epsg"] == epsg] if len(addresses) else None
        landmarks = adr[adr["name"].fillna("").str.strip() != ""] if adr is not None and len(adr) else None
        jur = jurisdictions[jurisdictions["epsg"] == epsg] if len(jurisdictions) else None
        out.areas[int(epsg)] = Gazetteer.build(
            mine[["name", "aliases", "jurisdiction_code", "geometry"]],
            adr[["street", "housenumber", "geometry"]] if adr is not None and len(adr) else None,
            landmarks=landmarks[["name", "geometry"]] if landmarks is not None and len(landmarks) else None,
            jurisdictions=jur[["name", "code", "geometry"]] if jur is not None and len(jur) else None,
            metric_epsg=int(epsg),
        )
        LOGGER.info("gazetteer EPSG:%d: %d streets, %d address points", epsg, len(mine), 0 if adr is None else len(adr))
    return out


__all__ = ["AreaGazetteers", "QUALITY_RANK", "gazetteer_signature", "load_gazetteer"]
