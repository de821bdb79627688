"""Saving planners' edits of cells and segment areas, with versions (the ``/plan`` editor's storage).

An edit is a dict, as the editor page posts it (see :func:`parse_edit`)::

    {"layer": "cell" | "segment",
     "action": "create" | "reshape" | "split" | "merge" | "delete" | "restore",
     "town": "110108001",              # create: the town drawn in
     "unit_ids": [12, 13],             # the units edited (merge: two or more)
     "revisions": {"12": 3, "13": 1},  # the revision of each as the planner loaded it
     "geometry": {GeoJSON polygon},    # create, reshape
     "line": {GeoJSON line},           # split
     "version_id": 77,                 # restore
     "overlap": "refuse" | "clip",     # what to do with overlaps and parts outside
     "saved_by": "王工", "reason": "..."}

:func:`check_plan_edit` answers what the edit would do (nothing is written);
:func:`save_plan_edit` applies it in the caller's transaction, or raises
:class:`EditRefused` (with the same check, so the page can mark the problem)
or :class:`EditConflict` when a unit changed since the planner loaded it
(the second of two planners saving the same unit at once: nothing of the
first is overwritten, and the second's drawing stays on their map).

Every save writes one :class:`~gisgrid.db.schema.PlanVersion` row per unit it
changes and bumps the unit's ``revision``; the first edit of a unit also
records its geometry as built (``action = 'original'``), so any earlier state
can be viewed and restored.  Owner assignments follow their cells: a reshaped
or restored cell keeps its row and owners, the pieces of a split cell start
today with the owners of the cell they came from, and a cell merged away or
deleted has its current assignments end today (history kept).

Segments are reshaped (their area), split (the cutting line must cross the
street centerline: area and centerline are cut together, the piece with the
longer centerline keeps the id and name, the other is named "<name> (2)"),
merged (segments of one street whose centerlines join end to end) and
restored.  Creating or deleting a segment is refused: segments come from
street centerlines (``gisgrid segments build``), and deleting one would leave
its frontage without an owner.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.ops
import sqlalchemy as sa
from shapely.geometry import MultiPolygon, shape
from shapely.geometry.base import BaseGeometry

from gisgrid import crs
from gisgrid.accounts.store import record_action
from gisgrid.accounts.users import Actor
from gisgrid.config import Settings
from gisgrid.db import sql as dbsql
from gisgrid.errors import GisgridError, InputError, NotFound
from gisgrid.grid.edit import (
    OVERLAP_MODES,
    EditCheck,
    Problem,
    area_m2,
    check_edit,
    merge_polygons,
    parse_drawing,
    significant,
    split_polygon,
)
from gisgrid.io.order import sort_frame

LOGGER = logging.getLogger(__name__)

ACTIONS = ("create", "reshape", "split", "merge", "delete", "restore")
SEGMENT_ACTIONS = ("reshape", "split", "merge", "restore")
MAX_TEXT = 500


class EditRefused(InputError):
    """The edit cannot be saved as drawn; ``check`` says why and where."""

    http_status_code = 422

    def __init__(self, check: EditCheck):
        self.check = check
        super().__init__("; ".join(p.message for p in check.problems) or "edit refused")


class EditConflict(GisgridError):
    """A unit changed since the planner loaded it; ``current`` describes it now."""

    http_status_code = 409

    def __init__(self, msg: str, current: list[dict]):
        self.current = current
        super().__init__(msg)


@dataclass(frozen=True)
class _Layer:
    name: str
    table: str
    column: str
    label: str  # SQL expression of the unit's code / name, table alias u


_LAYERS = {
    "cell": _Layer("cell", "grid_cell", "geom", "u.code"),
    "segment": _Layer("segment", "segment", "area", "u.name"),
}


@dataclass
class PlanEdit:
    """A parsed edit (see the module docstring)."""

    layer: str
    action: str
    unit_ids: list[int] = field(default_factory=list)
    revisions: dict[int, int] = field(default_factory=dict)
    town: str | None = None
    geometry: BaseGeometry | None = None
    line: BaseGeometry | None = None
    version_id: int | None = None
    overlap: str = "refuse"
    saved_by: str = ""
    reason: str = ""


def _geometry(value, what: str, problems: list[str]) -> BaseGeometry | None:
    if value in (None, "", {}):
        return None
    try:
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, dict) and value.get("type") == "Feature":
            value = value.get("geometry")
        return shape(value)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        problems.append(f"{what} is not a GeoJSON geometry ({type(exc).__name__}: {exc})")
        return None


def _choice(value):
    """A value that must be one of some names: text as it is, anything else (a list, an object) as its JSON-ish
    text, so that it is refused by name like any unknown choice instead of failing a look-up."""
    return value if value is None or isinstance(value, str) else repr(value)


def parse_edit(payload: dict, *, require_author: bool = True) -> PlanEdit:
    """Validate the editor's request; all problems at once as one :class:`InputError`."""
    if not isinstance(payload, dict):
        raise InputError("the edit must be a JSON object")
    problems = []
    layer = _choice(payload.get("layer", "cell"))
    action = _choice(payload.get("action"))
    if layer not in _LAYERS:
        problems.append(f"layer must be one of {', '.join(_LAYERS)}, got {layer!r}")
    if action not in ACTIONS:
        problems.append(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    elif layer == "segment" and action not in SEGMENT_ACTIONS:
        problems.append(
            f"segments cannot be {action}d in the editor: they are cut from street centerlines "
            f"(`gisgrid segments build`), so a segment is reshaped, split, merged or restored instead"
        )
    try:
        unit_ids = [int(i) for i in payload.get("unit_ids") or []]
        revisions = {int(k): int(v) for k, v in (payload.get("revisions") or {}).items()}
    except (TypeError, ValueError, AttributeError):
        raise InputError("unit_ids must be a list of integers and revisions an object of integers") from None
    overlap = _choice(payload.get("overlap", "refuse"))
    if overlap not in OVERLAP_MODES:
        problems.append(f"overlap must be one of {', '.join(OVERLAP_MODES)}, got {overlap!r}")
    saved_by = str(payload.get("saved_by") or "").strip()[:MAX_TEXT]
    reason = str(payload.get("reason") or "").strip()[:MAX_TEXT]
    if require_author and not saved_by:
        problems.append("say who you are (saved_by): every version records who saved it")
    need_units = {"create": 0, "reshape": 1, "split": 1, "merge": 2, "delete": 1, "restore": 1}.get(action)
    if need_units is not None:
        if action == "merge" and len(unit_ids) < 2:
            problems.append("select at least two units to merge")
        elif action != "merge" and len(unit_ids) != need_units:
            problems.append(
                f"{action} takes {need_units or 'no'} unit id{'s' if need_units != 1 else ''}, got {len(unit_ids)}"
            )
        if action == "create" and not str(payload.get("town") or "").strip():
            problems.append("create needs the town code the cell is drawn in")
        missing = [i for i in unit_ids if i not in revisions and action != "restore"]
        if missing:
            problems.append(f"revision as loaded is required for unit(s) {missing}")
    version_id = payload.get("version_id")
    if action == "restore":
        try:
            version_id = int(version_id)
        except (TypeError, ValueError):
            problems.append("restore needs the version_id to restore")
        if not reason:  # a restore undoes someone's saved work: the history says why
            problems.append("a restore needs a reason (why the earlier version comes back; kept in the history)")
    edit = PlanEdit(
        layer=layer,
        action=action,
        unit_ids=unit_ids,
        revisions=revisions,
        town=str(payload.get("town") or "").strip() or None,
        overlap=overlap,
        saved_by=saved_by,
        reason=reason,
        version_id=version_id if action == "restore" else None,
    )
    if action in ("create", "reshape"):
        edit.geometry = _geometry(payload.get("geometry"), "geometry", problems)
    if action == "split":
        edit.line = _geometry(payload.get("line"), "line", problems)
    if problems:
        raise InputError("; ".join(problems))
    return edit


# --- reading ----------------------------------------------------------------------
def _wkb(value) -> BaseGeometry | None:
    return None if value is None else shapely.from_wkb(bytes(value))


def _town(conn: sa.Connection, code: str):
    row = conn.execute(
        sa.text("""
        SELECT id, code, name, metric_epsg, ST_AsBinary(geom) AS geom FROM jurisdiction
        WHERE code = :c AND level = 'town'"""),
        {"c": code},
    ).first()
    if row is None:
        raise NotFound(f"no town with code {code!r}")
    return row


def _owner_text_sql(layer: str) -> str:
    return f"""(SELECT string_agg(a.role || ' ' || a.owner_name, '; ' ORDER BY a.role, a.id)
                FROM {dbsql.owner_on(":day")} a WHERE a.target_type = '{layer}' AND a.target_id = u.id)"""


def _units_sql(layer: _Layer, where: str) -> str:
    town = (
        (
            "(SELECT CASE WHEN j.level = 'town' THEN j.id ELSE j.parent_id END FROM jurisdiction j "
            "WHERE j.id = u.jurisdiction_id)"
        )
        if layer.name == "cell"
        else "(SELECT s.jurisdiction_id FROM street s WHERE s.id = u.street_id)"
    )
    jur = "u.jurisdiction_id" if layer.name == "cell" else town
    return f"""
        SELECT u.id AS unit_id, {layer.label} AS code, u.revision, {jur} AS jurisdiction_id, {town} AS town_id,
               {_owner_text_sql(layer.name)} AS owners, ST_AsBinary(u.{layer.column}) AS geom
        FROM {layer.table} u WHERE u.{layer.column} IS NOT NULL AND ({where})"""


def _frame(conn: sa.Connection, sql: str, params: dict) -> gpd.GeoDataFrame:
    table = pd.read_sql_query(sa.text(sql), conn, params=params)
    geoms = [_wkb(v) for v in table.pop("geom")]
    return gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(geoms, crs=crs.STORAGE_SRID, index=table.index))


