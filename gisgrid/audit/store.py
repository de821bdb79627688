"""The coverage audit against the database (``gisgrid audit``, ``/audit``).

:func:`audit_store` loads a jurisdiction, its cells, segment areas, owners and
recent reports and runs :func:`gisgrid.audit.coverage.audit_coverage`.  It takes
a SQLAlchemy connection; geometries cross the boundary as WKB in EPSG:4326 and
areas are m² in the town's metric CRS.
"""

from __future__ import annotations

import datetime as dt
import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gisgrid import crs
from gisgrid.accounts.scope import Scope
from gisgrid.audit.coverage import AuditResult, audit_coverage
from gisgrid.config import Settings
from gisgrid.db import sql
from gisgrid.db.frames import query_geo_frame as _frame
from gisgrid.errors import InputError, NotFound
from gisgrid.network.segments import half_width_m

LOGGER = logging.getLogger(__name__)


# --- audit ------------------------------------------------------------------------
_SUBTREE_SQL = """
    WITH RECURSIVE sub AS (
        SELECT id FROM jurisdiction WHERE id = :jid
        UNION ALL SELECT j.id FROM jurisdiction j JOIN sub ON j.parent_id = sub.id)
    SELECT id FROM sub"""


def audit_store(
    conn: sa.Connection,
    settings: Settings,
    jurisdiction_code: str | None = None,
    *,
    days: int = 30,
    today: dt.date | None = None,
    scope: Scope | None = None,
    **limits,
) -> AuditResult:
    """Audit the stored cells, segment areas, owners and reports of a jurisdiction.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    settings : Settings
        ``metric_crs`` when the jurisdiction has no ``metric_epsg``.
    jurisdiction_code : str, optional
        Any jurisdiction (county, town or community).  Default: the only town
        in the database; with several towns each is audited on its own and the
        results are combined (areas stay m² in each town's metric CRS).
    days : int, default 30
        Reports of the last ``days`` days are checked.
    today : datetime.date, optional
        Day of the evaluation (default today).
    scope : Scope, optional
        Whose sight limits the reports checked: only those the user sees
        (:mod:`gisgrid.accounts.scope`).  The units stay those of the
        jurisdiction, neighbours' areas that reach into it included: a gap or
        an overlap is a fact of the whole map, and the page shows it only to
        a user who sees the jurisdiction whole.
    **limits
        Passed to :func:`gisgrid.audit.coverage.audit_coverage` (``sliver_area_m2``,
        ``sliver_thinness``, ``max_units_per_owner``, ``expiry_days``,
        ``tolerance_m``); the first four default to the deployment's
        ``audit_*`` settings.

    Which units are audited: cells stored under the jurisdiction or any of
    its descendants, plus cells without a jurisdiction whose interior meets
    it; segment areas whose interior meets it.  The street frontage that
    segment areas must cover is every segment centerline of the jurisdiction
    (and every street that has no segments) buffered by its road class's half
    width plus the frontage depth (the reach ``gisgrid segments build``
    uses), clipped to the jurisdiction.

    Raises
    ------
    NotFound
        Unknown code, or no towns at all when no code is given.
    InputError
        A negative ``days`` (and whatever :func:`audit_coverage` refuses).
    """
    if not isinstance(days, int) or days < 0:
        raise InputError(f"days must be a non-negative integer, got {days!r}")
    today = today or dt.date.today()
    limits = {
        "sliver_area_m2": settings.audit_sliver_area_m2,
        "sliver_thinness": settings.audit_sliver_thinness,
        "max_units_per_owner": settings.audit_max_units_per_owner,
        "expiry_days": settings.audit_expiry_days,
        **limits,
    }
    if jurisdiction_code:
        row = conn.execute(
            sa.text("SELECT id, code, metric_epsg, ST_AsBinary(geom) AS geom FROM jurisdiction WHERE code = :code"),
            {"code": str(jurisdiction_code).strip()},
        ).first()
        if row is None:
            raise NotFound(f"no jurisdiction with code {jurisdiction_code!r}")
        return _audit_one(conn, settings, row, days=days, today=today, scope=scope, **limits)
    rows = conn.execute(
        sa.text(
            "SELECT id, code, metric_epsg, ST_AsBinary(geom) AS geom FROM jurisdiction "
            "WHERE level = 'town' ORDER BY code"
        )
    ).all()
    if not rows:
        raise NotFound("no towns in the database: import jurisdictions first")
    results = [_audit_one(conn, settings, r, days=days, today=today, scope=scope, **limits) for r in rows]
    return results[0] if len(results) == 1 else _combine(results)


