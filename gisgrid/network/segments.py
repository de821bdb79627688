"""Street centerlines → segments (段) → non-overlapping frontage areas.

Every metre of street gets exactly one segment chief (段长), and every point of
frontage (门前三包 strip) exactly one segment.  :func:`build_segments` turns a
street network as it comes from OSM or a survey (ways not split at
intersections, several ways sharing one name) into:

1. *pieces*: the network noded at every intersection, each piece kept with the
   street it came from;
2. *segments*: consecutive pieces of one street merged across joints where no
   other street meets them, then cut into equal parts no longer than
   ``max_length_m``;
3. *areas*: each segment's frontage polygon — the points within its reach
   (half the carriageway width of its road class plus the frontage depth) of
   its centerline, with contested space split by a Voronoi partition of points
   sampled along all centerlines, so that areas never overlap and every point
   within reach of some centerline lies in exactly one area.

All distances are metres, measured in the deployment's metric CRS
(:func:`gisgrid.crs.metric_crs_for`); inputs and outputs are EPSG:4326.
Nothing here touches a database or Flask.
"""

from __future__ import annotations

import logging
import math
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.errors import GEOSException
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from gisgrid.config import DEFAULT_FRONTAGE_DEPTH_M, DEFAULT_ROAD_WIDTHS_M
from gisgrid.crs import GEOGRAPHIC_SAME_AS_STORAGE, STORAGE_SRID, metric_crs_for, parse_crs
from gisgrid.errors import CRSError, InputError
from gisgrid.network.stubs import absorb_short

LOGGER = logging.getLogger(__name__)

#: Output columns of :func:`build_segments`, in order (``geometry`` is the centerline).
SEGMENT_COLUMNS = [
    "street_id",
    "seq",
    "name",
    "street_name",
    "road_class",
    "from_name",
    "to_name",
    "length_m",
    "geometry",
    "area",
]

# Numerical tolerances of the geometry (metres), not business settings: pieces
# shorter than _MIN_PIECE_M are noding debris; _SNAP_M matches points that are
# the same node up to floating-point error; gaps smaller than _MIN_GAP_M2 are
# rounding slivers; detached parts of an area under _MAX_STRAY_M2 are crumbs
# handed to the neighbour around them.
_MIN_PIECE_M = 1e-3
_SNAP_M = 1e-3
_MIN_GAP_M2 = 1e-6
_MAX_STRAY_M2 = 1.0

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_GEOM_TYPES = {"LineString", "MultiLineString"}


