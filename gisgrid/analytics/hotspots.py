"""Where problems concentrate: hexagon bins, Getis-Ord Gi* hotspots, recurring places.

Pure functions: GeoDataFrames in storage CRS (EPSG:4326) in, GeoDataFrames in
EPSG:4326 out.  Every distance and area is computed in the deployment's metric
CRS (:func:`gisgrid.crs.metric_crs_for` unless one is given); nothing here
touches the database or Flask.

* :func:`hex_bins` counts reports per hexagon (pointy-top, edge ``size_m``),
  including the empty hexagons of the study area, because Gi* needs the zeros.
* :func:`getis_ord` adds Gi* z-scores, conditional-permutation p-values,
  Benjamini–Hochberg false-discovery-rate corrected p-values and a hot/cold
  class at 90/95/99 % confidence.
* :func:`recurring_hotspots` finds 易反弹 places: a report of the same category
  comes back near a report within a number of days after it was closed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gisgrid.crs import GEOGRAPHIC_SAME_AS_STORAGE, STORAGE_SRID, metric_crs_for, transformer
from gisgrid.errors import InputError

LOGGER = logging.getLogger(__name__)

SQRT3 = math.sqrt(3.0)

HEX_COLUMNS = ["hex_id", "q", "r", "count", "geometry"]
GI_COLUMNS = [
    "gi_z",
    "p_sim",
    "p",
    "p_fdr",
    "significant",
    "hotspot",
    "n_neighbours",
    "neighbourhood_count",
    "expected_count",
]
RECURRING_COLUMNS = [
    "category",
    "n_recurrences",
    "n_reports",
    "first_closed_at",
    "latest_reported_at",
    "report_ids",
    "geometry",
]

HOTSPOT_CLASSES = ("hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99")
# (class suffix, largest corrected two-sided p of that confidence level), strictest first
_CONFIDENCE = ((99, 0.01), (95, 0.05), (90, 0.10))

METHOD_TEXT = (
    "Study area: only the hexagons that the town's streets or grid cells cover are tested (fields, water "
    "and land outside the town are left out), together with any hexagon holding a report. Reports are "
    "counted per hexagon, empty hexagons included as 0. For each hexagon, the Getis-Ord Gi* statistic "
    "compares the reports in the hexagon and its six neighbours with what the map's average would put "
    "there; z says by how many standard deviations. To judge whether a concentration could be chance, "
    "the hexagon keeps its own count and its neighbours are drawn at random from the other hexagons "
    "thousands of times (a permutation test). A draw that equals the observed number counts against "
    "the finding, so where most hexagons are empty, an empty neighbourhood is not called a cold spot: "
    "a cold spot needs fewer reports than almost every random draw gives. The probability p shown is the "
    "larger of the permutation result and the normal probability of z, so it is never smaller than z "
    "allows. Because hundreds of hexagons are tested at once, p is corrected with the Benjamini–Hochberg "
    "false-discovery-rate method over the study area: on a map of randomly placed reports, about one map "
    "in twenty shows a few hexagons at 95%, and none is covered in spots. A hot spot at 99% (95%, 90%) "
    "confidence has a corrected p of at most 1% (5%, 10%); a cold spot is the same for low counts. "
    "Not significant means the pattern there cannot be told apart from chance; it does not mean there "
    "is no problem."
)

METHOD_TEXT_ZH = (
    "研究区域：只检验本镇街道或单元网格覆盖的六边形（农田、水面和镇外的土地不计入），另加任何有报告的六边形。"
    "按大小相同的六边形统计报告数，没有报告的六边形计为0。对每个六边形，Getis-Ord Gi* 统计量比较该六边形及其周围"
    "六个六边形的报告数与按全图平均水平应有的数目；z 值表示相差多少个标准差。为判断这种聚集是否可能出于偶然，"
    "保持该六边形自身的计数，从其他六边形中随机抽取其相邻格数千次（置换检验）。抽到与实际数目相等的情形计为不支持结论，"
    "因此在大多数六边形没有报告时，空的邻域不会被判为冷点：冷点要求报告数少于几乎所有随机抽取的结果。"
    "显示的概率 p 取置换检验结果与 z 值正态概率中较大者，所以不会小于 z 值所允许的概率。由于同时检验数百个六边形，"
    "再在研究区域内用 Benjamini–Hochberg 错误发现率（FDR）方法校正 p：随机分布的报告，大约每二十张图中有一张"
    "显示少数几个95%置信度的六边形，不会出现大片热点或冷点。99%（95%、90%）置信度的热点是指校正后 p 不超过"
    "1%（5%、10%）的高值聚集；冷点同理，指低值聚集。“不显著”表示该处格局与随机无法区分，并不表示那里没有问题。"
)


# --- validation helpers ---------------------------------------------------------------
def _require_storage_points(points, what: str) -> gpd.GeoDataFrame:
    if not isinstance(points, gpd.GeoDataFrame):
        raise InputError(f"{what} must be a GeoDataFrame, not {type(points).__name__}")
    if points.crs is None:
        raise InputError(f"{what} have no CRS: give them in EPSG:{STORAGE_SRID}")
    epsg = CRS.from_user_input(points.crs).to_epsg()
    if epsg not in GEOGRAPHIC_SAME_AS_STORAGE:
        raise InputError(
            f"{what} are in {points.crs.to_string()}, expected EPSG:{STORAGE_SRID} (convert with gisgrid.crs first)"
        )
    if len(points) == 0:
        return points
    geoms = points.geometry.values
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    bad |= shapely.get_type_id(geoms) != 0  # 0 = Point
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{int(bad.sum())} of {len(points)} {what} are missing, empty or not points",
            row=first + 1,
            column=points.geometry.name,
        )
    x = shapely.get_x(geoms)
    y = shapely.get_y(geoms)
    out = ~(np.isfinite(x) & np.isfinite(y) & (np.abs(x) <= 180) & (np.abs(y) <= 90))
    if out.any():
        first = int(np.flatnonzero(out)[0])
        raise InputError(
            f"{int(out.sum())} {what} lie outside lon/lat range", row=first + 1, column=points.geometry.name
        )
    return points


def _positive(value: float, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a number, not {value!r}") from exc
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a positive number, not {value!r}")
    return value


# --- hexagons ----------------------------------------------------------------------------
def _axial_round(qf: np.ndarray, rf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Round fractional axial coordinates to the hexagon that contains them (cube rounding)."""
    sf = -qf - rf
    q = np.round(qf)
    r = np.round(rf)
    s = np.round(sf)
    dq = np.abs(q - qf)
    dr = np.abs(r - rf)
    ds = np.abs(s - sf)
    fix_q = (dq > dr) & (dq > ds)
    fix_r = ~fix_q & (dr > ds)
    q = np.where(fix_q, -r - s, q)
    r = np.where(fix_r, -q - s, r)
    return q.astype(np.int64), r.astype(np.int64)