def _audit_one(
    conn: sa.Connection, settings: Settings, row, *, days: int, today: dt.date, scope: Scope | None = None, **limits
) -> AuditResult:
    scope = scope or Scope.everything(today)
    boundary = shapely.from_wkb(bytes(row.geom))
    epsg = crs.jurisdiction_metric_crs(row.metric_epsg, settings.metric_crs, boundary)
    cells = _frame(
        conn,
        f"""
        SELECT c.id, c.code, ST_AsBinary(c.geom) AS geom FROM grid_cell c, jurisdiction j
        WHERE j.id = :jid AND (c.jurisdiction_id IN ({_SUBTREE_SQL})
              OR (c.jurisdiction_id IS NULL AND c.geom && j.geom AND ST_Relate(c.geom, j.geom, 'T********')))
        ORDER BY c.code""",
        {"jid": row.id},
    )
    segments = _frame(
        conn,
        """
        SELECT g.id, g.name, s.name AS street, ST_AsBinary(g.area) AS geom
        FROM segment g JOIN street s ON s.id = g.street_id, jurisdiction j
        WHERE j.id = :jid AND g.area IS NOT NULL AND g.area && j.geom AND ST_Relate(g.area, j.geom, 'T********')
        ORDER BY g.id""",
        {"jid": row.id},
    )
    owners = pd.read_sql_query(
        sa.text(f"""
        SELECT a.target_type, a.target_id, a.role, a.owner_name, a.person_id, a.department_id, a.valid_from,
               a.valid_to
        FROM {sql.owner_on(":d")} a
        WHERE (a.target_type = 'cell' AND a.target_id = ANY(:cells))
           OR (a.target_type = 'segment' AND a.target_id = ANY(:segs))"""),
        conn,
        params={"cells": cells["id"].astype(int).tolist(), "segs": segments["id"].astype(int).tolist(), "d": today},
    )
    # departments have no person id: key them apart from people of the same name
    owners["person_id"] = (
        owners["person_id"]
        .astype(object)
        .where(owners["person_id"].notna(), "department:" + owners["department_id"].astype("Int64").astype(str))
    )
    owners = owners.drop(columns="department_id")
    since = dt.datetime.combine(today - dt.timedelta(days=days), dt.time.min)
    with sql.no_jit(conn):
        reports = _frame(
            conn,
            f"""
            SELECT r.id, r.reported_at, COALESCE(c.rule, 'unrouted') AS rule, ST_AsBinary(r.geom) AS geom
            FROM report r LEFT JOIN report_current c ON c.report_id = r.id, jurisdiction j
            WHERE j.id = :jid AND r.geom IS NOT NULL AND r.reported_at >= :since
              AND r.reported_at < :until AND r.geom && j.geom AND ST_Intersects(r.geom, j.geom)
              AND {scope.sql("report", "r")}
            ORDER BY r.id""",
            {
                "jid": row.id,
                "since": since,
                "until": dt.datetime.combine(today + dt.timedelta(days=1), dt.time.min),
                **scope.params(),
            },
        )
    result = audit_coverage(
        boundary,
        cells,
        segments if len(segments) else None,
        owners=owners,
        reports=reports,
        frontage=_frontage(conn, settings, row, epsg),
        metric_epsg=epsg,
        report_days=days,
        today=today,
        **limits,
    )
    for name in ("gaps", "overlaps", "slivers"):
        setattr(result, name, name_places(conn, getattr(result, name)))
    return result