# --- public API -------------------------------------------------------------------
def build_segments(
    streets: gpd.GeoDataFrame,
    *,
    metric_epsg: int | None = None,
    max_length_m: float = 500.0,
    min_length_m: float = 20.0,
    half_widths_m: dict | None = None,
    frontage_depth_m: float = DEFAULT_FRONTAGE_DEPTH_M,
    default_half_width_m: float = 6.0,
    boundary=None,
    sample_spacing_m: float = 5.0,
) -> gpd.GeoDataFrame:
    """Cut streets into segments and give each segment its frontage area.

    Parameters
    ----------
    streets : GeoDataFrame
        Street centerlines (LineString or MultiLineString) in EPSG:4326 with
        columns ``name`` and ``road_class`` (OSM ``highway`` values such as
        ``primary``, ``residential``; ``*_link`` falls back to its base class).
        ``street_id`` (int), when present, says which ways form one street.
        When absent, ways sharing a non-empty ``name`` form one street whose
        ``street_id`` is the index label (its position if the index is not
        integer) of its first way; an unnamed way is a street of its own.
        Other columns are ignored.  The frame is not modified.
    metric_epsg : int, optional
        Projected CRS in which all lengths and buffers are computed.  Default:
        :func:`gisgrid.crs.metric_crs_for` the centre of ``streets``.
    max_length_m : float, default 500.0
        Longest allowed segment, metres.  A longer run between intersections is
        cut into the fewest equal parts that are no longer.
    min_length_m : float, default 20.0
        A run shorter than this (between two crossings: a jog, a slip road
        piece, the stretch between the two carriageways of a dual road) joins
        a run of the same street that it touches end to end, so no stub gets a
        chief of its own; where the only way to do so passes through a
        junction another street already passes through, the two centerlines
        cross there (and only there).  A street with no other run (a short
        lane, a way cut off at the edge of the data) and a spur off its own
        street stay as they are.  0 keeps every run, and then segments meet
        only at their ends.
    half_widths_m : dict, optional
        Half carriageway width per road class, metres.  Default
        :data:`gisgrid.config.DEFAULT_ROAD_WIDTHS_M`.
    frontage_depth_m : float, default 25.0
        Depth of frontage beyond the carriageway edge that belongs to the
        segment, metres.
    default_half_width_m : float, default 6.0
        Half width for road classes missing from ``half_widths_m``, metres.
    boundary : shapely geometry, GeoSeries or GeoDataFrame, optional
        Polygon(s) in EPSG:4326 to clip the areas to (e.g. the town).  Segments
        whose area falls wholly outside keep an empty area and are logged.
    sample_spacing_m : float, default 5.0
        Spacing of the points sampled along centerlines for the Voronoi
        partition of contested space, metres.  Smaller is closer to the exact
        nearest-centerline split and slower.

    Returns
    -------
    GeoDataFrame
        One row per segment, ordered by ``street_id`` then ``seq``, CRS
        EPSG:4326, columns:

        ``street_id`` (int), ``seq`` (int, 1-based order along the street, west
        → east for a street running mostly east–west, else north → south),
        ``name`` (segment name: the street name alone for a one-segment street;
        otherwise named after the streets crossing at the ends of its run
        between crossings, ``学院路（学清路—成府路）`` / ``Mannerheimintie
        (Kalevankatu–Simonkatu)``, ``第k段`` / ``part k`` added when a long run
        is cut; where no crossing street is known, Chinese names get
        西段/中段/东段 or 北段/中段/南段 for 2–3 segments and 第N段 beyond,
        other names ``"<street> (N)"``), ``street_name``,
        ``road_class``, ``from_name`` / ``to_name`` (the streets crossing at the
        start / end of the centerline, ``"/"``-joined if several, ``None`` where
        the end is no intersection), ``length_m`` (metres in ``metric_epsg``),
        ``geometry`` (centerline LineString, oriented in ``seq`` direction) and
        ``area`` (frontage MultiPolygon, a second geometry column).

    Raises
    ------
    InputError
        Missing columns, null/empty/non-line geometries (with their rows).
    CRSError
        ``streets`` or ``boundary`` not in EPSG:4326, or ``metric_epsg`` not
        a projected CRS.
    ValueError
        A non-positive ``max_length_m`` or ``sample_spacing_m``, or a negative
        width or depth.
    """
    if not (isinstance(min_length_m, (int, float)) and 0 <= min_length_m < math.inf):
        raise ValueError(f"min_length_m must be non-negative metres, got {min_length_m!r}")
    _check_params(
        max_length_m=max_length_m,
        frontage_depth_m=frontage_depth_m,
        default_half_width_m=default_half_width_m,
        sample_spacing_m=sample_spacing_m,
    )
    _check_streets(streets)
    widths = dict(DEFAULT_ROAD_WIDTHS_M if half_widths_m is None else half_widths_m)
    bad_widths = {k: v for k, v in widths.items() if not (isinstance(v, (int, float)) and 0 <= v < math.inf)}
    if bad_widths:
        raise ValueError(f"half_widths_m must be non-negative metres, got {bad_widths!r}")
    if metric_epsg is not None and parse_crs(metric_epsg).kind != "projected":
        raise CRSError(f"metric_epsg must be a projected EPSG code in metres, not {metric_epsg!r}")
    if len(streets) == 0:
        return _empty_result()
    if metric_epsg is None:
        minx, miny, maxx, maxy = streets.total_bounds
        metric_epsg = metric_crs_for((minx + maxx) / 2.0, (miny + maxy) / 2.0)
    boundary_m = _boundary_in_metric(boundary, metric_epsg)

    ways = _ways(streets, metric_epsg)
    pieces, nodes = _node(ways)
    segs = _merge_pieces(pieces, nodes)
    joined = absorb_short(segs, min_length_m, snap_m=_SNAP_M)
    if len(joined) < len(segs):  # runs that now meet end to end with nothing else there join up
        joined = _rejoin(joined)
    segs = joined
    segs["run"] = np.arange(len(segs))
    segs = _split_long(segs, max_length_m)
    segs = _order_and_name(segs)
    segs = _end_names(segs, pieces, nodes)
    segs = _name_by_crossings(segs)

    reach = np.array([half_width_m(rc, widths, default_half_width_m) for rc in segs["road_class"]]) + frontage_depth_m
    areas = _frontage_areas(segs["geometry"].to_numpy(), reach, sample_spacing_m, boundary=boundary_m)
    if boundary_m is not None:
        outside = int(shapely.is_empty(areas).sum())
        if outside:
            LOGGER.warning("%d segment(s) lie wholly outside the boundary: their area is empty", outside)

    result = gpd.GeoDataFrame(
        segs.drop(columns="geometry"),
        geometry=gpd.GeoSeries(segs["geometry"].to_numpy(), crs=metric_epsg).to_crs(STORAGE_SRID),
    )
    result["area"] = gpd.GeoSeries(areas, index=result.index, crs=metric_epsg).to_crs(STORAGE_SRID)
    LOGGER.info(
        "built %d segments of %d streets from %d ways (EPSG:%d)",
        len(result),
        result["street_id"].nunique(),
        len(streets),
        metric_epsg,
    )
    return result[SEGMENT_COLUMNS]