def _xy_to_axial(x: np.ndarray, y: np.ndarray, size_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Metric x/y → axial (q, r) of pointy-top hexagons of edge ``size_m`` centred on (0, 0)."""
    qf = (SQRT3 / 3.0 * x - y / 3.0) / size_m
    rf = (2.0 / 3.0 * y) / size_m
    return _axial_round(qf, rf)


def _axial_to_xy(q: np.ndarray, r: np.ndarray, size_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Axial (q, r) → metric centre of the hexagon."""
    return size_m * SQRT3 * (q + r / 2.0), size_m * 1.5 * r


def hex_axial(lon: np.ndarray, lat: np.ndarray, *, size_m: float, metric_epsg: int) -> tuple[np.ndarray, np.ndarray]:
    """The axial coordinates (q, r) of the hexagon of :func:`hex_bins` holding each lon/lat point.

    The one place the lattice is applied to points in Python (the SQL form is ``gisgrid_hex_axial``,
    migration 0014_map_bins): :func:`hex_bins` and the cluster path of the hotspots
    (:mod:`gisgrid.analytics.distributed`) call it.

    Parameters
    ----------
    lon, lat : array of float
        Points in EPSG:4326, degrees.
    size_m : float
        Hexagon edge in metres.
    metric_epsg : int
        The metric CRS of the lattice.
    """
    x, y = (np.asarray(a) for a in transformer(STORAGE_SRID, metric_epsg).transform(lon, lat))
    return _xy_to_axial(x, y, float(size_m))


def hex_centres(q: np.ndarray, r: np.ndarray, *, size_m: float, metric_epsg: int) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat (EPSG:4326) of the centres of the hexagons with axial coordinates ``q``, ``r``."""
    x, y = _axial_to_xy(np.asarray(q, dtype=np.int64), np.asarray(r, dtype=np.int64), float(size_m))
    lon, lat = transformer(metric_epsg, STORAGE_SRID).transform(x, y)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def _hexes_over_rect(
    xmin: float, ymin: float, xmax: float, ymax: float, size_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Axial coordinates of every hexagon that overlaps the metric rectangle."""
    apothem = size_m * SQRT3 / 2.0
    r0 = math.floor((ymin - size_m) / (1.5 * size_m))
    r1 = math.ceil((ymax + size_m) / (1.5 * size_m))
    rs = np.arange(r0, r1 + 1)
    q0 = math.floor((xmin - apothem) / (size_m * SQRT3) - r1 / 2.0) - 1
    q1 = math.ceil((xmax + apothem) / (size_m * SQRT3) - r0 / 2.0) + 1
    qs = np.arange(q0, q1 + 1)
    qq, rr = (a.ravel() for a in np.meshgrid(qs, rs))
    cx, cy = _axial_to_xy(qq, rr, size_m)
    # a hexagon overlaps the rectangle when its centre is within the rectangle grown by
    # the apothem sideways and the circumradius vertically (pointy-top), up to corners
    keep = (cx > xmin - apothem) & (cx < xmax + apothem) & (cy > ymin - size_m) & (cy < ymax + size_m)
    return qq[keep].astype(np.int64), rr[keep].astype(np.int64)


def _hex_polygons(q: np.ndarray, r: np.ndarray, size_m: float, metric_epsg: int) -> np.ndarray:
    """Pointy-top hexagon polygons in EPSG:4326 for axial coordinates."""
    cx, cy = _axial_to_xy(q, r, size_m)
    angles = np.deg2rad(30.0 + 60.0 * np.arange(7))  # closed ring, first vertex repeated
    xs = cx[:, None] + size_m * np.cos(angles)[None, :]
    ys = cy[:, None] + size_m * np.sin(angles)[None, :]
    lon, lat = transformer(metric_epsg, STORAGE_SRID).transform(xs.ravel(), ys.ravel())
    coords = np.stack([np.asarray(lon).reshape(xs.shape), np.asarray(lat).reshape(ys.shape)], axis=-1)
    return shapely.polygons(coords)


def _hex_ids(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    return np.char.add(np.char.add(q.astype(str), "_"), r.astype(str))


def _empty_hexes(metric_epsg: int | None, size_m: float) -> gpd.GeoDataFrame:
    out = gpd.GeoDataFrame(
        {
            "hex_id": pd.Series(dtype=object),
            "q": pd.Series(dtype=np.int64),
            "r": pd.Series(dtype=np.int64),
            "count": pd.Series(dtype=np.int64),
        },
        geometry=gpd.GeoSeries([], crs=STORAGE_SRID),
        crs=STORAGE_SRID,
    )
    out.attrs.update(hex_size_m=size_m, metric_epsg=metric_epsg)
    return out


def _extent_bounds(extent) -> tuple[float, float, float, float]:
    """Lon/lat bounds of an extent given as bounds, a shapely geometry or a GeoDataFrame/GeoSeries."""
    if isinstance(extent, (gpd.GeoDataFrame, gpd.GeoSeries)):
        if extent.crs is None:
            raise InputError("extent has no CRS: give it in EPSG:4326")
        if CRS.from_user_input(extent.crs).to_epsg() not in GEOGRAPHIC_SAME_AS_STORAGE:
            raise InputError(f"extent is in {extent.crs.to_string()}, expected EPSG:{STORAGE_SRID}")
        bounds = tuple(float(v) for v in extent.total_bounds)
    elif isinstance(extent, shapely.Geometry):
        bounds = tuple(float(v) for v in extent.bounds)
    elif isinstance(extent, Sequence) and len(extent) == 4:
        try:
            bounds = tuple(float(v) for v in extent)
        except (TypeError, ValueError) as exc:
            raise InputError(f"extent bounds must be four numbers, not {extent!r}") from exc
    else:
        raise InputError(
            "extent must be (min_lon, min_lat, max_lon, max_lat), a shapely geometry "
            f"or a GeoDataFrame in EPSG:4326, not {type(extent).__name__}"
        )
    xmin, ymin, xmax, ymax = bounds
    if (
        not all(math.isfinite(v) for v in bounds)
        or xmin > xmax
        or ymin > ymax
        or not (-180 <= xmin and xmax <= 180 and -90 <= ymin and ymax <= 90)
    ):
        raise InputError(f"extent bounds {bounds!r} are not valid lon/lat (min_lon, min_lat, max_lon, max_lat)")
    return bounds


def hex_bins(
    points: gpd.GeoDataFrame, *, size_m: float = 100.0, metric_epsg: int | None = None, extent=None, pad_hexes: int = 0
) -> gpd.GeoDataFrame:
    """Count points per hexagon, including the empty hexagons of the study area.

    Hexagons are **pointy-top** (a vertex points north in the metric CRS) with
    edge length ``size_m`` metres (area ``3√3/2·size_m²``), on a lattice
    anchored at the origin of the metric CRS, so the same place gets the same
    ``hex_id`` in every run with the same ``size_m`` and ``metric_epsg``.
    Points are assigned to hexagons arithmetically (axial coordinates with cube
    rounding), without a spatial join.

    Parameters
    ----------
    points : GeoDataFrame
        Report points in EPSG:4326 (EPSG:4490 is accepted as the same).
    size_m : float, default 100
        Hexagon edge length (= circumradius) in metres.
    metric_epsg : int, optional
        Projected CRS in which hexagons are regular; default
        :func:`gisgrid.crs.metric_crs_for` the centre of the extent.
    extent : tuple or shapely geometry or GeoDataFrame, optional
        Study area in EPSG:4326, given as ``(min_lon, min_lat, max_lon, max_lat)``
        or by a geometry/frame whose bounds are used.  Every hexagon overlapping
        its bounding rectangle is returned, with count 0 when empty.  Default:
        the bounds of the points.  Hexagons holding points outside the extent
        are added too (no point is dropped); their number is logged.
    pad_hexes : int, default 0
        Rings of extra empty hexagons around the extent.  The default adds
        none: a ring of structurally empty hexagons outside the area where
        reports can occur would show up as a cold spot in :func:`getis_ord`.

    Returns
    -------
    GeoDataFrame
        In EPSG:4326 with columns ``hex_id`` (``"{q}_{r}"``, str), ``q``, ``r``
        (axial coordinates, int), ``count`` (int) and the hexagon ``geometry``,
        sorted by ``r`` then ``q``.  ``attrs`` holds ``hex_size_m`` and
        ``metric_epsg``.  Empty points and no extent give an empty frame with
        these columns.

    Raises
    ------
    InputError
        When ``points`` is not a GeoDataFrame of points in EPSG:4326, or
        ``size_m``, ``pad_hexes`` or ``extent`` is invalid.
    """
    points = _require_storage_points(points, "points")
    size_m = _positive(size_m, "size_m")
    if not isinstance(pad_hexes, (int, np.integer)) or pad_hexes < 0:
        raise InputError(f"pad_hexes must be a non-negative integer, not {pad_hexes!r}")
    bounds = _extent_bounds(extent) if extent is not None else None
    if len(points) == 0 and bounds is None:
        LOGGER.info("hex_bins: no points and no extent: empty result")
        return _empty_hexes(metric_epsg, size_m)

    lon = shapely.get_x(points.geometry.values)
    lat = shapely.get_y(points.geometry.values)
    if bounds is None:
        bounds = (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
    if metric_epsg is None:
        metric_epsg = metric_crs_for((bounds[0] + bounds[2]) / 2.0, (bounds[1] + bounds[3]) / 2.0)
    to_metric = transformer(STORAGE_SRID, metric_epsg)

    # the extent's rectangle is not a rectangle in the metric CRS: densify its edges
    t = np.linspace(0.0, 1.0, 21)
    ring_lon = np.concatenate(
        [
            bounds[0] + (bounds[2] - bounds[0]) * t,
            np.full_like(t, bounds[2]),
            bounds[2] - (bounds[2] - bounds[0]) * t,
            np.full_like(t, bounds[0]),
        ]
    )
    ring_lat = np.concatenate(
        [
            np.full_like(t, bounds[1]),
            bounds[1] + (bounds[3] - bounds[1]) * t,
            np.full_like(t, bounds[3]),
            bounds[3] - (bounds[3] - bounds[1]) * t,
        ]
    )
    ex, ey = (np.asarray(a) for a in to_metric.transform(ring_lon, ring_lat))
    pad = pad_hexes * size_m * SQRT3
    eq, er = _hexes_over_rect(ex.min() - pad, ey.min() - pad, ex.max() + pad, ey.max() + pad, size_m)

    if len(points):
        pq, pr = hex_axial(lon, lat, size_m=size_m, metric_epsg=metric_epsg)
    else:
        pq = pr = np.empty(0, dtype=np.int64)

    # one int64 key per hexagon for np.unique; |q|, |r| < 2**31 for any hexagon on Earth
    def key(q, r):
        return (q.astype(np.int64) << 32) + (r.astype(np.int64) + (1 << 31))

    point_keys, counts = np.unique(key(pq, pr), return_counts=True)
    extent_keys = np.unique(key(eq, er))
    outside = np.setdiff1d(point_keys, extent_keys, assume_unique=True)
    if len(outside):
        LOGGER.info("hex_bins: %d occupied hexagon(s) lie outside the extent and are added", len(outside))
    all_keys = np.union1d(extent_keys, point_keys)
    count = np.zeros(len(all_keys), dtype=np.int64)
    count[np.searchsorted(all_keys, point_keys)] = counts
    q = all_keys >> 32
    r = (all_keys & 0xFFFFFFFF) - (1 << 31)
    order = np.lexsort((q, r))
    q, r, count = q[order], r[order], count[order]

    out = gpd.GeoDataFrame(
        {"hex_id": _hex_ids(q, r).astype(object), "q": q, "r": r, "count": count},
        geometry=_hex_polygons(q, r, size_m, metric_epsg),
        crs=STORAGE_SRID,
    )
    out.attrs.update(hex_size_m=size_m, metric_epsg=metric_epsg)
    LOGGER.debug(
        "hex_bins: %d points in %d hexagons of %.1f m (EPSG:%d), %d empty",
        len(points),
        len(out),
        size_m,
        metric_epsg,
        int((count == 0).sum()),
    )
    return out


# --- Getis-Ord Gi* ------------------------------------------------------------------------------
_AXIAL_NEIGHBOURS = ((1, 0), (1, -1), (0, -1), (-1, 0), (-1, 1), (0, 1))


def _axial_weights(q: np.ndarray, r: np.ndarray):
    """Contiguity of hexagons from their axial coordinates (the six edge neighbours)."""
    from libpysal.weights import W

    index = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(q, r))}
    neighbours = {
        i: [index[(int(a) + dq, int(b) + dr)] for dq, dr in _AXIAL_NEIGHBOURS if (int(a) + dq, int(b) + dr) in index]
        for i, (a, b) in enumerate(zip(q, r))
    }
    return W(neighbours, silence_warnings=True)


def _axial_neighbours(q: np.ndarray, r: np.ndarray) -> list[np.ndarray]:
    """The six edge neighbours of each hexagon present, from axial coordinates (no libpysal: its import
    alone takes seconds, and the lattice needs none of it)."""
    index = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(q, r))}
    return [
        np.array(
            [index[(int(a) + dq, int(b) + dr)] for dq, dr in _AXIAL_NEIGHBOURS if (int(a) + dq, int(b) + dr) in index],
            dtype=np.int64,
        )
        for a, b in zip(q, r)
    ]


