"""Unit-grid generation and coding (单元网格, GB/T 30428.1 style).

:func:`build_grid` cuts a jurisdiction (a town) into cells of about
``target_area_m2`` (10,000 m², the "万米单元网格") that

* follow the streets where the data has them (``layout="blocks"``): the street
  network and the community borders are noded and polygonized into blocks;
  blocks of 1.5 × the target or more are cut by a grid aligned to the block's
  oriented envelope into about ``area / target`` pieces; pieces and blocks under
  ``min_fraction`` × the target are merged into the neighbour of the same
  community that shares the longest border with them (a piece of the same block
  first);
* or form a regular ``"square"`` or ``"hex"`` lattice of the target area, clipped
  to each community (for areas without streets).  A ``"blocks"`` build on a
  jurisdiction without streets falls back to ``"square"``; the result's
  ``attrs["note"]`` and the log say so.

Invariants of the result (checked in the metric CRS, see ``tests/test_grids.py``):
cells never cross a community border; cells tile the jurisdiction (no gap, no
overlap: they are the faces of one noded line arrangement, unioned along shared
edges, so neighbouring cells share their edges vertex for vertex); every cell is
a valid Polygon.  All lines are noded with snap-rounding on a 1 mm grid
(:data:`GRID_SIZE_M`), so borders move by at most 0.7 mm.

Cell codes
----------
``code = community code + 3-digit cell sequence``.  With 12-digit national
division codes of communities this is the 15-digit layout of Beijing's local
standard (GB/T 30428.1 style)::

    110108 001 003 017
    │      │   │   └── cell sequence in the community (001–999)
    │      │   └────── community / village (社区/村)
    │      └────────── town / sub-district (乡镇/街道)
    └───────────────── county / district (GB/T 2260)

The community code is used as given (demo codes included).  Sequences run west
→ east, north → south: cells are sorted by the band of their centroid's
northing (bands of ``sqrt(target_area_m2)`` metres counted down from the
community's northern edge), then by easting.

Codes are stable across re-runs: the build is deterministic, and when the
``previous`` cells are given, a new cell whose geometry equals a previous cell of
the same community up to a symmetric difference under 0.1 m² keeps that cell's
code.  The other cells get fresh sequence numbers above the highest one the
community used before (retired numbers are never reused, so dated owner
assignments keyed by code stay unambiguous), in the order above.

Inputs and outputs are EPSG:4326; every length and area is metres / m² in the
metric CRS (:func:`gisgrid.crs.metric_crs_for` unless ``metric_epsg`` is given).
Nothing here touches a database or Flask.
"""

from __future__ import annotations

import heapq
import logging
import math

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gisgrid.crs import STORAGE_SRID, metric_crs_for, reproject
from gisgrid.errors import InputError

LOGGER = logging.getLogger(__name__)

#: Layouts :func:`build_grid` accepts.
LAYOUTS = ("blocks", "square", "hex")
#: Output columns of :func:`build_grid`, in order.
GRID_COLUMNS = ["code", "community_code", "seq", "area_m2", "geometry"]
#: Snap-rounding grid of the noding, metres.
GRID_SIZE_M = 1e-3
#: A new cell keeps a previous cell's code when their symmetric difference is below this, m².
SAME_CELL_M2 = 0.1
#: Faces with a Polsby-Popper ratio 4πA/P² below this (and long) are cut across their length.
THIN_PP = 0.2
#: Largest cell sequence number in a community (3 digits).
MAX_SEQ = 999

_POLYGON_TYPES = {"Polygon", "MultiPolygon"}