def load_units(
    conn: sa.Connection, town_code: str, layer: str = "cell", *, day: dt.date | None = None
) -> gpd.GeoDataFrame:
    """The cells (or segment areas) of a town: ``unit_id``, ``code``, ``revision``, ``owners``, geometry."""
    if layer not in _LAYERS:
        raise InputError(f"layer must be one of {', '.join(_LAYERS)}, got {layer!r}")
    town = _town(conn, town_code)
    lay = _LAYERS[layer]
    where = (
        "u.jurisdiction_id = :tid OR u.jurisdiction_id IN (SELECT id FROM jurisdiction WHERE parent_id = :tid)"
        if layer == "cell"
        else "u.street_id IN (SELECT id FROM street WHERE jurisdiction_id = :tid)"
    )
    frame = _frame(conn, _units_sql(lay, where) + " ORDER BY 2", {"tid": town.id, "day": day or dt.date.today()})
    frame = sort_frame(frame, "code", natural=["code"]).reset_index(drop=True)  # 第2段 before 第10段
    return frame.drop(columns=["town_id"])


def units_geojson(units: gpd.GeoDataFrame) -> dict:
    """Full-precision GeoJSON of :func:`load_units` (the editor snaps to these exact vertices)."""
    features = []
    for rec, geom in zip(units.drop(columns="geometry").to_dict("records"), units.geometry):
        props = {
            k: (None if isinstance(v, float) and np.isnan(v) else v.item() if isinstance(v, np.generic) else v)
            for k, v in rec.items()
        }
        if geom.geom_type == "MultiPolygon" and len(geom.geoms) == 1:
            geom = geom.geoms[0]  # the editor reshapes single polygons
        features.append(
            {"type": "Feature", "id": props["unit_id"], "properties": props, "geometry": shapely.geometry.mapping(geom)}
        )
    return {"type": "FeatureCollection", "features": features}