def name_places(conn: sa.Connection, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with where each row lies, in words a planner can find: ``community`` (the community whose
    polygon holds a point inside it), ``near_street`` and ``near_m`` (the nearest street and how far, metres)."""
    out = frame.copy()
    if not len(frame):
        for col in ("community", "near_street", "near_m"):
            out[col] = pd.Series(dtype=object if col != "near_m" else float)
        return out
    pts = frame.geometry.representative_point()
    rows = conn.execute(
        sa.text(
            """
            SELECT p.i,
                   (SELECT j.name FROM jurisdiction j WHERE j.level = 'community' AND j.geom && p.g
                      AND ST_Intersects(j.geom, p.g) ORDER BY j.code LIMIT 1) AS community,
                   n.name AS near_street,
                   ST_Distance(CAST(n.geom AS geography), CAST(p.g AS geography)) AS near_m
            FROM (SELECT i, ST_SetSRID(ST_MakePoint(x, y), 4326) AS g
                  FROM unnest(CAST(:i AS int[]), CAST(:x AS float8[]), CAST(:y AS float8[])) AS t(i, x, y)) p
            LEFT JOIN LATERAL (SELECT s.name, s.geom FROM street s WHERE s.name <> ''
                               ORDER BY s.geom <-> p.g LIMIT 1) n ON true
            ORDER BY p.i
            """
        ),
        {"i": list(range(len(pts))), "x": pts.x.tolist(), "y": pts.y.tolist()},
    ).all()
    out["community"] = [r.community for r in rows]
    out["near_street"] = [r.near_street for r in rows]
    out["near_m"] = [None if r.near_m is None else round(float(r.near_m), 1) for r in rows]
    return out


def _frontage(conn: sa.Connection, settings: Settings, row, epsg: int):
    """Street frontage of a jurisdiction (EPSG:4326) that segment areas should cover, or None without streets."""
    streets = _frame(
        conn,
        f"""
        SELECT g.road_class, ST_AsBinary(g.geom) AS geom FROM segment g JOIN street s ON s.id = g.street_id,
               jurisdiction j
        WHERE j.id = :jid AND s.jurisdiction_id IN ({_SUBTREE_SQL})
        UNION ALL
        SELECT s.road_class, ST_AsBinary(s.geom) FROM street s, jurisdiction j
        WHERE j.id = :jid AND s.jurisdiction_id IN ({_SUBTREE_SQL})
          AND NOT EXISTS (SELECT 1 FROM segment g WHERE g.street_id = s.id)""",
        {"jid": row.id},
    )
    if streets.empty:
        return None
    reach = (
        np.array([half_width_m(rc or "", settings.road_half_widths_m) for rc in streets["road_class"]])
        + settings.frontage_depth_m
    )
    metric = streets.to_crs(epsg)
    boundary_m = crs.reproject(shapely.from_wkb(bytes(row.geom)), crs.STORAGE_SRID, epsg)
    frontage = shapely.intersection(shapely.union_all(shapely.buffer(metric.geometry.to_numpy(), reach)), boundary_m)
    if frontage.is_empty:
        return None
    return crs.reproject(frontage, epsg, crs.STORAGE_SRID)


def _combine(results: list[AuditResult]) -> AuditResult:
    """One result of several towns' audits (tables concatenated; areas m² in each town's CRS)."""

    def cat(name):
        frames = [getattr(r, name) for r in results]
        frame = pd.concat(frames, ignore_index=True)
        if isinstance(frames[0], gpd.GeoDataFrame):
            frame = gpd.GeoDataFrame(frame, geometry="geometry", crs=crs.STORAGE_SRID)
        return frame

    first = results[0]
    return AuditResult(
        **{n: cat(n) for n in ("gaps", "overlaps", "slivers", "vacant", "expiring", "over_limit", "reports")},
        metric_epsg=first.metric_epsg,
        today=first.today,
        params={**first.params, "metric_epsg": sorted({r.metric_epsg for r in results})},
    )


# --- exports ----------------------------------------------------------------------
def _plain_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates and times as ISO text (with their offset), missing values as None."""
    frame = frame.copy()
    for col in frame.columns:
        if col == "geometry":
            continue
        values = frame[col]
        if pd.api.types.is_datetime64_any_dtype(values):
            frame[col] = [None if pd.isna(v) else v.isoformat() for v in values]
        elif values.dtype == object:
            frame[col] = [v.isoformat() if isinstance(v, (dt.date, dt.datetime, pd.Timestamp)) else v for v in values]
    return frame