# --- public API -------------------------------------------------------------------
def build_grid(
    jurisdiction_code: str,
    boundary: BaseGeometry,
    communities: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame | None,
    *,
    target_area_m2: float = 10_000.0,
    layout: str = "blocks",
    metric_epsg: int | None = None,
    previous: gpd.GeoDataFrame | None = None,
    min_fraction: float = 0.3,
    split_fraction: float = 1.5,
) -> gpd.GeoDataFrame:
    """Cut a jurisdiction into coded unit-grid cells that tile it.

    Parameters
    ----------
    jurisdiction_code : str
        Division code of the jurisdiction (e.g. the 9-digit town code); used in
        messages and as ``attrs["jurisdiction_code"]`` of the result.
    boundary : shapely Polygon or MultiPolygon
        The jurisdiction, EPSG:4326 lon/lat.
    communities : GeoDataFrame
        Columns ``code`` (str, unique; the cell codes are built on it) and
        polygon geometries in EPSG:4326.  They are expected to tile
        ``boundary``; parts of the boundary in no community go to the nearest
        community (with a warning when they exceed 0.01 % of its area), parts of
        communities outside the boundary are dropped.
    streets : GeoDataFrame or None
        Street centerlines (LineString / MultiLineString) in EPSG:4326; may be
        empty or None.  Only used by ``layout="blocks"``.
    target_area_m2 : float, default 10000
        Intended cell area, m².
    layout : {"blocks", "square", "hex"}, default "blocks"
        ``"blocks"``: street blocks split and merged toward the target;
        ``"square"`` / ``"hex"``: a regular lattice of cells of the target area
        (squares of side ``sqrt(target)``; flat-topped hexagons), anchored at the
        metric CRS origin so re-runs line up.
    metric_epsg : int, optional
        Projected CRS of all measurements.  Default: :func:`gisgrid.crs.metric_crs_for`
        the boundary's centroid.
    previous : GeoDataFrame, optional
        Cells of an earlier build (columns ``code`` and geometry, EPSG:4326).
        New cells equal to a previous cell (symmetric difference < 0.1 m²) keep
        its code.
    min_fraction : float, default 0.3
        Pieces and blocks smaller than ``min_fraction * target_area_m2`` are
        merged into a neighbour of the same community.
    split_fraction : float, default 1.5
        Blocks of ``split_fraction * target_area_m2`` or more are split.

    Returns
    -------
    GeoDataFrame
        One row per cell, sorted by code, in EPSG:4326, columns
        :data:`GRID_COLUMNS`: ``code`` (str, community code + 3 digits),
        ``community_code`` (str), ``seq`` (int), ``area_m2`` (float, metric CRS)
        and ``geometry`` (Polygon).  ``attrs`` holds ``jurisdiction_code``,
        ``layout`` (the layout used), ``metric_epsg`` and ``note`` (why a
        fallback happened, else ``""``).

    Raises
    ------
    InputError
        On an empty or non-polygonal boundary, communities without codes or
        geometry, a CRS other than EPSG:4326, an unknown layout, a
        non-positive target, or a community needing more than 999 cells.
    """
    _check_inputs(
        jurisdiction_code,
        boundary,
        communities,
        streets,
        previous,
        target_area_m2=target_area_m2,
        layout=layout,
        min_fraction=min_fraction,
        split_fraction=split_fraction,
    )
    if metric_epsg is None:
        centre = boundary.centroid
        metric_epsg = metric_crs_for(centre.x, centre.y)
    boundary_m = reproject(boundary, STORAGE_SRID, metric_epsg)
    comm_codes = communities["code"].astype(str).to_numpy()
    comm_m = reproject(communities.geometry.to_numpy(), STORAGE_SRID, metric_epsg)

    street_lines = np.empty(0, dtype=object)
    if streets is not None and len(streets):
        lines = streets.geometry.to_numpy()
        lines = lines[~shapely.is_missing(lines) & ~shapely.is_empty(lines)]
        lines = reproject(np.asarray(lines, dtype=object), STORAGE_SRID, metric_epsg)
        street_lines = lines[shapely.intersects(lines, boundary_m)] if len(lines) else lines

    note = ""
    used_layout = layout
    if layout == "blocks" and len(street_lines) == 0:
        used_layout = "square"
        note = f"jurisdiction {jurisdiction_code} has no streets: square layout used instead of blocks"
        LOGGER.warning(note)

    frame_lines = np.concatenate([shapely.boundary(np.atleast_1d(boundary_m)), shapely.boundary(comm_m)])
    if used_layout == "blocks":
        base_lines = np.concatenate([frame_lines, street_lines])
    elif used_layout == "square":
        base_lines = np.concatenate([frame_lines, _square_lines(boundary_m, target_area_m2)])
    else:
        base_lines = np.concatenate([frame_lines, _hex_lines(boundary_m, target_area_m2)])

    faces, face_comm = _faces(base_lines, boundary_m, comm_m)
    face_block = np.arange(len(faces))
    if used_layout == "blocks":
        thin = _thin(faces, target_area_m2)
        big = (shapely.area(faces) >= split_fraction * target_area_m2) | thin
        if big.any():
            cut = [_split_lines(b, target_area_m2) for b in faces[big]]
            cut = np.concatenate([c for c in cut if len(c)] or [np.empty(0, dtype=object)])
            if len(cut):
                blocks = faces
                faces, face_comm = _faces(np.concatenate([base_lines, cut]), boundary_m, comm_m)
                face_block = _containing(blocks, faces)
                # pieces of a thin block join the blocks beside them, not each other
                in_thin = (face_block < len(blocks)) & thin[np.minimum(face_block, len(blocks) - 1)]
                face_block[in_thin] = len(blocks) + np.flatnonzero(in_thin)
            LOGGER.debug(
                "split %d block(s) of ≥ %.0f m² or thin with %d line(s)",
                int(big.sum()),
                split_fraction * target_area_m2,
                len(cut),
            )

    cells, cell_comm = _merge_small(faces, face_comm, face_block, min_fraction * target_area_m2)
    cells, cell_comm = _as_polygons(cells, cell_comm)
    codes, seqs = _codes(cells, comm_codes[cell_comm], comm_m, cell_comm, target_area_m2, previous, metric_epsg)

    result = gpd.GeoDataFrame(
        {
            "code": codes,
            "community_code": comm_codes[cell_comm],
            "seq": seqs,
            "area_m2": shapely.area(cells),
            "geometry": list(reproject(np.asarray(cells, dtype=object), metric_epsg, STORAGE_SRID)),
        },
        geometry="geometry",
        crs=STORAGE_SRID,
    )
    result = result.sort_values("code", kind="stable").reset_index(drop=True)[GRID_COLUMNS]
    result.attrs.update(
        {"jurisdiction_code": jurisdiction_code, "layout": used_layout, "metric_epsg": int(metric_epsg), "note": note}
    )
    LOGGER.info(
        "grid of %s: %d %s cell(s), median %.0f m² (target %.0f m²)",
        jurisdiction_code,
        len(result),
        used_layout,
        float(np.median(result["area_m2"])) if len(result) else 0.0,
        target_area_m2,
    )
    return result


