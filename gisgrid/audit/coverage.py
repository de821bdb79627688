"""Coverage audit: where nobody manages (没人管) and where several bodies do (多头管).

:func:`audit_coverage` checks a jurisdiction's unit-grid cells and segment
frontage areas, and their owners, and returns an :class:`AuditResult` with one
table / map layer per problem type:

``gaps``
    parts of the jurisdiction covered by no cell (``layer="cell"``) and, when
    the expected ``frontage`` is given, parts of it covered by no segment area
    (``layer="frontage"``).
``overlaps``
    areas claimed by two or more cells, or two or more segment areas, each
    naming every unit involved and its current owners.  Intersecting pairs come
    from an STRtree self-join; touching pieces of several pairs are merged
    into one overlap region.
``slivers``
    cells, gap pieces and overlap pieces (not segment areas: frontage strips
    are thin by design) smaller than
    ``sliver_area_m2`` or thinner than ``sliver_thinness`` (Polsby-Popper
    ratio 4πA/P², 1 for a circle, ≈0.785 for a square, →0 for a strip).
``vacant``
    cells and segments with no owner on ``today``: the one "has no owner" rule
    of :mod:`gisgrid.ownership.history` (a 段长 of the segment's own, a
    网格员/网格长 of the cell's own), as the manager's gap layer uses it.
``expiring``
    current assignments of cells and segments that end within ``expiry_days``.
``over_limit``
    people who own more than ``max_units_per_owner`` cells and segments.
``reports``
    reports of the last ``report_days`` days routed ``unassigned`` or located in
    no cell and no segment area: evidence of a gap.

An assignment is current on ``today`` when ``valid_from <= today < valid_to``
(``valid_to`` empty while open): :func:`gisgrid.ownership.history.valid_mask`.

Geometry differences narrower than ``tolerance_m`` (1 cm by default: what the
storage round trip and the 1 mm snap-rounding of :mod:`gisgrid.grid.build` leave along
borders) are noise, not gaps or overlaps.  All areas are m² and all lengths
metres, computed in the metric CRS (:func:`gisgrid.crs.metric_crs_for` the
jurisdiction unless ``metric_epsg`` is given); inputs and layers are EPSG:4326.
Nothing here touches a database or Flask.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from gisgrid.crs import STORAGE_SRID, metric_crs_for, reproject
from gisgrid.errors import InputError
from gisgrid.io.order import sort_frame
from gisgrid.ownership.history import owned_units, valid_mask

LOGGER = logging.getLogger(__name__)

#: Problem types, in the order of :meth:`AuditResult.to_tables` and :meth:`AuditResult.layers`.
PROBLEMS = ("gaps", "overlaps", "slivers", "vacant", "expiring", "over_limit", "reports")
#: Layers with geometry (the others are tables only).
GEOMETRY_PROBLEMS = ("gaps", "overlaps", "slivers", "vacant", "reports")

_UNIT_TYPES = ("cell", "segment")
_EMPTY_M2 = 1e-6

_COLUMNS = {
    "gaps": ["layer", "area_m2", "thinness", "sliver"],
    "overlaps": ["layer", "n_units", "units", "unit_ids", "owners", "area_m2", "thinness", "sliver"],
    "slivers": ["kind", "unit", "unit_id", "owners", "area_m2", "thinness"],
    "vacant": ["layer", "unit_id", "unit", "area_m2"],
    "expiring": ["layer", "unit_id", "unit", "role", "owner_name", "person_id", "valid_from", "valid_to", "days_left"],
    "over_limit": ["owner_key", "owner_name", "person_id", "n_units", "units"],
    "reports": ["report_id", "reported_at", "rule", "reason"],
}


@dataclass
class AuditResult:
    """What :func:`audit_coverage` found.

    Attributes
    ----------
    gaps, overlaps, slivers, vacant, reports : GeoDataFrame
        EPSG:4326 geometries with the columns of :data:`_COLUMNS`; areas in m².
    expiring, over_limit : DataFrame
        Owner tables.
    metric_epsg : int
        The CRS the areas were measured in.
    today : datetime.date
        The day the owners were evaluated on.
    params : dict
        The limits used.
    """

    gaps: gpd.GeoDataFrame
    overlaps: gpd.GeoDataFrame
    slivers: gpd.GeoDataFrame
    vacant: gpd.GeoDataFrame
    expiring: pd.DataFrame
    over_limit: pd.DataFrame
    reports: gpd.GeoDataFrame
    metric_epsg: int
    today: dt.date
    params: dict = field(default_factory=dict)

    def summary(self) -> dict[str, float | int]:
        """Counts per problem type and total areas (m², rounded to 0.1 m²)."""
        out: dict[str, float | int] = {}
        for name in PROBLEMS:
            out[f"{name}_count"] = int(len(getattr(self, name)))
        for name in ("gaps", "overlaps"):
            frame = getattr(self, name)
            for layer in ("cell", "segment", "frontage"):
                sub = frame[frame["layer"] == layer]
                if len(sub) or (name, layer) in {("gaps", "cell"), ("overlaps", "cell"), ("overlaps", "segment")}:
                    out[f"{name}_{layer}_m2"] = round(float(sub["area_m2"].sum()), 1)
        out["slivers_m2"] = round(float(self.slivers["area_m2"].sum()), 1)
        return out

    @property
    def clean(self) -> bool:
        """True when no gap, overlap or sliver was found (owner problems aside)."""
        return not (len(self.gaps) or len(self.overlaps) or len(self.slivers))

    def to_tables(self) -> dict[str, pd.DataFrame]:
        """One plain DataFrame per problem type (and ``summary``), for XLSX export.

        Geometries are replaced by ``lon``/``lat`` (EPSG:4326) of a point inside
        each, areas are rounded to 0.1 m², list columns joined with ", ".
        """
        tables: dict[str, pd.DataFrame] = {
            "summary": pd.DataFrame([{"item": k, "value": v} for k, v in self.summary().items()])
        }
        for name in PROBLEMS:
            frame = getattr(self, name)
            table = pd.DataFrame(frame.drop(columns="geometry", errors="ignore")).copy()
            if isinstance(frame, gpd.GeoDataFrame) and len(frame):
                where = frame.geometry.representative_point()
                table["lon"] = where.x.round(7).to_numpy()
                table["lat"] = where.y.round(7).to_numpy()
            for col in ("area_m2",):
                if col in table:
                    table[col] = table[col].astype(float).round(1)
            if "thinness" in table:
                table["thinness"] = table["thinness"].astype(float).round(3)
            for col in table.columns:
                if table[col].dtype == object and table[col].map(lambda v: isinstance(v, (list, tuple))).any():
                    table[col] = table[col].map(lambda v: ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
            tables[name] = table.reset_index(drop=True)
        return tables

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """One GeoDataFrame (EPSG:4326) per problem type with geometry, for map layers and GeoJSON."""
        out = {}
        for name in GEOMETRY_PROBLEMS:
            frame = getattr(self, name).copy()
            for col in frame.columns:
                if frame[col].dtype == object and frame[col].map(lambda v: isinstance(v, (list, tuple))).any():
                    frame[col] = frame[col].map(lambda v: ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
            out[name] = frame
        return out


# --- public API -------------------------------------------------------------------
def audit_coverage(
    jurisdiction: BaseGeometry,
    cells: gpd.GeoDataFrame,
    segments: gpd.GeoDataFrame | None = None,
    *,
    owners: pd.DataFrame | None = None,
    reports: gpd.GeoDataFrame | None = None,
    frontage: BaseGeometry | None = None,
    metric_epsg: int | None = None,
    sliver_area_m2: float = 50.0,
    sliver_thinness: float = 0.1,
    max_units_per_owner: int = 20,
    expiry_days: int = 30,
    report_days: int = 30,
    today: dt.date | None = None,
    tolerance_m: float = 0.01,
) -> AuditResult:
    """Find gaps, overlaps, slivers and owner problems of a jurisdiction's grid and segments.

    Parameters
    ----------
    jurisdiction : shapely Polygon or MultiPolygon
        The area the cells must tile, EPSG:4326.
    cells : GeoDataFrame
        Unit-grid cells: ``code`` (str), optional ``id`` (the ``target_id`` of
        their owner assignments; default the index) and polygon geometry in EPSG:4326.
    segments : GeoDataFrame, optional
        Segments: ``id``, ``name`` and their frontage *area* as the active
        geometry (polygons, EPSG:4326).  Rows with an empty area are skipped.
    owners : DataFrame, optional
        Owner assignments: ``target_type`` (``"cell"`` or ``"segment"``; others
        are ignored), ``target_id``, ``role``, ``owner_name``, ``person_id``,
        ``valid_from``, ``valid_to`` (exclusive; empty while open).  Without it
        the owner checks are skipped (``vacant`` etc. stay empty).
    reports : GeoDataFrame, optional
        Reports: ``id``, point geometry in EPSG:4326, ``reported_at``
        (date/time) and ``rule`` (the routing rule, e.g. ``"unassigned"``).
    frontage : shapely geometry, optional
        The frontage that segment areas should cover (e.g. the union of street
        buffers), EPSG:4326.  Its parts in no segment area are ``frontage`` gaps.
    metric_epsg : int, optional
        Projected CRS of all measurements (default: from the jurisdiction's centroid).
    sliver_area_m2 : float, default 50.0
        Pieces and units smaller than this (m²) are slivers.
    sliver_thinness : float, default 0.1
        Pieces and units with a Polsby-Popper ratio 4πA/P² below this are slivers.
    max_units_per_owner : int, default 20
        A person owning more current cells and segments than this is listed.
    expiry_days : int, default 30
        Current assignments ending within this many days are listed.
    report_days : int, default 30
        Reports of the last ``report_days`` days (up to ``today``) are checked.
    today : datetime.date, optional
        Day of the owner evaluation (default: today).
    tolerance_m : float, default 0.01
        Gap and overlap pieces narrower than this (metres) are numerical noise.

    Returns
    -------
    AuditResult

    Raises
    ------
    InputError
        On a missing or non-polygonal jurisdiction, frames in another CRS than
        EPSG:4326, missing columns or non-positive limits (all problems at once).
    """
    today = today or dt.date.today()
    _check(
        jurisdiction,
        cells,
        segments,
        owners,
        reports,
        frontage,
        sliver_area_m2=sliver_area_m2,
        sliver_thinness=sliver_thinness,
        max_units_per_owner=max_units_per_owner,
        expiry_days=expiry_days,
        report_days=report_days,
        tolerance_m=tolerance_m,
    )
    if metric_epsg is None:
        centre = jurisdiction.centroid
        metric_epsg = metric_crs_for(centre.x, centre.y)
    params = {
        "sliver_area_m2": sliver_area_m2,
        "sliver_thinness": sliver_thinness,
        "max_units_per_owner": max_units_per_owner,
        "expiry_days": expiry_days,
        "report_days": report_days,
        "tolerance_m": tolerance_m,
    }

    units = _units(cells, segments, metric_epsg)
    current = _current_owners(owners, today)
    owner_text = _owner_text(current)

    gap_parts, gap_layer = [], []
    juris_m = reproject(jurisdiction, STORAGE_SRID, metric_epsg)
    cell_geoms = units["geometry"][units["layer"] == "cell"]
    seg_geoms = units["geometry"][units["layer"] == "segment"]
    pieces = _pieces(shapely.difference(juris_m, shapely.union_all(cell_geoms)), tolerance_m)
    gap_parts.append(pieces)
    gap_layer += ["cell"] * len(pieces)
    if frontage is not None:
        pieces = _pieces(
            shapely.difference(reproject(frontage, STORAGE_SRID, metric_epsg), shapely.union_all(seg_geoms)),
            tolerance_m,
        )
        gap_parts.append(pieces)
        gap_layer += ["frontage"] * len(pieces)
    gap_geoms = np.concatenate(gap_parts) if gap_parts else np.empty(0, dtype=object)
    gap_pp = _thinness(gap_geoms)
    gaps = pd.DataFrame({"layer": gap_layer, "area_m2": shapely.area(gap_geoms), "thinness": gap_pp})
    gaps["sliver"] = (gaps["area_m2"] < sliver_area_m2) | (gaps["thinness"] < sliver_thinness)

    overlap_rows = []
    for layer in _UNIT_TYPES:
        sel = np.flatnonzero(units["layer"] == layer)
        overlap_rows.append(_overlaps(units, sel, layer, owner_text, tolerance_m))
    overlaps = pd.concat(overlap_rows, ignore_index=True)
    overlap_geoms = overlaps.pop("geometry").to_numpy() if len(overlaps) else np.empty(0, dtype=object)
    overlaps["thinness"] = _thinness(overlap_geoms)
    overlaps["sliver"] = (overlaps["area_m2"] < sliver_area_m2) | (overlaps["thinness"] < sliver_thinness)

    unit_area = shapely.area(units["geometry"])
    unit_pp = _thinness(units["geometry"])
    # segment areas are frontage strips by design: only cells are judged by their shape
    thin_unit = (units["layer"] == "cell") & ((unit_area < sliver_area_m2) | (unit_pp < sliver_thinness))
    unit_keys = [(layer, _norm_id(i)) for layer, i in zip(units["layer"], units["id"])]
    slivers = pd.concat(
        [
            pd.DataFrame(
                {
                    "kind": units["layer"][thin_unit],
                    "unit": units["name"][thin_unit],
                    "unit_id": units["id"][thin_unit],
                    "owners": [owner_text.get(k, "") for k, t in zip(unit_keys, thin_unit) if t],
                    "area_m2": unit_area[thin_unit],
                    "thinness": unit_pp[thin_unit],
                    "geometry": units["geometry"][thin_unit],
                }
            ),
            pd.DataFrame(
                {
                    "kind": "gap",
                    "unit": gaps["layer"][gaps["sliver"]],
                    "unit_id": None,
                    "owners": "",
                    "area_m2": gaps["area_m2"][gaps["sliver"]],
                    "thinness": gaps["thinness"][gaps["sliver"]],
                    "geometry": gap_geoms[gaps["sliver"].to_numpy()],
                }
            ),
            pd.DataFrame(
                {
                    "kind": "overlap",
                    "unit": overlaps["units"][overlaps["sliver"]],
                    "unit_id": None,
                    "owners": overlaps["owners"][overlaps["sliver"]],
                    "area_m2": overlaps["area_m2"][overlaps["sliver"]],
                    "thinness": overlaps["thinness"][overlaps["sliver"]],
                    "geometry": overlap_geoms[overlaps["sliver"].to_numpy()],
                }
            ),
        ],
        ignore_index=True,
    )
    slivers_geoms = slivers.pop("geometry").to_numpy()

    vacant, expiring, over_limit = _owner_problems(
        units, current, owners is not None, today, expiry_days=expiry_days, max_units=max_units_per_owner
    )
    vacant_geoms = vacant.pop("geometry").to_numpy()
    report_frame, report_geoms = _report_evidence(reports, units, metric_epsg, today, report_days)

    def layer(frame: pd.DataFrame, geoms: np.ndarray, name: str, metric: bool = True) -> gpd.GeoDataFrame:
        geoms = np.asarray(geoms, dtype=object)
        if metric and len(geoms):
            geoms = reproject(geoms, metric_epsg, STORAGE_SRID)
        return gpd.GeoDataFrame(
            frame.reset_index(drop=True)[_COLUMNS[name]], geometry=gpd.GeoSeries(geoms, crs=STORAGE_SRID)
        )

    result = AuditResult(
        gaps=layer(gaps, gap_geoms, "gaps"),
        overlaps=layer(overlaps, overlap_geoms, "overlaps"),
        slivers=layer(slivers, slivers_geoms, "slivers"),
        vacant=layer(vacant, vacant_geoms, "vacant"),
        expiring=expiring[_COLUMNS["expiring"]].reset_index(drop=True),
        over_limit=over_limit[_COLUMNS["over_limit"]].reset_index(drop=True),
        reports=layer(report_frame, report_geoms, "reports", metric=False),
        metric_epsg=int(metric_epsg),
        today=today,
        params=params,
    )
    LOGGER.info("audit: %s", result.summary())
    return result


# --- validation -------------------------------------------------------------------
def _check(jurisdiction, cells, segments, owners, reports, frontage, **limits) -> None:
    problems: list[str] = []
    if (
        not isinstance(jurisdiction, BaseGeometry)
        or jurisdiction.geom_type not in ("Polygon", "MultiPolygon")
        or jurisdiction.is_empty
    ):
        problems.append("jurisdiction must be a non-empty shapely Polygon or MultiPolygon in EPSG:4326")
    if frontage is not None and (not isinstance(frontage, BaseGeometry) or frontage.is_empty):
        problems.append("frontage must be a non-empty shapely polygon in EPSG:4326")
    for name, frame, columns in (
        ("cells", cells, ("code",)),
        ("segments", segments, ("id",)),
        ("reports", reports, ("id", "reported_at", "rule")),
    ):
        if frame is None and name != "cells":
            continue
        if not isinstance(frame, gpd.GeoDataFrame):
            problems.append(f"{name} must be a GeoDataFrame")
            continue
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            problems.append(f"{name} lack column(s) {missing}")
        if len(frame) and (frame.crs is None or frame.crs.to_epsg() not in (STORAGE_SRID, 4490)):
            problems.append(f"{name} must be in EPSG:4326, not {frame.crs!r}")
    if owners is not None:
        if not isinstance(owners, pd.DataFrame):
            problems.append("owners must be a DataFrame")
        else:
            missing = [c for c in ("target_type", "target_id", "valid_from") if c not in owners.columns]
            if missing:
                problems.append(f"owners lack column(s) {missing}")
    for key in ("sliver_area_m2", "tolerance_m"):
        if not (limits[key] >= 0 and math.isfinite(limits[key])):
            problems.append(f"{key} must be a non-negative number, got {limits[key]!r}")
    if not (0 <= limits["sliver_thinness"] <= 1):
        problems.append(f"sliver_thinness must be in [0, 1], got {limits['sliver_thinness']!r}")
    for key in ("max_units_per_owner", "expiry_days", "report_days"):
        if not (isinstance(limits[key], (int, np.integer)) and limits[key] >= 0):
            problems.append(f"{key} must be a non-negative integer, got {limits[key]!r}")
    if problems:
        raise InputError("; ".join(problems))


# --- helpers ----------------------------------------------------------------------


def _units(cells: gpd.GeoDataFrame, segments: gpd.GeoDataFrame | None, epsg: int) -> dict[str, np.ndarray]:
    """Cells and segment areas as arrays in the metric CRS: layer, id, name, geometry."""
    layers, ids, names, geoms = [], [], [], []
    for layer, frame, label in (("cell", cells, "code"), ("segment", segments, "name")):
        if frame is None or len(frame) == 0:
            continue
        frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
        metric = frame.geometry.to_crs(epsg).to_numpy()
        ident = frame["id"].to_numpy() if "id" in frame.columns else frame.index.to_numpy()
        name = frame[label].astype(str).to_numpy() if label in frame.columns else ident.astype(str)
        layers.append(np.full(len(frame), layer, dtype=object))
        ids.append(ident.astype(object))
        names.append(name.astype(object))
        geoms.append(metric)
    if not layers:
        return {k: np.empty(0, dtype=object) for k in ("layer", "id", "name", "geometry")}
    return {
        "layer": np.concatenate(layers),
        "id": np.concatenate(ids),
        "name": np.concatenate(names),
        "geometry": np.concatenate(geoms),
    }


def _pieces(geom, tolerance_m: float) -> np.ndarray:
    """Polygon parts of ``geom`` that are not noise narrower than ``tolerance_m``."""
    parts = shapely.get_parts(shapely.get_parts(np.atleast_1d(geom)))
    parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
    parts = parts[shapely.area(parts) > _EMPTY_M2]
    if tolerance_m > 0 and len(parts):
        parts = parts[~shapely.is_empty(shapely.buffer(parts, -tolerance_m / 2.0, quad_segs=2))]
    return parts


def _thinness(geoms: np.ndarray) -> np.ndarray:
    """Polsby-Popper ratio 4πA/P² (1 for a circle; 0 for an empty geometry)."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return np.empty(0)
    perimeter = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = np.where(perimeter > 0, 4.0 * math.pi * shapely.area(geoms) / perimeter**2, 0.0)
    return pp


def _overlap_pairs(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``i < j`` whose interiors intersect (prepared STRtree predicates, no touch-only pairs)."""
    tree = shapely.STRtree(geoms)
    a = tree.query(geoms, predicate="overlaps")
    b = tree.query(geoms, predicate="contains")
    pairs = np.concatenate([a, b], axis=1)
    left, right = np.minimum(pairs[0], pairs[1]), np.maximum(pairs[0], pairs[1])
    keep = left < right
    unique = np.unique(np.stack([left[keep], right[keep]], axis=1), axis=0)
    return unique[:, 0], unique[:, 1]


def _overlaps(units: dict, sel: np.ndarray, layer: str, owner_text: dict, tolerance_m: float) -> pd.DataFrame:
    """Overlap regions among the units ``sel`` of one layer, each naming every unit in it."""
    columns = ["layer", "n_units", "units", "unit_ids", "owners", "area_m2", "geometry"]
    if len(sel) < 2:
        return pd.DataFrame({c: [] for c in columns})
    geoms = units["geometry"][sel]
    left, right = _overlap_pairs(geoms)
    inter = shapely.intersection(geoms[left], geoms[right])
    parts, idx = shapely.get_parts(inter, return_index=True)
    polygonal = np.isin(shapely.get_type_id(parts), (3, 6)) & (shapely.area(parts) > _EMPTY_M2)
    parts, idx = parts[polygonal], idx[polygonal]
    if tolerance_m > 0 and len(parts):
        real = ~shapely.is_empty(shapely.buffer(parts, -tolerance_m / 2.0, quad_segs=2))
        parts, idx = parts[real], idx[real]
    if len(parts) == 0:
        return pd.DataFrame({c: [] for c in columns})
    regions = shapely.get_parts(shapely.union_all(parts))
    regions = regions[shapely.area(regions) > _EMPTY_M2]
    piece_idx, region_idx = shapely.STRtree(regions).query(shapely.point_on_surface(parts), predicate="within")
    members: dict[int, set[int]] = {}
    for p, r in zip(piece_idx.tolist(), region_idx.tolist()):
        members.setdefault(r, set()).update((int(sel[left[idx[p]]]), int(sel[right[idx[p]]])))
    rows = []
    for r in sorted(members):
        who = sorted(members[r], key=lambda u: str(units["name"][u]))
        rows.append(
            {
                "layer": layer,
                "n_units": len(who),
                "units": [str(units["name"][u]) for u in who],
                "unit_ids": [units["id"][u] for u in who],
                "owners": "; ".join(
                    f"{units['name'][u]}: {owner_text.get((layer, _norm_id(units['id'][u])), '—')}" for u in who
                ),
                "area_m2": float(shapely.area(regions[r])),
                "geometry": regions[r],
            }
        )
    LOGGER.debug("%s overlaps: %d pair(s), %d region(s)", layer, len(left), len(rows))
    return pd.DataFrame(rows, columns=columns)


def _days(values) -> pd.Series:
    return (
        pd.to_datetime(pd.Series(values), errors="coerce").dt.tz_localize(None).dt.normalize()
        if len(values)
        else pd.Series([], dtype="datetime64[ns]")
    )


def _current_owners(owners: pd.DataFrame | None, today: dt.date) -> pd.DataFrame:
    """Assignments of cells and segments current on ``today``, with a ``key`` per unit."""
    cols = ["target_type", "target_id", "role", "owner_name", "person_id", "valid_from", "valid_to"]
    if owners is None or len(owners) == 0:
        return pd.DataFrame({c: [] for c in cols + ["owner_key"]})
    frame = owners.copy()
    for col in cols:
        if col not in frame.columns:
            frame[col] = None
    frame = frame[frame["target_type"].isin(_UNIT_TYPES)].copy()
    frame["valid_from"] = _days(frame["valid_from"]).to_numpy()
    frame["valid_to"] = _days(frame["valid_to"]).to_numpy()
    frame = frame[valid_mask(frame["valid_from"], frame["valid_to"], today)].copy()
    person = frame["person_id"].astype(object)
    frame["owner_key"] = np.where(
        person.notna(), "person:" + person.astype(str), "name:" + frame["owner_name"].fillna("?").astype(str)
    )
    return frame


def _owner_text(current: pd.DataFrame) -> dict[tuple[str, object], str]:
    """'name (role), name (role)' of the current owners of each (layer, unit id)."""
    if len(current) == 0:
        return {}
    label = current["owner_name"].fillna("?").astype(str) + np.where(
        current["role"].notna(), " (" + current["role"].astype(str) + ")", ""
    )
    out: dict[tuple[str, object], list[str]] = {}
    for t, i, text in zip(current["target_type"], current["target_id"], label):
        out.setdefault((t, _norm_id(i)), []).append(text)
    return {k: ", ".join(v) for k, v in out.items()}


def _norm_id(value):
    """Ids compare as int when integral (1 == 1.0 == np.int64(1)), else as given."""
    try:
        as_float = float(value)
        if as_float.is_integer():
            return int(as_float)
    except (TypeError, ValueError):
        pass
    return value


def _owner_problems(
    units: dict, current: pd.DataFrame, have_owners: bool, today: dt.date, *, expiry_days: int, max_units: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    vacant_cols = ["layer", "unit_id", "unit", "area_m2", "geometry"]
    if not have_owners:
        return (
            pd.DataFrame({c: [] for c in vacant_cols}),
            pd.DataFrame({c: [] for c in _COLUMNS["expiring"]}),
            pd.DataFrame({c: [] for c in _COLUMNS["over_limit"]}),
        )
    owned = owned_units(current, today)
    no_owner = np.array(
        [(layer, _norm_id(i)) not in owned for layer, i in zip(units["layer"], units["id"])], dtype=bool
    )
    vacant = pd.DataFrame(
        {
            "layer": units["layer"][no_owner],
            "unit_id": units["id"][no_owner],
            "unit": units["name"][no_owner],
            "area_m2": shapely.area(units["geometry"][no_owner]),
            "geometry": units["geometry"][no_owner],
        }
    )

    name_of = {(layer, _norm_id(i)): n for layer, i, n in zip(units["layer"], units["id"], units["name"])}
    cur = current.copy()
    cur["unit"] = [name_of.get((t, _norm_id(i))) for t, i in zip(cur["target_type"], cur["target_id"])]
    cur = cur[cur["unit"].notna()]  # assignments of units outside the audit are not counted
    days_left = (cur["valid_to"] - pd.Timestamp(today)).dt.days
    soon = days_left.notna() & (days_left <= expiry_days)
    expiring = cur[soon].copy()
    expiring["layer"] = expiring["target_type"]
    expiring["unit_id"] = expiring["target_id"]
    expiring["days_left"] = days_left[soon].astype(int)
    expiring["valid_from"] = expiring["valid_from"].dt.date
    expiring["valid_to"] = expiring["valid_to"].dt.date
    expiring = sort_frame(expiring, ["days_left", "layer", "unit"], natural=["unit"])

    units_of = cur.drop_duplicates(["owner_key", "target_type", "target_id"])
    grouped = units_of.groupby("owner_key", sort=True)
    counts = grouped.size()
    over = counts[counts > max_units].index
    over_limit = (
        pd.DataFrame(
            {
                "owner_key": over,
                "owner_name": [grouped.get_group(k)["owner_name"].iloc[0] for k in over],
                "person_id": [grouped.get_group(k)["person_id"].iloc[0] for k in over],
                "n_units": [int(counts[k]) for k in over],
                "units": [sorted(map(str, grouped.get_group(k)["unit"])) for k in over],
            }
        ).sort_values("n_units", ascending=False)
        if len(over)
        else pd.DataFrame({c: [] for c in _COLUMNS["over_limit"]})
    )
    return vacant, expiring, over_limit


def _report_evidence(
    reports: gpd.GeoDataFrame | None, units: dict, epsg: int, today: dt.date, report_days: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Recent reports routed ``unassigned`` or lying in no cell and no segment area."""
    empty = pd.DataFrame({c: [] for c in _COLUMNS["reports"]})
    if reports is None or len(reports) == 0:
        return empty, np.empty(0, dtype=object)
    when = _days(reports["reported_at"]).to_numpy()
    day = pd.Timestamp(today)
    recent = (when <= day) & (when > day - pd.Timedelta(days=report_days))
    frame = reports[recent & reports.geometry.notna().to_numpy()]
    if len(frame) == 0:
        return empty, np.empty(0, dtype=object)
    points = frame.geometry.to_crs(epsg).to_numpy()
    inside = np.zeros(len(frame), dtype=bool)
    if len(units["geometry"]):
        hit, _ = shapely.STRtree(units["geometry"]).query(points, predicate="intersects")
        inside[hit] = True
    unassigned = (frame["rule"].astype(str) == "unassigned").to_numpy()
    reason = np.where(
        unassigned & ~inside,
        "unassigned; in no cell or segment area",
        np.where(unassigned, "unassigned", "in no cell or segment area"),
    )
    keep = unassigned | ~inside
    out = pd.DataFrame(
        {
            "report_id": frame["id"].to_numpy()[keep],
            "reported_at": frame["reported_at"].to_numpy()[keep],
            "rule": frame["rule"].to_numpy()[keep],
            "reason": reason[keep],
        }
    )
    return out, frame.geometry.to_numpy()[keep]