def audit_features(result: AuditResult) -> gpd.GeoDataFrame:
    """All problem layers of ``result`` in one GeoDataFrame (EPSG:4326) with a ``problem`` column."""
    frames = []
    for name, layer in result.layers().items():
        if len(layer):
            frame = _plain_columns(layer)
            frame.insert(0, "problem", name)
            frames.append(frame)
    if not frames:
        return gpd.GeoDataFrame({"problem": []}, geometry=gpd.GeoSeries([], crs=crs.STORAGE_SRID))
    out = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(
        out.astype({c: object for c in out.columns if c != "geometry"}), geometry="geometry", crs=crs.STORAGE_SRID
    )


def audit_geojson_bytes(result: AuditResult) -> bytes:
    """The problem layers as one RFC 7946 FeatureCollection (property ``problem`` names the type)."""
    from gisgrid.io import to_geojson_bytes

    features = audit_features(result)
    if len(features) == 0:
        return b'{"type":"FeatureCollection","name":"audit","features":[]}\n'
    return to_geojson_bytes(features, layer="audit")


def audit_xlsx_bytes(result: AuditResult, *, extra: dict | None = None, labels: dict | None = None) -> bytes:
    """The audit tables as an XLSX workbook: a ``summary`` sheet, then one sheet per problem type.

    ``labels`` names the sheets, the columns and the summary's items for people
    (:func:`gisgrid.maps.audit.workbook_labels`, in a page's language); without
    it they keep their names (``gaps``, ``area_m2``, ``gaps_count``).  Text
    that a spreadsheet would run as a formula is neutralised
    (:func:`gisgrid.io.write_workbook`).
    """
    import io

    from gisgrid.io import write_workbook

    buf = io.BytesIO()
    tables = {**result.to_tables(), **(extra or {})}  # extra: the frontage sheets (frontage_audit(...).to_tables())
    if labels:
        summary = tables["summary"]
        tables["summary"] = summary.assign(item=[labels.get(k, k) for k in summary["item"]])
    write_workbook({name: _plain_columns(table) for name, table in tables.items()}, buf, labels=labels)
    return buf.getvalue()


def audit_summary_lines(result: AuditResult) -> list[str]:
    """Readable lines of an audit: counts per problem type and total areas in m²."""
    s = result.summary()
    lines = [
        f"gaps: {s['gaps_count']} ({s.get('gaps_cell_m2', 0.0):.1f} m² of the jurisdiction in no cell"
        + (f", {s['gaps_frontage_m2']:.1f} m² of frontage in no segment" if "gaps_frontage_m2" in s else "")
        + ")",
        f"overlaps: {s['overlaps_count']} (cells {s.get('overlaps_cell_m2', 0.0):.1f} m², "
        f"segments {s.get('overlaps_segment_m2', 0.0):.1f} m²)",
        f"slivers: {s['slivers_count']} ({s['slivers_m2']:.1f} m²)",
        f"vacant units: {s['vacant_count']}",
        f"assignments expiring within {result.params.get('expiry_days', 30)} days: {s['expiring_count']}",
        f"owners over {result.params.get('max_units_per_owner', 20)} units: {s['over_limit_count']}",
        f"reports outside every owner's area (last {result.params.get('report_days', 30)} days): {s['reports_count']}",
    ]
    lines.append("coverage clean: no gap, overlap or sliver" if result.clean else "coverage problems found")
    return lines


