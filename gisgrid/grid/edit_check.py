"""What an edit of the ``/plan`` editor would do: the units it changes and the check of its drawing.

:func:`check_plan_edit` answers it with nothing written; :func:`_plan` is what
:func:`gisgrid.grid.edit_store.save_plan_edit` applies.  Segments are split (area and centerline cut together,
the piece with the longer centerline keeps the id and name) and merged (centerlines joining end to end); a
cell removed by a merge or delete is restored with its id and code.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
import shapely.ops
import sqlalchemy as sa
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

from gisgrid import crs
from gisgrid.config import Settings
from gisgrid.errors import InputError, NotFound
from gisgrid.grid.edit import (
    EditCheck,
    Problem,
    area_m2,
    check_edit,
    merge_polygons,
    parse_drawing,
    significant,
    split_polygon,
)
from gisgrid.grid.edit_request import EditConflict, PlanEdit, parse_edit
from gisgrid.grid.edit_units import (
    _LAYERS,
    _boundary,
    _community_of,
    _Layer,
    _locked_units,
    _metric,
    _neighbours,
    _segment_rows,
    _town,
)
from gisgrid.grid.edit_versions import _last_version, _version_geometry

LOGGER = logging.getLogger(__name__)


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


def _refused(problems: list[Problem], town_id: int = 0) -> _Plan:
    """The plan of an edit that cannot be saved: nothing changes, the problems say why."""
    return _Plan(EditCheck(None, problems), [], town_id)


def _pieces_check(pieces: list, epsg: int) -> EditCheck:
    """The check of a split: the pieces and their areas in m²."""
    areas = area_m2(pieces, epsg)
    return EditCheck(MultiPolygon(pieces), area_m2=float(areas.sum()), parts_m2=[float(a) for a in areas])


def _plan(conn: sa.Connection, settings: Settings, edit: PlanEdit, *, lock: bool, day: dt.date) -> _Plan:
    lay = _LAYERS[edit.layer]
    if edit.action == "create":
        town = _town(conn, edit.town)
        if lock:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(72011, :t)"), {"t": town.id})
        poly, problems = parse_drawing(edit.geometry)
        if poly is None:
            return _refused(problems)
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
            return _refused(problems, town_id)
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
        check = _pieces_check(pieces, epsg)
        return _Plan(check, changes, town_id)
    # merge
    communities = set(units["jurisdiction_id"].astype(int))
    if len(communities) > 1:
        return _refused(
            [
                Problem(
                    "merge",
                    "cells of different communities cannot be merged: cells never cross a community boundary",
                    previous.representative_point(),
                )
            ],
            town_id,
        )
    merged, problems = merge_polygons(list(units.geometry), list(units["code"]), metric_epsg=epsg)
    if merged is None:
        return _refused(problems, town_id)
    check = checked(merged)
    areas = area_m2(units.geometry.to_numpy(), epsg)
    survivor = int(units.index[int(np.argmax(areas))])
    changes = [_Change("update", survivor, check.geometry)] + [
        _Change("remove", int(u), None) for u in units.index if int(u) != survivor
    ]
    return _Plan(check, changes, town_id)


def _length_m(line: BaseGeometry, epsg: int) -> float:
    return float(shapely.length(crs.reproject(line, crs.STORAGE_SRID, epsg)))


def _plan_segment_split(conn: sa.Connection, edit: PlanEdit, first, epsg: int, town_id: int) -> _Plan:
    """Cut a segment's area and its centerline along one line; the piece with the longer centerline keeps the id."""
    seg = _segment_rows(conn, [int(first.unit_id)])[int(first.unit_id)]
    pieces, problems = split_polygon(first.geometry, edit.line, metric_epsg=epsg)
    if problems:
        return _refused(problems, town_id)
    xy = shapely.get_coordinates(edit.line)
    d = xy[-1] - xy[0]
    far = np.vstack([xy[0] - d * 10, xy[-1] + d * 10])  # the line, long enough to cross the centerline
    parts = [
        p for p in shapely.get_parts(shapely.ops.split(seg["centerline"], shapely.LineString(far))) if p.length > 0
    ]
    if len(pieces) != 2 or len(parts) != 2:
        return _refused(
            [
                Problem(
                    "split_line",
                    "a segment is split in two by a line that crosses its street centerline once",
                    edit.line.interpolate(0.5, normalized=True),
                )
            ],
            town_id,
        )
    # each area piece takes the centerline part lying most within it
    share = np.array([[shapely.length(shapely.intersection(part, piece)) for part in parts] for piece in pieces])
    if share[0].argmax() == share[1].argmax():
        return _refused(
            [
                Problem(
                    "split_line",
                    "the line must cut the area where it crosses the centerline, so each piece keeps a "
                    "part of the street",
                    edit.line.interpolate(0.5, normalized=True),
                )
            ],
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
    check = _pieces_check(pieces, epsg)
    return _Plan(check, changes, town_id)


def _plan_segment_merge(
    conn: sa.Connection, edit: PlanEdit, units: gpd.GeoDataFrame, epsg: int, town_id: int, checked
) -> _Plan:
    """Join segments of one street whose centerlines meet end to end; the longest keeps its id and name."""
    segs = _segment_rows(conn, [int(i) for i in units.index])
    if len({s["street_id"] for s in segs.values()}) > 1:
        return _refused([Problem("merge", "only segments of one street can be merged")], town_id)
    line = shapely.line_merge(shapely.union_all([s["centerline"] for s in segs.values()]))
    if line.geom_type != "LineString":
        return _refused(
            [
                Problem(
                    "merge",
                    f"{', '.join(units['code'])} do not join end to end along the street",
                    line.representative_point(),
                )
            ],
            town_id,
        )
    merged, problems = merge_polygons(list(units.geometry), list(units["code"]), metric_epsg=epsg)
    if merged is None:
        return _refused(problems, town_id)
    check = checked(merged)
    survivor = max(segs, key=lambda i: (_length_m(segs[i]["centerline"], epsg), -i))
    changes = [
        _Change("update", survivor, check.geometry, segment={"centerline": line, "length_m": _length_m(line, epsg)})
    ] + [_Change("remove", int(u), None) for u in units.index if int(u) != survivor]
    return _Plan(check, changes, town_id)


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