def last_version_jurisdiction(conn: sa.Connection, layer: str, unit_id: int) -> str | None:
    """The code of the jurisdiction of a unit's latest saved version (for a removed unit), None without one."""
    return conn.execute(
        sa.text("""
        SELECT j.code FROM plan_version v JOIN jurisdiction j ON j.id = v.jurisdiction_id
        WHERE v.layer = :l AND v.unit_id = :i ORDER BY v.revision DESC, v.id DESC LIMIT 1"""),
        {"l": layer, "i": int(unit_id)},
    ).scalar()


def unit_history(conn: sa.Connection, settings: Settings, layer: str, unit_id: int) -> list[dict]:
    """Every saved version of a unit, newest first (GeoJSON geometry; None for a removal; area in m²)."""
    if layer not in _LAYERS:
        raise InputError(f"layer must be one of {', '.join(_LAYERS)}, got {layer!r}")
    rows = conn.execute(
        sa.text("""
        SELECT v.id, v.edit_id, v.unit_code, v.revision, v.action, v.saved_by, v.saved_at, v.reason,
               ST_AsBinary(v.geom) AS geom, COALESCE(j.metric_epsg, p.metric_epsg) AS metric_epsg
        FROM plan_version v LEFT JOIN jurisdiction j ON j.id = v.jurisdiction_id
        LEFT JOIN jurisdiction p ON p.id = j.parent_id
        WHERE v.layer = :layer AND v.unit_id = :id ORDER BY v.revision DESC, v.id DESC"""),
        {"layer": layer, "id": int(unit_id)},
    ).all()
    lay = _LAYERS[layer]
    exists = conn.execute(sa.text(f"SELECT revision FROM {lay.table} WHERE id = :id"), {"id": int(unit_id)}).first()
    if not rows and exists is None:
        raise NotFound(f"no {layer} with id {unit_id} and no saved versions of one")
    out = []
    for r in rows:
        geom = _wkb(r.geom)
        epsg = None if geom is None else crs.jurisdiction_metric_crs(r.metric_epsg, settings.metric_crs, geom)
        out.append(
            {
                "version_id": r.id,
                "edit_id": r.edit_id,
                "code": r.unit_code,
                "revision": r.revision,
                "action": r.action,
                "saved_by": r.saved_by,
                "saved_at": r.saved_at.isoformat(),
                "reason": r.reason,
                "area_m2": None if geom is None else round(float(area_m2(geom, epsg)[0]), 2),
                "geometry": None if geom is None else shapely.geometry.mapping(geom),
            }
        )
    return out


# --- checking and saving ----------------------------------------------------------
@dataclass
class _Change:
    kind: str  # update | insert | remove | reinsert
    unit_id: int | None
    geometry: BaseGeometry | None
    code: str | None = None
    jurisdiction_id: int | None = None
    copy_owners_from: int | None = None
    segment: dict | None = None  # segments: centerline (shapely), length_m, name, street_id, seq, road_class


@dataclass
class _Plan:
    check: EditCheck
    changes: list[_Change]
    town_id: int


def _locked_units(conn: sa.Connection, lay: _Layer, ids: list[int], day: dt.date, lock: bool) -> gpd.GeoDataFrame:
    if not ids:
        return _frame(conn, _units_sql(lay, "false"), {"day": day})
    if lock:
        conn.execute(sa.text(f"SELECT id FROM {lay.table} WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"), {"ids": ids})
    units = _frame(conn, _units_sql(lay, "u.id = ANY(:ids)"), {"ids": ids, "day": day})
    return units.set_index("unit_id", drop=False)


def _last_version(conn: sa.Connection, layer: str, unit_id: int):
    return conn.execute(
        sa.text("""
        SELECT revision, saved_by, saved_at, action FROM plan_version WHERE layer = :l AND unit_id = :i
        ORDER BY revision DESC, id DESC LIMIT 1"""),
        {"l": layer, "i": unit_id},
    ).first()


def _check_revisions(conn: sa.Connection, edit: PlanEdit, units: gpd.GeoDataFrame) -> None:
    stale = []
    for uid in edit.unit_ids:
        if edit.action == "restore" and uid not in units.index:
            continue  # restoring a removed unit: checked against its last version in _plan_restore
        if uid not in units.index:
            last = _last_version(conn, edit.layer, uid)
            stale.append(
                {
                    "unit_id": uid,
                    "revision": None,
                    "removed": True,
                    "saved_by": last.saved_by if last else None,
                    "saved_at": last.saved_at.isoformat() if last else None,
                }
            )
            continue
        current = int(units.loc[uid, "revision"])
        base = edit.revisions.get(uid)
        if base is not None and base != current:
            last = _last_version(conn, edit.layer, uid)
            stale.append(
                {
                    "unit_id": uid,
                    "code": units.loc[uid, "code"],
                    "revision": current,
                    "removed": False,
                    "saved_by": last.saved_by if last else None,
                    "saved_at": last.saved_at.isoformat() if last else None,
                    "geometry": shapely.geometry.mapping(units.loc[uid, "geometry"]),
                }
            )
    if stale:
        who = "; ".join(
            f"{s.get('code') or s['unit_id']} was {'removed' if s['removed'] else 'saved'}"
            f"{' by ' + s['saved_by'] if s.get('saved_by') else ''}"
            f"{' at ' + s['saved_at'][:19].replace('T', ' ') if s.get('saved_at') else ''}"
            for s in stale
        )
        raise EditConflict(
            f"{who} after you loaded it: nothing was saved and your drawing is kept on the map; "
            "reload, then apply your change again",
            stale,
        )