def pairwise_overlap_m2(areas: gpd.GeoSeries) -> float:
    """Total area shared by two or more polygons, counted once per pair, in m².

    Parameters
    ----------
    areas : GeoSeries
        Polygons in a projected (metric) CRS, e.g. segment areas after
        ``to_crs(metric_epsg)``.

    Returns
    -------
    float
        Sum over pairs ``i < j`` of ``area(areas[i] ∩ areas[j])``, m².  0 for a
        proper partition (a coverage).

    Raises
    ------
    CRSError
        When ``areas`` has no CRS or a geographic one (areas in degrees² are
        meaningless).
    """
    if areas.crs is None or not areas.crs.is_projected:
        raise CRSError(f"overlaps are measured in a projected metric CRS, not {areas.crs!r}")
    return _overlap_m2(areas.to_numpy())


# --- validation -------------------------------------------------------------------------
def _check_params(**values: float) -> None:
    for key in ("max_length_m", "sample_spacing_m"):
        if not (values[key] > 0 and math.isfinite(values[key])):
            raise ValueError(f"{key} must be a positive number of metres, got {values[key]!r}")
    for key in ("frontage_depth_m", "default_half_width_m"):
        if not (values[key] >= 0 and math.isfinite(values[key])):
            raise ValueError(f"{key} must be a non-negative number of metres, got {values[key]!r}")


def _check_streets(streets) -> None:
    """Collect every problem of the street layer and raise once."""
    if not isinstance(streets, gpd.GeoDataFrame):
        raise InputError(f"streets must be a GeoDataFrame, got {type(streets).__name__}")
    if streets.crs is None or streets.crs.to_epsg() not in GEOGRAPHIC_SAME_AS_STORAGE:
        raise CRSError(f"streets must be in EPSG:{STORAGE_SRID} (lon/lat), got {streets.crs!r}")
    problems = []
    missing = [c for c in ("name", "road_class") if c not in streets.columns]
    if missing:
        hint = " (rename OSM 'highway' to 'road_class')" if "road_class" in missing and "highway" in streets else ""
        problems.append(f"missing column(s) {', '.join(missing)}{hint}")
    geoms = streets.geometry
    bad = geoms.isna().to_numpy() | geoms.is_empty.to_numpy() | ~geoms.geom_type.isin(_GEOM_TYPES).to_numpy()
    if bad.any():
        rows = (np.flatnonzero(bad) + 1).tolist()
        shown = ", ".join(map(str, rows[:10])) + (" …" if len(rows) > 10 else "")
        problems.append(f"{len(rows)} row(s) without a LineString/MultiLineString geometry: rows {shown}")
    if "street_id" in streets.columns and streets["street_id"].isna().any():
        rows = (np.flatnonzero(streets["street_id"].isna().to_numpy()) + 1).tolist()
        problems.append(f"street_id missing in rows {', '.join(map(str, rows[:10]))}")
    if problems:
        raise InputError("; ".join(problems))


def _boundary_in_metric(boundary, metric_epsg: int):
    if boundary is None:
        return None
    if isinstance(boundary, (gpd.GeoDataFrame, gpd.GeoSeries)):
        if boundary.crs is None or boundary.crs.to_epsg() not in GEOGRAPHIC_SAME_AS_STORAGE:
            raise CRSError(f"boundary must be in EPSG:{STORAGE_SRID}, got {boundary.crs!r}")
        series = boundary.geometry if isinstance(boundary, gpd.GeoDataFrame) else boundary
        geom = shapely.union_all(series.to_numpy())
    elif isinstance(boundary, BaseGeometry):
        geom = boundary
    else:
        raise InputError(f"boundary must be a polygon in EPSG:{STORAGE_SRID}, got {type(boundary).__name__}")
    if geom.is_empty or geom.geom_type not in {"Polygon", "MultiPolygon"}:
        raise InputError(f"boundary must be a non-empty Polygon or MultiPolygon, got {geom.geom_type}")
    metric = gpd.GeoSeries([shapely.make_valid(geom)], crs=STORAGE_SRID).to_crs(metric_epsg).iloc[0]
    return shapely.make_valid(metric)


