"""Frontage units against the database: add, import, derive frontages, read for pages, agreements.

Every function takes a connection and works in the caller's transaction;
every write names its author (:class:`~gisgrid.accounts.users.Actor`, from the
session or ``cli:<login>``) in the audit log.  Metres are measured in each
town's metric CRS (:mod:`gisgrid.crs`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gisgrid import crs as crsmod
from gisgrid.accounts.store import record_action
from gisgrid.accounts.users import Actor
from gisgrid.config import Settings
from gisgrid.errors import InputError, NotFound
from gisgrid.frontage.derive import derive_frontages, nearest_segments
from gisgrid.frontage.units import DUTY_CODES, UnitInput, agreement_state, find_columns, parse_unit
from gisgrid.io.records import records
from gisgrid.text import N_

LOGGER = logging.getLogger(__name__)


def _wkb(values) -> np.ndarray:
    return shapely.from_wkb([None if v is None else bytes(v) for v in values])


def segments_metric(conn: sa.Connection, settings: Settings, *, segment_ids=None) -> dict[int, gpd.GeoDataFrame]:
    """Segments (centerline, ``area``, ``road_class``, ``street_id``) by metric EPSG, indexed by id, in metres."""
    where = "WHERE g.id = ANY(CAST(:ids AS integer[]))" if segment_ids is not None else ""
    frame = pd.read_sql_query(
        sa.text(f"""
        SELECT g.id, g.road_class, g.street_id, s.commercial, COALESCE(j.metric_epsg, 0) AS epsg,
               ST_AsBinary(g.geom) AS geom, ST_AsBinary(g.area) AS area,
               ST_X(ST_Centroid(g.geom)) AS cx, ST_Y(ST_Centroid(g.geom)) AS cy
        FROM segment g JOIN street s ON s.id = g.street_id LEFT JOIN jurisdiction j ON j.id = s.jurisdiction_id
        {where} ORDER BY g.id"""),
        conn,
        params={"ids": [int(i) for i in segment_ids]} if segment_ids is not None else None,
    )
    if frame.empty:
        return {}
    epsg = [
        int(e) if e else crsmod.resolve_metric_crs(settings.metric_crs, x, y)
        for e, x, y in zip(frame["epsg"], frame["cx"], frame["cy"])
    ]
    frame["epsg"] = epsg
    out = {}
    for code, part in frame.groupby("epsg"):
        lines = gpd.GeoSeries(_wkb(part["geom"]), index=part["id"].to_numpy(), crs=crsmod.STORAGE_SRID).to_crs(code)
        areas = gpd.GeoSeries(_wkb(part["area"]), index=part["id"].to_numpy(), crs=crsmod.STORAGE_SRID).to_crs(code)
        out[int(code)] = gpd.GeoDataFrame(
            {
                "road_class": part["road_class"].to_numpy(),
                "street_id": part["street_id"].to_numpy(),
                "commercial": part["commercial"].to_numpy(),
                "area": areas.to_numpy(),
            },
            geometry=lines,
            index=part["id"].to_numpy(),
        )
    return out


def _units(conn: sa.Connection, where: str = "true", params: dict | None = None) -> gpd.GeoDataFrame:
    frame = pd.read_sql_query(
        sa.text(f"""
        SELECT u.id, u.segment_id, u.frontage_source, ST_AsBinary(u.location) AS location
        FROM frontage_unit u WHERE {where} ORDER BY u.id"""),
        conn,
        params=params,
    )
    return gpd.GeoDataFrame(
        frame.drop(columns="location"), geometry=gpd.GeoSeries(_wkb(frame["location"]), crs=crsmod.STORAGE_SRID)
    )


def derive_and_store(
    conn: sa.Connection, settings: Settings, *, unit_ids=None, redraw_planner: bool = False
) -> dict[str, int]:
    """Place units on segments (the nearest centerline within ``frontage_max_distance_m``) and derive frontages.

    All units of each touched segment are derived together, so that
    neighbours share their overlaps; a frontage a planner drew is kept
    unless ``redraw_planner``.  Returns counts: ``derived``, ``unplaced``.
    """
    units = _units(conn)
    if units.empty:
        return {"derived": 0, "unplaced": 0}
    segs = segments_metric(conn, settings)
    wanted = set(units["id"]) if unit_ids is None else {int(i) for i in unit_ids}
    # a unit without a segment is placed on the nearest centerline (in its own metric CRS)
    seg_col = units["segment_id"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    for epsg, part in segs.items():
        todo = np.isnan(seg_col) & units["id"].isin(wanted).to_numpy()
        if not todo.any():
            break
        metric = units.geometry[todo].to_crs(epsg)
        labels, _d = nearest_segments(metric, part.geometry, max_distance_m=settings.frontage_max_distance_m)
        found = labels >= 0
        idx = np.flatnonzero(todo)[found]
        # a unit may be near centerlines of two zones' towns: the first zone that places it keeps it
        seg_col[idx] = labels[found]
    units["segment_id"] = seg_col
    touched = set(units.loc[units["id"].isin(wanted), "segment_id"].dropna().astype(int))
    derived = 0
    updates = []
    for epsg, part in segs.items():
        mine = units[units["segment_id"].isin(touched & set(part.index))]
        if mine.empty:
            continue
        metric = mine.to_crs(epsg)
        result = derive_frontages(
            metric[["id", "segment_id", "geometry"]],
            part,
            point_width_m=settings.frontage_point_width_m,
            road_half_widths_m=settings.road_half_widths_m,
        )
        geoms = result.set_crs(epsg, allow_override=True).to_crs(crsmod.STORAGE_SRID).geometry
        for uid, sid, geom, source in zip(result["id"], result["segment_id"], geoms, mine["frontage_source"]):
            if source == "planner" and not redraw_planner:
                updates.append({"id": int(uid), "seg": int(sid), "wkb": None, "keep": True})
                continue
            ok = geom is not None and not geom.is_empty
            updates.append(
                {"id": int(uid), "seg": int(sid), "wkb": shapely.to_wkb(geom) if ok else None, "keep": False}
            )
            derived += int(ok)
    if updates:
        conn.execute(
            sa.text("""
            UPDATE frontage_unit SET segment_id = :seg,
                   frontage = CASE WHEN :keep THEN frontage
                                   ELSE ST_Multi(ST_SetSRID(ST_GeomFromWKB(CAST(:wkb AS bytea)), 4326)) END,
                   frontage_source = CASE WHEN :keep THEN frontage_source ELSE 'derived' END
            WHERE id = :id"""),
            updates,
        )
    unplaced = int(units["id"].isin(wanted).sum() - len({u["id"] for u in updates}))
    return {"derived": derived, "unplaced": unplaced}


# --- adding and importing units ------------------------------------------------------------
def add_unit(
    conn: sa.Connection, actor: Actor, data: UnitInput, *, location=None, segment_id: int | None = None
) -> int:
    """Store one unit (its contact as a person, its agreement when dated); returns its id.

    ``location``: a shapely point or footprint in EPSG:4326 (default the
    input's lon/lat).  A unit with the same 统一社会信用代码 is updated instead.
    """
    geom = location if location is not None else shapely.Point(data.lon, data.lat)
    if geom is None or geom.is_empty:
        raise InputError(N_("%(name)s: no place (address not found, no lon/lat)", name=data.name))
    existing = None
    if data.uscc:
        existing = conn.execute(
            sa.text("SELECT id, person_id FROM frontage_unit WHERE uscc = :c"), {"c": data.uscc}
        ).first()
    person_id = existing.person_id if existing else None
    if data.contact_name and person_id is None:
        person_id = conn.execute(
            sa.text("INSERT INTO person (name, phone, title) VALUES (:n, :p, :t) RETURNING id"),
            {"n": data.contact_name, "p": data.contact_phone, "t": f"门前三包 {data.name}"},
        ).scalar()
    elif person_id is not None:
        conn.execute(
            sa.text("UPDATE person SET name = COALESCE(:n, name), phone = COALESCE(:p, phone) WHERE id = :id"),
            {"n": data.contact_name, "p": data.contact_phone, "id": person_id},
        )
    params = {
        "name": data.name,
        "kind": data.kind,
        "uscc": data.uscc,
        "cn": data.contact_name,
        "cp": data.contact_phone,
        "addr": data.address,
        "seg": segment_id,
        "pid": person_id,
        "wkb": shapely.to_wkb(geom),
    }
    if existing:
        conn.execute(
            sa.text("""
            UPDATE frontage_unit SET name = :name, kind = :kind, contact_name = :cn, contact_phone = :cp,
                   address = :addr, person_id = :pid, location = ST_SetSRID(ST_GeomFromWKB(:wkb), 4326),
                   segment_id = :seg, revision = revision + 1
            WHERE id = :id"""),
            {**params, "id": existing.id},
        )
        unit_id = existing.id
    else:
        unit_id = conn.execute(
            sa.text("""
            INSERT INTO frontage_unit (name, kind, uscc, contact_name, contact_phone, address, segment_id, person_id,
                                       location)
            VALUES (:name, :kind, :uscc, :cn, :cp, :addr, :seg, :pid, ST_SetSRID(ST_GeomFromWKB(:wkb), 4326))
            RETURNING id"""),
            params,
        ).scalar()
    if data.signed_on and data.expires_on:
        add_agreement(conn, actor, unit_id, data.signed_on, data.expires_on, duties=data.duties)
    record_action(conn, actor, "frontage.unit.update" if existing else "frontage.unit.create",
                  target_type="frontage_unit", target_id=unit_id, after={"name": data.name, "uscc": data.uscc})  # fmt: skip
    return int(unit_id)


def add_agreement(
    conn: sa.Connection,
    actor: Actor,
    unit_id: int,
    signed_on: dt.date,
    expires_on: dt.date,
    *,
    duties=DUTY_CODES,
    document_path: str | None = None,
    document_name: str | None = None,
) -> int:
    """Record a signed agreement (责任书) of a unit; the same dates again are not stored twice."""
    if expires_on <= signed_on:
        raise InputError(f"the agreement expires ({expires_on}) before it was signed ({signed_on})")
    found = conn.execute(
        sa.text("SELECT id FROM frontage_agreement WHERE unit_id = :u AND signed_on = :s AND expires_on = :e"),
        {"u": unit_id, "s": signed_on, "e": expires_on},
    ).scalar()
    if found:
        return int(found)
    agreement_id = conn.execute(
        sa.text("""
        INSERT INTO frontage_agreement (unit_id, signed_on, expires_on, duties, document_path, document_name, created_by)
        VALUES (:u, :s, :e, :d, :p, :n, :by) RETURNING id"""),
        {
            "u": unit_id,
            "s": signed_on,
            "e": expires_on,
            "d": list(duties),
            "p": document_path,
            "n": document_name,
            "by": actor.name,
        },  # fmt: skip
    ).scalar()
    record_action(conn, actor, "frontage.agreement", target_type="frontage_unit", target_id=unit_id,
                  after={"signed_on": str(signed_on), "expires_on": str(expires_on)})  # fmt: skip
    return int(agreement_id)


@dataclass
class ImportResult:
    """Rows in = stored + rejected; each rejected row with its number (1 = first data row) and reason."""

    rows: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    unit_ids: list[int] = field(default_factory=list)


def import_units(
    conn: sa.Connection, actor: Actor, settings: Settings, path: str | Path, *, sheet: str | None = None
) -> ImportResult:
    """Import units from a registry export (XLSX or CSV, Chinese column names), addresses geocoded on the way in.

    Good rows go in, each bad row is reported (number and reason) and left
    out; frontages of the new units are derived at the end.
    """
    from gisgrid.geocode.store import load_gazetteer
    from gisgrid.io.tables import read_table

    _table, chunk = read_table(path, sheet=sheet, column=["企业名称", "名称", "单位名称", "name"])
    frame = chunk.frame
    cols = find_columns(frame.columns)
    if cols["name"] is None:
        raise InputError(
            f"the table needs a name column (企业名称 / 名称); its columns are: {', '.join(frame.columns)}"
        )
    result = ImportResult(rows=len(frame) + len(chunk.malformed))
    for number, why in sorted(chunk.malformed.items()):
        result.rejected.append((int(number), why))
    gazetteer = None
    for number, rec in zip(frame.index, frame.to_dict("records")):
        raw = {f: (rec[c] if c is not None else None) for f, c in cols.items()}
        try:
            data = parse_unit(raw)
            location = None
            if data.lon is None:
                gazetteer = gazetteer or load_gazetteer(conn)
                hit = gazetteer.geocode(data.address)
                if not hit.ok:
                    raise InputError(
                        N_("address %(address)s not found: %(note)s", address=repr(data.address), note=hit.note)
                    )
                location = shapely.Point(hit.lon, hit.lat)
            else:
                lon, lat = crsmod.to_storage([data.lon], [data.lat], "EPSG:4326")
                location = shapely.Point(float(lon[0]), float(lat[0]))
            with conn.begin_nested():
                before = (
                    conn.execute(sa.text("SELECT 1 FROM frontage_unit WHERE uscc = :c"), {"c": data.uscc}).first()
                    if data.uscc
                    else None
                )
                unit_id = add_unit(conn, actor, data, location=location)
        except InputError as exc:
            result.rejected.append((int(number), getattr(exc, "text", None) or str(exc)))  # a Text: said on the page
            continue
        result.unit_ids.append(unit_id)
        if before:
            result.updated += 1
        else:
            result.inserted += 1
    if result.unit_ids:
        derive_and_store(conn, settings, unit_ids=result.unit_ids)
    result.rejected.sort()
    record_action(conn, actor, "frontage.import", target_type="file", target_id=Path(path).name,
                  after={"rows": result.rows, "inserted": result.inserted, "updated": result.updated,
                         "rejected": len(result.rejected)})  # fmt: skip
    return result


# --- reading ---------------------------------------------------------------------------------
_UNIT_SQL = """
SELECT u.id, u.name, u.kind, u.uscc, u.contact_name, u.contact_phone, u.address, u.segment_id, u.person_id,
       u.frontage_source, u.revision, g.name AS segment, s.name AS street,
       ST_AsGeoJSON(u.location, 7) AS location_json, ST_AsGeoJSON(u.frontage, 7) AS frontage_json,
       a.signed_on, a.expires_on, a.duties, a.document_name, a.id AS agreement_id
FROM frontage_unit u
LEFT JOIN segment g ON g.id = u.segment_id LEFT JOIN street s ON s.id = g.street_id
LEFT JOIN LATERAL (SELECT * FROM frontage_agreement fa WHERE fa.unit_id = u.id
                   ORDER BY fa.expires_on DESC, fa.id DESC LIMIT 1) a ON true
"""


def _with_state(rows, day: dt.date, expiry_days: int) -> list[dict]:
    out = []
    for r in rows:
        d = dict(r._mapping)
        d["agreement"] = agreement_state(d["signed_on"], d["expires_on"], day, expiry_days=expiry_days)
        out.append(d)
    return out


def units_of_segment(conn: sa.Connection, settings: Settings, segment_id: int, *, day: dt.date | None = None):
    """The units on a segment, each with its latest agreement and its state on ``day``."""
    day = day or dt.date.today()
    rows = conn.execute(sa.text(_UNIT_SQL + " WHERE u.segment_id = :s ORDER BY u.name, u.id"), {"s": segment_id})
    return _with_state(rows, day, settings.frontage_expiry_days)


def get_unit(conn: sa.Connection, settings: Settings, unit_id: int, *, day: dt.date | None = None) -> dict:
    day = day or dt.date.today()
    rows = _with_state(
        conn.execute(sa.text(_UNIT_SQL + " WHERE u.id = :id"), {"id": unit_id}), day, settings.frontage_expiry_days
    )
    if not rows:
        raise NotFound(f"no frontage unit {unit_id}")
    unit = rows[0]
    unit["agreements"] = [
        dict(r._mapping)
        for r in conn.execute(
            sa.text("SELECT * FROM frontage_agreement WHERE unit_id = :u ORDER BY signed_on DESC, id DESC"),
            {"u": unit_id},
        )
    ]
    # the scores ended inspection rounds gave the unit (gisgrid.supervision.inspections.end_round)
    unit["inspection_scores"] = [
        dict(r._mapping)
        for r in conn.execute(
            sa.text("""
            SELECT s.round_id, r.name AS round_name, r.kind AS round_kind, r.period_end,
                   CAST(s.score AS float) AS score, CAST(s.deductions AS float) AS deductions, s.findings
            FROM inspection_score s JOIN inspection_round r ON r.id = s.round_id
            WHERE s.unit_kind = 'frontage' AND s.unit_id = :u AND r.ended_at IS NOT NULL
            ORDER BY r.period_end DESC, r.id DESC LIMIT 24"""),
            {"u": unit_id},
        )
    ]
    return unit


#: Sources of cases that are inspection findings: the channels of inspection rounds (gisgrid.cases.intake.CHANNELS,
#: 督查 and 暗访) and the same words as imported spreadsheets write them.
INSPECTION_SOURCES = ("inspection", "unannounced", "督查", "暗访")


def unit_cases(conn: sa.Connection, unit_id: int, *, limit: int = 200) -> dict[str, list[dict]]:
    """The unit's cases and, apart, its inspection findings (cases from 督查/暗访 rounds)."""
    rows = conn.execute(
        sa.text("""
        SELECT r.id, r.status, r.reported_at, r.closed_at, r.due_at, r.source, c.code AS category,
               c.name AS category_name
        FROM report r LEFT JOIN category c ON c.id = r.category_id
        WHERE r.frontage_unit_id = :u ORDER BY r.reported_at DESC LIMIT :n"""),
        {"u": unit_id, "n": limit},
    ).all()
    cases = [dict(r._mapping) for r in rows]
    return {
        "cases": [c for c in cases if c["source"] not in INSPECTION_SOURCES],
        "findings": [c for c in cases if c["source"] in INSPECTION_SOURCES],
    }


def segment_of_unit_sight(conn: sa.Connection, unit_id: int) -> int | None:
    return conn.execute(sa.text("SELECT segment_id FROM frontage_unit WHERE id = :id"), {"id": unit_id}).scalar()


def frontages_geojson(conn: sa.Connection, *, segment_ids=None, bbox=None) -> dict:
    """Units' frontages as a GeoJSON FeatureCollection (EPSG:4326) for maps and /plan."""
    where, params = ["u.frontage IS NOT NULL"], {}
    if segment_ids is not None:
        where.append("u.segment_id = ANY(CAST(:ids AS integer[]))")
        params["ids"] = [int(i) for i in segment_ids]
    if bbox is not None:
        where.append("u.frontage && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
        params.update(dict(zip(("x0", "y0", "x1", "y1"), map(float, bbox))))
    rows = conn.execute(
        sa.text(f"""
        SELECT json_build_object('type', 'FeatureCollection', 'features', COALESCE(json_agg(json_build_object(
            'type', 'Feature', 'id', u.id, 'geometry', ST_AsGeoJSON(u.frontage, 7)::json,
            'properties', json_build_object('id', u.id, 'name', u.name, 'segment_id', u.segment_id,
                                            'source', u.frontage_source, 'revision', u.revision))), '[]'::json))
        FROM frontage_unit u WHERE {" AND ".join(where)}"""),
        params,
    ).scalar()
    return rows


def set_frontage(conn: sa.Connection, actor: Actor, unit_id: int, geometry: dict, *, revision: int) -> dict:
    """A planner's frontage of a unit (GeoJSON, EPSG:4326), clipped to its segment's area and off its neighbours'.

    ``revision`` is the one the planner started from: another save in between
    is a conflict (nothing saved).  Returns the unit's new revision.
    """
    from gisgrid.errors import Conflict

    try:
        geom = shapely.from_geojson(__import__("json").dumps(geometry))
    except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
        raise InputError(f"the frontage is not a readable GeoJSON geometry: {exc}") from None
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
        raise InputError(f"a frontage is a polygon, not {geom.geom_type}")
    if not geom.is_valid:
        raise InputError(f"the frontage outline is not valid: {shapely.is_valid_reason(geom)}")
    row = conn.execute(
        sa.text("SELECT revision, segment_id FROM frontage_unit WHERE id = :id FOR UPDATE"), {"id": unit_id}
    ).first()
    if row is None:
        raise NotFound(f"no frontage unit {unit_id}")
    if row.revision != int(revision):
        raise Conflict(f"unit {unit_id} was saved meanwhile (revision {row.revision}, you started from {revision})")
    out = conn.execute(
        sa.text("""
        WITH drawn AS (SELECT ST_SetSRID(ST_GeomFromWKB(:wkb), 4326) AS g),
        clipped AS (
            SELECT ST_CollectionExtract(ST_Difference(ST_Intersection(d.g, seg.area),
                   COALESCE((SELECT ST_Union(o.frontage) FROM frontage_unit o
                             WHERE o.id <> :id AND o.frontage && d.g), ST_GeomFromText('POLYGON EMPTY', 4326))), 3) AS g
            FROM drawn d JOIN segment seg ON seg.id = :seg)
        UPDATE frontage_unit SET frontage = ST_Multi(c.g), frontage_source = 'planner', revision = revision + 1
        FROM clipped c WHERE id = :id AND NOT ST_IsEmpty(c.g)
        RETURNING revision"""),
        {"wkb": shapely.to_wkb(geom), "id": unit_id, "seg": row.segment_id},
    ).first()
    if out is None:
        raise InputError("nothing of the drawn frontage lies in the unit's segment area outside its neighbours'")
    record_action(conn, actor, "frontage.edit", target_type="frontage_unit", target_id=unit_id,
                  before={"revision": row.revision}, after={"revision": out.revision})  # fmt: skip
    return {"id": unit_id, "revision": out.revision}


# --- the red and black list (红黑榜) ---------------------------------------------------------------
def _month_bounds(month: str) -> tuple[dt.date, dt.date]:
    try:
        first = dt.date.fromisoformat(f"{month}-01")
    except (TypeError, ValueError):
        raise InputError(f"month must be YYYY-MM, not {month!r}") from None
    nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, nxt


def _inspection_findings(conn: sa.Connection, first: dt.date, nxt: dt.date) -> pd.DataFrame:
    """Findings per unit in the month: cases from 督查/暗访 rounds (the supervision issue's rounds plug in here)."""
    return pd.read_sql_query(
        sa.text("""
        SELECT frontage_unit_id AS unit_id, count(*) AS findings FROM report
        WHERE frontage_unit_id IS NOT NULL AND source = ANY(:src) AND reported_at >= :a AND reported_at < :b
          AND status NOT IN ('rejected', 'merged')
        GROUP BY frontage_unit_id"""),
        conn,
        params={"src": list(INSPECTION_SOURCES), "a": first, "b": nxt},
    )


#: Sources of inspection findings per unit and month: ``(conn, first_day, next_month_first_day) -> DataFrame``
#: with ``unit_id`` and ``findings``.  The inspection rounds (supervision) add theirs to this list.
FINDING_SOURCES = [_inspection_findings]


def compliance_facts(
    conn: sa.Connection, settings: Settings, month: str, *, jurisdiction_code: str | None = None
) -> pd.DataFrame:
    """Per unit and month: accepted cases, inspection findings, overdue, rework, agreement state at month end.

    A case counts once accepted (a resident's report from the public page only
    after a dispatcher confirmed it): rejected, merged and unconfirmed reports
    count against nobody.
    """
    from gisgrid.frontage.compliance import FACT_COLUMNS

    first, nxt = _month_bounds(month)
    where, params = "true", {"a": first, "b": nxt}
    if jurisdiction_code:
        where = """s.jurisdiction_id IN (WITH RECURSIVE t AS (SELECT id FROM jurisdiction WHERE code = :code
                   UNION ALL SELECT c.id FROM jurisdiction c JOIN t ON c.parent_id = t.id) SELECT id FROM t)"""
        params["code"] = jurisdiction_code
    units = pd.read_sql_query(
        sa.text(f"""
        SELECT u.id AS unit_id, u.name, st.name AS street, g.name AS segment, a.signed_on, a.expires_on
        FROM frontage_unit u LEFT JOIN segment g ON g.id = u.segment_id LEFT JOIN street st ON st.id = g.street_id
        LEFT JOIN street s ON s.id = g.street_id
        LEFT JOIN LATERAL (SELECT * FROM frontage_agreement fa WHERE fa.unit_id = u.id
                           ORDER BY fa.expires_on DESC, fa.id DESC LIMIT 1) a ON true
        WHERE {where} ORDER BY u.id"""),
        conn,
        params=params,
    )
    cases = pd.read_sql_query(
        sa.text("""
        SELECT frontage_unit_id AS unit_id,
               count(*) FILTER (WHERE source <> ALL(:src)) AS cases,
               count(*) FILTER (WHERE due_at IS NOT NULL AND COALESCE(closed_at, now()) > due_at
                                AND status NOT IN ('suspended')) AS overdue,
               COALESCE(sum(rework_count), 0) AS rework
        FROM report r
        WHERE frontage_unit_id IS NOT NULL AND reported_at >= :a AND reported_at < :b
          AND status NOT IN ('reported', 'rejected', 'merged')
        GROUP BY frontage_unit_id"""),
        conn,
        params={"a": first, "b": nxt, "src": list(INSPECTION_SOURCES)},
    )
    findings = pd.concat(
        [f(conn, first, nxt) for f in FINDING_SOURCES] or [pd.DataFrame(columns=["unit_id", "findings"])]
    )
    findings = findings.groupby("unit_id", as_index=False)["findings"].sum()
    out = units.merge(cases, on="unit_id", how="left").merge(findings, on="unit_id", how="left")
    for col in ("cases", "overdue", "rework", "findings"):
        out[col] = out[col].fillna(0).astype(int)
    last_day = nxt - dt.timedelta(days=1)
    out["agreement"] = [
        agreement_state(s, e, last_day, expiry_days=settings.frontage_expiry_days)
        for s, e in zip(out["signed_on"], out["expires_on"])
    ]
    return out[[*FACT_COLUMNS, "street", "segment"]]


def red_black_list(
    conn: sa.Connection, settings: Settings, month: str, *, jurisdiction_code: str | None = None
) -> tuple[pd.DataFrame, dict]:
    """The month's 红黑榜 by the ``frontage_redblack_rules`` setting: (table, rules used)."""
    from gisgrid.frontage.compliance import load_rules, red_black

    rules = load_rules(settings.frontage_redblack_rules)
    return red_black(compliance_facts(conn, settings, month, jurisdiction_code=jurisdiction_code), rules), rules


def publish_ranking(
    conn: sa.Connection, actor: Actor, month: str, table: pd.DataFrame, rules: dict, *, jurisdiction_code=None
) -> int:
    """Keep a red and black list as published, with its rules: later case edits do not change it."""
    import json

    jid = (
        conn.execute(sa.text("SELECT id FROM jurisdiction WHERE code = :c"), {"c": jurisdiction_code}).scalar()
        if jurisdiction_code
        else None
    )
    rows = records(table[table["list"] != ""])
    rid = conn.execute(
        sa.text("""
        INSERT INTO frontage_ranking (month, jurisdiction_id, rules, rows, published_by)
        VALUES (:m, :j, CAST(:rules AS jsonb), CAST(:rows AS jsonb), :by) RETURNING id"""),
        {
            "m": month,
            "j": jid,
            "rules": json.dumps(rules),
            "rows": json.dumps(rows, ensure_ascii=False, default=str),
            "by": actor.name,
        },  # fmt: skip
    ).scalar()
    record_action(conn, actor, "frontage.ranking.publish", target_type="frontage_ranking", target_id=rid,
                  after={"month": month, "rows": len(rows)})  # fmt: skip
    return int(rid)


#: The red and black list's sheets and columns in its XLSX.
RANKING_SHEETS = ("black", "red")
RANKING_COLUMNS = ("name", "street", "segment", "cases", "findings", "overdue", "rework", "agreement", "why")


def write_ranking_xlsx(table: pd.DataFrame, target, *, labels: Mapping[str, str] | None = None) -> None:
    """The list as XLSX (黑榜 and 红榜 sheets), text neutralised as every export (:func:`gisgrid.io.write_workbook`).

    ``labels`` names the sheets (``black``, ``red``) and the columns (:data:`RANKING_COLUMNS`) for a page's language;
    without it the sheets are 黑榜 and 红榜 and the columns keep their names.
    """
    from gisgrid.io import write_workbook

    cols = list(RANKING_COLUMNS)
    sheets = {name: table[table["list"] == name][cols] for name in RANKING_SHEETS}
    write_workbook(sheets, target, labels=labels or {"black": "黑榜", "red": "红榜"})


def segment_frontage(conn: sa.Connection, settings: Settings, segment_id: int, *, day: dt.date | None = None) -> dict:
    """A segment with its units for the segment page: ``segment`` (names), ``area`` and ``centerline`` (shapely,
    EPSG:4326), ``units`` (rows with agreement state) and ``frontages``/``locations`` GeoDataFrames."""
    row = conn.execute(
        sa.text("""
        SELECT g.id, g.name, s.name AS street, s.commercial, ST_AsBinary(g.area) AS area, ST_AsBinary(g.geom) AS line
        FROM segment g JOIN street s ON s.id = g.street_id WHERE g.id = :id"""),
        {"id": segment_id},
    ).first()
    if row is None:
        raise NotFound(f"no segment {segment_id}")
    units = units_of_segment(conn, settings, segment_id, day=day)
    frontages = gpd.GeoDataFrame(
        {"name": [u["name"] for u in units], "agreement": [u["agreement"] for u in units]},
        geometry=gpd.GeoSeries(
            [shapely.from_geojson(u["frontage_json"]) if u["frontage_json"] else None for u in units],
            crs=crsmod.STORAGE_SRID,
        ),
    )
    locations = gpd.GeoDataFrame(
        {"name": [u["name"] for u in units]},
        geometry=gpd.GeoSeries([shapely.from_geojson(u["location_json"]) for u in units], crs=crsmod.STORAGE_SRID),
    )
    return {
        "segment": {"id": row.id, "name": row.name, "street": row.street, "commercial": row.commercial},
        "area": shapely.from_wkb(bytes(row.area)) if row.area is not None else None,
        "centerline": shapely.from_wkb(bytes(row.line)),
        "units": units,
        "frontages": frontages[frontages.geometry.notna()],
        "locations": locations,
    }


def agreement_document(conn: sa.Connection, agreement_id: int) -> dict:
    row = conn.execute(
        sa.text("""SELECT a.id, a.unit_id, a.document_path, a.document_name, u.segment_id
                   FROM frontage_agreement a JOIN frontage_unit u ON u.id = a.unit_id WHERE a.id = :id"""),
        {"id": agreement_id},
    ).first()
    if row is None or not row.document_path:
        raise NotFound(f"no document of agreement {agreement_id}")
    return dict(row._mapping)


def plan_frontages(conn: sa.Connection, town_code: str) -> dict:
    """The town's frontages (GeoJSON, EPSG:4326) for the /plan layer, with their segment areas as context."""
    seg_ids = [
        r[0]
        for r in conn.execute(
            sa.text("""
            WITH RECURSIVE t AS (SELECT id FROM jurisdiction WHERE code = :c
                                 UNION ALL SELECT j.id FROM jurisdiction j JOIN t ON j.parent_id = t.id)
            SELECT g.id FROM segment g JOIN street s ON s.id = g.street_id WHERE s.jurisdiction_id IN (SELECT id FROM t)"""),
            {"c": town_code},
        )
    ]
    return frontages_geojson(conn, segment_ids=seg_ids)