def _boundary(conn: sa.Connection, jurisdiction_id: int):
    row = conn.execute(
        sa.text("SELECT name, ST_AsBinary(geom) AS geom FROM jurisdiction WHERE id = :i"), {"i": jurisdiction_id}
    ).first()
    if row is None:
        raise NotFound(f"jurisdiction {jurisdiction_id} no longer exists")
    return row.name, _wkb(row.geom)


def _neighbours(
    conn: sa.Connection, lay: _Layer, town_id: int, around: BaseGeometry, exclude: list[int], day: dt.date
) -> gpd.GeoDataFrame:
    where = (
        f"u.{lay.column} && ST_Expand(ST_SetSRID(ST_GeomFromWKB(:env), {crs.STORAGE_SRID}), 0.0005) "
        "AND NOT (u.id = ANY(:ex)) AND "
        + (
            "(u.jurisdiction_id = :tid OR u.jurisdiction_id IN (SELECT id FROM jurisdiction WHERE parent_id = :tid))"
            if lay.name == "cell"
            else "u.street_id IN (SELECT id FROM street WHERE jurisdiction_id = :tid)"
        )
    )
    return _frame(
        conn,
        _units_sql(lay, where),
        {"env": shapely.to_wkb(shapely.envelope(around)), "ex": exclude, "tid": town_id, "day": day},
    )


def _metric(settings: Settings, conn: sa.Connection, town_id: int, geom: BaseGeometry) -> int:
    stored = conn.execute(sa.text("SELECT metric_epsg FROM jurisdiction WHERE id = :i"), {"i": town_id}).scalar()
    return crs.jurisdiction_metric_crs(stored, settings.metric_crs, geom)


def _community_of(conn: sa.Connection, town, poly: BaseGeometry) -> int:
    """The community of the town holding most of ``poly`` (the town itself if it has none)."""
    row = conn.execute(
        sa.text(f"""
        SELECT id FROM jurisdiction WHERE parent_id = :tid AND level = 'community'
          AND geom && ST_SetSRID(ST_GeomFromWKB(:g), {crs.STORAGE_SRID})
        ORDER BY ST_Area(ST_Intersection(geom, ST_SetSRID(ST_GeomFromWKB(:g), {crs.STORAGE_SRID}))) DESC LIMIT 1"""),
        {"tid": town.id, "g": shapely.to_wkb(poly)},
    ).first()
    return row.id if row else town.id


def _next_codes(conn: sa.Connection, jurisdiction_id: int, n: int) -> list[str]:
    """``n`` fresh cell codes of a community: after the highest ever used (retired codes are not reused)."""
    prefix = conn.execute(sa.text("SELECT code FROM jurisdiction WHERE id = :i"), {"i": jurisdiction_id}).scalar()
    pattern = f"^{prefix}[0-9]{{3}}$"
    top = (
        conn.execute(
            sa.text("""
        SELECT max(CAST(substr(code, :k) AS integer)) FROM (
            SELECT code FROM grid_cell WHERE code ~ :p
            UNION ALL SELECT unit_code FROM plan_version WHERE layer = 'cell' AND unit_code ~ :p) c(code)"""),
            {"k": len(prefix) + 1, "p": pattern},
        ).scalar()
        or 0
    )
    if top + n > 999:
        raise InputError(f"community {prefix} has no free cell codes left (999 used)")
    return [f"{prefix}{top + i:03d}" for i in range(1, n + 1)]


def _refuse_early(problems: list[Problem]) -> _Plan:
    return _Plan(EditCheck(None, problems), [], 0)