# --- network: ways → pieces → segments --------------------------------------------------
def _ways(streets: gpd.GeoDataFrame, metric_epsg: int) -> pd.DataFrame:
    """One row per input LineString in metric CRS, with its street key and attributes."""
    names = streets["name"].astype("string").str.strip().fillna("")
    if "street_id" in streets.columns:
        street_id = streets["street_id"].astype("int64").to_numpy()
    else:
        labels = streets.index.to_numpy() if pd.api.types.is_integer_dtype(streets.index) else np.arange(len(streets))
        labels = pd.Series(labels.astype("int64"))
        named = names.to_numpy() != ""
        first = labels.groupby(names.to_numpy()).transform("first").to_numpy()
        street_id = np.where(named, first, labels.to_numpy())
    road_class = streets["road_class"].astype("string").str.strip().fillna("").to_numpy(dtype=object)
    metric = streets.geometry.to_crs(metric_epsg).to_numpy()
    parts, owner = shapely.get_parts(metric, return_index=True)
    ways = pd.DataFrame(
        {
            "street_id": street_id[owner],
            "street_name": names.to_numpy(dtype=object)[owner],
            "road_class": road_class[owner],
            "geometry": parts,
            "way": owner,
        }
    )
    keep = shapely.length(parts) > 0
    if not keep.all():
        LOGGER.warning(
            "ignored %d zero-length line part(s) in rows %s",
            int((~keep).sum()),
            sorted(set((owner[~keep] + 1).tolist()))[:10],
        )
    return ways[keep].reset_index(drop=True)


