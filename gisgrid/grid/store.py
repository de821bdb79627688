"""The unit grid against the database (``gisgrid grid build``).

:func:`build_and_store_grid` runs :func:`gisgrid.grid.build.build_grid` on a town
(or on every town of a county) as stored in ``jurisdiction`` / ``street`` and
replaces that town's rows of ``grid_cell``.  Cells whose code survives the
re-run keep their row id, so the owner assignments on them (``target_type =
'cell'``, ``target_id = grid_cell.id``) stay attached; retired cells are deleted
after their current assignments end today (history kept, as
:mod:`gisgrid.network.store` does for segments).

It takes a SQLAlchemy connection; the caller owns the transaction (the CLI
uses ``engine.begin()``).  The grid replacement runs inside a SAVEPOINT, so a
failure leaves the stored grid as it was.  All geometries cross the database
boundary as WKB in EPSG:4326 (:data:`gisgrid.crs.STORAGE_SRID`); areas are m²
in the town's metric CRS.
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
from gisgrid.config import Settings
from gisgrid.db import sql as dbsql
from gisgrid.db.frames import query_geo_frame as _frame
from gisgrid.db.layers import insert_frame
from gisgrid.errors import InputError, NotFound
from gisgrid.grid.build import LAYOUTS, build_grid, tiling_errors_m2
from gisgrid.shapes import as_multi

LOGGER = logging.getLogger(__name__)

_TOWNS_SQL = """
    SELECT t.id, t.code, t.name, t.metric_epsg, ST_AsBinary(t.geom) AS geom FROM jurisdiction t
    WHERE t.level = 'town' AND (t.code = :code OR t.parent_id IN
          (SELECT id FROM jurisdiction WHERE code = :code AND level = 'county'))
    ORDER BY t.code"""


# --- grid build -------------------------------------------------------------------
def build_and_store_grid(
    conn: sa.Connection,
    settings: Settings,
    jurisdiction_code: str,
    *,
    target_area_m2: float = 10_000.0,
    layout: str = "blocks",
) -> dict:
    """Build the unit grid of a town (or of each town of a county) and store it in ``grid_cell``.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Open connection; the caller commits.
    settings : Settings
        Deployment settings (``metric_crs`` when a town has no ``metric_epsg``).
    jurisdiction_code : str
        Code of a ``town`` jurisdiction, or of a ``county`` (every town under it is built).
    target_area_m2 : float, default 10000
        Intended cell area, m².
    layout : {"blocks", "square", "hex"}, default "blocks"
        See :func:`gisgrid.grid.build.build_grid`.

    Returns
    -------
    dict
        ``jurisdiction``, ``towns`` (one dict per town: ``code``, ``name``,
        ``layout`` (used), ``note``, ``communities``, ``cells``, ``kept``,
        ``new``, ``retired``, ``ended_assignments``, ``dropped_assignments``,
        ``median_area_m2``, ``gap_m2``, ``outside_m2``, ``overlap_m2``) and the
        totals ``cells``, ``kept``, ``new``, ``retired``.

    Raises
    ------
    InputError
        Empty code, unknown layout or a non-positive target (and whatever
        :func:`~gisgrid.grid.build.build_grid` refuses).
    NotFound
        When no town or county has this code.
    """
    problems = []
    if not jurisdiction_code or not str(jurisdiction_code).strip():
        problems.append("a jurisdiction code is required")
    if layout not in LAYOUTS:
        problems.append(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if not (isinstance(target_area_m2, (int, float)) and np.isfinite(target_area_m2) and target_area_m2 > 0):
        problems.append(f"target area must be a positive number of m², got {target_area_m2!r}")
    if problems:
        raise InputError("; ".join(problems))
    code = str(jurisdiction_code).strip()
    towns = conn.execute(sa.text(_TOWNS_SQL), {"code": code}).all()
    if not towns:
        raise NotFound(f"no town or county with code {code!r}")
    summaries = []
    with conn.begin_nested():
        for town in towns:
            summaries.append(_build_town(conn, settings, town, target_area_m2=float(target_area_m2), layout=layout))
    out = {"jurisdiction": code, "towns": summaries}
    for key in ("cells", "kept", "new", "retired"):
        out[key] = sum(s[key] for s in summaries)
    return out


def _build_town(conn: sa.Connection, settings: Settings, town, *, target_area_m2: float, layout: str) -> dict:
    boundary = shapely.from_wkb(bytes(town.geom))
    epsg = crs.jurisdiction_metric_crs(town.metric_epsg, settings.metric_crs, boundary)
    communities = _frame(
        conn,
        """
        SELECT id, code, ST_AsBinary(geom) AS geom FROM jurisdiction
        WHERE parent_id = :tid AND level = 'community' ORDER BY code""",
        {"tid": town.id},
    )
    if communities.empty:  # a town without communities: it is its own single community
        communities = gpd.GeoDataFrame(
            {"id": [town.id], "code": [town.code]}, geometry=gpd.GeoSeries([boundary], crs=crs.STORAGE_SRID)
        )
    streets = _frame(
        conn,
        """
        SELECT s.id, ST_AsBinary((ST_Dump(s.geom)).geom) AS geom FROM street s JOIN jurisdiction t ON t.id = :tid
        WHERE s.geom && t.geom AND ST_Intersects(s.geom, t.geom)""",
        {"tid": town.id},
    )
    # the town's previous cells: stored under the town or its communities, or coded on a community code
    previous = _frame(
        conn,
        """
        SELECT c.id, c.code, ST_AsBinary(c.geom) AS geom FROM grid_cell c
        WHERE c.jurisdiction_id = :tid OR c.jurisdiction_id IN (SELECT id FROM jurisdiction WHERE parent_id = :tid)
           OR EXISTS (SELECT 1 FROM unnest(CAST(:codes AS text[])) AS p(code) WHERE c.code LIKE p.code || '%')
        ORDER BY c.code""",
        {"tid": town.id, "codes": communities["code"].astype(str).tolist()},
    )

    cells = build_grid(
        town.code,
        boundary,
        communities[["code", "geometry"]],
        streets,
        target_area_m2=target_area_m2,
        layout=layout,
        metric_epsg=epsg,
        previous=previous[["code", "geometry"]] if len(previous) else None,
    )

    comm_id = dict(zip(communities["code"].astype(str), communities["id"].astype(int)))
    prev_id = dict(zip(previous["code"].astype(str), previous["id"].astype(int)))
    new_codes = set(cells["code"])
    kept = cells[cells["code"].isin(prev_id)]
    fresh = cells[~cells["code"].isin(prev_id)]
    retired_ids = [i for c, i in prev_id.items() if c not in new_codes]
    today = dt.date.today()

    ended = dropped = 0
    if retired_ids:
        # assignments that would only start today or later never applied: they go with their cell
        ended, dropped = dbsql.end_assignments(
            conn, "a.target_type = 'cell' AND a.target_id = ANY(:ids)", {"ids": retired_ids}, today
        )
        conn.execute(sa.text("DELETE FROM grid_cell WHERE id = ANY(:ids)"), {"ids": retired_ids})
    if len(kept):
        conn.execute(
            sa.text(f"""
            UPDATE grid_cell SET geom = ST_SetSRID(ST_GeomFromWKB(:geom), {crs.STORAGE_SRID}),
                   jurisdiction_id = :jid WHERE id = :id"""),
            [
                {"id": prev_id[c], "jid": comm_id.get(cc, town.id), "geom": shapely.to_wkb(as_multi(g))}
                for c, cc, g in zip(kept["code"], kept["community_code"], kept.geometry)
            ],
        )
    if len(fresh):
        insert_frame(
            conn,
            "grid_cell",
            pd.DataFrame(
                {
                    "code": fresh["code"].astype(str).to_numpy(),
                    "jurisdiction_id": [comm_id.get(cc, town.id) for cc in fresh["community_code"]],
                    "geom": [as_multi(g) for g in fresh.geometry],
                }
            ),
            returning=None,
        )

    errors = tiling_errors_m2(cells, boundary, metric_epsg=epsg)
    summary = {
        "code": town.code,
        "name": town.name,
        "layout": cells.attrs.get("layout", layout),
        "note": cells.attrs.get("note", ""),
        "communities": len(communities),
        "cells": len(cells),
        "kept": len(kept),
        "new": len(fresh),
        "retired": len(retired_ids),
        "ended_assignments": int(ended),
        "dropped_assignments": int(dropped),
        "median_area_m2": round(float(np.median(cells["area_m2"])), 1) if len(cells) else 0.0,
        **{k: round(v, 3) for k, v in errors.items()},
    }
    LOGGER.info("grid of %s stored: %s", town.code, summary)
    return summary


def format_build_summary(summary: dict) -> list[str]:
    """Readable lines of a :func:`build_and_store_grid` summary (for the CLI)."""
    lines = []
    for t in summary["towns"]:
        lines.append(
            f"{t['code']} {t['name']}: {t['cells']} {t['layout']} cells in {t['communities']} communities "
            f"(median {t['median_area_m2']:.0f} m²); kept {t['kept']}, new {t['new']}, "
            f"retired {t['retired']} (owner assignments ended {t['ended_assignments']}, "
            f"dropped {t['dropped_assignments']})"
        )
        lines.append(
            f"  tiling errors: gap {t['gap_m2']:.3f} m², outside {t['outside_m2']:.3f} m², "
            f"overlap {t['overlap_m2']:.3f} m²"
        )
        if t["note"]:
            lines.append(f"  note: {t['note']}")
    if len(summary["towns"]) > 1:
        lines.append(
            f"total: {summary['cells']} cells; kept {summary['kept']}, new {summary['new']}, "
            f"retired {summary['retired']}"
        )
    return lines
