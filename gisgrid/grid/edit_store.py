"""Saving planners' edits of cells and segment areas, with versions (the ``/plan`` editor's storage).

The edit is parsed in :mod:`gisgrid.grid.edit_request`, checked in :mod:`gisgrid.grid.edit_check`;
:func:`save_plan_edit` applies it in the caller's transaction, or raises
:class:`~gisgrid.grid.edit_request.EditRefused` (with the same check, so the page can mark the problem)
or :class:`~gisgrid.grid.edit_request.EditConflict` when a unit changed since the planner loaded it
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
import logging

import shapely
import sqlalchemy as sa
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

from gisgrid import crs
from gisgrid.accounts.store import record_action
from gisgrid.accounts.users import Actor
from gisgrid.config import Settings
from gisgrid.db import sql as dbsql
from gisgrid.grid.edit_check import _Change, _next_codes, _plan
from gisgrid.grid.edit_request import EditRefused, PlanEdit, parse_edit
from gisgrid.grid.edit_units import _LAYERS, _Layer
from gisgrid.grid.edit_versions import _ensure_original

LOGGER = logging.getLogger(__name__)


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