def _plan(conn: sa.Connection, settings: Settings, edit: PlanEdit, *, lock: bool, day: dt.date) -> _Plan:
    lay = _LAYERS[edit.layer]
    if edit.action == "create":
        town = _town(conn, edit.town)
        if lock:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(72011, :t)"), {"t": town.id})
        poly, problems = parse_drawing(edit.geometry)
        if poly is None:
            return _refuse_early(problems)
        jid = _community_of(conn, town, poly)
        name, boundary = _boundary(conn, jid)
        epsg = _metric(settings, conn, town.id, poly)
        check = check_edit(
            poly,
            boundary=boundary,
            boundary_name=name,
            metric_epsg=epsg,
            overlap=edit.overlap,
            neighbours=_neighbours(conn, lay, town.id, poly, [], day),
        )
        return _Plan(check, [_Change("insert", None, check.geometry, jurisdiction_id=jid)], town.id)

    units = _locked_units(conn, lay, edit.unit_ids, day, lock)
    if edit.action == "restore" and edit.unit_ids[0] not in units.index:
        return _plan_restore_removed(conn, settings, edit, lay, lock=lock, day=day)
    town_ids = set(units["town_id"].dropna().astype(int)) if len(units) else set()
    if lock and town_ids:
        for t in sorted(town_ids):
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(72011, :t)"), {"t": t})
    _check_revisions(conn, edit, units)
    if len(town_ids) != 1:
        raise InputError("the units edited together must be in one town")
    town_id = town_ids.pop()
    first = units.loc[edit.unit_ids[0]]
    name, boundary = _boundary(conn, int(first["jurisdiction_id"]))
    previous = shapely.union_all(units.geometry.to_numpy())
    epsg = _metric(settings, conn, town_id, previous)
    around = (
        previous
        if edit.geometry is None or edit.geometry.is_empty
        else shapely.box(
            *np.concatenate(
                [
                    np.minimum(previous.bounds[:2], edit.geometry.bounds[:2]),
                    np.maximum(previous.bounds[2:], edit.geometry.bounds[2:]),
                ]
            )
        )
    )
    neighbours = _neighbours(conn, lay, town_id, around, edit.unit_ids, day)

    def checked(geom):
        return check_edit(
            geom,
            boundary=boundary,
            boundary_name=name,
            metric_epsg=epsg,
            overlap=edit.overlap,
            neighbours=neighbours,
            previous=previous,
        )

    if edit.action == "reshape":
        check = checked(edit.geometry)
        return _Plan(check, [_Change("update", edit.unit_ids[0], check.geometry)], town_id)
    if edit.action == "restore":
        geom = _version_geometry(conn, edit)
        check = checked(geom)
        return _Plan(check, [_Change("update", edit.unit_ids[0], check.geometry)], town_id)
    if edit.action == "delete":
        left = (
            shapely.difference(previous, shapely.union_all(neighbours.geometry.to_numpy()))
            if len(neighbours)
            else previous
        )
        parts = significant(left, epsg)
        check = EditCheck(None, area_m2=float(area_m2(previous, epsg)[0]))
        check.gaps = gpd.GeoDataFrame(
            {"area_m2": np.round(area_m2(parts, epsg), 2)}, geometry=gpd.GeoSeries(parts, crs=crs.STORAGE_SRID)
        )
        return _Plan(check, [_Change("remove", edit.unit_ids[0], None)], town_id)
    if edit.action == "split" and lay.name == "segment":
        return _plan_segment_split(conn, edit, first, epsg, town_id)
    if edit.action == "merge" and lay.name == "segment":
        return _plan_segment_merge(conn, edit, units, epsg, town_id, checked)
    if edit.action == "split":
        pieces, problems = split_polygon(first.geometry, edit.line, metric_epsg=epsg)
        if problems:
            return _Plan(EditCheck(None, problems), [], town_id)
        codes = _next_codes(conn, int(first["jurisdiction_id"]), len(pieces) - 1)
        changes = [_Change("update", edit.unit_ids[0], pieces[0])] + [
            _Change(
                "insert",
                None,
                p,
                code=c,
                jurisdiction_id=int(first["jurisdiction_id"]),
                copy_owners_from=edit.unit_ids[0],
            )
            for p, c in zip(pieces[1:], codes)
        ]
        areas = area_m2(pieces, epsg)
        check = EditCheck(MultiPolygon(pieces), area_m2=float(areas.sum()), parts_m2=[float(a) for a in areas])
        return _Plan(check, changes, town_id)
    # merge
    communities = set(units["jurisdiction_id"].astype(int))
    if len(communities) > 1:
        return _Plan(
            EditCheck(
                None,
                [
                    Problem(
                        "merge",
                        "cells of different communities cannot be merged: cells never cross a community boundary",
                        previous.representative_point(),
                    )
                ],
            ),
            [],
            town_id,
        )
    merged, problems = merge_polygons(list(units.geometry), list(units["code"]), metric_epsg=epsg)
    if merged is None:
        return _Plan(EditCheck(None, problems), [], town_id)
    check = checked(merged)
    areas = area_m2(units.geometry.to_numpy(), epsg)
    survivor = int(units.index[int(np.argmax(areas))])
    changes = [_Change("update", survivor, check.geometry)] + [
        _Change("remove", int(u), None) for u in units.index if int(u) != survivor
    ]
    return _Plan(check, changes, town_id)


def _segment_rows(conn: sa.Connection, ids: list[int]) -> dict[int, dict]:
    rows = conn.execute(
        sa.text("""
        SELECT id, street_id, seq, name, road_class, ST_AsBinary(geom) AS geom FROM segment WHERE id = ANY(:ids)"""),
        {"ids": ids},
    ).all()
    return {
        r.id: {
            "street_id": r.street_id,
            "seq": r.seq,
            "name": r.name,
            "road_class": r.road_class,
            "centerline": _wkb(r.geom),
        }
        for r in rows
    }


def _length_m(line: BaseGeometry, epsg: int) -> float:
    return float(shapely.length(crs.reproject(line, crs.STORAGE_SRID, epsg)))