def _node(ways: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the network at every intersection and give each piece back to its way.

    Returns the pieces (street attributes, geometry, node ids of both ends) and
    the nodes (point geometry, degree = number of piece ends).
    """
    lines = ways["geometry"].to_numpy()
    noded = shapely.get_parts(shapely.node(shapely.multilinestrings(lines)))
    lengths = shapely.length(noded)
    if (lengths < _MIN_PIECE_M).any():
        LOGGER.debug("dropped %d noding piece(s) shorter than %g m", int((lengths < _MIN_PIECE_M).sum()), _MIN_PIECE_M)
    noded = noded[lengths >= _MIN_PIECE_M]

    # A piece lies on the way(s) it came from; where ways overlap it goes to the
    # nearest, ties to the earliest way, so the result does not depend on GEOS order.
    mid = shapely.line_interpolate_point(noded, 0.5, normalized=True)
    tree = shapely.STRtree(lines)
    piece_idx, way_idx = tree.query(mid, predicate="dwithin", distance=_SNAP_M)
    dist = np.round(shapely.distance(mid[piece_idx], lines[way_idx]), 9)
    order = np.lexsort((way_idx, dist, piece_idx))
    piece_idx, way_idx = piece_idx[order], way_idx[order]
    first = np.unique(piece_idx, return_index=True)[1]
    source = np.full(len(noded), -1)
    source[piece_idx[first]] = way_idx[first]
    lost = np.flatnonzero(source < 0)
    if len(lost):  # numerically displaced beyond _SNAP_M: fall back to the nearest way
        source[lost] = tree.query_nearest(mid[lost], all_matches=False)[1]

    pieces = ways.iloc[source][["street_id", "street_name", "road_class", "way"]].reset_index(drop=True)
    pieces["geometry"] = noded
    ends = np.concatenate(
        [shapely.get_coordinates(shapely.get_point(noded, 0)), shapely.get_coordinates(shapely.get_point(noded, -1))]
    )
    node_xy, inverse, degree = np.unique(ends, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    pieces["start_node"] = inverse[: len(noded)]
    pieces["end_node"] = inverse[len(noded) :]
    nodes = pd.DataFrame({"geometry": shapely.points(node_xy), "degree": degree})
    return pieces, nodes


def _merge_pieces(pieces: pd.DataFrame, nodes: pd.DataFrame) -> pd.DataFrame:
    """Join consecutive pieces of one street and road class across joints no other piece meets."""
    group = pd.factorize(pd.MultiIndex.from_arrays([pieces["street_id"], pieces["road_class"]]))[0]
    n = len(pieces)
    ends = pd.DataFrame(
        {
            "piece": np.concatenate([np.arange(n), np.arange(n)]),
            "node": np.concatenate([pieces["start_node"], pieces["end_node"]]),
        }
    )
    ends["group"] = group[ends["piece"]]
    ends = ends[nodes["degree"].to_numpy()[ends["node"]] == 2].sort_values(["node", "piece"])
    pairs = ends["piece"].to_numpy().reshape(-1, 2)
    same = (group[pairs[:, 0]] == group[pairs[:, 1]]) & (pairs[:, 0] != pairs[:, 1])

    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs[same]:  # one pass over joints (not vertices): union–find of pieces
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    chain = np.array([find(i) for i in range(n)])

    rows = []
    geoms = pieces["geometry"].to_numpy()
    for root, members in pd.Series(np.arange(n)).groupby(chain):
        members = members.to_numpy()
        merged = (
            geoms[members[0]] if len(members) == 1 else shapely.line_merge(shapely.multilinestrings(geoms[members]))
        )
        first = pieces.iloc[root]
        for part in shapely.get_parts(merged):
            rows.append((first["street_id"], first["street_name"], first["road_class"], part))
    return pd.DataFrame(rows, columns=["street_id", "street_name", "road_class", "geometry"])


def _rejoin(segs: pd.DataFrame) -> pd.DataFrame:
    """Join runs of one street and road class that now meet end to end with nothing else there
    (a stub between them was absorbed), as :func:`_merge_pieces` does for the noded pieces."""
    geoms = segs["geometry"].to_numpy()
    ends = np.concatenate(
        [shapely.get_coordinates(shapely.get_point(geoms, 0)), shapely.get_coordinates(shapely.get_point(geoms, -1))]
    )
    node_xy, inverse, degree = np.unique(ends, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    points = shapely.points(node_xy)
    node_idx, _line_idx = shapely.STRtree(geoms).query(points, predicate="dwithin", distance=_SNAP_M)
    lines_at = np.bincount(node_idx, minlength=len(points))
    degree = np.where(lines_at == degree, degree, 0)  # a run passing through the node: never join there
    pieces = segs.assign(start_node=inverse[: len(geoms)], end_node=inverse[len(geoms) :])
    return _merge_pieces(pieces, pd.DataFrame({"geometry": points, "degree": degree}))


def _split_long(segs: pd.DataFrame, max_length_m: float) -> pd.DataFrame:
    """Cut every run longer than ``max_length_m`` into the fewest equal parts that fit."""
    lengths = shapely.length(segs["geometry"].to_numpy())
    counts = np.maximum(1, np.ceil(lengths / max_length_m - 1e-9).astype(int))
    out = segs.loc[segs.index.repeat(counts)].reset_index(drop=True)
    geoms = out["geometry"].to_numpy().copy()
    k = np.concatenate([np.arange(c) for c in counts])
    n = np.repeat(counts, counts)
    total = np.repeat(lengths, counts)
    for i in np.flatnonzero(n > 1):
        geoms[i] = substring(geoms[i], total[i] * k[i] / n[i], total[i] * (k[i] + 1) / n[i])
    out["geometry"] = geoms
    out["length_m"] = shapely.length(geoms)
    return out[out["length_m"] > 0].reset_index(drop=True)


def _order_and_name(segs: pd.DataFrame) -> pd.DataFrame:
    """Orient centerlines, number segments along their street and name them."""
    geoms = segs["geometry"].to_numpy()
    mid = shapely.get_coordinates(shapely.line_interpolate_point(geoms, 0.5, normalized=True))
    bounds = shapely.bounds(geoms)
    frame = pd.DataFrame(
        {
            "street_id": segs["street_id"].to_numpy(),
            "minx": bounds[:, 0],
            "miny": bounds[:, 1],
            "maxx": bounds[:, 2],
            "maxy": bounds[:, 3],
        }
    )
    ext = frame.groupby("street_id").agg(
        minx=("minx", "min"), miny=("miny", "min"), maxx=("maxx", "max"), maxy=("maxy", "max")
    )
    east_west = ((ext["maxx"] - ext["minx"]) >= (ext["maxy"] - ext["miny"])).reindex(frame["street_id"]).to_numpy()

    # Position along the street's dominant direction: x for east-west, -y for north-south.
    key1 = np.where(east_west, mid[:, 0], -mid[:, 1])
    key2 = np.where(east_west, -mid[:, 1], mid[:, 0])
    start = shapely.get_coordinates(shapely.get_point(geoms, 0))
    end = shapely.get_coordinates(shapely.get_point(geoms, -1))
    backwards = np.where(east_west, start[:, 0] > end[:, 0], start[:, 1] < end[:, 1])
    geoms = np.where(backwards, shapely.reverse(geoms), geoms)

    out = segs.assign(geometry=geoms, _k1=np.round(key1, 6), _k2=np.round(key2, 6), _ew=east_west)
    out = out.sort_values(["street_id", "_k1", "_k2", "length_m"], kind="mergesort").reset_index(drop=True)
    out["seq"] = out.groupby("street_id").cumcount() + 1
    count = out.groupby("street_id")["seq"].transform("size").to_numpy()
    out["name"] = [
        _segment_name(name, sid, seq, n, ew)
        for name, sid, seq, n, ew in zip(out["street_name"], out["street_id"], out["seq"], count, out["_ew"])
    ]
    return out.drop(columns=["_k1", "_k2", "_ew"])


def _segment_name(street: str, street_id: int, seq: int, count: int, east_west: bool) -> str:
    """``人民路东段``, ``人民路第4段``, ``Mannerheimintie (2)``; unnamed streets by id."""
    if not street:
        street = f"#{street_id}"
    if count == 1:
        return street
    if _CJK.search(street):
        if count <= 3:
            ends = ("西段", "东段") if east_west else ("北段", "南段")
            labels = (ends[0], ends[1]) if count == 2 else (ends[0], "中段", ends[1])
            return street + labels[seq - 1]
        return f"{street}第{seq}段"
    return f"{street} ({seq})"


def _end_names(segs: pd.DataFrame, pieces: pd.DataFrame, nodes: pd.DataFrame) -> pd.DataFrame:
    """Names of the other streets meeting each segment's start and end node."""
    touching = pd.concat(
        [
            pieces[["start_node", "street_id", "street_name"]].rename(columns={"start_node": "node"}),
            pieces[["end_node", "street_id", "street_name"]].rename(columns={"end_node": "node"}),
        ]
    )
    touching = touching[touching["street_name"] != ""].drop_duplicates()

    geoms = segs["geometry"].to_numpy()
    tree = shapely.STRtree(nodes["geometry"].to_numpy())
    out = segs.copy()
    for column, index in (("from_name", 0), ("to_name", -1)):
        ends = shapely.get_point(geoms, index)
        seg_idx, node_idx = tree.query(ends, predicate="dwithin", distance=_SNAP_M)
        hits = pd.DataFrame({"seg": seg_idx, "node": node_idx})
        hits = hits.merge(touching, on="node")
        own = segs.iloc[hits["seg"].to_numpy()]
        other = (hits["street_id"].to_numpy() != own["street_id"].to_numpy()) & (
            hits["street_name"].to_numpy() != own["street_name"].to_numpy()
        )
        names = hits[other].groupby("seg")["street_name"].agg(lambda s: "/".join(sorted(set(s))))
        out[column] = pd.Series(names, index=pd.RangeIndex(len(segs))).astype(object)
        out[column] = out[column].where(out[column].notna(), None)
    return out


def _part(k: int, cjk: bool) -> str:
    return f"第{k}段" if cjk else f" part {k}"


def _first(names) -> str | None:
    return names.split("/")[0] if isinstance(names, str) and names else None


def _name_by_crossings(segs: pd.DataFrame) -> pd.DataFrame:
    """Name the segments of multi-segment streets after the streets crossing at the ends of their run.

    ``学院路（学清路—成府路）``; a run cut into parts adds ``第k段``; a run
    with one crossing known reads ``学院路（学清路起）`` / ``学院路（至成府路）``
    (Latin: ``Street (A–B)``, ``(from A)``, ``(to B)``, ``part k``).  Runs
    with no crossing known keep the positional name of :func:`_order_and_name`.
    Names stay unique within a street (``第N段`` / ``(N)`` by ``seq`` otherwise).
    """
    out = segs.copy()
    ordered = out.sort_values(["run", "seq"])
    first = ordered.groupby("run").head(1).set_index("run")["from_name"]
    last = ordered.groupby("run").tail(1).set_index("run")["to_name"]
    parts = out.groupby("run")["seq"].transform("size").to_numpy()
    part = out.groupby("run")["seq"].rank(method="first").astype(int).to_numpy()
    count = out.groupby("street_id")["seq"].transform("size").to_numpy()
    names = out["name"].to_numpy().copy()
    bases = np.full(len(out), None, dtype=object)
    cjks = np.zeros(len(out), dtype=bool)
    for k, (run, street) in enumerate(zip(out["run"], out["street_name"])):
        if count[k] == 1 or not street:
            continue
        a, b = _first(first.get(run)), _first(last.get(run))
        if a is None and b is None:
            continue
        cjk = cjks[k] = bool(_CJK.search(street))
        if a and a == b:  # both ends on one crossing street (its two carriageways, a loop)
            inner = f"{a}交叉口" if cjk else f"at {a}"
        elif cjk:
            inner = f"{a}—{b}" if a and b else (f"{a}起" if a else f"至{b}")
        else:
            inner = f"{a}–{b}" if a and b else (f"from {a}" if a else f"to {b}")
        bases[k] = f"{street}（{inner}）" if cjk else f"{street} ({inner})"
        names[k] = bases[k] + (_part(part[k], cjk) if parts[k] > 1 else "")
    out["name"] = names
    # the same crossings for two runs (two carriageways, a street leaving a crossing twice): number all
    # segments of that name by seq; anything still repeated gets its seq too
    named = bases != None  # noqa: E711
    key = pd.DataFrame({"street": out["street_id"].to_numpy(), "base": bases, "run": out["run"].to_numpy()})[named]
    runs = key.groupby(["street", "base"])["run"].transform("nunique").to_numpy()
    again = np.zeros(len(out), dtype=bool)
    again[np.flatnonzero(named)[runs > 1]] = True
    seq = out["seq"].to_numpy()
    names[again] = [b + _part(q, c) for b, q, c in zip(bases[again], seq[again], cjks[again])]
    out["name"] = names
    dup = out.duplicated(["street_id", "name"], keep=False).to_numpy()
    if dup.any():
        out.loc[dup, "name"] = [
            n + _part(q, bool(_CJK.search(n))) for n, q in zip(out["name"].to_numpy()[dup], seq[dup])
        ]
    return out.drop(columns="run")


def half_width_m(road_class: str, widths: dict, default: float = 6.0) -> float:
    """Half carriageway width of a road class, metres (``*_link`` falls back to its base class)."""
    if road_class in widths:
        return float(widths[road_class])
    base = road_class.removesuffix("_link")
    return float(widths.get(base, default))


# --- areas ----------------------------------------------------------------------------------
def _frontage_areas(lines: np.ndarray, reach_m: np.ndarray, spacing_m: float, *, boundary=None) -> np.ndarray:
    """Partition the union of the centerline buffers among the segments.

    Each segment owns the part of its own buffer (radius ``reach_m``) that is
    nearer to its centerline than to any other, nearness being judged on points
    sampled every ``spacing_m`` along every centerline (a Voronoi diagram of the
    samples, dissolved by segment).  Where a narrow road's Voronoi region stops
    short of a wider road's reach, the remaining gap goes to the segment(s) whose
    buffer covers it, so the areas tile the union of buffers exactly.  Areas
    are clipped to ``boundary`` (metric CRS) when given.  The result is cleaned
    as one coverage, so neighbours share identical edge vertices and stay
    non-overlapping after reprojection.
    """
    n = len(lines)
    buffers = shapely.buffer(lines, reach_m)
    if n == 1:
        return _as_multipolygons(buffers if boundary is None else shapely.intersection(buffers, boundary))

    # Samples at the middles of equal steps: never a segment end, so no two
    # segments share a sample at the nodes where they meet.
    lengths = shapely.length(lines)
    steps = np.maximum(1, np.ceil(lengths / spacing_m).astype(int))
    owner = np.repeat(np.arange(n), steps)
    offsets = np.concatenate([(np.arange(k) + 0.5) / k for k in steps])
    xy = shapely.get_coordinates(shapely.line_interpolate_point(lines[owner], offsets, normalized=True))
    xy, first = np.unique(xy, axis=0, return_index=True)
    owner = owner[first]

    minx, miny, maxx, maxy = shapely.total_bounds(buffers)
    pad = float(reach_m.max()) + spacing_m
    extent = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=extent, ordered=True))
    if len(cells) != len(xy):
        raise RuntimeError(f"Voronoi diagram returned {len(cells)} cells for {len(xy)} samples")

    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(n + 1))
    regions = np.array(
        [shapely.coverage_union_all(cells[order[bounds[i] : bounds[i + 1]]]) for i in range(n)], dtype=object
    )
    areas = shapely.intersection(regions, buffers)
    areas = _fill_gaps(areas, buffers)
    if boundary is not None:
        areas = shapely.intersection(areas, boundary)
    # Separately computed intersections leave vertices of one area a hair off its
    # neighbour's edge (T-junctions); cleaning snaps them into one edge-matched
    # coverage without gaps or overlaps.
    areas = _as_multipolygons(areas)
    try:
        areas = _as_multipolygons(shapely.coverage_clean(areas))
    except GEOSException as exc:  # keep the (near-)coverage rather than fail the build
        LOGGER.warning("could not clean the area coverage (%s); neighbours may overlap by rounding error", exc)
        return areas
    return _absorb_strays(areas)


