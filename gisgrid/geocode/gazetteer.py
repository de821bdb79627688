"""The gazetteer: street names, address points, intersections and house-number series.

Built from GeoDataFrames (no database): streets with ``name`` (and optionally
``aliases``, ``name_en``, ``name_osm``), optional address points with
``street`` and ``housenumber``, optional landmarks (``name``) and optional
jurisdictions (``name``, polygons).  All geometry work is done in the metric
CRS of the area (:func:`gisgrid.crs.metric_crs_for`); results are returned as
lon/lat (EPSG:4326).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from rapidfuzz import fuzz, process
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import Delaunay, QhullError

from gisgrid.crs import STORAGE_SRID, metric_crs_for, transformer
from gisgrid.errors import InputError
from gisgrid.geocode.parse import (
    _place_and_street,
    base_key,
    has_cjk,
    number_key,
    parse_house_number,
    road_of_section,
    split_bilingual,
    street_key,
)
from gisgrid.io.points import POINT_ERRORS, check_points, parse_coordinates
from gisgrid.io.rows import RowProblems

LOGGER = logging.getLogger(__name__)

#: Name columns read from the streets frame when present, besides ``aliases``.
NAME_COLUMNS = ("name", "name_zh", "name_en", "name_osm", "alt_name", "old_name")
#: Streets closer than this without touching still count as meeting (digitising gaps), metres.
INTERSECTION_TOLERANCE_M = 5.0
#: Crossing points of one street pair further apart than this are reported as several crossings, metres.
CROSSING_CLUSTER_M = 150.0
#: Key of ``Street.sides`` for the numbers of both sides together.
BOTH_SIDES = 2
#: Pieces of one street name further apart than this are different streets (人民路 in two towns), metres.
SAME_STREET_GAP_M = 1000.0
#: Fuzzy-match cut-offs (rapidfuzz ``fuzz.ratio`` on keys, 0–100) for Latin and Chinese keys.
FUZZY_CUTOFF_LATIN = 85.0
FUZZY_CUTOFF_CJK = 75.0


@dataclass
class Street:
    """One named street: all its centerline pieces and its house-number series (metric CRS)."""

    sid: int
    name: str
    names: set[str] = field(default_factory=set)
    geometry: shapely.Geometry | None = None  # merged (Multi)LineString, metric; None if known from addresses only
    axis: shapely.LineString | None = None  # one continuous line along it, for house numbers (street_axis)
    points: dict[str, np.ndarray] = field(default_factory=dict)  # number key -> mean point (x, y)
    by_number: dict[int, np.ndarray] = field(default_factory=dict)  # single number -> mean point of all suffixes
    ranges: list[tuple[int, int, np.ndarray]] = field(default_factory=list)  # (lo, hi, point)
    numbered: list[tuple[int, int, np.ndarray]] = field(default_factory=list)  # (middle number, span, point)
    # parity -> rows (number, x, y, measure, offset, span), sorted by number
    series: dict[int, np.ndarray] = field(default_factory=dict)
    # parity (or BOTH_SIDES) -> the same rows, one per number (_one_per_number)
    sides: dict[int, np.ndarray] = field(default_factory=dict)
    codes: frozenset[str] = frozenset()  # codes of the jurisdictions its pieces lie in, when known

    @property
    def has_numbers(self) -> bool:
        return bool(self.numbered)


@dataclass(frozen=True)
class Area:
    """A jurisdiction the gazetteer covers: its name, a point inside it (metric) and its division code."""

    name: str
    point: np.ndarray
    code: str | None = None


@dataclass(frozen=True)
class StreetMatch:
    """Streets found for a written name: ids, the name matched, a score 0–100 and how."""

    sids: tuple[int, ...]
    name: str
    score: float
    how: str  # 'exact', 'base', 'fuzzy', 'contained'
    found: str = ""  # the known name or alias a loose match (base, fuzzy) found, to compare with the written one


class Gazetteer:
    """Street names → geometries, address points, intersections, house-number interpolation.

    Build with :meth:`build`; look up with :meth:`find_street`, :meth:`address_point`,
    :meth:`interpolate`, :meth:`intersection`, :meth:`street_point`.
    """

    def __init__(self, metric_epsg: int):
        self.metric_epsg = metric_epsg
        self.streets: dict[int, Street] = {}
        self.keys: dict[str, set[int]] = defaultdict(set)
        self.base_keys: dict[str, set[int]] = defaultdict(set)
        self.key_names: dict[str, str] = {}  # key -> the first name or alias indexed under it
        self.intersections: dict[frozenset, list[np.ndarray]] = defaultdict(list)
        self.landmarks: dict[str, tuple[str, np.ndarray]] = {}
        self.jurisdictions: dict[str, Area] = {}
        self._key_list: list[str] = []
        self._key_list_cjk: list[str] = []
        self._landmark_list: list[str] = []
        self._to_lonlat = transformer(metric_epsg, STORAGE_SRID)
        self._street_tree: shapely.STRtree | None = None
        self._home_countries: frozenset[str] | None = None

    # --- building -------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        streets: gpd.GeoDataFrame,
        addresses: gpd.GeoDataFrame | None = None,
        *,
        landmarks: gpd.GeoDataFrame | None = None,
        jurisdictions: gpd.GeoDataFrame | None = None,
        metric_epsg: int | None = None,
    ) -> Gazetteer:
        """Build a gazetteer.

        Parameters
        ----------
        streets : geopandas.GeoDataFrame
            Named centerlines (LineString/MultiLineString) with a ``name`` column;
            optional ``aliases`` (list of str, or str separated by ``;``) and other
            name columns (:data:`NAME_COLUMNS`).  Bilingual names such as
            ``'多石街 To Shek Street'`` are indexed under both parts.  Features
            sharing a ``name`` form one street, unless they lie more than
            :data:`SAME_STREET_GAP_M` apart (the same name in two towns).  An
            optional ``jurisdiction_code`` column lets administrative prefixes
            of an address (龙城街道…) choose between such streets.
        addresses : geopandas.GeoDataFrame, optional
            Address points with ``street`` and ``housenumber`` (text).  A street
            named only here is still found (located by its address points).
        landmarks : geopandas.GeoDataFrame, optional
            Named places (``name``), for addresses such as ``…医院门口``.
        jurisdictions : geopandas.GeoDataFrame, optional
            Named areas (``name``, optional division ``code``) the gazetteer
            covers; administrative prefixes of an address are checked against
            their names and codes.
        metric_epsg : int, optional
            Metric CRS; by default chosen from the centre of the streets.

        Raises
        ------
        InputError
            When a frame lacks a CRS or a required column.
        """
        _check_frame(streets, "streets", ("name",))
        if metric_epsg is None:
            x0, y0, x1, y1 = streets.to_crs(STORAGE_SRID).total_bounds
            metric_epsg = metric_crs_for((x0 + x1) / 2, (y0 + y1) / 2)
        gaz = cls(metric_epsg)
        gaz._add_streets(streets)
        if addresses is not None and len(addresses):
            _check_frame(addresses, "addresses", ("street", "housenumber"))
            gaz._add_addresses(addresses)
        if landmarks is not None and len(landmarks):
            _check_frame(landmarks, "landmarks", ("name",))
            for name, pt in zip(landmarks["name"], gaz._metric_points(landmarks), strict=True):
                if isinstance(name, str) and name.strip() and pt is not None:
                    gaz.landmarks[street_key(name)] = (name, pt)
            gaz._landmark_list = list(gaz.landmarks)
        if jurisdictions is not None and len(jurisdictions):
            _check_frame(jurisdictions, "jurisdictions", ("name",))
            codes = (
                jurisdictions["code"]
                if "code" in jurisdictions.columns
                else pd.Series(None, index=jurisdictions.index, dtype=object)
            )
            for name, code, pt in zip(jurisdictions["name"], codes, gaz._metric_points(jurisdictions), strict=True):
                if isinstance(name, str) and name.strip() and pt is not None:
                    gaz.jurisdictions[street_key(name)] = Area(name, pt, _code_text(code))
        gaz._key_list = [k for k in gaz.keys if not has_cjk(k)]
        gaz._key_list_cjk = [k for k in gaz.keys if has_cjk(k)]
        gaz._build_series()
        LOGGER.info(
            "gazetteer: %d streets, %d keys, %d address points, %d intersections (EPSG:%d)",
            len(gaz.streets),
            len(gaz.keys),
            sum(len(s.points) for s in gaz.streets.values()),
            len(gaz.intersections),
            metric_epsg,
        )
        return gaz

    def _metric(self, frame: gpd.GeoDataFrame) -> np.ndarray:
        return np.asarray(frame.geometry.to_crs(self.metric_epsg).values, dtype=object)

    def _metric_points(self, frame: gpd.GeoDataFrame) -> list[np.ndarray | None]:
        geoms = self._metric(frame)
        out = []
        for g in geoms:
            if g is None or g.is_empty:
                out.append(None)
            else:
                p = g if g.geom_type == "Point" else g.representative_point()
                out.append(np.array([p.x, p.y]))
        return out

    def _index_name(self, sid: int, name: str) -> None:
        parts = split_bilingual(name)
        # a section is also found by its road's name: 大埔公路 for 大埔公路－沙田段
        for part in [name, *parts, *filter(None, map(road_of_section, parts))]:
            key = street_key(part)
            if key:
                self.keys[key].add(sid)
                self.key_names.setdefault(key, part)
                self.base_keys[base_key(key)].add(sid)
                self.streets[sid].names.add(part)

    def _new_street(self, name: str, geometry=None) -> Street:
        sid = len(self.streets)
        street = Street(sid=sid, name=name, geometry=geometry)
        self.streets[sid] = street
        self._index_name(sid, name)
        return street

    def _add_streets(self, streets: gpd.GeoDataFrame) -> None:
        """One :class:`Street` per name and place: pieces of a name within :data:`SAME_STREET_GAP_M`
        of each other form one street; a name used again far away (人民路 in two towns) is another."""
        frame = streets[streets["name"].notna() & streets.geometry.notna()]
        geoms = self._metric(frame)
        codes = (
            frame["jurisdiction_code"].to_numpy(dtype=object)
            if "jurisdiction_code" in frame.columns
            else np.full(len(frame), None, dtype=object)
        )
        names = frame["name"].astype(str).to_numpy()
        row_sid = np.full(len(frame), -1)
        part_geoms, part_sids = [], []
        for name in dict.fromkeys(names):
            rows = np.flatnonzero(names == name)
            pieces = shapely.get_parts(np.array(geoms[rows], dtype=object), return_index=True)
            # LineStrings with length only: empty parts and single-point lines carry no street
            is_line = (shapely.get_type_id(pieces[0]) == 1) & (shapely.length(pieces[0]) > 0)
            lines, owner = pieces[0][is_line], rows[pieces[1][is_line]]
            if not len(lines):
                continue
            for members in _places(lines):
                street = self._new_street(name, shapely.line_merge(shapely.multilinestrings(lines[members])))
                street.axis = street_axis(lines[members])
                street.codes = frozenset(c for c in map(_code_text, codes[owner[members]]) if c)
                row_sid[owner[members]] = street.sid
                part_geoms.extend(lines[members])
                part_sids.extend([street.sid] * len(members))
        # other names and aliases of every feature, attached to the street of its own piece
        name_cols = [c for c in NAME_COLUMNS if c in frame.columns and c != "name"]
        for col in [*name_cols, "aliases"]:
            if col not in frame.columns:
                continue
            for sid, value in zip(row_sid, frame[col], strict=True):
                if sid < 0:
                    continue
                values = (
                    value
                    if isinstance(value, (list, tuple, np.ndarray))
                    else (str(value).split(";") if isinstance(value, str) else [])
                )
                for alias in values:
                    if isinstance(alias, str) and alias.strip():
                        self._index_name(int(sid), alias.strip())
        self._find_intersections(np.array(part_geoms, dtype=object), np.array(part_sids))

    def _find_intersections(self, lines: np.ndarray, sids: np.ndarray) -> None:
        """Crossing points of differently named streets, from the centerline pieces (vectorised)."""
        if len(lines) < 2:
            return
        tree = shapely.STRtree(lines)
        left, right = tree.query(lines, predicate="dwithin", distance=INTERSECTION_TOLERANCE_M)
        keep = (left < right) & (sids[left] != sids[right])
        left, right = left[keep], right[keep]
        if not len(left):
            return
        inter = shapely.intersection(lines[left], lines[right])
        empty = shapely.is_empty(inter)
        points = shapely.centroid(inter)
        if empty.any():  # near miss within the tolerance: middle of the shortest line between them
            gaps = shapely.shortest_line(lines[left[empty]], lines[right[empty]])
            points[empty] = shapely.line_interpolate_point(gaps, 0.5, normalized=True)
        xy = shapely.get_coordinates(points)
        for a, b, p in zip(sids[left], sids[right], xy, strict=True):
            self.intersections[frozenset((int(a), int(b)))].append(p)

    def _add_addresses(self, addresses: gpd.GeoDataFrame) -> None:
        pts = self._metric_points(addresses)
        acc: dict[tuple[int, str], list] = defaultdict(list)
        acc_num: dict[tuple[int, int], list] = defaultdict(list)
        acc_range: dict[tuple[int, int, int], list] = defaultdict(list)
        acc_series: dict[tuple[int, int, int], list] = defaultdict(list)
        for street_text, number_text, pt in zip(addresses["street"], addresses["housenumber"], pts, strict=True):
            if pt is None or not isinstance(street_text, str) or not street_text.strip():
                continue
            sid = self._street_for_address(street_text, pt)
            n, suffix, end, _ = parse_house_number(number_text if isinstance(number_text, str) else None)
            if n is None:
                continue
            acc[(sid, number_key(n, suffix, end))].append(pt)
            lo, hi = (n, n) if end is None else (min(n, end), max(n, end))
            if hi == lo:  # a single number ('16', '16b'); a range is found through ``ranges``
                acc_num[(sid, n)].append(pt)
            if hi > lo:
                acc_range[(sid, lo, hi)].append(pt)
            acc_series[(sid, _middle_number(lo, hi), hi - lo)].append(pt)
        for (sid, key), p in acc.items():
            self.streets[sid].points[key] = np.mean(p, axis=0)
        for (sid, n), p in acc_num.items():
            self.streets[sid].by_number[n] = np.mean(p, axis=0)
        for (sid, lo, hi), p in acc_range.items():
            self.streets[sid].ranges.append((lo, hi, np.mean(p, axis=0)))
        for (sid, mid, span), p in acc_series.items():
            self.streets[sid].numbered.append((mid, span, np.mean(p, axis=0)))

    def _street_for_address(self, text: str, pt: np.ndarray) -> int:
        """The street an address point's street field names (the nearest of that name); a new
        (geometry-less) street if none."""
        for candidate in (text, _place_and_street(text)[1], *split_bilingual(text)):
            sids = self.keys.get(street_key(candidate))
            if sids:
                if len(sids) == 1:
                    return next(iter(sids))
                here = shapely.points(pt)
                return min(
                    sids,
                    key=lambda s: (
                        self.streets[s].geometry is None,
                        0.0 if self.streets[s].geometry is None else shapely.distance(self.streets[s].geometry, here),
                        s,
                    ),
                )
        return self._new_street(_place_and_street(text)[1]).sid

    def _build_series(self) -> None:
        """Per street and parity: known numbers with their measure and signed offset on the centerline.

        A single number stands at its own number; a range (``11-23``, a whole
        estate) stands at its middle number, with its span kept, so that
        interpolation treats it as the centre of the numbers it covers.
        Several points at one number (two spans, or a single and a range) are
        kept apart; the narrowest comes first.
        """
        for street in self.streets.values():
            if not street.numbered:
                continue
            street.numbered.sort(key=lambda r: (r[0], r[1]))
            numbers = np.array([r[0] for r in street.numbered], dtype=float)
            span = np.array([r[1] for r in street.numbered], dtype=float)
            xy = np.array([r[2] for r in street.numbered])
            if street.axis is not None:
                pts = shapely.points(xy)
                measure = shapely.line_locate_point(street.axis, pts)
                offset = _signed_offsets(street.axis, measure, xy)
            else:
                measure = np.full(len(numbers), np.nan)
                offset = np.zeros(len(numbers))
            table = np.column_stack([numbers, xy, measure, offset, span])
            for parity in (0, 1):
                street.series[parity] = table[numbers % 2 == parity]
                street.sides[parity] = _one_per_number(street.series[parity])
            street.sides[BOTH_SIDES] = _one_per_number(table)

    # --- look-ups ---------------------------------------------------------------------
    def find_street(self, name: str | None, *, fuzzy: bool = True) -> StreetMatch | None:
        """Streets for a written name: exact key, then key without road type, then (unless ``fuzzy`` is
        False, for a check of a known name) fuzzy, then contained."""
        if not name or not name.strip():
            return None
        key = street_key(name)
        if not key:
            return None
        if key in self.keys:
            return StreetMatch(tuple(sorted(self.keys[key])), self._display(self.keys[key]), 100.0, "exact")
        for part in split_bilingual(name):
            k = street_key(part)
            if k in self.keys:
                return StreetMatch(tuple(sorted(self.keys[k])), self._display(self.keys[k]), 100.0, "exact")
        b = base_key(key)
        if b in self.base_keys and len({self._display({s}) for s in self.base_keys[b]}) == 1:
            sids = self.base_keys[b]
            found = next((n for n in sorted(self.streets[min(sids)].names) if base_key(street_key(n)) == b), "")
            return StreetMatch(tuple(sorted(sids)), self._display(sids), 90.0, "base", found)
        if not fuzzy:
            return None
        cjk = has_cjk(key)
        choices = self._key_list_cjk if cjk else self._key_list
        cutoff = FUZZY_CUTOFF_CJK if cjk else FUZZY_CUTOFF_LATIN
        if choices:
            found = process.extractOne(key, choices, scorer=fuzz.ratio, score_cutoff=cutoff)
            if found is not None:
                sids = self.keys[found[0]]
                return StreetMatch(
                    tuple(sorted(sids)), self._display(sids), float(found[1]), "fuzzy", self.key_names[found[0]]
                )
        if cjk:  # a known street name inside the text: '人民路小学门口'
            inside = [k for k in self._key_list_cjk if len(k) >= 3 and k in key]
            if inside:
                best = max(inside, key=len)
                return StreetMatch(tuple(sorted(self.keys[best])), self._display(self.keys[best]), 70.0, "contained")
        return None

    def street_after_place(self, name: str) -> tuple[str, str] | None:
        """``('沙田', '源禾路')`` for ``'沙田源禾路'``: the longest known street name (three characters
        or more) that ends a Chinese name after at least two characters of something else, a place
        written before the street with no area ending (沙田, 深圳龙岗, 学院路街道)."""
        if not has_cjk(name):
            return None
        for i in range(2, len(name) - 2):
            tail = name[i:]
            if has_cjk(tail[0]) and street_key(tail) in self.keys:
                return name[:i].strip(), tail
        return None

    def _display(self, sids) -> str:
        return self.streets[min(sids)].name

    def landmark_exact(self, name: str) -> tuple[str, np.ndarray, float] | None:
        """A landmark whose name has exactly this key, or None (no fuzzy search)."""
        found = self.landmarks.get(street_key(name))
        return None if found is None else (*found, 100.0)

    def find_landmark(self, name: str) -> tuple[str, np.ndarray, float] | None:
        key = street_key(name)
        if key in self.landmarks:
            return (*self.landmarks[key], 100.0)
        if self._landmark_list:
            found = process.extractOne(key, self._landmark_list, scorer=fuzz.ratio, score_cutoff=80.0)
            if found is not None:
                return (*self.landmarks[found[0]], float(found[1]))
        return None

    def find_jurisdiction(self, tokens) -> Area | None:
        """The known jurisdiction the most specific administrative token names (沙田区 ~ 沙田), if any."""
        for tok in reversed(tokens):
            k = street_key(tok)
            k_bare = bare_area(k)
            for jkey, value in self.jurisdictions.items():
                j_bare = bare_area(jkey)
                if k == jkey or k_bare == j_bare or (len(k_bare) >= 2 and (k_bare in jkey or j_bare in k)):
                    return value
        return None

    def area_names(self, codes) -> str:
        """Names of the jurisdictions with these codes, for notes ('龙城街道'; the code when unknown)."""
        names = {a.code: a.name for a in self.jurisdictions.values() if a.code}
        return ", ".join(sorted(names.get(c, c) for c in codes)) or "an unknown area"

    def street_point(self, sid: int, part: str | None = None) -> np.ndarray:
        """A street's midpoint (the point of the centerline nearest its centroid), or of one part of it.

        ``part`` is 'east', 'west', 'north', 'south' or 'middle': the third of
        the street's extent on that side.
        """
        street = self.streets[sid]
        if street.geometry is None:
            return np.mean(list(street.by_number.values()), axis=0)
        geom = street.geometry
        if part in {"east", "west", "north", "south", "middle"}:
            x0, y0, x1, y1 = geom.bounds
            wide = (x1 - x0) >= (y1 - y0)
            if part == "west" or (part == "middle" and wide):
                box = (
                    (x0, y0, x0 + (x1 - x0) / 3, y1)
                    if part == "west"
                    else (x0 + (x1 - x0) / 3, y0, x0 + 2 * (x1 - x0) / 3, y1)
                )
            elif part == "east":
                box = (x1 - (x1 - x0) / 3, y0, x1, y1)
            elif part == "south":
                box = (x0, y0, x1, y0 + (y1 - y0) / 3)
            elif part == "north":
                box = (x0, y1 - (y1 - y0) / 3, x1, y1)
            else:
                box = (x0, y0 + (y1 - y0) / 3, x1, y0 + 2 * (y1 - y0) / 3)
            clipped = shapely.clip_by_rect(geom, *box)
            if not clipped.is_empty:
                geom = clipped
        centroid = shapely.centroid(geom)
        p = shapely.get_coordinates(geom.interpolate(geom.project(centroid)))[0]
        return p

    def near(self, lon, lat, margin_m: float) -> np.ndarray:
        """Which lon/lat points (scalars or arrays) lie within ``margin_m`` metres of one of its streets."""
        if self._street_tree is None:
            self._street_tree = shapely.STRtree([s.geometry for s in self.streets.values() if s.geometry is not None])
        x, y = transformer(STORAGE_SRID, self.metric_epsg).transform(np.atleast_1d(lon), np.atleast_1d(lat))
        hits = self._street_tree.query(shapely.points(x, y), predicate="dwithin", distance=margin_m)
        return np.isin(np.arange(len(x)), hits[0])

    def home_countries(self, margin_m: float) -> frozenset[str]:
        """Country codes of the GeoNames towns within ``margin_m`` of the streets (computed once)."""
        if self._home_countries is None:
            from gisgrid.geocode.towns import town_points  # noqa: PLC0415 - loads GeoNames

            lon, lat, country = town_points()
            self._home_countries = frozenset(country[self.near(lon, lat, margin_m)])
        return self._home_countries

    def lonlat(self, xy: np.ndarray) -> tuple[float, float]:
        lon, lat = self._to_lonlat.transform(float(xy[0]), float(xy[1]))
        return float(lon), float(lat)


def street_axis(lines) -> shapely.LineString | None:
    """One continuous line along a street drawn as several pieces: its house-number axis.

    OSM-style centerlines draw a street as many ways: dual carriageways, slip
    roads, loops and gaps.  Measures along their MultiLineString jump between
    pieces, so numbers cannot be interpolated on it.  The axis is the longest
    of the shortest paths through the noded pieces (the network's diameter),
    with gaps between disconnected pieces bridged straight at their nearest
    ends; on a dual carriageway it follows one carriageway.

    Parameters
    ----------
    lines : array of shapely.LineString
        The pieces, in a metric CRS.

    Returns
    -------
    shapely.LineString or None
    """
    lines = np.asarray(lines, dtype=object)
    lines = lines[~shapely.is_empty(lines)] if len(lines) else lines
    if not len(lines):
        return None
    # noded where pieces cross, not merged: merging would close a dual carriageway into one ring
    edges = shapely.get_parts(shapely.union_all(lines))
    edges = edges[(shapely.get_type_id(edges) == 1) & (shapely.length(edges) > 0)]
    if len(edges) <= 1:
        return edges[0] if len(edges) else None
    coords = np.concatenate(
        [shapely.get_coordinates(shapely.get_point(edges, 0)), shapely.get_coordinates(shapely.get_point(edges, -1))]
    )
    nodes, inverse = np.unique(np.round(coords, 2), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    start, end = inverse[: len(edges)], inverse[len(edges) :]
    best: dict[tuple[int, int], tuple[float, object]] = {}
    for geom, a, b in zip(edges, start, end, strict=True):
        if a == b:
            continue  # a closed loop adds no length to any path
        w = float(geom.length)
        pair = (min(a, b), max(a, b))
        if pair not in best or w < best[pair][0]:
            best[pair] = (w, geom if a < b else geom.reverse())
    if not best:  # only closed loops (a street around a block): the longest of them
        return edges[int(np.argmax(shapely.length(edges)))]
    k = len(nodes)
    rows = [p[0] for p in best] + [p[1] for p in best]
    cols = [p[1] for p in best] + [p[0] for p in best]
    weights = [v[0] for v in best.values()] * 2
    n_comp, label = connected_components(coo_matrix((weights, (rows, cols)), shape=(k, k)), directed=False)
    if n_comp > 1:  # bridge the pieces: the shortest links that connect them (Kruskal over Delaunay edges)
        for i, j in _bridges(nodes, label):
            d = float(np.hypot(*(nodes[i] - nodes[j])))
            pair = (min(i, j), max(i, j))
            best[pair] = (d, shapely.linestrings([nodes[pair[0]], nodes[pair[1]]]))
            rows += [pair[0], pair[1]]
            cols += [pair[1], pair[0]]
            weights += [max(d, 1e-6)] * 2
    graph = coo_matrix((weights, (rows, cols)), shape=(k, k)).tocsr()
    far = dijkstra(graph, directed=False, indices=0)
    u = int(np.argmax(np.where(np.isfinite(far), far, -1)))
    far, pred = dijkstra(graph, directed=False, indices=u, return_predecessors=True)
    v = int(np.argmax(np.where(np.isfinite(far), far, -1)))
    path = [v]
    while path[-1] != u:
        path.append(int(pred[path[-1]]))
    path.reverse()
    parts = []
    for a, b in zip(path[:-1], path[1:], strict=True):
        geom = best[(min(a, b), max(a, b))][1]
        xy = shapely.get_coordinates(geom)
        parts.append(xy if a < b else xy[::-1])
    xy = np.concatenate([parts[0], *[p[1:] for p in parts[1:]]])
    return shapely.linestrings(xy)


def bare_area(name: str) -> str:
    """An area's name without its level ending (沙田区 → 沙田, 龙岗 → 龙岗), for comparing names."""
    return name.rstrip("省市县区镇乡村") or name


def _code_text(code) -> str | None:
    """A division code as text: 440307001 (int or float from a spreadsheet) → '440307001'; blank → None."""
    if code is None or (isinstance(code, float) and not np.isfinite(code)):
        return None
    if isinstance(code, (float, np.floating)) and float(code).is_integer():
        code = int(code)
    text = str(code).strip()
    return text or None


def _bridges(nodes: np.ndarray, label: np.ndarray) -> list[tuple[int, int]]:
    """Node pairs joining the components ``label`` of a street's pieces, shortest first, until all are
    joined: a minimum spanning tree of the components over the Delaunay edges of the nodes (the
    Euclidean minimum spanning tree lies within them), so thousands of pieces cost milliseconds."""
    pairs: set[tuple[int, int]] = set()
    try:
        tri = Delaunay(nodes, qhull_options="QJ")
        for simplex in tri.simplices:
            for a, b in ((0, 1), (1, 2), (0, 2)):
                i, j = int(simplex[a]), int(simplex[b])
                pairs.add((min(i, j), max(i, j)))
    except (QhullError, ValueError):  # fewer than three nodes, or all on one line: neighbours along it
        order = np.argsort(nodes @ (nodes[-1] - nodes[0]))
        pairs = {(min(int(a), int(b)), max(int(a), int(b))) for a, b in zip(order[:-1], order[1:], strict=True)}
    candidates = sorted((float(np.hypot(*(nodes[i] - nodes[j]))), i, j) for i, j in pairs if label[i] != label[j])
    parent = list(range(int(label.max()) + 1))

    def root(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    out = []
    for _, i, j in candidates:
        a, b = root(int(label[i])), root(int(label[j]))
        if a != b:
            parent[a] = b
            out.append((i, j))
    return out


def _one_per_number(rows: np.ndarray) -> np.ndarray:
    """Series rows reduced to one per number: where a single number and the middle of a range
    coincide, the single number (a block, not the centre of an estate); equal spans averaged."""
    if not len(rows):
        return rows
    narrowest = rows[:, 5] == np.array([rows[rows[:, 0] == k, 5].min() for k in rows[:, 0]])
    rows = rows[narrowest]
    numbers = np.unique(rows[:, 0])
    return np.array([rows[rows[:, 0] == k].mean(axis=0) for k in numbers])


def _middle_number(lo: int, hi: int) -> int:
    """The middle house number of a range, on the side of its first number (11-23 → 17, 2-16 → 8)."""
    if (hi - lo) % 2:  # both sides written ('1-4'): the plain middle
        return (lo + hi) // 2
    return lo + 2 * ((hi - lo) // 4)


def _places(lines: np.ndarray) -> list[np.ndarray]:
    """Indexes of the pieces of one street name grouped by place: chains of pieces each within
    :data:`SAME_STREET_GAP_M` of the next."""
    if len(lines) == 1:
        return [np.array([0])]
    left, right = shapely.STRtree(lines).query(lines, predicate="dwithin", distance=SAME_STREET_GAP_M)
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(len(lines), len(lines)))
    n, label = connected_components(graph, directed=False)
    return [np.flatnonzero(label == k) for k in range(n)]


def _signed_offsets(line, measure: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Signed distance of points from the line at their measure: left of the direction of travel > 0."""
    on = shapely.get_coordinates(shapely.line_interpolate_point(line, measure))
    ahead = shapely.get_coordinates(shapely.line_interpolate_point(line, measure + 1.0))
    behind = shapely.get_coordinates(shapely.line_interpolate_point(line, np.maximum(measure - 1.0, 0.0)))
    tangent = ahead - behind
    v = xy - on
    cross = tangent[:, 0] * v[:, 1] - tangent[:, 1] * v[:, 0]
    return np.sign(cross) * np.hypot(v[:, 0], v[:, 1])


def _check_frame(frame, label: str, columns: tuple[str, ...]) -> None:
    problems = []
    if not isinstance(frame, gpd.GeoDataFrame):
        problems.append(f"{label} must be a GeoDataFrame, not {type(frame).__name__}")
    else:
        if frame.crs is None:
            problems.append(f"{label} has no CRS; set it (EPSG:4326 for lon/lat)")
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            problems.append(
                f"{label} lacks column(s) {', '.join(missing)}; columns are: {', '.join(map(str, frame.columns))}"
            )
    if problems:
        raise InputError("; ".join(problems))


def addresses_frame(table: pd.DataFrame, *, lon: str = "lon", lat: str = "lat", crs="EPSG:4326") -> gpd.GeoDataFrame:
    """Address points from a text table with lon/lat columns, checked by the one point rule.

    Coordinates in ``crs`` (EPSG:4326 by default; GCJ-02 and BD-09 are
    converted) go through :func:`gisgrid.io.points.check_points`; the rows it
    refuses (missing, unreadable, out of range) are left out and logged with
    their reasons.
    """
    problems = RowProblems(len(table), tuple(POINT_ERRORS))
    x = parse_coordinates(table[lon], lon, problems)
    y = parse_coordinates(table[lat], lat, problems)
    slon, slat, problems = check_points(x, y, crs, problems=problems)
    ok = problems.ok
    if not ok.all():
        reasons = problems.reasons()
        LOGGER.warning(
            "%d address rows without a usable point left out, e.g. %s",
            len(reasons),
            "; ".join(f"row {pos + 1}: {why}" for pos, why in list(reasons.items())[:3]),
        )
    return gpd.GeoDataFrame(table[ok].copy(), geometry=gpd.points_from_xy(slon[ok], slat[ok]), crs=STORAGE_SRID)