def _plan_segment_split(conn: sa.Connection, edit: PlanEdit, first, epsg: int, town_id: int) -> _Plan:
    """Cut a segment's area and its centerline along one line; the piece with the longer centerline keeps the id."""
    seg = _segment_rows(conn, [int(first.unit_id)])[int(first.unit_id)]
    pieces, problems = split_polygon(first.geometry, edit.line, metric_epsg=epsg)
    if problems:
        return _Plan(EditCheck(None, problems), [], town_id)
    xy = shapely.get_coordinates(edit.line)
    d = xy[-1] - xy[0]
    far = np.vstack([xy[0] - d * 10, xy[-1] + d * 10])  # the line, long enough to cross the centerline
    parts = [
        p for p in shapely.get_parts(shapely.ops.split(seg["centerline"], shapely.LineString(far))) if p.length > 0
    ]
    if len(pieces) != 2 or len(parts) != 2:
        return _Plan(
            EditCheck(
                None,
                [
                    Problem(
                        "split_line",
                        "a segment is split in two by a line that crosses its street centerline once",
                        edit.line.interpolate(0.5, normalized=True),
                    )
                ],
            ),
            [],
            town_id,
        )
    # each area piece takes the centerline part lying most within it
    share = np.array([[shapely.length(shapely.intersection(part, piece)) for part in parts] for piece in pieces])
    if share[0].argmax() == share[1].argmax():
        return _Plan(
            EditCheck(
                None,
                [
                    Problem(
                        "split_line",
                        "the line must cut the area where it crosses the centerline, so each piece keeps a "
                        "part of the street",
                        edit.line.interpolate(0.5, normalized=True),
                    )
                ],
            ),
            [],
            town_id,
        )
    lines = [parts[int(share[i].argmax())] for i in range(2)]
    lengths = [_length_m(line, epsg) for line in lines]
    keep = int(np.argmax(lengths))
    new = 1 - keep
    top = conn.execute(sa.text("SELECT max(seq) FROM segment WHERE street_id = :s"), {"s": seg["street_id"]}).scalar()
    taken = {
        r for (r,) in conn.execute(sa.text("SELECT name FROM segment WHERE street_id = :s"), {"s": seg["street_id"]})
    }
    k = 2
    while f"{seg['name']} ({k})" in taken:
        k += 1
    changes = [
        _Change(
            "update", int(first.unit_id), pieces[keep], segment={"centerline": lines[keep], "length_m": lengths[keep]}
        ),
        _Change(
            "insert",
            None,
            pieces[new],
            copy_owners_from=int(first.unit_id),
            segment={
                **seg,
                "centerline": lines[new],
                "length_m": lengths[new],
                "name": f"{seg['name']} ({k})",
                "seq": (top or 0) + 1,
            },
        ),
    ]
    areas = area_m2(pieces, epsg)
    check = EditCheck(MultiPolygon(pieces), area_m2=float(areas.sum()), parts_m2=[float(a) for a in areas])
    return _Plan(check, changes, town_id)


def _plan_segment_merge(
    conn: sa.Connection, edit: PlanEdit, units: gpd.GeoDataFrame, epsg: int, town_id: int, checked
) -> _Plan:
    """Join segments of one street whose centerlines meet end to end; the longest keeps its id and name."""
    segs = _segment_rows(conn, [int(i) for i in units.index])
    if len({s["street_id"] for s in segs.values()}) > 1:
        return _Plan(EditCheck(None, [Problem("merge", "only segments of one street can be merged")]), [], town_id)
    line = shapely.line_merge(shapely.union_all([s["centerline"] for s in segs.values()]))
    if line.geom_type != "LineString":
        return _Plan(
            EditCheck(
                None,
                [
                    Problem(
                        "merge",
                        f"{', '.join(units['code'])} do not join end to end along the street",
                        line.representative_point(),
                    )
                ],
            ),
            [],
            town_id,
        )
    merged, problems = merge_polygons(list(units.geometry), list(units["code"]), metric_epsg=epsg)
    if merged is None:
        return _Plan(EditCheck(None, problems), [], town_id)
    check = checked(merged)
    survivor = max(segs, key=lambda i: (_length_m(segs[i]["centerline"], epsg), -i))
    changes = [
        _Change("update", survivor, check.geometry, segment={"centerline": line, "length_m": _length_m(line, epsg)})
    ] + [_Change("remove", int(u), None) for u in units.index if int(u) != survivor]
    return _Plan(check, changes, town_id)


def _version_geometry(conn: sa.Connection, edit: PlanEdit) -> BaseGeometry | None:
    row = conn.execute(
        sa.text("""
        SELECT layer, unit_id, action, ST_AsBinary(geom) AS geom FROM plan_version WHERE id = :v"""),
        {"v": edit.version_id},
    ).first()
    if row is None or row.layer != edit.layer or row.unit_id != edit.unit_ids[0]:
        raise NotFound(f"no version {edit.version_id} of {edit.layer} {edit.unit_ids[0]}")
    if row.geom is None:
        raise InputError(
            f"version {edit.version_id} records the removal of the unit ({row.action}): restore an earlier version"
        )
    return _wkb(row.geom)


def _plan_restore_removed(conn, settings, edit: PlanEdit, lay: _Layer, *, lock: bool, day: dt.date) -> _Plan:
    """Restore a cell that a merge or delete removed: its row comes back with its id and code."""
    uid = edit.unit_ids[0]
    if lay.name != "cell":
        raise InputError(
            "a segment merged into another cannot be restored on its own: split the merged segment "
            "again (its history keeps every earlier area)"
        )
    last = conn.execute(
        sa.text("""
        SELECT revision, unit_code, jurisdiction_id, saved_by, saved_at, geom IS NULL AS removed FROM plan_version
        WHERE layer = :l AND unit_id = :i ORDER BY revision DESC, id DESC LIMIT 1"""),
        {"l": lay.name, "i": uid},
    ).first()
    if last is None:
        raise NotFound(f"no {lay.name} with id {uid} and no saved versions of one")
    base = edit.revisions.get(uid)
    if base is not None and base != last.revision:
        raise EditConflict(
            f"{last.unit_code} changed (revision {last.revision}) after you loaded it: "
            "nothing was saved; reload its history",
            [{"unit_id": uid, "revision": last.revision}],
        )
    geom = _version_geometry(conn, edit)
    town_id = conn.execute(
        sa.text("SELECT CASE WHEN level = 'town' THEN id ELSE parent_id END FROM jurisdiction WHERE id = :i"),
        {"i": last.jurisdiction_id},
    ).scalar()
    if town_id is None:
        raise NotFound(f"the jurisdiction of {last.unit_code} no longer exists")
    if lock:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(72011, :t)"), {"t": town_id})
    taken = conn.execute(sa.text("SELECT id FROM grid_cell WHERE code = :c"), {"c": last.unit_code}).first()
    if taken is not None:
        raise InputError(f"code {last.unit_code} is in use by another cell now: draw the cell anew instead")
    name, boundary = _boundary(conn, last.jurisdiction_id)
    epsg = _metric(settings, conn, town_id, geom)
    check = check_edit(
        geom,
        boundary=boundary,
        boundary_name=name,
        metric_epsg=epsg,
        overlap=edit.overlap,
        neighbours=_neighbours(conn, lay, town_id, geom, [uid], day),
    )
    return _Plan(
        check,
        [_Change("reinsert", uid, check.geometry, code=last.unit_code, jurisdiction_id=last.jurisdiction_id)],
        town_id,
    )