def cells_meeting(conn: sa.Connection, jurisdiction_code: str) -> gpd.GeoDataFrame:
    """The grid cells whose interior meets the interior of the jurisdiction ``jurisdiction_code``.

    Cells that only touch its boundary from outside are left out.

    Returns
    -------
    GeoDataFrame
        EPSG:4326, geometry only.
    """
    rows = conn.execute(
        sa.text(
            "SELECT ST_AsBinary(c.geom) FROM grid_cell c, jurisdiction j WHERE j.code = :code AND c.geom && j.geom "
            "AND ST_Relate(c.geom, j.geom, 'T********')"
        ),
        {"code": jurisdiction_code},
    )
    return gpd.GeoDataFrame(geometry=gpd.GeoSeries(shapely.from_wkb([bytes(g) for (g,) in rows]), crs=crs.STORAGE_SRID))


# --- frontage duty (门前三包) ------------------------------------------------------------------
def frontage_audit(
    conn: sa.Connection, settings: Settings, jurisdiction_code: str | None = None, *, today: dt.date | None = None
):
    """The frontage part of the audit (:mod:`gisgrid.audit.frontage`) for a jurisdiction (default: everywhere)."""
    from gisgrid.audit.frontage import FrontageAudit, agreement_problems
    from gisgrid.crs import STORAGE_SRID
    from gisgrid.frontage.derive import frontage_spans, overlapping_pairs, uncovered_stretches

    today = today or dt.date.today()
    params: dict = {}
    where = "true"
    if jurisdiction_code:
        if (
            conn.execute(sa.text("SELECT 1 FROM jurisdiction WHERE code = :c"), {"c": jurisdiction_code}).first()
            is None
        ):
            raise NotFound(f"no jurisdiction with code {jurisdiction_code!r}")
        where = (
            "s.jurisdiction_id IN (WITH RECURSIVE t AS (SELECT id FROM jurisdiction WHERE code = :code UNION ALL "
            "SELECT c.id FROM jurisdiction c JOIN t ON c.parent_id = t.id) SELECT id FROM t)"
        )
        params["code"] = jurisdiction_code
    units = pd.read_sql_query(
        sa.text(f"""
        SELECT u.id AS unit_id, u.name, s.name AS street, g.name AS segment, u.segment_id, s.commercial,
               a.signed_on, a.expires_on, ST_AsBinary(u.frontage) AS frontage
        FROM frontage_unit u JOIN segment g ON g.id = u.segment_id JOIN street s ON s.id = g.street_id
        LEFT JOIN LATERAL (SELECT * FROM frontage_agreement fa WHERE fa.unit_id = u.id
                           ORDER BY fa.expires_on DESC, fa.id DESC LIMIT 1) a ON true
        WHERE {where} ORDER BY u.id"""),
        conn,
        params=params,
    )
    seg_ids = pd.read_sql_query(
        sa.text(f"SELECT g.id FROM segment g JOIN street s ON s.id = g.street_id WHERE s.commercial AND {where}"),
        conn,
        params=params,
    )["id"].tolist()
    seg_names = dict(conn.execute(sa.text("SELECT id, name FROM segment WHERE id = ANY(:ids)"), {"ids": seg_ids}).all())
    agreements = agreement_problems(
        units.drop(columns=["frontage", "commercial"]), today, expiry_days=settings.frontage_expiry_days
    )
    geoms = gpd.GeoSeries(
        shapely.from_wkb([None if v is None else bytes(v) for v in units["frontage"]]), crs=STORAGE_SRID
    )
    gaps, overlaps = [], []
    segs = _segments_metric(conn, settings, sorted(set(seg_ids) | set(units["segment_id"])))
    for epsg, part in segs.items():
        mine = units["segment_id"].isin(part.index).to_numpy()
        metric = geoms[mine].to_crs(epsg)
        spans = frontage_spans(metric, units.loc[mine, "segment_id"].to_numpy(), part)
        commercial = part[part.index.isin(seg_ids)]
        found = uncovered_stretches(commercial, spans, min_length_m=settings.frontage_gap_min_m,
                                    road_half_widths_m=settings.road_half_widths_m)  # fmt: skip
        if len(found):
            found = found.to_crs(STORAGE_SRID)
            found["segment"] = found["segment_id"].map(seg_names)  # a stretch nobody answers for: no unit names it
            gaps.append(found)
        pairs = overlapping_pairs(metric, units.loc[mine, "unit_id"].to_numpy(), min_m2=0.5)
        if len(pairs):
            overlaps.append(pairs)
    empty_gaps = gpd.GeoDataFrame(
        {"segment_id": [], "side": [], "from_m": [], "to_m": [], "length_m": []}, geometry=[], crs=STORAGE_SRID
    )
    gap_frame = pd.concat(gaps, ignore_index=True) if gaps else empty_gaps
    pair_frame = (
        pd.concat(overlaps, ignore_index=True) if overlaps else pd.DataFrame(columns=["unit_a", "unit_b", "area_m2"])
    )
    name_of = dict(zip(units["unit_id"], units["name"]))
    pair_frame["name_a"] = pair_frame["unit_a"].map(name_of)
    pair_frame["name_b"] = pair_frame["unit_b"].map(name_of)
    geom_of = dict(zip(units["unit_id"], geoms))
    pair_geo = gpd.GeoDataFrame(
        pair_frame,
        geometry=gpd.GeoSeries(
            [geom_of[a].intersection(geom_of[b]) for a, b in zip(pair_frame["unit_a"], pair_frame["unit_b"])],
            crs=STORAGE_SRID,
        ),
    )
    return FrontageAudit(
        frontage_gaps=gap_frame,
        agreements=agreements,
        frontage_overlaps=pair_geo,
        today=today,
        params={"expiry_days": settings.frontage_expiry_days, "gap_min_m": settings.frontage_gap_min_m},
    )


