"""The saved versions of cells and segment areas (``plan_version``): history, removed cells, the geometry as built.

The first edit of a unit records its geometry as built (``action = 'original'``, :func:`_ensure_original`), so
any earlier state can be viewed (:func:`unit_history`) and restored.
"""

from __future__ import annotations

import logging

import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry

from gisgrid import crs
from gisgrid.config import Settings
from gisgrid.errors import InputError, NotFound
from gisgrid.grid.edit import (
    area_m2,
)
from gisgrid.grid.edit_request import PlanEdit
from gisgrid.grid.edit_units import _LAYERS, _Layer, _wkb

LOGGER = logging.getLogger(__name__)


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


def _last_version(conn: sa.Connection, layer: str, unit_id: int):
    return conn.execute(
        sa.text("""
        SELECT revision, saved_by, saved_at, action FROM plan_version WHERE layer = :l AND unit_id = :i
        ORDER BY revision DESC, id DESC LIMIT 1"""),
        {"l": layer, "i": unit_id},
    ).first()


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