def check_plan_edit(conn: sa.Connection, settings: Settings, payload: dict, *, day: dt.date | None = None) -> dict:
    """What saving ``payload`` would do (nothing is written): :meth:`EditCheck.to_json` plus ``changes``."""
    edit = parse_edit(payload, require_author=False)
    plan = _plan(conn, settings, edit, lock=False, day=day or dt.date.today())
    out = plan.check.to_json()
    out["changes"] = [{"kind": c.kind, "unit_id": c.unit_id} for c in plan.changes]
    return out


def save_plan_edit(
    conn: sa.Connection,
    settings: Settings,
    payload: dict,
    *,
    day: dt.date | None = None,
    author: Actor | None = None,
) -> dict:
    """Apply an edit in the caller's transaction; returns the check and the units written.

    ``author`` is who saves (the signed-in user): their name is recorded on
    every version, whatever ``saved_by`` the payload says, and the save goes
    to the audit log with the unit ids before and after.

    Raises
    ------
    InputError
        A malformed request.
    EditRefused
        The drawing cannot be saved (``.check`` says why and where).
    EditConflict
        A unit changed since the planner loaded it.
    NotFound
        Unknown town, unit or version.
    """
    if author is not None:
        payload = {**payload, "saved_by": author.name}
    edit = parse_edit(payload)
    day = day or dt.date.today()
    plan = _plan(conn, settings, edit, lock=True, day=day)
    if not plan.check.ok:
        raise EditRefused(plan.check)
    lay = _LAYERS[edit.layer]
    edit_id = conn.execute(sa.text("SELECT nextval('plan_edit_seq')")).scalar()
    for change in plan.changes:
        if change.unit_id is not None and change.kind != "reinsert":
            _ensure_original(conn, lay, change.unit_id)
    written = []
    for change in plan.changes:
        written.append(_apply(conn, lay, edit, change, edit_id, day))
    LOGGER.info(
        "plan edit %s by %s: %s %s -> %s",
        edit_id,
        edit.saved_by,
        edit.action,
        edit.layer,
        [(w["unit_id"], w["kind"]) for w in written],
    )
    if author is not None:
        record_action(
            conn,
            author,
            "plan.save",
            target_type=edit.layer,
            target_id=",".join(str(w["unit_id"]) for w in written),
            before={"unit_ids": edit.unit_ids, "revisions": edit.revisions},
            after={
                "edit_id": edit_id,
                "units": [{k: w[k] for k in ("unit_id", "revision", "action")} for w in written],
            },
            detail={"action": edit.action, "town": edit.town, "reason": edit.reason or None},
        )
    out = plan.check.to_json()
    out.update(edit_id=edit_id, units=written)
    return out


def _ensure_original(conn: sa.Connection, lay: _Layer, unit_id: int) -> None:
    """Record a unit's geometry as built before its first edit, so it can be restored."""
    conn.execute(
        sa.text(f"""
        INSERT INTO plan_version (edit_id, layer, unit_id, unit_code, revision, action, jurisdiction_id, saved_by,
                                  reason, geom)
        SELECT 0, CAST(:layer AS varchar), u.id, {lay.label}, u.revision, 'original',
               {
            "u.jurisdiction_id"
            if lay.name == "cell"
            else "(SELECT s.jurisdiction_id FROM street s WHERE s.id = u.street_id)"
        },
               NULL, NULL, u.{lay.column}
        FROM {lay.table} u WHERE u.id = :id
          AND NOT EXISTS (SELECT 1 FROM plan_version v WHERE v.layer = :layer AND v.unit_id = u.id)"""),
        {"layer": lay.name, "id": unit_id},
    )


def _geom_param(geom: BaseGeometry | None):
    if geom is None:
        return None
    return shapely.to_wkb(geom if geom.geom_type == "MultiPolygon" else MultiPolygon([geom]))


def _copy_owners(conn: sa.Connection, layer: str, old: int | None, new: int, day: dt.date) -> None:
    """The split-off piece starts today with the owners the unit had (their end dates kept)."""
    if old is None:
        return
    conn.execute(
        sa.text(f"""
        INSERT INTO owner_assignment (person_id, department_id, target_type, target_id, role, valid_from, valid_to)
        SELECT person_id, department_id, target_type, :new, role, GREATEST(valid_from, :d), valid_to
        FROM owner_assignment a WHERE target_type = :t AND target_id = :old
          AND {dbsql.still_valid_after("a", "GREATEST(a.valid_from, :d)")}"""),
        {"new": new, "old": old, "d": day, "t": layer},
    )


