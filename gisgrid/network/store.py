"""Rebuild the stored segments of a town from its streets (``gisgrid segments build``)."""

from __future__ import annotations

import datetime as dt
import logging

import geopandas as gpd
import pandas as pd
import shapely
import sqlalchemy as sa

from gisgrid import crs
from gisgrid.config import Settings
from gisgrid.db import sql as dbsql
from gisgrid.db.layers import insert_frame
from gisgrid.errors import NotFound
from gisgrid.io.records import plain
from gisgrid.shapes import as_multi

LOGGER = logging.getLogger(__name__)


def _multi(geom):
    return None if geom is None or geom.is_empty else as_multi(geom)


def build_town_segments(ways: gpd.GeoDataFrame, settings: Settings, *, metric_epsg: int, boundary) -> gpd.GeoDataFrame:
    """:func:`gisgrid.network.segments.build_segments` with the deployment's lengths, widths and frontage depth."""
    from gisgrid.network.segments import build_segments  # noqa: PLC0415

    return build_segments(
        ways,
        metric_epsg=metric_epsg,
        max_length_m=settings.segment_max_length_m,
        min_length_m=settings.segment_min_length_m,
        half_widths_m=settings.road_half_widths_m,
        frontage_depth_m=settings.frontage_depth_m,
        boundary=boundary,
    )


def segment_rows(segs: gpd.GeoDataFrame) -> pd.DataFrame:
    """The ``segment`` table's columns of :func:`gisgrid.network.segments.build_segments`' output.

    Centerlines (``geom``) as they are, frontage areas (``area``) as MultiPolygons, None where a segment has
    none; for :func:`gisgrid.db.layers.insert_frame` with ``geometry_columns=("geom", "area")``.
    """
    return pd.DataFrame(
        {
            "street_id": segs["street_id"].astype(int),
            "seq": segs["seq"].astype(int),
            "name": segs["name"],
            "from_name": segs["from_name"],
            "to_name": segs["to_name"],
            "road_class": segs["road_class"],
            "length_m": segs["length_m"],
            "geom": segs.geometry.values,
            "area": [_multi(a) for a in segs["area"]],
        }
    )


def rebuild_segments(
    conn: sa.Connection, settings: Settings, *, jurisdiction_code: str | None = None, replace: bool = False
) -> list[str]:
    """Replace the segments of every town (or of the towns under ``jurisdiction_code``).

    Segments with current owners are only replaced with ``replace=True``; their
    assignments then end today, so the history of who owned what stays.
    Returns one summary line per town.
    """
    towns = conn.execute(
        sa.text("""
        SELECT t.id, t.code, t.name, t.metric_epsg, ST_AsBinary(t.geom) AS geom FROM jurisdiction t
        WHERE t.level = 'town' AND (CAST(:code AS text) IS NULL OR t.code = :code OR t.parent_id IN
              (SELECT id FROM jurisdiction WHERE code = :code)) ORDER BY t.code"""),
        {"code": jurisdiction_code},
    ).all()
    if not towns:
        raise NotFound(
            f"no town matches jurisdiction code {jurisdiction_code!r}"
            if jurisdiction_code
            else "no towns in the database: import jurisdictions first"
        )
    today = dt.date.today()
    out = []
    for town in towns:
        owned = conn.execute(
            sa.text(f"""
            SELECT count(*) FROM owner_assignment a JOIN segment g ON a.target_type = 'segment' AND a.target_id = g.id
            JOIN street s ON s.id = g.street_id WHERE s.jurisdiction_id = :tid AND {dbsql.still_valid_after("a", ":d")}
            """),
            {"tid": town.id, "d": today},
        ).scalar()
        if owned and not replace:
            out.append(
                f"{town.code} {town.name}: skipped, {owned} segment owner assignments are current "
                f"(use --replace to end them today and rebuild)"
            )
            continue
        streets = pd.read_sql_query(
            sa.text(
                "SELECT id AS street_id, name, road_class, ST_AsBinary((ST_Dump(geom)).geom) AS geom FROM street "
                "WHERE jurisdiction_id = :tid"
            ),
            conn,
            params={"tid": town.id},
        )
        if streets.empty:
            out.append(f"{town.code} {town.name}: no streets")
            continue
        ways = gpd.GeoDataFrame(
            streets.drop(columns="geom"),
            geometry=shapely.from_wkb(streets["geom"].map(bytes).to_numpy()),
            crs=crs.STORAGE_SRID,
        )
        boundary = shapely.from_wkb(bytes(town.geom))
        epsg = crs.jurisdiction_metric_crs(town.metric_epsg, settings.metric_crs, boundary)
        segs = build_town_segments(ways, settings, metric_epsg=epsg, boundary=boundary)
        if owned:  # the old segments go: their owners held until yesterday (history kept)
            dbsql.end_assignments(
                conn,
                "a.target_type = 'segment' AND a.target_id IN "
                "(SELECT g.id FROM segment g JOIN street s ON s.id = g.street_id WHERE s.jurisdiction_id = :tid)",
                {"tid": town.id},
                today,
            )
        conn.execute(
            sa.text("DELETE FROM segment g USING street s WHERE s.id = g.street_id AND s.jurisdiction_id = :tid"),
            {"tid": town.id},
        )
        rows = segment_rows(segs)
        insert_frame(
            conn,
            "segment",
            plain(rows),
            returning=None,
            geometry_columns=("geom", "area"),
        )
        line = (
            f"{town.code} {town.name}: {len(rows)} segments from {ways['street_id'].nunique()} streets, "
            f"{rows['length_m'].sum() / 1000:.1f} km"
        )
        short = segs[segs["length_m"] < settings.segment_min_length_m].sort_values("length_m")
        if len(short):  # for the planners to look at: a lane of its own, a way cut off at the edge of the data
            named = [f"{r.name} ({r.length_m:.1f} m)" for r in short.head(5).itertuples()]
            line += (
                f"; {len(short)} shorter than {settings.segment_min_length_m:g} m with no run of their street "
                f"to join: {', '.join(named)}{', …' if len(short) > 5 else ''}"
            )
        out.append(line)
    return out