def _absorb_strays(areas: np.ndarray, max_m2: float = _MAX_STRAY_M2) -> np.ndarray:
    """Hand detached crumbs of an area (< ``max_m2``) to the neighbour sharing most border with them.

    Nearest-centerline splitting leaves a few such crumbs (typically well under
    1 m²) cut off from their segment; a neighbour that surrounds them is the
    owner a patrol would expect.  ``areas`` must be an edge-matched coverage,
    so the moved parts join their new owner without slivers.
    """
    parts, owner = shapely.get_parts(areas, return_index=True)
    if len(parts) == len(areas):
        return areas
    size = shapely.area(parts)
    largest = pd.Series(size).groupby(owner).idxmax().to_numpy()
    stray = np.flatnonzero((size < max_m2) & ~np.isin(np.arange(len(parts)), largest))
    if len(stray) == 0:
        return areas
    stray_idx, area_idx = shapely.STRtree(areas).query(parts[stray], predicate="intersects")
    other = area_idx != owner[stray[stray_idx]]
    stray_idx, area_idx = stray_idx[other], area_idx[other]
    border = shapely.length(
        shapely.intersection(shapely.boundary(parts[stray[stray_idx]]), shapely.boundary(areas[area_idx]))
    )
    best = pd.DataFrame({"stray": stray_idx, "area": area_idx, "border": np.round(border, 6)})
    best = best[best["border"] > 0].sort_values(["stray", "border", "area"], ascending=[True, False, True])
    best = best.drop_duplicates("stray")
    new_owner = owner.copy()
    new_owner[stray[best["stray"].to_numpy()]] = best["area"].to_numpy()
    changed = np.unique(np.concatenate([owner[stray[best["stray"].to_numpy()]], best["area"].to_numpy()]))
    out = areas.copy()
    for i in changed:  # only the few areas that gave or took a crumb
        out[i] = shapely.union_all(parts[new_owner == i])
    LOGGER.debug("moved %d detached crumb(s) under %g m² to the neighbouring area", len(best), max_m2)
    return _as_multipolygons(out)