def _segments_metric(conn: sa.Connection, settings: Settings, segment_ids) -> dict:
    """Segments (centerline as geometry, ``area``, ``road_class``) by metric EPSG, indexed by id, in metres."""
    frame = pd.read_sql_query(
        sa.text("""
        SELECT g.id, g.road_class, COALESCE(j.metric_epsg, 0) AS epsg, ST_AsBinary(g.geom) AS geom,
               ST_AsBinary(g.area) AS area, ST_X(ST_Centroid(g.geom)) AS cx, ST_Y(ST_Centroid(g.geom)) AS cy
        FROM segment g JOIN street s ON s.id = g.street_id LEFT JOIN jurisdiction j ON j.id = s.jurisdiction_id
        WHERE g.id = ANY(CAST(:ids AS integer[])) ORDER BY g.id"""),
        conn,
        params={"ids": [int(i) for i in segment_ids]},
    )
    out = {}
    if frame.empty:
        return out
    frame["epsg"] = [
        int(e) or crs.resolve_metric_crs(settings.metric_crs, x, y)
        for e, x, y in zip(frame["epsg"], frame["cx"], frame["cy"])
    ]
    for code, part in frame.groupby("epsg"):
        lines = gpd.GeoSeries(_from_wkb(part["geom"]), index=part["id"].to_numpy(), crs=crs.STORAGE_SRID).to_crs(code)
        areas = gpd.GeoSeries(_from_wkb(part["area"]), index=part["id"].to_numpy(), crs=crs.STORAGE_SRID).to_crs(code)
        out[int(code)] = gpd.GeoDataFrame(
            {"road_class": part["road_class"].to_numpy(), "area": areas.to_numpy()}, geometry=lines,
            index=part["id"].to_numpy(),
        )  # fmt: skip
    return out


def _from_wkb(values):
    return shapely.from_wkb([None if v is None else bytes(v) for v in values])