# --- validation -------------------------------------------------------------------
def _check_inputs(
    jurisdiction_code, boundary, communities, streets, previous, *, target_area_m2, layout, min_fraction, split_fraction
) -> None:
    problems: list[str] = []
    if not isinstance(jurisdiction_code, str) or not jurisdiction_code.strip():
        problems.append(f"jurisdiction_code must be a non-empty string, got {jurisdiction_code!r}")
    if not isinstance(boundary, BaseGeometry) or boundary.geom_type not in _POLYGON_TYPES or boundary.is_empty:
        problems.append("boundary must be a non-empty shapely Polygon or MultiPolygon in EPSG:4326")
    elif not boundary.is_valid:
        problems.append(f"boundary is invalid: {shapely.is_valid_reason(boundary)}")
    if layout not in LAYOUTS:
        problems.append(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if not (isinstance(target_area_m2, (int, float)) and math.isfinite(target_area_m2) and target_area_m2 > 0):
        problems.append(f"target_area_m2 must be a positive number of m², got {target_area_m2!r}")
    if not (0 <= min_fraction < 1):
        problems.append(f"min_fraction must be in [0, 1), got {min_fraction!r}")
    if not (split_fraction > 1):
        problems.append(f"split_fraction must be above 1, got {split_fraction!r}")
    for name, frame, required in (
        ("communities", communities, True),
        ("streets", streets, False),
        ("previous", previous, False),
    ):
        if frame is None and not required:
            continue
        if not isinstance(frame, gpd.GeoDataFrame):
            problems.append(f"{name} must be a GeoDataFrame")
            continue
        if len(frame) and (frame.crs is None or frame.crs.to_epsg() not in (STORAGE_SRID, 4490)):
            problems.append(f"{name} must be in EPSG:4326, not {frame.crs!r}")
    if isinstance(communities, gpd.GeoDataFrame):
        if "code" not in communities.columns:
            problems.append("communities need a 'code' column")
        elif len(communities) == 0:
            problems.append("no communities given")
        else:
            codes = communities["code"]
            if codes.isna().any() or (codes.astype(str).str.strip() == "").any():
                problems.append("every community needs a code")
            elif codes.astype(str).duplicated().any():
                problems.append(f"duplicate community codes: {sorted(set(codes[codes.astype(str).duplicated()]))}")
            geoms = communities.geometry.to_numpy()
            bad = (
                shapely.is_missing(geoms)
                | shapely.is_empty(geoms)
                | ~np.isin(shapely.get_type_id(geoms), (3, 6))
                | ~shapely.is_valid(geoms)
            )
            if bad.any():
                problems.append(f"communities {list(codes[bad].astype(str))} have no valid polygon geometry")
    if isinstance(previous, gpd.GeoDataFrame) and "code" not in previous.columns:
        problems.append("previous cells need a 'code' column")
    if isinstance(streets, gpd.GeoDataFrame) and len(streets):
        types = set(streets.geom_type.dropna()) - {"LineString", "MultiLineString"}
        if types:
            problems.append(f"streets must be LineString or MultiLineString, found {sorted(types)}")
    if problems:
        raise InputError("; ".join(problems))


# --- geometry helpers -------------------------------------------------------------


def _faces(lines: np.ndarray, boundary: BaseGeometry, communities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Node ``lines`` (snap-rounded), polygonize, keep the faces inside the boundary.

    Returns the faces (Polygons, metric CRS) and the index of each face's community.
    """
    noded = shapely.union_all(np.asarray(lines, dtype=object), grid_size=GRID_SIZE_M)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.area(faces) > 0]
    points = shapely.point_on_surface(faces)
    shapely.prepare(boundary)
    inside = shapely.contains(boundary, points)
    faces, points = faces[inside], points[inside]
    face_idx, comm_idx = shapely.STRtree(communities).query(points, predicate="intersects")
    comm = np.full(len(faces), -1)
    comm[face_idx[::-1]] = comm_idx[::-1]  # first community wins on (invalid) overlaps
    orphan = comm < 0
    if orphan.any():
        near = shapely.STRtree(communities).query_nearest(faces[orphan], all_matches=False)
        comm[np.flatnonzero(orphan)[near[0]]] = near[1]
        area = float(shapely.area(faces[orphan]).sum())
        log = LOGGER.warning if area > 1e-4 * boundary.area else LOGGER.debug
        log("%.1f m² of the boundary lie in no community: given to the nearest community", area)
    return faces, comm


def _containing(blocks: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Index of the block holding each face (its point on surface)."""
    face_idx, block_idx = shapely.STRtree(blocks).query(shapely.point_on_surface(faces), predicate="intersects")
    out = np.arange(len(blocks), len(blocks) + len(faces))  # unmatched: a block of its own
    out[face_idx[::-1]] = block_idx[::-1]
    return out


def _thin(faces: np.ndarray, target_m2: float) -> np.ndarray:
    """Faces thinner than :data:`THIN_PP` (Polsby-Popper) and longer than 1.5 × the target's side.

    Typically the median strip between the two carriageways of a dual road.
    """
    pp = 4.0 * math.pi * shapely.area(faces) / np.maximum(shapely.length(faces), 1e-9) ** 2
    return (pp < THIN_PP) & (shapely.length(faces) > 3.0 * math.sqrt(target_m2))


def _split_lines(block: BaseGeometry, target_m2: float) -> np.ndarray:
    """Lines that cut ``block`` into about ``area / target`` pieces along its oriented envelope.

    A thin block (see :func:`_thin`) is also cut across its length every
    ``sqrt(target)`` metres or less, so that narrow pieces get merged into the
    blocks beside them.
    """
    k = block.area / target_m2
    rect = shapely.oriented_envelope(block)
    if rect.geom_type != "Polygon":
        return np.empty(0, dtype=object)
    xy = np.asarray(rect.exterior.coords)[:4]
    e1, e2 = xy[1] - xy[0], xy[3] - xy[0]
    l1, l2 = float(np.hypot(*e1)), float(np.hypot(*e2))
    if min(l1, l2) <= 0:
        return np.empty(0, dtype=object)
    n_max = max(1, int(round(k)))
    n1 = int(np.clip(round(math.sqrt(k * l1 / l2)), 1, n_max))
    n2 = max(1, int(round(k / n1)))
    if _thin(np.array([block], dtype=object), target_m2)[0]:
        side = math.sqrt(target_m2)
        if l1 >= l2:
            n1 = max(n1, math.ceil(l1 / side))
        else:
            n2 = max(n2, math.ceil(l2 / side))
    if n1 * n2 < 2:
        return np.empty(0, dtype=object)
    lines = []
    for n, along, across in ((n1, e1, e2), (n2, e2, e1)):
        for i in range(1, n):
            a = xy[0] + along * (i / n) - across * 0.01
            b = xy[0] + along * (i / n) + across * 1.01
            lines.append(shapely.linestrings([a, b]))
    clipped = shapely.intersection(np.array(lines, dtype=object), block)
    parts = shapely.get_parts(clipped)
    return parts[np.isin(shapely.get_type_id(parts), (1, 2)) & (shapely.length(parts) > 0)]


def _square_lines(boundary: BaseGeometry, target_m2: float) -> np.ndarray:
    side = math.sqrt(target_m2)
    xmin, ymin, xmax, ymax = boundary.bounds
    xs = np.arange(math.floor(xmin / side), math.ceil(xmax / side) + 1) * side
    ys = np.arange(math.floor(ymin / side), math.ceil(ymax / side) + 1) * side
    vertical = [shapely.linestrings([[x, ys[0]], [x, ys[-1]]]) for x in xs]
    horizontal = [shapely.linestrings([[xs[0], y], [xs[-1], y]]) for y in ys]
    return np.array(vertical + horizontal, dtype=object)


def _hex_lines(boundary: BaseGeometry, target_m2: float) -> np.ndarray:
    """Edges of flat-topped hexagons of area ``target_m2`` covering the boundary's bounds."""
    r = math.sqrt(2.0 * target_m2 / (3.0 * math.sqrt(3.0)))  # circumradius
    dx, dy = 1.5 * r, math.sqrt(3.0) * r
    xmin, ymin, xmax, ymax = boundary.bounds
    cols = np.arange(math.floor(xmin / dx) - 1, math.ceil(xmax / dx) + 2)
    rows = np.arange(math.floor(ymin / dy) - 1, math.ceil(ymax / dy) + 2)
    cx, cy = np.meshgrid(cols * dx, rows * dy)
    cy = cy + np.where(np.meshgrid(cols, rows)[0] % 2 == 1, dy / 2.0, 0.0)
    angles = np.deg2rad(np.arange(0, 360, 60))
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1) * r
    coords = np.concatenate(
        [cx.reshape(-1, 1, 1) + ring[None, :, 0:1], cy.reshape(-1, 1, 1) + ring[None, :, 1:2]], axis=2
    )
    hexes = shapely.polygons(coords)
    hexes = hexes[shapely.intersects(hexes, boundary)]
    return shapely.boundary(hexes)


def _merge_small(
    faces: np.ndarray, comm: np.ndarray, block: np.ndarray, min_m2: float
) -> tuple[np.ndarray, np.ndarray]:
    """Merge faces under ``min_m2`` into the same-community neighbour with the longest shared border.

    Smallest first; a neighbour of the same block wins over a longer border
    with another block.  Faces with no same-community neighbour stay as they are.
    """
    n = len(faces)
    area = shapely.area(faces).astype(float)
    if n == 0 or not (area < min_m2).any():
        return faces, comm
    left, right = shapely.STRtree(faces).query(faces, predicate="intersects")
    keep = (left < right) & (comm[left] == comm[right])
    left, right = left[keep], right[keep]
    bounds = shapely.boundary(faces)
    border = shapely.length(shapely.intersection(bounds[left], bounds[right]))
    keep = border > 0
    nbrs: list[dict[int, float]] = [dict() for _ in range(n)]
    for i, j, b in zip(left[keep].tolist(), right[keep].tolist(), border[keep].tolist()):
        nbrs[i][j] = nbrs[i].get(j, 0.0) + b
        nbrs[j][i] = nbrs[j].get(i, 0.0) + b
    blocks: list[set[int]] = [{int(b)} for b in block]
    parent = list(range(n))
    heap = [(area[i], i) for i in range(n) if area[i] < min_m2]
    heapq.heapify(heap)
    merged = 0
    while heap:
        a, g = heapq.heappop(heap)
        if parent[g] != g or a != area[g] or not nbrs[g]:
            continue
        h = max(nbrs[g], key=lambda o: (bool(blocks[g] & blocks[o]), round(nbrs[g][o], 6), -o))
        parent[g] = h
        area[h] += area[g]
        blocks[h] |= blocks[g]
        for o, b in nbrs[g].items():
            del nbrs[o][g]
            if o != h:
                nbrs[h][o] = nbrs[h].get(o, 0.0) + b
                nbrs[o][h] = nbrs[o].get(h, 0.0) + b
        nbrs[g] = {}
        merged += 1
        if area[h] < min_m2:
            heapq.heappush(heap, (area[h], h))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    roots = np.array([root(i) for i in range(n)])
    order = np.argsort(roots, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(roots[order])) + 1)
    cells = np.array(
        [faces[g[0]] if len(g) == 1 else shapely.coverage_union_all(faces[g]) for g in groups], dtype=object
    )
    LOGGER.debug("merged %d face(s) under %.0f m² into neighbours: %d cell(s)", merged, min_m2, len(cells))
    return cells, comm[[g[0] for g in groups]]


