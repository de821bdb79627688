"""A unit's frontage (门前) from its point or footprint and its segment (pure: metres in a metric CRS).

The frontage of a unit is the stretch of its segment's frontage area facing
it, as wide as the unit:

1. the unit is projected onto the segment centerline (linear referencing): a
   footprint gives the interval of measures its outline covers, a point the
   interval of ``point_width_m`` centred on it;
2. the side of the street is the side the unit's centroid lies on;
3. neighbours on one side whose intervals overlap share the overlap at its
   middle, so that frontages meet along a perpendicular;
4. the segment area is cut between the perpendiculars at the two measures
   (a one-sided buffer of that stretch of centerline), on the unit's side;
   the carriageway (the road class's half width) and the unit's own
   footprint are taken out; what an earlier unit of the segment already holds
   is taken out too (on bends, so that no two frontages overlap).

Every function takes and returns geometries in the caller's metric CRS
(:func:`gisgrid.crs.to_metric`): lengths are metres.  Inputs are not mutated.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.ops import substring

from gisgrid.errors import InputError

LOGGER = logging.getLogger(__name__)

#: One-sided buffers reach this far from the centerline; the segment area clips them.
_REACH_M = 1000.0
_MIN_M = 0.05  # a stretch shorter than this is no frontage
_TANGENT_M = 1.0


def _half_width(road_class, widths: Mapping[str, float], default: float = 6.0) -> float:
    # as gisgrid.network.segments.half_width_m (network sits below frontage; imported there would be fine too,
    # but the rule is one line and the widths come from the same setting)
    rc = str(road_class or "")
    if rc in widths:
        return float(widths[rc])
    return float(widths.get(rc.removesuffix("_link"), default))


def nearest_segments(
    units: gpd.GeoSeries, centerlines: gpd.GeoSeries, *, max_distance_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """For each unit geometry, the index label of the nearest centerline within ``max_distance_m`` (else -1).

    Returns (labels, distances in metres; NaN where none).
    """
    if units.crs != centerlines.crs:
        raise InputError(f"units are in {units.crs}, centerlines in {centerlines.crs}: reproject one first")
    labels = np.full(len(units), -1, dtype=np.int64)
    dist = np.full(len(units), np.nan)
    if not len(units) or not len(centerlines):
        return labels, dist
    tree = shapely.STRtree(centerlines.to_numpy())
    (i_unit, i_line), d = tree.query_nearest(
        units.to_numpy(), max_distance=max_distance_m, return_distance=True, all_matches=False
    )
    labels[i_unit] = centerlines.index.to_numpy()[i_line]
    dist[i_unit] = d
    return labels, dist


def _interval(line, geom, point_width_m: float) -> tuple[float, float, float]:
    """(from_m, to_m, centre_m) of ``geom`` projected on ``line``."""
    length = line.length
    centre = float(line.project(geom.centroid))
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        coords = shapely.get_coordinates(geom.convex_hull.exterior if geom.geom_type == "Polygon" else geom.convex_hull)
        m = line.project(shapely.points(coords))
        lo, hi = float(np.min(m)), float(np.max(m))
        if hi - lo >= point_width_m / 4:
            return lo, hi, centre
    lo, hi = centre - point_width_m / 2, centre + point_width_m / 2
    if lo < 0:
        lo, hi = 0.0, min(length, point_width_m)
    if hi > length:
        lo, hi = max(0.0, length - point_width_m), length
    return lo, hi, centre


def _side(line, geom, centre: float) -> int:
    """+1 when ``geom`` lies left of ``line`` at measure ``centre``, -1 right (on the line: left)."""
    a = line.interpolate(max(0.0, centre - _TANGENT_M))
    b = line.interpolate(min(line.length, centre + _TANGENT_M))
    p = geom.centroid
    cross = (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x)
    return -1 if cross < 0 else 1


def strip(line, lo: float, hi: float, side: int):
    """The region on ``side`` of ``line`` between the perpendiculars at measures ``lo`` and ``hi``."""
    if hi - lo < _MIN_M:
        return shapely.Polygon()
    piece = substring(line, lo, hi)
    if piece.length < _MIN_M:
        return shapely.Polygon()
    return piece.buffer(side * _REACH_M, single_sided=True, cap_style="flat")


def _share_overlaps(frame: pd.DataFrame) -> pd.DataFrame:
    """Neighbours on one side of one segment split an overlap of their intervals at its middle."""
    frame = frame.sort_values("centre_m").copy()
    lo, hi = frame["from_m"].to_numpy().copy(), frame["to_m"].to_numpy().copy()
    for i in range(len(frame) - 1):  # consecutive pairs, in order along the street
        if hi[i] > lo[i + 1]:
            cut = (hi[i] + lo[i + 1]) / 2
            hi[i], lo[i + 1] = cut, cut
    frame["from_m"], frame["to_m"] = lo, np.maximum(hi, lo)
    return frame


def derive_frontages(
    units: gpd.GeoDataFrame,
    segments: gpd.GeoDataFrame,
    *,
    point_width_m: float = 12.0,
    road_half_widths_m: Mapping[str, float] | None = None,
) -> gpd.GeoDataFrame:
    """Each unit's frontage on its segment.

    Parameters
    ----------
    units : GeoDataFrame
        ``id``, ``segment_id`` and the point or footprint geometry, in a metric CRS.
    segments : GeoDataFrame
        Indexed by segment id: ``road_class``, ``area`` (the frontage area, a
        shapely geometry in the same CRS) and the centerline as geometry.
    point_width_m : float, default 12.0
        Width of frontage of a unit given as a point (metres).
    road_half_widths_m : mapping, optional
        Half carriageway width per road class (the ``road_half_widths_m``
        setting): the carriageway is nobody's frontage.

    Returns
    -------
    GeoDataFrame
        One row per unit (same order): ``id``, ``segment_id``, ``side`` (+1
        left, -1 right of the centerline's direction), ``from_m``, ``to_m``
        (metres along the centerline) and the frontage (MultiPolygon, empty
        when the unit has no segment or nothing of the area faces it), in the
        units' CRS.
    """
    if units.crs is None or units.crs != segments.crs:
        raise InputError(f"units ({units.crs}) and segments ({segments.crs}) must share one metric CRS")
    if units.crs.is_geographic:
        raise InputError("frontages are derived in a metric CRS, not in degrees: use gisgrid.crs.to_metric")
    if not 0 < point_width_m < 500:
        raise InputError(f"point_width_m must be between 0 and 500 m, not {point_width_m!r}")
    widths = dict(road_half_widths_m or {})
    rows = []
    geoms = units.geometry.to_numpy()
    for pos, (uid, sid) in enumerate(zip(units["id"].to_numpy(), units["segment_id"].to_numpy())):
        if pd.isna(sid) or sid not in segments.index or geoms[pos] is None or geoms[pos].is_empty:
            rows.append((uid, sid, 0, np.nan, np.nan, np.nan, pos))
            continue
        line = segments.geometry.loc[sid]
        lo, hi, centre = _interval(line, geoms[pos], point_width_m)
        rows.append((uid, int(sid), _side(line, geoms[pos], centre), lo, hi, centre, pos))
    table = pd.DataFrame(rows, columns=["id", "segment_id", "side", "from_m", "to_m", "centre_m", "pos"])
    placed = table[table["side"] != 0]
    if len(placed):
        placed = pd.concat([_share_overlaps(g) for _k, g in placed.groupby(["segment_id", "side"], sort=False)])
    out = np.empty(len(table), dtype=object)
    out[:] = None
    # per segment: each unit's strip cut from the area, minus what earlier units hold (loop: a few units per segment)
    for sid, group in placed.groupby("segment_id", sort=False):
        line = segments.geometry.loc[sid]
        area = segments["area"].loc[sid]
        if area is None or area.is_empty:
            continue
        free = area.difference(line.buffer(_half_width(segments["road_class"].loc[sid], widths), cap_style="flat"))
        for r in group.sort_values("centre_m").itertuples():
            piece = free.intersection(strip(line, r.from_m, r.to_m, int(r.side)))
            unit = geoms[r.pos]
            if unit.geom_type in ("Polygon", "MultiPolygon"):
                piece = piece.difference(unit)
            piece = _polygonal(piece)
            out[r.pos] = piece
            if not piece.is_empty:
                free = free.difference(piece)
    table = table.set_index("pos").sort_index()
    table.loc[placed["pos"].to_numpy(), ["from_m", "to_m"]] = placed.set_index("pos")[["from_m", "to_m"]]
    frontage = [g if g is not None else shapely.MultiPolygon() for g in out]
    return gpd.GeoDataFrame(
        table[["id", "segment_id", "side", "from_m", "to_m"]].reset_index(drop=True),
        geometry=gpd.GeoSeries(frontage, crs=units.crs),
    )


def _polygonal(geom):
    """The polygon parts of ``geom`` as one MultiPolygon (intersections may add lines and points)."""
    if geom.is_empty:
        return shapely.MultiPolygon()
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area > 1e-6]
    if not parts:
        parts = [q for p in shapely.get_parts(geom) if p.geom_type == "MultiPolygon" for q in p.geoms]
    return shapely.MultiPolygon(parts)


def uncovered_stretches(
    segments: gpd.GeoDataFrame,
    frontages: gpd.GeoDataFrame,
    *,
    min_length_m: float,
    road_half_widths_m: Mapping[str, float] | None = None,
) -> gpd.GeoDataFrame:
    """Stretches of each segment's frontage that no unit answers for, ``min_length_m`` long or more.

    ``segments`` as for :func:`derive_frontages`; ``frontages`` its result
    (``segment_id``, ``side``, ``from_m``, ``to_m``).  Returns ``segment_id``,
    ``side``, ``from_m``, ``to_m``, ``length_m`` and the piece of the area.
    """
    widths = dict(road_half_widths_m or {})
    rows, geoms = [], []
    for sid, line in segments.geometry.items():
        area = segments["area"].loc[sid]
        if area is None or area.is_empty:
            continue
        free = area.difference(line.buffer(_half_width(segments["road_class"].loc[sid], widths), cap_style="flat"))
        mine = frontages[frontages["segment_id"] == sid]
        for side in (1, -1):
            spans = mine[mine["side"] == side][["from_m", "to_m"]].dropna().sort_values("from_m").to_numpy()
            at = 0.0
            gaps = []
            for lo, hi in spans:
                if lo - at >= min_length_m:
                    gaps.append((at, lo))
                at = max(at, hi)
            if line.length - at >= min_length_m:
                gaps.append((at, line.length))
            for lo, hi in gaps:
                piece = _polygonal(free.intersection(strip(line, lo, hi, side)))
                if piece.is_empty:
                    continue
                rows.append((sid, side, lo, hi, hi - lo))
                geoms.append(piece)
    return gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=["segment_id", "side", "from_m", "to_m", "length_m"]),
        geometry=gpd.GeoSeries(geoms, crs=segments.crs),
    )


def overlapping_pairs(frontages: gpd.GeoSeries, ids, *, min_m2: float = 0.5) -> pd.DataFrame:
    """Pairs of units whose frontages overlap by ``min_m2`` or more (metric CRS): ``unit_a``, ``unit_b``, ``area_m2``."""
    geoms = frontages.to_numpy()
    ids = np.asarray(ids)
    ok = np.array([g is not None and not g.is_empty for g in geoms], dtype=bool)
    tree = shapely.STRtree(geoms[ok])
    idx = np.flatnonzero(ok)
    left, right = tree.query(geoms[ok], predicate="intersects")
    keep = left < right
    a, b = idx[left[keep]], idx[right[keep]]
    areas = shapely.area(shapely.intersection(geoms[a], geoms[b])) if len(a) else np.array([])
    big = areas >= min_m2
    return pd.DataFrame({"unit_a": ids[a[big]], "unit_b": ids[b[big]], "area_m2": np.round(areas[big], 1)})


def frontage_spans(frontages: gpd.GeoSeries, segment_ids, segments: gpd.GeoDataFrame) -> pd.DataFrame:
    """Where stored frontages lie along their segments: ``segment_id``, ``side``, ``from_m``, ``to_m``.

    Read back from the polygons (their vertices projected on the centerline),
    so that a frontage a planner drew counts as drawn.  Metric CRS, as
    ``segments``; an empty frontage gives no row.
    """
    rows = []
    for geom, sid in zip(frontages.to_numpy(), np.asarray(segment_ids)):
        if geom is None or geom.is_empty or sid not in segments.index:
            continue
        line = segments.geometry.loc[sid]
        m = line.project(shapely.points(shapely.get_coordinates(geom)))
        centre = float(line.project(geom.centroid))
        rows.append((sid, _side(line, geom, centre), float(m.min()), float(m.max())))
    return pd.DataFrame(rows, columns=["segment_id", "side", "from_m", "to_m"])