def _neighbours(bins, distance_band_m, k, metric_epsg) -> list[np.ndarray]:
    if distance_band_m is None and k is None and {"q", "r"} <= set(bins.columns):
        return _axial_neighbours(bins["q"].to_numpy(), bins["r"].to_numpy())
    w = _weights(bins, distance_band_m, k, metric_epsg)
    return [np.asarray([j for j in w.neighbors[i] if j != i], dtype=np.int64) for i in w.id_order]


def gi_star_z(y: np.ndarray, neighbours: list[np.ndarray]) -> np.ndarray:
    """The analytical Getis-Ord Gi* z-score with binary weights, the bin itself included.

    ``(Σ_{j∈N(i)∪{i}} y_j − W_i·ȳ) / (s·√((n·W_i − W_i²)/(n−1)))`` with
    ``W_i = |N(i)| + 1`` and ``s`` the population standard deviation of ``y``
    (as esda's ``G_Local(star=True, transform="B").Zs``, which a test checks).
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    card = np.array([len(nb) for nb in neighbours], dtype=float) + 1.0
    local = y + np.array([y[nb].sum() for nb in neighbours])
    mean = y.mean()
    s = np.sqrt((y**2).mean() - mean**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (local - card * mean) / (s * np.sqrt((n * card - card**2) / (n - 1)))
    return np.where(np.isfinite(z), z, 0.0)


def _weights(bins: gpd.GeoDataFrame, distance_band_m: float | None, k: int | None, metric_epsg: int | None):
    from libpysal import weights

    if distance_band_m is None and k is None:
        if {"q", "r"} <= set(bins.columns):
            return _axial_weights(bins["q"].to_numpy(), bins["r"].to_numpy())
        return weights.Queen.from_dataframe(bins, use_index=False, silence_warnings=True)
    if metric_epsg is None:
        lon0, lat0, lon1, lat1 = bins.total_bounds
        metric_epsg = metric_crs_for((lon0 + lon1) / 2.0, (lat0 + lat1) / 2.0)
    # centroids taken in the metric CRS, never in degrees
    centres = bins.geometry.to_crs(metric_epsg).centroid
    xy = np.column_stack([centres.x.to_numpy(), centres.y.to_numpy()])
    if k is not None:
        return weights.KNN.from_array(xy, k=k, silence_warnings=True)
    return weights.DistanceBand.from_array(xy, threshold=distance_band_m, binary=True, silence_warnings=True)


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (step-up, monotone, capped at 1).

    A test is significant at false-discovery rate ``q`` when its adjusted
    p-value is ``<= q``; this is the same decision as the BH cut-off of
    :func:`esda.fdr`, expressed per test so several levels can be read at once.
    """
    p = np.asarray(p, dtype=float)
    n = len(p)
    if n == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order] * n / np.arange(1, n + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(ranked, 1.0)
    return out


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def _normal_sf(x: np.ndarray) -> np.ndarray:
    """Upper tail of the standard normal (math.erfc: scipy.stats alone takes seconds to import)."""
    return _ERFC(np.asarray(x, dtype=float) / math.sqrt(2.0)).astype(float) / 2.0


def _conditional_tails(
    y: np.ndarray, neighbours: list[np.ndarray], permutations: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided conditional-permutation p-values of each bin's neighbourhood sum, ties counted as extreme.

    For bin ``i`` with ``k`` neighbours, its own value stays and ``k`` values are
    drawn without replacement from the other ``n - 1`` bins, ``permutations``
    times (one shared draw of indices for all bins, as esda's ``crand``).
    ``upper = (#{draw >= observed} + 1) / (permutations + 1)`` and ``lower``
    likewise with ``<=``: a draw *equal* to the observed sum counts against
    the finding in both directions, so a neighbourhood of empty bins where
    most bins are empty is neither hot nor cold.
    """
    n = len(y)
    rng = np.random.default_rng(seed)
    k_max = max((len(nb) for nb in neighbours), default=0)
    upper = np.ones(n)
    lower = np.ones(n)
    if k_max == 0 or n < 2:
        return upper, lower
    k_max = min(k_max, n - 1)
    # k_max distinct indices in [0, n-1) per permutation: draw, then redraw rows with repeats
    draws = rng.integers(0, n - 1, size=(permutations, k_max))
    while True:
        srt = np.sort(draws, axis=1)
        dup = (np.diff(srt, axis=1) == 0).any(axis=1)
        if not dup.any():
            break
        draws[dup] = rng.integers(0, n - 1, size=(int(dup.sum()), k_max))
    observed = np.array([y[nb].sum() for nb in neighbours])
    card = np.array([len(nb) for nb in neighbours])
    chunk = max(1, 4_000_000 // max(1, permutations * k_max))
    for k in range(1, k_max + 1):
        rows = np.flatnonzero(card == k)
        first = draws[:, :k]
        for lo in range(0, len(rows), chunk):
            b = rows[lo : lo + chunk]
            idx = first[None, :, :] + (first[None, :, :] >= b[:, None, None])  # skip the bin itself
            sums = y[idx].sum(axis=2)
            obs = observed[b][:, None]
            upper[b] = ((sums >= obs).sum(axis=1) + 1) / (permutations + 1)
            lower[b] = ((sums <= obs).sum(axis=1) + 1) / (permutations + 1)
    return upper, lower


def _classify(z: np.ndarray, p_fdr: np.ndarray) -> np.ndarray:
    cls = np.full(len(z), "not_significant", dtype=object)
    for level, alpha in reversed(_CONFIDENCE):  # loosest first, stricter levels overwrite
        sig = p_fdr <= alpha
        cls[sig & (z > 0)] = f"hot_{level}"
        cls[sig & (z < 0)] = f"cold_{level}"
    return cls


def getis_ord(
    bins: gpd.GeoDataFrame,
    *,
    value_column: str = "count",
    permutations: int = 9999,
    seed: int = 0,
    fdr: float = 0.05,
    distance_band_m: float | None = None,
    k: int | None = None,
) -> gpd.GeoDataFrame:
    """Getis-Ord Gi* hot and cold spots with permutation inference and FDR correction.

    Weights are binary contiguity on the hexagons (the six edge neighbours, from
    ``q``/``r`` when present, else libpysal Queen contiguity of the polygons),
    or a distance band / ``k`` nearest neighbours between centroids in the
    metric CRS; the diagonal is set to 1 (Gi* includes the cell itself,
    ``star=True`` in :class:`esda.G_Local`).  The weights are kept binary
    rather than row-standardised: the permutation test is identical, ties
    between integer counts compare exactly, and the z-score is the classical
    Gi* one (from esda).  The conditional permutation holds the bin's own count
    fixed and draws its neighbours from the other bins, so a bin is hot when
    its neighbourhood is high, not merely its own count; a draw *equal* to the
    observed sum counts against the finding (:func:`_conditional_tails`), so
    where most bins are empty an empty neighbourhood is not a cold spot.
    ``p_sim`` is that one-sided pseudo p-value in the direction of ``gi_z``;
    doubled it is two-sided (hot *or* cold is not chosen in advance).  ``p`` is
    the larger of it and the normal two-sided p of ``gi_z``, so the p shown
    beside a z is never smaller than that z allows; ``p_fdr`` corrects ``p``
    over all bins given (the study area) with Benjamini–Hochberg.  Classes:
    ``hot_99`` when ``gi_z > 0`` and ``p_fdr <= 0.01``, ``hot_95`` for ``<= 0.05``, ``hot_90``
    for ``<= 0.10``; ``cold_*`` likewise for ``gi_z < 0``.

    Parameters
    ----------
    bins : GeoDataFrame
        Polygons (e.g. from :func:`hex_bins`) in EPSG:4326 with a non-negative
        numeric ``value_column``, empty bins included as 0.
    value_column : str, default "count"
    permutations : int, default 9999
        Conditional permutations per bin.  The smallest attainable p_sim is
        ``1/(permutations+1)``; after FDR over ``n`` bins a lone hot bin can
        reach 99 % only if ``2·n/(permutations+1) <= 0.01``, hence the default
        of 9999 rather than esda's 999 (a warning is logged when it is too few).
    seed : int, default 0
        Seed of the permutations: the same input gives the same classes.
    fdr : float, default 0.05
        False-discovery rate for the boolean ``significant`` column.
    distance_band_m : float, optional
        Neighbours are bins whose centroids are within this many metres.
    k : int, optional
        Neighbours are the ``k`` nearest bins.

    Returns
    -------
    GeoDataFrame
        A copy of ``bins`` with ``gi_z`` (analytical Gi* z-score), ``p_sim``,
        ``p`` (two-sided, never below the normal p of ``gi_z``), ``p_fdr``
        (BH-adjusted ``p``), ``significant`` (``p_fdr <= fdr``), ``hotspot``
        (one of :data:`HOTSPOT_CLASSES`), ``n_neighbours``,
        ``neighbourhood_count`` (reports in the bin and its neighbours) and
        ``expected_count`` (that sum at the map's mean).  An empty input gives
        an empty frame with these columns; bins with all-equal values are all
        ``not_significant``.

    Raises
    ------
    InputError
        When the frame, the value column or a parameter is invalid.
    """
    if not isinstance(bins, gpd.GeoDataFrame):
        raise InputError(f"bins must be a GeoDataFrame, not {type(bins).__name__}")
    if value_column not in bins.columns:
        raise InputError(f"bins have no {value_column!r} column (columns: {', '.join(map(str, bins.columns))})")
    if not isinstance(permutations, (int, np.integer)) or permutations < 99:
        raise InputError(f"permutations must be an integer >= 99, not {permutations!r}")
    if not (isinstance(fdr, (int, float)) and 0 < fdr < 1):
        raise InputError(f"fdr must be between 0 and 1, not {fdr!r}")
    if distance_band_m is not None and k is not None:
        raise InputError("give either distance_band_m or k, not both")
    if distance_band_m is not None:
        distance_band_m = _positive(distance_band_m, "distance_band_m")
    if k is not None and (not isinstance(k, (int, np.integer)) or k < 1):
        raise InputError(f"k must be a positive integer, not {k!r}")

    out = bins.copy()
    n = len(out)
    if n == 0:
        for col in GI_COLUMNS:
            out[col] = pd.Series(dtype=bool if col == "significant" else object if col == "hotspot" else float)
        return out
    if bins.crs is None:
        raise InputError("bins have no CRS: give them in EPSG:4326")
    y = pd.to_numeric(out[value_column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(y) | (y < 0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{int(bad.sum())} bins have a missing, negative or non-numeric value", row=first + 1, column=value_column
        )

    if n < 3 or np.ptp(y) == 0:
        LOGGER.info(
            "getis_ord: %d bins with %s: nothing can be significant",
            n,
            "all-equal values" if n >= 3 else "too few bins",
        )
        out["gi_z"] = 0.0
        out["p_sim"] = 1.0
        out["p"] = 1.0
        out["p_fdr"] = 1.0
        out["significant"] = False
        out["hotspot"] = "not_significant"
        out["n_neighbours"] = 0
        out["neighbourhood_count"] = y
        out["expected_count"] = float(y.mean()) if n else 0.0
        return out

    if 2.0 * n / (permutations + 1) > 0.01:
        LOGGER.warning(
            "getis_ord: with %d bins and %d permutations a small hot spot cannot reach 99%% "
            "after FDR; use at least %d permutations",
            n,
            permutations,
            int(math.ceil(200 * n)) - 1,
        )

    neighbours = _neighbours(out, distance_band_m, k, bins.attrs.get("metric_epsg"))
    # The analytical Gi* z (binary weights, the bin included).  esda's permutation p-value is
    # not used: it counts ties with the observed sum as more extreme in the low direction, so an
    # empty hexagon among empty hexagons got p = 1/(P+1) and was called a 99 % cold spot
    # (issue 21); the tails are counted here instead.
    z = gi_star_z(y, neighbours)
    upper, lower = _conditional_tails(y, neighbours, int(permutations), seed)
    # two-sided in the direction of z; a bin exactly at its expectation is not a finding
    p_sim = np.where(z > 0, upper, np.where(z < 0, lower, 1.0))
    p_perm = np.minimum(1.0, 2.0 * p_sim)
    # never below what z allows: the normal two-sided p of the z shown in the popup
    p_z = 2.0 * _normal_sf(np.abs(z))
    p = np.maximum(p_perm, p_z)
    p_fdr = bh_adjust(p)
    card = np.array([len(nb) for nb in neighbours])
    observed = y + np.array([y[nb].sum() for nb in neighbours])
    out["gi_z"] = z
    out["p_sim"] = p_sim
    out["p"] = p
    out["p_fdr"] = p_fdr
    out["significant"] = p_fdr <= fdr
    out["n_neighbours"] = card
    out["neighbourhood_count"] = observed
    out["expected_count"] = (card + 1) * y.mean()
    out["hotspot"] = _classify(z, p_fdr)
    LOGGER.debug("getis_ord: %d bins, %d significant at FDR %.2f", n, int(out["significant"].sum()), fdr)
    return out


# --- recurring hotspots (易反弹) ------------------------------------------------------------------
def _as_times(series: pd.Series, column: str) -> pd.Series:
    try:
        t = pd.to_datetime(series, errors="raise")
    except (ValueError, TypeError) as exc:
        raise InputError(f"column {column!r} holds values that are not dates/times", column=column) from exc
    if isinstance(t.dtype, pd.DatetimeTZDtype):
        t = t.dt.tz_convert("UTC")
    return t


def _nanoseconds(t: pd.Series) -> np.ndarray:
    """Datetimes (UTC when tz-aware) as int64 nanoseconds; NaT becomes the int64 minimum."""
    if isinstance(t.dtype, pd.DatetimeTZDtype):
        t = t.dt.tz_localize(None)
    return t.to_numpy(dtype="datetime64[ns]").view(np.int64)


def recurring_hotspots(
    reports: gpd.GeoDataFrame,
    *,
    within_days: int = 14,
    radius_m: float = 50.0,
    metric_epsg: int | None = None,
    id_column: str = "id",
) -> gpd.GeoDataFrame:
    """Places where a problem of the same category comes back after it was closed (易反弹).

    A *recurrence* is a pair of reports A, B of the same ``category`` whose
    points are at most ``radius_m`` apart (in the metric CRS) with
    ``0 < B.reported_at - A.closed_at <= within_days``.  Reports linked by
    recurrences (also through chains) form one *place*.

    Parameters
    ----------
    reports : GeoDataFrame
        Report points in EPSG:4326 with columns ``category``, ``reported_at``
        (datetime, tz-aware or naive) and ``closed_at`` (nullable: open reports
        can recur onto closed ones but not be the closed one).  Both time
        columns must be tz-aware or both naive.
    within_days : int, default 14
        Days after closure within which a new report counts as a recurrence.
    radius_m : float, default 50
        Distance in metres within which two reports are at the same place.
    metric_epsg : int, optional
        Projected CRS for the distances; default from the reports' centre.
    id_column : str, default "id"
        Column holding report ids; the frame's index when the column is absent.

    Returns
    -------
    GeoDataFrame
        In EPSG:4326, one row per place, sorted by ``n_recurrences`` descending:
        ``category``, ``n_recurrences`` (distinct reports that came back after
        a closure), ``n_reports`` (reports involved), ``first_closed_at``
        (earliest closure followed by a recurrence), ``latest_reported_at``,
        ``report_ids`` (sorted list) and ``geometry`` (the centroid of the
        involved reports).  No recurrence gives an empty frame with these columns.

    Raises
    ------
    InputError
        When the frame, a column or a parameter is invalid.
    """
    reports = _require_storage_points(reports, "reports")
    missing = [c for c in ("category", "reported_at", "closed_at") if c not in reports.columns]
    if missing:
        raise InputError(f"reports lack column(s) {', '.join(missing)}")
    within_days = _positive(within_days, "within_days")
    radius_m = _positive(radius_m, "radius_m")

    def empty() -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(
            {c: pd.Series(dtype=object) for c in RECURRING_COLUMNS[:-1]},
            geometry=gpd.GeoSeries([], crs=STORAGE_SRID),
            crs=STORAGE_SRID,
        )

    if len(reports) == 0:
        return empty()
    reported = _as_times(reports["reported_at"], "reported_at")
    closed = _as_times(reports["closed_at"], "closed_at")
    if reported.isna().any():
        first = int(np.flatnonzero(reported.isna().to_numpy())[0])
        raise InputError("reported_at is missing", row=first + 1, column="reported_at")
    if closed.notna().any() and isinstance(reported.dtype, pd.DatetimeTZDtype) != isinstance(
        closed.dtype, pd.DatetimeTZDtype
    ):
        raise InputError("reported_at and closed_at must both carry a time zone or both not")
    ids = reports[id_column].to_numpy() if id_column in reports.columns else reports.index.to_numpy()

    lon = shapely.get_x(reports.geometry.values)
    lat = shapely.get_y(reports.geometry.values)
    if metric_epsg is None:
        metric_epsg = metric_crs_for((lon.min() + lon.max()) / 2.0, (lat.min() + lat.max()) / 2.0)
    x, y = (np.asarray(a) for a in transformer(STORAGE_SRID, metric_epsg).transform(lon, lat))
    pts = shapely.points(x, y)
    tree = shapely.STRtree(pts)
    a, b = tree.query(pts, predicate="dwithin", distance=radius_m)

    category = reports["category"].to_numpy()
    rep_ns = _nanoseconds(reported)
    closed_na = closed.isna().to_numpy()
    clo_ns = _nanoseconds(closed)
    keep = (a != b) & (category[a] == category[b]) & ~closed_na[a]
    a, b = a[keep], b[keep]
    gap = rep_ns[b] - clo_ns[a]
    keep = (gap > 0) & (gap <= int(within_days * 86400e9))
    a, b = a[keep], b[keep]
    if len(a) == 0:
        LOGGER.info("recurring_hotspots: no recurrence among %d reports", len(reports))
        return empty()

    n = len(reports)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    involved = np.unique(np.concatenate([a, b]))
    frame = pd.DataFrame(
        {
            "row": involved,
            "place": label[involved],
            "x": x[involved],
            "y": y[involved],
            "category": category[involved],
            "id": ids[involved],
            "reported_at": reported.to_numpy()[involved],
        }
    )
    pairs = pd.DataFrame({"place": label[a], "b": b, "closed_a": closed.to_numpy()[a]})
    per_place = frame.groupby("place").agg(
        category=("category", "first"),
        n_reports=("row", "size"),
        x=("x", "mean"),
        y=("y", "mean"),
        latest_reported_at=("reported_at", "max"),
        report_ids=("id", lambda s: sorted(s.tolist())),
    )
    per_pair = pairs.groupby("place").agg(n_recurrences=("b", "nunique"), first_closed_at=("closed_a", "min"))
    places = per_place.join(per_pair)
    clon, clat = transformer(metric_epsg, STORAGE_SRID).transform(places["x"].to_numpy(), places["y"].to_numpy())
    result = gpd.GeoDataFrame(
        places[RECURRING_COLUMNS[:-1]].reset_index(drop=True),
        geometry=shapely.points(np.asarray(clon), np.asarray(clat)),
        crs=STORAGE_SRID,
    )
    result["n_recurrences"] = result["n_recurrences"].astype(np.int64)
    result["n_reports"] = result["n_reports"].astype(np.int64)
    if isinstance(reported.dtype, pd.DatetimeTZDtype):
        result["latest_reported_at"] = pd.to_datetime(result["latest_reported_at"], utc=True)
        result["first_closed_at"] = pd.to_datetime(result["first_closed_at"], utc=True)
    result = result.sort_values(
        ["n_recurrences", "latest_reported_at"], ascending=[False, False], kind="stable"
    ).reset_index(drop=True)
    LOGGER.debug("recurring_hotspots: %d places from %d recurrence pairs", len(result), len(a))
    return result