def _apply(conn: sa.Connection, lay: _Layer, edit: PlanEdit, change: _Change, edit_id: int, day: dt.date) -> dict:
    srid = crs.STORAGE_SRID
    action = edit.action
    if change.kind == "update":
        centerline = ""
        params = {"g": _geom_param(change.geometry), "id": change.unit_id}
        if change.segment:
            centerline = f", geom = ST_SetSRID(ST_GeomFromWKB(:line), {srid}), length_m = :len"
            params.update(line=shapely.to_wkb(change.segment["centerline"]), len=change.segment["length_m"])
        row = conn.execute(
            sa.text(f"""
            UPDATE {lay.table} u SET {lay.column} = ST_SetSRID(ST_GeomFromWKB(:g), {srid}),
                   revision = revision + 1{centerline}
            WHERE id = :id RETURNING u.id, {lay.label} AS code, u.revision"""),
            params,
        ).one()
        uid, code, revision = row.id, row.code, row.revision
    elif change.kind == "insert" and lay.name == "segment":
        seg = change.segment
        uid = conn.execute(
            sa.text(f"""
            INSERT INTO segment (street_id, seq, name, road_class, length_m, geom, area, revision)
            VALUES (:street, :seq, :name, :rc, :len, ST_SetSRID(ST_GeomFromWKB(:line), {srid}),
                    ST_SetSRID(ST_GeomFromWKB(:g), {srid}), 1) RETURNING id"""),
            {
                "street": seg["street_id"],
                "seq": seg["seq"],
                "name": seg["name"],
                "rc": seg["road_class"],
                "len": seg["length_m"],
                "line": shapely.to_wkb(seg["centerline"]),
                "g": _geom_param(change.geometry),
            },
        ).scalar()
        code, revision = seg["name"], 1
        change.jurisdiction_id = conn.execute(
            sa.text("SELECT jurisdiction_id FROM street WHERE id = :s"), {"s": seg["street_id"]}
        ).scalar()
        _copy_owners(conn, lay.name, change.copy_owners_from, uid, day)
    elif change.kind in ("insert", "reinsert"):
        code = change.code or _next_codes(conn, change.jurisdiction_id, 1)[0]
        revision = 1
        if change.kind == "reinsert":
            revision = conn.execute(
                sa.text("SELECT max(revision) + 1 FROM plan_version WHERE layer = 'cell' AND unit_id = :i"),
                {"i": change.unit_id},
            ).scalar()
        uid = conn.execute(
            sa.text(f"""
            INSERT INTO grid_cell ({"id, " if change.kind == "reinsert" else ""}code, jurisdiction_id, geom, revision)
            VALUES ({":id, " if change.kind == "reinsert" else ""}:code, :jid,
                    ST_SetSRID(ST_GeomFromWKB(:g), {srid}), :rev) RETURNING id"""),
            {
                "id": change.unit_id,
                "code": code,
                "jid": change.jurisdiction_id,
                "g": _geom_param(change.geometry),
                "rev": revision,
            },
        ).scalar()
        _copy_owners(conn, lay.name, change.copy_owners_from, uid, day)
    else:  # remove
        row = conn.execute(
            sa.text(f"SELECT {lay.label} AS code, u.revision FROM {lay.table} u WHERE u.id = :id"),
            {"id": change.unit_id},
        ).one()
        uid, code, revision = change.unit_id, row.code, row.revision + 1
        dbsql.end_assignments(conn, "a.target_type = :t AND a.target_id = :id", {"id": uid, "t": lay.name}, day)
        conn.execute(sa.text(f"DELETE FROM {lay.table} WHERE id = :id"), {"id": uid})
        action = "merged" if edit.action == "merge" else "delete"
    jid = change.jurisdiction_id
    if jid is None:
        jid = conn.execute(
            sa.text(
                "SELECT jurisdiction_id FROM plan_version WHERE layer = :l AND unit_id = :i ORDER BY id DESC LIMIT 1"
            ),
            {"l": lay.name, "i": uid},
        ).scalar()
    conn.execute(
        sa.text(f"""
        INSERT INTO plan_version (edit_id, layer, unit_id, unit_code, revision, action, jurisdiction_id, saved_by,
                                  reason, geom)
        VALUES (:e, :l, :i, :code, :rev, :action, :jid, :by, :why,
                ST_SetSRID(ST_GeomFromWKB(:g), {srid}))"""),
        {
            "e": edit_id,
            "l": lay.name,
            "i": uid,
            "code": code,
            "rev": revision,
            "action": action,
            "jid": jid,
            "by": edit.saved_by,
            "why": edit.reason or None,
            "g": _geom_param(change.geometry) if change.kind != "remove" else None,
        },
    )
    return {"unit_id": uid, "code": code, "revision": revision, "kind": change.kind, "action": action}


def removed_cells(conn: sa.Connection, town_code: str) -> list[dict]:
    """Cells of a town (and its communities) deleted or merged away, each with its last version.

    Returns
    -------
    list of dict
        ``unit_id``, ``code``, ``revision``, ``action`` ("delete" or "merged"),
        ``saved_by`` and ``saved_at`` (text, "YYYY-MM-DD HH24:MI"), by unit id.
    """
    rows = conn.execute(
        sa.text("""
            SELECT DISTINCT ON (v.unit_id) v.unit_id, v.unit_code AS code, v.revision, v.action, v.saved_by,
                   to_char(v.saved_at, 'YYYY-MM-DD HH24:MI') AS saved_at
            FROM plan_version v JOIN jurisdiction j ON j.id = v.jurisdiction_id
            JOIN jurisdiction t ON t.code = :c AND (j.id = t.id OR j.parent_id = t.id)
            WHERE v.layer = 'cell' AND NOT EXISTS (SELECT 1 FROM grid_cell g WHERE g.id = v.unit_id)
            ORDER BY v.unit_id, v.revision DESC, v.id DESC"""),
        {"c": town_code},
    )
    return [r for r in (dict(row._mapping) for row in rows) if r["action"] in ("delete", "merged")]