def _fill_gaps(areas: np.ndarray, buffers: np.ndarray) -> np.ndarray:
    """Give the parts of the buffers that no area holds to segments whose buffer covers them.

    Each gap goes first to the segment whose buffer holds most of it; what that
    buffer does not hold goes to the next, and so on.
    """
    gaps = shapely.get_parts(shapely.difference(shapely.union_all(buffers), shapely.union_all(areas)))
    gaps = gaps[shapely.area(gaps) > _MIN_GAP_M2]
    if len(gaps) == 0:
        return areas
    gap_idx, seg_idx = shapely.STRtree(buffers).query(gaps, predicate="intersects")
    shared = shapely.area(shapely.intersection(gaps[gap_idx], buffers[seg_idx]))
    order = np.lexsort((seg_idx, -np.round(shared, 6), gap_idx))
    additions: dict[int, list] = {}
    start = 0
    for g in np.unique(gap_idx[order]):  # loop over gap polygons, few and small
        stop = start + int((gap_idx == g).sum())
        rest = gaps[g]
        for s in seg_idx[order[start:stop]]:
            piece = shapely.intersection(rest, buffers[s])
            if shapely.area(piece) > 0:
                additions.setdefault(int(s), []).append(piece)
                rest = shapely.difference(rest, buffers[s])
            if shapely.area(rest) <= _MIN_GAP_M2:
                break
        start = stop
    areas = areas.copy()
    for s, parts in additions.items():
        areas[s] = shapely.union_all([areas[s], *parts])
    LOGGER.debug(
        "filled %d gap(s) between Voronoi regions and buffers (%.1f m²)", len(gaps), float(shapely.area(gaps).sum())
    )
    return areas


def _as_multipolygons(geoms: np.ndarray) -> np.ndarray:
    """Valid MultiPolygons (empty where nothing is left), dropping lines and points from clipping."""
    geoms = shapely.make_valid(np.asarray(geoms, dtype=object))
    out = np.empty(len(geoms), dtype=object)
    for i, geom in enumerate(geoms):
        parts = shapely.get_parts(geom)
        polys = parts[np.isin(shapely.get_type_id(parts), (3, 6))] if len(parts) else parts
        polys = shapely.get_parts(polys)
        out[i] = (
            shapely.multipolygons(polys[shapely.area(polys) > 0])
            if len(polys)
            else shapely.from_wkt("MULTIPOLYGON EMPTY")
        )
    return out


def _overlap_m2(geoms: np.ndarray) -> float:
    geoms = np.asarray(geoms, dtype=object)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    return float(shapely.area(shapely.intersection(geoms[left[keep]], geoms[right[keep]])).sum())


def _empty_result() -> gpd.GeoDataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in SEGMENT_COLUMNS if c not in ("geometry", "area")})
    result = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=STORAGE_SRID))
    result["area"] = gpd.GeoSeries([], crs=STORAGE_SRID)
    return result[SEGMENT_COLUMNS]
