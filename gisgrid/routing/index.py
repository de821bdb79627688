"""The assignment index, in memory: segments, cells and jurisdictions ready to route every point.

All geometry work happens in one metric CRS (:func:`gisgrid.crs.metric_crs_for`)
and is vectorised: the layers sit in shapely STRtrees and a batch of points is
answered by a handful of whole-array queries, never by a Python loop over
points; a large batch's queries are split over a few threads (shapely releases
the GIL while querying).  A deployment across metric zones is a
:class:`PartitionedIndex`, which routes each point by the part whose polygons
cover it.  The rules are those of :mod:`gisgrid.routing.rules` (the address
street rule's pure part is :mod:`gisgrid.routing.address`); points are checked
by the one point rule (:mod:`gisgrid.io.points`); the owner valid on a report's
date is found by :class:`gisgrid.ownership.history.OwnerHistory`.

Entry points: :meth:`AssignmentIndex.build` then :meth:`AssignmentIndex.assign`
(metric x/y) and :func:`gisgrid.routing.frames.assign_frame` (a table in any supported CRS).  The
result columns ``target_type``, ``rule``, ``reason``, ``ruleset_version``,
``error_code`` and ``error_message`` are pandas categoricals (small
vocabularies, cheap for millions of rows); ``target_id`` and ``segment_id`` are
nullable ``Int64``.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gisgrid.crs import STORAGE_SRID, metric_crs_for, parse_crs, transformer
from gisgrid.errors import CRSError, InputError
from gisgrid.io.points import (
    check_areas,
    in_areas,
)
from gisgrid.routing.address import (
    StreetNames,
    pick_address_segments,
    road_class_rank,
)
from gisgrid.routing.rules import (
    _ERROR_LIST,
    _R_ADDRESS,
    _R_AREA,
    _R_CATEGORY,
    _R_CELL,
    _R_JURISDICTION,
    _R_NEAREST,
    _R_UNASSIGNED,
    _RULE_TARGET,
    ERROR_CODES,
    JURISDICTION_LEVELS,
    OUTSIDE_COVERAGE,
    RULES,
    TARGET_TYPES,
    TIE_DECIMALS,
    RuleSet,
    _encode_categories,
    _norm_road_class,
    _RowErrors,
)

LOGGER = logging.getLogger(__name__)


# --- the index ----------------------------------------------------------------------------
#: A point whose named streets have more segments than this finds its candidates through the line tree.
_ADDRESS_PAIRS_MAX = 64
#: Smallest share of a batch worth a thread of its own.
_PARALLEL_MIN_POINTS = 25_000


def _default_threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def _pick_min(groups: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Positions of the first pair of each group, ordering pairs by ``keys`` (first key most significant)."""
    if groups.size == 0:
        return np.empty(0, dtype=np.int64)
    order = np.lexsort((*reversed(keys), groups))
    g = groups[order]
    first = np.ones(len(g), dtype=bool)
    first[1:] = g[1:] != g[:-1]
    return order[first]


def _ids(values: pd.Series, label: str, problems: list[str]) -> np.ndarray:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(numbers) | (numbers != np.round(numbers))
    if bad.any():
        problems.append(f"{label}: {int(bad.sum())} rows without an integer id")
        return np.zeros(len(values), dtype=np.int64)
    ids = numbers.astype(np.int64)
    dup = pd.Series(ids).duplicated(keep=False).to_numpy()
    if dup.any():
        problems.append(f"{label}: duplicate ids {sorted(set(ids[dup].tolist()))[:10]}")
    return ids


def _to_metric(series: gpd.GeoSeries, epsg: int) -> np.ndarray:
    """Geometries reprojected to ``epsg`` as a numpy array; invalid polygons repaired (logged)."""
    geoms = series.to_crs(epsg).to_numpy()
    present = ~shapely.is_missing(geoms)
    invalid = present & ~shapely.is_valid(geoms)
    if invalid.any():
        LOGGER.warning("%d invalid geometries repaired with make_valid before indexing", int(invalid.sum()))
        geoms = geoms.copy()
        geoms[invalid] = shapely.make_valid(geoms[invalid])
    return geoms


@dataclass(frozen=True)
class _Raw:
    """Results for valid points, as arrays: rule code, target id, segment position, distance, reason code."""

    rule: np.ndarray
    target: np.ndarray
    segment: np.ndarray
    distance: np.ndarray
    reason: np.ndarray