def _as_polygons(cells: np.ndarray, comm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Valid Polygons only: repair the rare invalid union, split a multi-part one into cells."""
    bad = ~shapely.is_valid(cells)
    if bad.any():
        cells = cells.copy()
        cells[bad] = shapely.make_valid(cells[bad])
    parts, idx = shapely.get_parts(cells, return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
    if len(parts) != len(cells):
        LOGGER.debug("%d cell(s) had several parts and were split", len(parts) - len(cells))
    return parts[keep], comm[idx[keep]]


# --- codes ------------------------------------------------------------------------
def _order(cells: np.ndarray, comm_geoms: np.ndarray, comm_idx: np.ndarray, band_m: float) -> np.ndarray:
    """Sort key positions: community, band of northing from the community's top (north first), easting."""
    cent = shapely.centroid(cells)
    x, y = shapely.get_x(cent), shapely.get_y(cent)
    top = shapely.bounds(comm_geoms)[:, 3][comm_idx]
    band = np.floor((top - y) / band_m)
    return np.lexsort((np.round(y, 3) * -1, np.round(x, 3), band, comm_idx))


def _codes(
    cells: np.ndarray,
    comm_code: np.ndarray,
    comm_geoms: np.ndarray,
    comm_idx: np.ndarray,
    target_m2: float,
    previous: gpd.GeoDataFrame | None,
    metric_epsg: int,
) -> tuple[np.ndarray, np.ndarray]:
    n = len(cells)
    codes = np.full(n, None, dtype=object)
    seqs = np.zeros(n, dtype=int)
    next_seq: dict[str, int] = {}
    if previous is not None and len(previous):
        prev = previous[~previous.geometry.is_empty & previous.geometry.notna()].to_crs(metric_epsg)
        prev_geom = prev.geometry.to_numpy()
        prev_code = prev["code"].astype(str).to_numpy()
        for code in prev_code:
            for cc in set(comm_code):
                if code.startswith(cc) and code[len(cc) :].isdigit():
                    next_seq[cc] = max(next_seq.get(cc, 0), int(code[len(cc) :]))
        new_i, old_j = shapely.STRtree(prev_geom).query(cells, predicate="intersects")
        near = np.abs(shapely.area(cells[new_i]) - shapely.area(prev_geom[old_j])) < SAME_CELL_M2
        new_i, old_j = new_i[near], old_j[near]
        same = shapely.area(shapely.symmetric_difference(cells[new_i], prev_geom[old_j])) < SAME_CELL_M2
        prefix_ok = np.array([prev_code[j].startswith(comm_code[i]) for i, j in zip(new_i, old_j)], dtype=bool)
        taken: set[str] = set()
        for i, j in zip(new_i[same & prefix_ok], old_j[same & prefix_ok]):
            if codes[i] is None and prev_code[j] not in taken:
                codes[i] = prev_code[j]
                seqs[i] = int(prev_code[j][len(comm_code[i]) :])
                taken.add(prev_code[j])
        LOGGER.debug("%d of %d cell(s) kept their previous code", len(taken), n)
    for i in _order(cells, comm_geoms, comm_idx, math.sqrt(target_m2)):
        if codes[i] is not None:
            continue
        cc = comm_code[i]
        seq = next_seq.get(cc, 0) + 1
        if seq > MAX_SEQ:
            raise InputError(
                f"community {cc} needs more than {MAX_SEQ} cells at {target_m2:.0f} m² each: "
                "use a larger target area or smaller communities"
            )
        next_seq[cc] = seq
        codes[i] = f"{cc}{seq:03d}"
        seqs[i] = seq
    return codes, seqs


def tiling_errors_m2(cells: gpd.GeoDataFrame, boundary: BaseGeometry, *, metric_epsg: int) -> dict[str, float]:
    """How far ``cells`` are from tiling ``boundary``: ``{"gap_m2", "outside_m2", "overlap_m2"}``.

    Parameters
    ----------
    cells : GeoDataFrame
        Polygons in EPSG:4326.
    boundary : shapely Polygon or MultiPolygon
        EPSG:4326.
    metric_epsg : int
        Projected CRS of the measurement; all figures are m².
    """
    geoms = cells.to_crs(metric_epsg).geometry.to_numpy()
    town = reproject(boundary, STORAGE_SRID, metric_epsg)
    union = shapely.union_all(geoms)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    overlap = float(shapely.area(shapely.intersection(geoms[left[keep]], geoms[right[keep]])).sum())
    return {
        "gap_m2": float(town.difference(union).area),
        "outside_m2": float(union.difference(town).area),
        "overlap_m2": overlap,
    }
