"""Cases in bulk: many inputs at once (a spreadsheet, the geocoding page's rows), a file of cases, and
reports stored in bulk adopting their routed owner.  Rows in = rows out: a bad row says why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa

from gisgrid.accounts.users import Actor
from gisgrid.cases.intake import CaseInput
from gisgrid.cases.store import create_case
from gisgrid.config import Settings
from gisgrid.errors import InputError

LOGGER = logging.getLogger(__name__)


def adopt_routing(conn: sa.Connection, *, where: str = "true", params: dict | None = None) -> int:
    """Cases without an assignee take their latest routed owner; every case without a jurisdiction gets one.

    For reports stored in bulk (imports, the demo) and routed afterwards by
    :func:`gisgrid.routing.store.assign_stored_reports`, which writes routing
    history only.  A case that has an assignee keeps it.  Returns how many
    cases changed.
    """
    params = params or {}
    n = conn.execute(
        sa.text(f"""
        UPDATE report r SET assigned_type = c.target_type, assigned_id = c.target_id,
               assigned_segment_id = c.segment_id,
               assignee_person_id = (SELECT p.id FROM person p WHERE p.id = c.owner_person_id),
               assignee_department_id = (SELECT d.id FROM department d WHERE d.id = c.owner_department_id),
               assigned_at = c.assigned_at,
               -- routed to a frontage unit (门前三包, the batch's unit step): the unit whose frontage holds the
               -- report and whose contact the routing named, as intake records it
               frontage_unit_id = CASE WHEN c.rule = 'frontage_unit' THEN (
                   SELECT u.id FROM frontage_unit u
                   WHERE u.person_id = c.owner_person_id AND u.frontage && r.geom AND ST_Intersects(u.frontage, r.geom)
                   ORDER BY (u.segment_id = c.segment_id) DESC, u.id LIMIT 1) ELSE r.frontage_unit_id END
        FROM report_current c
        WHERE c.report_id = r.id AND c.target_type IS NOT NULL AND r.assigned_type IS NULL
          AND r.assignee_person_id IS NULL AND r.assignee_department_id IS NULL AND ({where})"""),
        params,
    ).rowcount
    conn.execute(
        sa.text(f"""
        UPDATE report r SET jurisdiction_id = case_jurisdiction(r.assigned_type, r.assigned_id, r.geom)
        WHERE r.jurisdiction_id IS NULL AND ({where})"""),
        params,
    )
    return int(n)


def create_cases(
    conn: sa.Connection,
    actor: Actor,
    deployment,
    settings: Settings,
    inputs: Sequence[CaseInput | None],
    *,
    fallback_jurisdiction_id: int | None = None,
) -> pd.DataFrame:
    """Take in many cases (a spreadsheet, the geocoding page's rows): rows in = rows out.

    Each row is its own savepoint, so a bad row is reported and the others are
    kept.  A ``None`` input (a row that failed its checks before) stays a
    reported row.  Returns one row per input: ``case_id``, ``created``,
    ``unassigned``, ``owner``, ``due_at``, ``duplicates`` (ids), ``error``.
    """
    out = []
    for data in inputs:  # per row: each case routes, dates and reports its own outcome and duplicates
        if data is None:
            out.append({"case_id": None, "created": False, "error": None})
            continue
        try:
            with conn.begin_nested():
                made = create_case(conn, actor, deployment, settings, data,
                                   fallback_jurisdiction_id=fallback_jurisdiction_id)  # fmt: skip
        except InputError as exc:
            out.append({"case_id": None, "created": False, "error": getattr(exc, "text", None) or str(exc)})
            continue
        out.append(
            {
                "case_id": made.id,
                "created": made.created,
                "unassigned": made.unassigned,
                "owner": made.routing.get("owner"),
                "due_at": made.due_at,
                "duplicates": ",".join(str(d["id"]) for d in made.duplicates),
                "error": None,
            }
        )
    return pd.DataFrame(out, columns=["case_id", "created", "unassigned", "owner", "due_at", "duplicates", "error"])


# --- a file of cases ------------------------------------------------------------------------
def import_cases(
    conn: sa.Connection,
    actor: Actor,
    deployment,
    settings: Settings,
    path,
    *,
    crs: str | None,
    sheet: str | None = None,
    fallback_jurisdiction_id: int | None = None,
) -> pd.DataFrame:
    """Take in every row of a file (CSV, XLSX, GeoJSON, GeoPackage …) as a case: rows in = rows out.

    The file is read by the one reader (:func:`gisgrid.io.read.read_layer`:
    lon/lat columns in ``crs``, or point geometries); each row becomes a case
    (:func:`create_cases`) or says why not.  Returns one row per data row:
    ``row`` (1-based, header excluded), ``case_id``, ``created``,
    ``unassigned``, ``owner``, ``due_at``, ``duplicates``, ``error``.
    """
    from gisgrid.cases.intake import rows_to_inputs
    from gisgrid.io.read import read_layer

    areas = None
    try:
        areas = deployment.index.areas
    except InputError:  # nothing to route to: every case is unassigned
        pass
    result = read_layer(path, crs=crs, sheet=sheet, expected_geom="point", extent=areas)
    frame = pd.DataFrame(result.frame.drop(columns="geometry"))
    for col in ("lon", "lat"):
        if col in frame.columns:
            frame = frame.rename(columns={col: f"{col}_orig"})
    frame["lon"] = result.frame.geometry.x.to_numpy()
    frame["lat"] = result.frame.geometry.y.to_numpy()
    inputs, errors = rows_to_inputs(frame, crs="EPSG:4326", source="import")
    made = create_cases(conn, actor, deployment, settings, inputs, fallback_jurisdiction_id=fallback_jurisdiction_id)
    made.insert(0, "row", frame["row"].to_numpy())
    made["error"] = [e or m for e, m in zip(errors, made["error"])]
    rejected = pd.DataFrame({"row": [p.row for p in result.rejected], "error": [p.reason for p in result.rejected]})
    out = pd.concat([made, rejected], ignore_index=True) if len(rejected) else made
    out["created"] = out["created"].fillna(False).astype(bool)
    return out.sort_values("row", kind="stable").reset_index(drop=True)