class AssignmentIndex:
    """Segments, grid cells and jurisdictions in one metric CRS, in STRtrees, ready to route points.

    Build it with :meth:`build`; it is read-only afterwards and can serve any
    number of batches.
    """

    def __getstate__(self) -> dict:
        # the thread pool and its lock stay in this process: an index sent to a worker of
        # gisgrid.routing.distributed starts its own pool there on first use
        state = self.__dict__.copy()
        state["_pool"] = None
        del state["_pool_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pool_lock = threading.Lock()

    def __init__(
        self,
        *,
        ruleset: RuleSet,
        metric_epsg: int,
        extent: tuple[float, float, float, float] | None,
        segment_ids: np.ndarray,
        road_classes: Sequence[str | None],
        lines: np.ndarray,
        areas: np.ndarray,
        cell_ids: np.ndarray,
        cells: np.ndarray,
        jurisdiction_ids: np.ndarray,
        jurisdiction_levels: Sequence[str | None],
        jurisdictions: np.ndarray,
        threads: int | None = None,
        segment_streets: Sequence[str | None] | None = None,
    ):
        self.ruleset = ruleset
        self.threads = _default_threads() if threads is None else max(1, int(threads))
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.metric_epsg = int(metric_epsg)
        self.extent = extent
        self.areas = extent  # where points are expected, for the swapped lon/lat check (gisgrid.io.points)
        self._seg_id = np.asarray(segment_ids, dtype=np.int64)
        self._lines = lines
        self._line_tree = shapely.STRtree(lines)
        has_area = ~(shapely.is_missing(areas) | shapely.is_empty(areas))
        self._area_seg = np.flatnonzero(has_area)
        self._area_tree = shapely.STRtree(areas[has_area])
        self._cell_id = np.asarray(cell_ids, dtype=np.int64)
        self._cell_tree = shapely.STRtree(cells)
        self._jur_id = np.asarray(jurisdiction_ids, dtype=np.int64)
        self._jur_tree = shapely.STRtree(jurisdictions)
        rank = {level: i for i, level in enumerate(JURISDICTION_LEVELS)}
        level_rank = np.array(
            [rank.get(str(lv).strip().lower(), len(rank)) for lv in jurisdiction_levels], dtype=np.int64
        )
        order = np.lexsort((self._jur_id, shapely.area(jurisdictions), level_rank))
        self._jur_rank = np.empty(len(order), dtype=np.int64)
        self._jur_rank[order] = np.arange(len(order))
        self._compile_routes([None if rc is None else _norm_road_class(rc) for rc in road_classes])
        self._compile_address_streets(segment_streets, road_classes)

    # .. construction ..
    @classmethod
    def build(
        cls,
        segments: gpd.GeoDataFrame,
        cells: gpd.GeoDataFrame | None = None,
        jurisdictions: gpd.GeoDataFrame | None = None,
        *,
        ruleset: RuleSet,
        metric_epsg: int | None = None,
        threads: int | None = None,
    ) -> AssignmentIndex:
        """Project the layers once to a metric CRS and index them.

        Parameters
        ----------
        segments : geopandas.GeoDataFrame
            Columns ``id`` (int), ``road_class`` (optional), ``area`` (optional
            frontage polygon or multipolygon per segment, may be None; a
            GeoSeries or shapely objects in the frame's CRS), ``street``
            (optional: the street's name, for rule (a′); ``street_name`` as
            :func:`gisgrid.network.segments.build_segments` names it is read
            too) and the centerline as the active geometry.  Usually in EPSG:4326.
        cells : geopandas.GeoDataFrame, optional
            Grid cells: ``id`` and polygon geometry.
        jurisdictions : geopandas.GeoDataFrame, optional
            ``id``, ``level`` ('community', 'town' or 'county') and polygon geometry.
        ruleset : RuleSet
            The routing rules (keyword only).
        metric_epsg : int, optional
            Projected CRS for all distances; chosen from the segments' centre
            with :func:`gisgrid.crs.metric_crs_for` when omitted.
        threads : int, optional
            Threads that share a large batch's tree queries (shapely releases
            the GIL while querying); the usable CPUs, at most 4, by default.

        Raises
        ------
        InputError
            Listing every problem found: missing columns, no CRS, missing or
            duplicate ids, segments without a centerline.
        """
        if not isinstance(ruleset, RuleSet):
            raise InputError(f"ruleset must be a RuleSet, not {type(ruleset).__name__}")
        problems: list[str] = []
        layers = {"segments": segments, "cells": cells, "jurisdictions": jurisdictions}
        for name, layer in layers.items():
            if layer is None:
                continue
            if not isinstance(layer, gpd.GeoDataFrame):
                problems.append(f"{name} must be a GeoDataFrame, not {type(layer).__name__}")
                continue
            if layer.crs is None:
                problems.append(f"{name} have no CRS")
            if "id" not in layer.columns:
                problems.append(f"{name} have no 'id' column")
        if (
            jurisdictions is not None
            and isinstance(jurisdictions, gpd.GeoDataFrame)
            and "level" not in jurisdictions.columns
        ):
            problems.append("jurisdictions have no 'level' column")
        if problems:
            raise InputError("cannot build the assignment index: " + "; ".join(problems))

        if metric_epsg is None:
            if len(segments) == 0:
                raise InputError("cannot choose a metric CRS without segments: give metric_epsg")
            xmin, ymin, xmax, ymax = segments.geometry.to_crs(STORAGE_SRID).total_bounds
            metric_epsg = metric_crs_for((xmin + xmax) / 2, (ymin + ymax) / 2)
        crs = parse_crs(metric_epsg)
        if crs.kind != "projected":
            raise CRSError(f"metric_epsg must be a projected EPSG code, not {metric_epsg!r}")

        seg_ids = _ids(segments["id"], "segments", problems)
        lines = _to_metric(segments.geometry, crs.epsg)
        no_line = shapely.is_missing(lines) | shapely.is_empty(lines)
        if no_line.any():
            problems.append(f"segments without a centerline: ids {seg_ids[no_line][:10].tolist()}")
        if "area" in segments.columns:
            area = segments["area"]
            if not isinstance(area, gpd.GeoSeries):
                area = gpd.GeoSeries(area, index=segments.index, crs=segments.crs)
            elif area.crs is None:
                area = area.set_crs(segments.crs)
            areas = _to_metric(area, crs.epsg)
        else:
            areas = np.full(len(segments), None, dtype=object)
        road_classes = segments["road_class"].tolist() if "road_class" in segments.columns else [None] * len(segments)
        street_column = next((c for c in ("street", "street_name") if c in segments.columns), None)
        segment_streets = segments[street_column].tolist() if street_column else None
        road_classes = [None if rc is None or (isinstance(rc, float) and math.isnan(rc)) else rc for rc in road_classes]

        def layer_arrays(layer: gpd.GeoDataFrame | None, label: str) -> tuple[np.ndarray, np.ndarray]:
            if layer is None or len(layer) == 0:
                return np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
            ids = _ids(layer["id"], label, problems)
            geoms = _to_metric(layer.geometry, crs.epsg)
            keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
            return ids[keep], geoms[keep]

        cell_ids, cell_geoms = layer_arrays(cells, "cells")
        jur_ids, jur_geoms = layer_arrays(jurisdictions, "jurisdictions")
        levels: list = []
        if jurisdictions is not None and len(jurisdictions):
            keep = ~(jurisdictions.geometry.isna() | jurisdictions.geometry.is_empty).to_numpy()
            levels = jurisdictions["level"].to_numpy(dtype=object)[keep].tolist()
            unknown = sorted({str(lv) for lv in levels if str(lv).strip().lower() not in JURISDICTION_LEVELS})
            if unknown:
                LOGGER.warning("jurisdiction levels %s are not %s: ranked last", unknown, JURISDICTION_LEVELS)
        if problems:
            raise InputError("cannot build the assignment index: " + "; ".join(problems))

        extent_layers = (
            [jurisdictions]
            if jurisdictions is not None and len(jurisdictions)
            else [layer for layer in (segments, cells) if layer is not None and len(layer)]
        )
        extent = None
        if extent_layers:
            bounds = np.array([layer.geometry.to_crs(STORAGE_SRID).total_bounds for layer in extent_layers])
            if np.isfinite(bounds).all():
                extent = (
                    float(bounds[:, 0].min()),
                    float(bounds[:, 1].min()),
                    float(bounds[:, 2].max()),
                    float(bounds[:, 3].max()),
                )
        index = cls(
            ruleset=ruleset,
            metric_epsg=crs.epsg,
            extent=extent,
            segment_ids=seg_ids,
            road_classes=road_classes,
            lines=lines,
            areas=areas,
            cell_ids=cell_ids,
            cells=cell_geoms,
            jurisdiction_ids=jur_ids,
            jurisdiction_levels=levels,
            jurisdictions=jur_geoms,
            threads=threads,
            segment_streets=segment_streets,
        )
        LOGGER.info("assignment index: %s", index)
        return index

    def _compile_routes(self, road_classes: list[str | None]) -> None:
        """Category routes as lookup tables indexed by (category, road class of the point's segment)."""
        routes = self.ruleset.category_routes
        self._cat_codes = pd.Index(list(routes), dtype=object)
        names = sorted({rc for rc in road_classes if rc is not None})
        lookup = {rc: j for j, rc in enumerate(names)}
        none = len(names)  # column for "no segment" or "no road class"
        self._seg_rc = np.array([none if rc is None else lookup[rc] for rc in road_classes], dtype=np.int64)
        self._route_dept = np.full((len(routes), none + 1), -1, dtype=np.int64)
        self._route_reason = np.full((len(routes), none + 1), -1, dtype=np.int64)
        self.reasons: list[str] = [OUTSIDE_COVERAGE]
        for k, (code, spec) in enumerate(routes.items()):
            if spec["mode"] == "department":
                self._route_dept[k, :] = spec["department_id"]
                self._route_reason[k, :] = len(self.reasons)
                self.reasons.append(f"category {code} routes to department {spec['department_id']}")
            elif spec["mode"] == "by_road_class":
                for rc, dept in spec["road_classes"].items():
                    if rc in lookup:  # no segment has that class: nothing to route
                        self._route_dept[k, lookup[rc]] = dept
                        self._route_reason[k, lookup[rc]] = len(self.reasons)
                        self.reasons.append(f"category {code} on a {rc} road routes to department {dept}")

    def _compile_address_streets(self, segment_streets: Sequence[str | None] | None, road_classes: Sequence) -> None:
        """Street codes, road-class ranks and explanations for rule (a′) (:mod:`gisgrid.routing.address`)."""
        self._streets = StreetNames(segment_streets if segment_streets is not None else [None] * len(self._seg_id))
        self._seg_rank = np.array([road_class_rank(rc) for rc in road_classes], dtype=np.int64)
        self._address_reason = len(self.reasons)  # reasons of street k: this + k (one street), + streets + k (crossing)
        crossing = {
            "first_written": "the street written first",
            "road_class": "the street of the higher road class",
        }[self.ruleset.intersection_rule]
        self.reasons.extend(f"address street {name}: the written address names it" for name in self._streets.names)
        self.reasons.extend(
            f"address street {name}: {crossing} of the crossing the address names" for name in self._streets.names
        )

    def __repr__(self) -> str:
        return (
            f"<AssignmentIndex rules {self.ruleset.version}, EPSG:{self.metric_epsg}, {self.threads} threads: "
            f"{len(self._seg_id)} segments ({len(self._area_seg)} with areas), {len(self._cell_id)} cells, "
            f"{len(self._jur_id)} jurisdictions>"
        )

    # .. queries ..
    def assign(
        self,
        x: Sequence[float] | np.ndarray,
        y: Sequence[float] | np.ndarray,
        *,
        categories: Sequence[str | None] | pd.Series | None = None,
        address_streets: Sequence[str | None] | pd.Series | None = None,
        cross_streets: Sequence[str | None] | pd.Series | None = None,
    ) -> pd.DataFrame:
        """Route points given in the index's metric CRS.

        Parameters
        ----------
        x, y : array-like of float
            Easting and northing in ``metric_epsg``.  Non-finite values give
            a ``missing_coordinates`` error row.
        categories : array-like of str, optional
            Category code per point; blank means none (routed by location); a
            code unknown to the rule set gives an ``unknown_category`` error row.
        address_streets, cross_streets : array-like of str, optional
            Per point, the street its written address names (rule a′), and the
            second street of a written crossing; blank where none (the point
            was given as coordinates, or located from a landmark).

        Returns
        -------
        pandas.DataFrame
            One row per input point, in input order, with the columns
            :data:`RESULT_COLUMNS`: ``target_type`` (department, segment, cell,
            jurisdiction or NaN), ``target_id``, ``rule`` (:data:`RULES`),
            ``distance_m`` (from the point to ``segment_id``'s centerline: 0
            inside its area; NaN when no segment was found), ``segment_id`` (the
            segment found by rules b/c, also when a department won), ``reason``,
            ``ruleset_version``, ``error_code`` and ``error_message``.
            ``target_type``, ``rule``, ``reason`` and the error columns are
            categoricals.
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if x.shape != y.shape or x.ndim != 1:
            raise InputError(f"x and y must be 1-d arrays of one length, not {x.shape} and {y.shape}")
        n = len(x)
        errors = _RowErrors(n)
        cat = (
            np.full(n, -1, dtype=np.int64)
            if categories is None
            else _encode_categories(categories, n, self._cat_codes, errors)
        )
        errors.add(~(np.isfinite(x) & np.isfinite(y)), "missing_coordinates", ERROR_CODES["missing_coordinates"])
        ok = np.flatnonzero(errors.ok)
        streets = self._street_codes(n, address_streets, cross_streets)
        raw = self._assign_raw(x[ok], y[ok], cat[ok], None if streets is None else (streets[0][ok], streets[1][ok]))
        return self._frame(n, ok, raw, errors)

    def _street_codes(self, n: int, address_streets: Any, cross_streets: Any) -> tuple[np.ndarray, np.ndarray] | None:
        """Street codes (-1: none) of the written streets and crossing streets of ``n`` points, or None."""
        if address_streets is None:
            return None
        for label, values in (("address_streets", address_streets), ("cross_streets", cross_streets)):
            if values is not None and len(values) != n:
                raise InputError(f"{label}: expected {n} values, got {len(values)}")
        first = self._streets.encode(address_streets)
        second = self._streets.encode(cross_streets) if cross_streets is not None else np.full(n, -1, dtype=np.int64)
        return first, np.where(first >= 0, second, -1)

    def _query(self, tree: shapely.STRtree, geoms: np.ndarray, **kwargs: Any) -> np.ndarray:
        """``tree.query(geoms, **kwargs)``, split over :attr:`threads` threads for a large batch."""
        n = len(geoms)
        parts = min(self.threads, n // _PARALLEL_MIN_POINTS)
        if parts <= 1:
            return tree.query(geoms, **kwargs)
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="gisgrid-assign")
        cuts = np.linspace(0, n, parts + 1).astype(np.int64)
        futures = [self._pool.submit(tree.query, geoms[a:b], **kwargs) for a, b in zip(cuts[:-1], cuts[1:])]
        pairs = [f.result() for f in futures]
        for pair, start in zip(pairs, cuts[:-1]):
            pair[0] += start
        return np.concatenate(pairs, axis=1)

    def _assign_raw(
        self, x: np.ndarray, y: np.ndarray, cat: np.ndarray, streets: tuple[np.ndarray, np.ndarray] | None = None
    ) -> _Raw:
        """The rules on finite metric coordinates; ``cat`` is -1 (no category) or an index into the routes;
        ``streets`` the codes of the written street and crossing street per point (-1: none)."""
        m = len(x)
        t0 = time.perf_counter()
        points = shapely.points(x, y)
        seg = np.full(m, -1, dtype=np.int64)  # position of the segment found by (b)/(c)
        dist = np.full(m, np.nan)
        rule = np.full(m, _R_UNASSIGNED, dtype=np.int8)
        target = np.zeros(m, dtype=np.int64)

        # (b) segment areas, boundary included; ties: nearest centerline, then lowest id
        pi, ai = self._query(self._area_tree, points, predicate="intersects")
        if pi.size:
            cand = self._area_seg[ai]
            multi = np.bincount(pi, minlength=m)[pi] > 1
            seg[pi[~multi]] = cand[~multi]
            if multi.any():
                mp, ms = pi[multi], cand[multi]
                d = np.round(shapely.distance(points[mp], self._lines[ms]), TIE_DECIMALS)
                chosen = _pick_min(mp, d, self._seg_id[ms])
                seg[mp[chosen]] = ms[chosen]
            found = seg >= 0
            dist[found] = 0.0
            rule[found] = _R_AREA
        # (c) nearest centerline within the tolerance; ties: lowest id
        left = np.flatnonzero(seg < 0)
        if left.size and len(self._lines):
            tolerance = self.ruleset.tolerance_m
            lp, ls = self._query(
                self._line_tree, points[left], predicate="dwithin", distance=tolerance + 10.0**-TIE_DECIMALS
            )
            d = shapely.distance(points[left[lp]], self._lines[ls])
            dq = np.round(d, TIE_DECIMALS)
            within = dq <= tolerance  # the bound, like ties, to the micrometre: 30 m projected twice is still 30 m
            lp, ls, d, dq = lp[within], ls[within], d[within], dq[within]
            if lp.size:
                chosen = _pick_min(lp, dq, self._seg_id[ls])
                hit = left[lp[chosen]]
                seg[hit] = ls[chosen]
                dist[hit] = d[chosen]
                rule[hit] = _R_NEAREST
        # (a′) the street a written address names wins over (b)/(c)
        address_reason = None
        if streets is not None and len(self._streets):
            address_reason = self._address_street(points, streets, seg, dist, rule)
        found = seg >= 0
        target[found] = self._seg_id[seg[found]]
        # (d) grid cell, boundary included; ties: lowest id
        left = np.flatnonzero(~found)
        if left.size and len(self._cell_id):
            cp, cc = self._query(self._cell_tree, points[left], predicate="intersects")
            chosen = _pick_min(cp, self._cell_id[cc])
            hit = left[cp[chosen]]
            target[hit] = self._cell_id[cc[chosen]]
            rule[hit] = _R_CELL
        # (e) smallest jurisdiction
        left = np.flatnonzero(rule == _R_UNASSIGNED)
        if left.size and len(self._jur_id):
            jp, jj = self._query(self._jur_tree, points[left], predicate="intersects")
            chosen = _pick_min(jp, self._jur_rank[jj])
            hit = left[jp[chosen]]
            target[hit] = self._jur_id[jj[chosen]]
            rule[hit] = _R_JURISDICTION
        reason = np.where(rule == _R_UNASSIGNED, 0, -1)
        if address_reason is not None:
            reason = np.where(address_reason >= 0, address_reason, reason)
        # (a) category routes override; by road class they need the segment found above
        routed = np.flatnonzero(cat >= 0)
        if routed.size and self._route_dept.size:
            k = cat[routed]
            none = self._route_dept.shape[1] - 1
            rc = (
                np.where(seg[routed] >= 0, self._seg_rc[np.maximum(seg[routed], 0)], none)
                if len(self._seg_rc)
                else np.full(routed.size, none)
            )
            dept = self._route_dept[k, rc]
            win = dept >= 0
            hit = routed[win]
            rule[hit] = _R_CATEGORY
            target[hit] = dept[win]
            reason[hit] = self._route_reason[k[win], rc[win]]
        LOGGER.debug("assigned %d points in %.3f s", m, time.perf_counter() - t0)
        return _Raw(rule=rule, target=target, segment=seg, distance=dist, reason=reason)

    #: :meth:`coverage` levels: outside, within reach of a rule, inside the index's territory.
    OUTSIDE, REACH, TERRITORY = 0, 1, 2

    def coverage(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """How much of this index covers each point in storage lon/lat, vectorised.

        Returns
        -------
        numpy.ndarray of int8
            :attr:`TERRITORY` (2) inside a jurisdiction of the index (without
            jurisdictions: inside a grid cell or segment area), :attr:`REACH`
            (1) where some rule of this index still applies (a cell, a segment
            area, a centerline within the tolerance), :attr:`OUTSIDE` (0)
            elsewhere.  Boundaries count as inside.
        """
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        out = np.zeros(len(lon), dtype=np.int8)
        finite = np.flatnonzero(np.isfinite(lon) & np.isfinite(lat))
        if not finite.size:
            return out
        x, y = transformer(STORAGE_SRID, self.metric_epsg).transform(lon[finite], lat[finite])
        points = shapely.points(np.asarray(x, dtype=float), np.asarray(y, dtype=float))

        def hit(tree: shapely.STRtree, **kwargs: Any) -> np.ndarray:
            return finite[np.unique(self._query(tree, points, **kwargs)[0])] if len(tree) else finite[:0]

        polygons = [hit(self._cell_tree, predicate="intersects"), hit(self._area_tree, predicate="intersects")]
        reach = [
            *polygons,
            hit(self._line_tree, predicate="dwithin", distance=self.ruleset.tolerance_m + 10.0**-TIE_DECIMALS),
        ]
        for where in reach:
            out[where] = self.REACH
        territory = [hit(self._jur_tree, predicate="intersects")] if len(self._jur_id) else polygons
        for where in territory:
            out[where] = self.TERRITORY
        return out

    def _address_street(
        self,
        points: np.ndarray,
        streets: tuple[np.ndarray, np.ndarray],
        seg: np.ndarray,
        dist: np.ndarray,
        rule: np.ndarray,
    ) -> np.ndarray:
        """Rule (a′) in place on ``seg``/``dist``/``rule``; returns the reason code per point (-1: not routed by it)."""
        first, second = streets
        reason = np.full(len(points), -1, dtype=np.int64)
        named = np.flatnonzero(first >= 0)
        if not named.size:
            return reason
        tolerance = self.ruleset.address_tolerance_m
        # candidates: the segments of the named streets; a street of many segments (a long road) through the
        # line tree instead, so that a batch on it never expands into points × all its segments
        a, b = first[named], second[named]
        short = (self._streets.segment_count(a) + self._streets.segment_count(b)) <= _ADDRESS_PAIRS_MAX
        rows = np.flatnonzero(short)
        first_p, first_s = self._streets.pairs(rows, a[rows])
        crossing = rows[b[rows] >= 0]
        second_p, second_s = self._streets.pairs(crossing, b[crossing])
        long_rows = np.flatnonzero(~short)
        tree_p, tree_s = self._query(
            self._line_tree, points[named[long_rows]], predicate="dwithin", distance=tolerance + 10.0**-TIE_DECIMALS
        )
        lp = np.concatenate([first_p, second_p, long_rows[tree_p]])
        ls = np.concatenate([first_s, second_s, tree_s])
        d = shapely.distance(points[named[lp]], self._lines[ls])
        at, to, crossing = pick_address_segments(
            lp,
            ls,
            d,
            first=first[named],
            second=second[named],
            segment_street=self._streets.segment_street,
            segment_rank=self._seg_rank,
            segment_id=self._seg_id,
            tolerance_m=tolerance,
            intersection_rule=self.ruleset.intersection_rule,
            tie_decimals=TIE_DECIMALS,
        )
        hit = named[at]
        seg[hit] = to
        dist[hit] = shapely.distance(points[hit], self._lines[to])
        rule[hit] = _R_ADDRESS
        street = self._streets.segment_street[to]
        reason[hit] = self._address_reason + street + np.where(crossing, len(self._streets), 0)
        return reason

    def _route_storage(
        self,
        n: int,
        ok: np.ndarray,
        lon: np.ndarray,
        lat: np.ndarray,
        cat: np.ndarray,
        errors: _RowErrors,
        row_index: pd.Index | None,
        streets: tuple[Any, Any] | None = None,
    ) -> pd.DataFrame:
        """Result columns for ``n`` rows whose valid ones (positions ``ok``) are in storage lon/lat;
        ``streets`` the written street and crossing-street names of those valid rows (rule a′)."""
        mx, my = transformer(STORAGE_SRID, self.metric_epsg).transform(lon, lat)
        codes = None if streets is None else self._street_codes(len(ok), *streets)
        raw = self._assign_raw(np.asarray(mx, dtype=float), np.asarray(my, dtype=float), cat, codes)
        return self._frame(n, ok, raw, errors, index=row_index)

    def route_point(
        self,
        lon: float,
        lat: float,
        category: str | None = None,
        *,
        address_street: str | None = None,
        cross_street: str | None = None,
    ) -> dict:
        """One point in storage lon/lat, without pandas: the fast path of single requests (the API).

        ``address_street`` (and ``cross_street`` for a crossing) name the street
        of a written address, for rule (a′); a point given as coordinates has none.

        Returns a dict with ``rule``, ``target_type``, ``target_id``, ``segment_id``,
        ``distance_m``, ``reason`` and ``ruleset_version``.

        Raises
        ------
        InputError
            For an unknown category code.
        """
        cat = -1
        if category:
            pos = self._cat_codes.get_indexer([category])[0]
            if pos < 0:
                raise InputError(f"unknown category {category!r}")
            cat = int(pos)
        x, y = transformer(STORAGE_SRID, self.metric_epsg).transform(lon, lat)
        codes = None if not address_street else self._street_codes(1, [address_street], [cross_street])
        raw = self._assign_raw(np.array([x], dtype=float), np.array([y], dtype=float), np.array([cat]), codes)
        rule = int(raw.rule[0])
        ttype = int(_RULE_TARGET[rule])
        seg = int(raw.segment[0])
        reason = int(raw.reason[0])
        return {
            "rule": RULES[rule],
            "target_type": TARGET_TYPES[ttype] if ttype >= 0 else None,
            "target_id": int(raw.target[0]) if ttype >= 0 else None,
            "segment_id": int(self._seg_id[seg]) if seg >= 0 else None,
            "distance_m": None if math.isnan(raw.distance[0]) else round(float(raw.distance[0]), 3),
            "reason": self.reasons[reason] if reason >= 0 else None,
            "ruleset_version": self.ruleset.version,
        }

    def _frame(
        self, n: int, ok: np.ndarray, raw: _Raw, errors: _RowErrors, index: pd.Index | None = None
    ) -> pd.DataFrame:
        """The result columns for ``n`` rows, the valid ones at positions ``ok``."""
        rule = np.full(n, -1, dtype=np.int8)
        rule[ok] = raw.rule
        ttype = np.where(rule >= 0, _RULE_TARGET[rule], -1).astype(np.int8)
        target = np.zeros(n, dtype=np.int64)
        target[ok] = raw.target
        seg_pos = np.full(n, -1, dtype=np.int64)
        seg_pos[ok] = raw.segment
        seg_id = np.where(seg_pos >= 0, self._seg_id[np.maximum(seg_pos, 0)] if len(self._seg_id) else 0, 0)
        dist = np.full(n, np.nan)
        dist[ok] = np.round(raw.distance, 3)
        reason = np.full(n, -1, dtype=np.int64)
        reason[ok] = raw.reason
        msg_codes = np.full(n, -1, dtype=np.int64)
        msg_labels: Sequence[str] = []
        if errors.message is not None:
            bad = np.flatnonzero(errors.message != None)  # noqa: E711 - elementwise
            codes, msg_labels = pd.factorize(errors.message[bad])
            msg_codes[bad] = codes
        columns = {
            "target_type": pd.Categorical.from_codes(ttype, TARGET_TYPES),
            "target_id": pd.arrays.IntegerArray(target, ttype < 0),
            "rule": pd.Categorical.from_codes(rule, RULES),
            "distance_m": dist,
            "segment_id": pd.arrays.IntegerArray(seg_id, seg_pos < 0),
            "reason": pd.Categorical.from_codes(reason, self.reasons),
            "ruleset_version": pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [self.ruleset.version]),
            "error_code": pd.Categorical.from_codes(errors.code, _ERROR_LIST),
            "error_message": pd.Categorical.from_codes(msg_codes, list(msg_labels)),
        }
        return pd.DataFrame(columns, index=index if index is not None else pd.RangeIndex(n))


class PartitionedIndex:
    """Several :class:`AssignmentIndex`, one per metric CRS, for a deployment that spans zones.

    A point is routed by the part that covers it (:meth:`AssignmentIndex.coverage`):
    the part whose territory (its jurisdiction polygons) contains it, else a part
    one of whose rules still reaches it (a cell, a segment area, a centerline
    within the tolerance), the first such part on a tie.  Boxes only prefilter:
    two neighbouring towns in different zones can have overlapping boxes, and a
    point of the second must not be routed against the first's index.  A point
    no part covers is outside coverage in any part (it goes to the first part
    whose box holds it, else the first part).  All parts share one rule set.
    Accepted wherever an index is (:func:`assign_frame`, :func:`assign_file`).
    ``areas`` are the lon/lat boxes served, for the swapped lon/lat check
    (:func:`gisgrid.io.points.check_points`); the parts' boxes by default.
    """

    def __init__(
        self,
        parts: Sequence[tuple[tuple[float, float, float, float], AssignmentIndex]],
        *,
        areas: Sequence | None = None,
    ):
        if not parts:
            raise InputError("a partitioned index needs at least one part")
        self.parts = [(tuple(map(float, box)), index) for box, index in parts]
        first = self.parts[0][1]
        if any(index.ruleset != first.ruleset for _, index in self.parts):
            raise InputError("all parts of a partitioned index must share one rule set")
        self.ruleset = first.ruleset
        self._cat_codes = first._cat_codes
        boxes = np.array([box for box, _ in self.parts])
        self.extent = (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())
        # the areas served, for the swapped lon/lat check: as given (gisgrid.db.areas), else the parts' boxes
        self.areas = list(check_areas(areas) or ()) or [box for box, _ in self.parts]
        # the prefilter box of each part, widened by the tolerance (in degrees, generously: 1° ≥ 40 km up to 68°N)
        margin = self.ruleset.tolerance_m / 40_000.0
        self._boxes = boxes + np.array([-margin, -margin, margin, margin])

    def part_of(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """The position of the part that routes each point (storage lon/lat), vectorised."""
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        if len(self.parts) == 1 or not len(lon):
            return np.zeros(len(lon), dtype=np.int64)
        inside = np.array([in_areas(lon, lat, tuple(box)) for box in self._boxes])  # parts × points
        which = inside.argmax(axis=0)  # the first box holding the point; part 0 when none does
        shared = np.flatnonzero(inside.sum(axis=0) > 1)
        if shared.size:  # in several boxes: the polygons decide
            best = np.zeros(shared.size, dtype=np.int8)
            for k in range(len(self.parts) - 1, -1, -1):  # backwards: on a tie the first part wins
                at = np.flatnonzero(inside[k, shared])
                if at.size:
                    level = self.parts[k][1].coverage(lon[shared[at]], lat[shared[at]])
                    take = level >= np.maximum(best[at], 1)
                    which[shared[at[take]]] = k
                    best[at[take]] = level[take]
        return which.astype(np.int64)

    def _route_storage(
        self,
        n: int,
        ok: np.ndarray,
        lon: np.ndarray,
        lat: np.ndarray,
        cat: np.ndarray,
        errors: _RowErrors,
        row_index: pd.Index | None,
        streets: tuple[Any, Any] | None = None,
    ) -> pd.DataFrame:
        which = self.part_of(lon, lat)
        result = None
        for k in np.unique(which) if len(which) else [0]:
            sel = which == k
            mine = None if streets is None else tuple(None if s is None else np.asarray(s)[sel] for s in streets)
            frame = self.parts[k][1]._route_storage(n, ok[sel], lon[sel], lat[sel], cat[sel], errors, row_index, mine)
            if result is None:
                result = frame
                if len(self.parts) > 1:
                    result["reason"] = result["reason"].astype(object)
            else:
                rows = ok[sel]
                for column in ("target_type", "target_id", "rule", "distance_m", "segment_id", "reason"):
                    result.iloc[rows, result.columns.get_loc(column)] = frame[column].iloc[rows].to_numpy()
        return result

    def route_point(self, lon: float, lat: float, category: str | None = None, **streets: str | None) -> dict:
        k = int(self.part_of(np.array([lon]), np.array([lat]))[0])
        return self.parts[k][1].route_point(lon, lat, category, **streets)
