"""Checking a planner's edit of cells and segment areas (the ``/plan`` editor), in memory.

A planner draws or reshapes a polygon in the browser.  Before anything is
stored, :func:`check_edit` decides whether the drawing can be a unit and what
it does to its neighbours:

* **refused** (``EditCheck.problems``): empty drawings, non-polygons, several
  parts, invalid outlines (a self-intersection is located), drawings wholly
  outside the unit's jurisdiction, pieces under ``min_area_m2``;
* **overlaps** with neighbouring units (named, with their owners and m²) and
  the part **outside** the jurisdiction: clipped away or refused, at the
  planner's choice (``overlap="clip"`` or ``"refuse"``);
* **gaps** the edit opens (land the units covered before and nothing covers
  after): shown, never refused, since a planner may mean to fill them next.

Overlay operations run on the stored lon/lat coordinates, so a clipped edge
reuses its neighbour's vertices exactly and the stored grid stays a clean
coverage; areas are measured in the deployment's metric CRS
(:func:`gisgrid.crs.reproject`).  :func:`split_polygon` and
:func:`merge_polygons` are the split and merge tools' geometry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely
import shapely.ops
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from gisgrid import crs

#: Overlap, gap and outside pieces smaller than this (m²) are numerical noise
#: (snapping in the browser puts vertices on a neighbour's edge only to
#: floating-point precision).
NOISE_M2 = 0.01
#: Pieces narrower than this (m; twice area over perimeter) are noise too: cells
#: built in a metric CRS and stored in lon/lat meet their community's boundary
#: only to about a millimetre, which along a long edge adds up to more than NOISE_M2.
NOISE_WIDTH_M = 0.05
#: A unit smaller than this (m²) is refused.
MIN_AREA_M2 = 1.0
OVERLAP_MODES = ("refuse", "clip")

_LOCATED = re.compile(r"\[\s*(-?[\d.eE+-]+)\s+(-?[\d.eE+-]+)\s*\]")


@dataclass
class Problem:
    """Why an edit is refused: a stable ``code``, a message and, where known, the place (EPSG:4326)."""

    code: str
    message: str
    location: Point | None = None

    def to_json(self) -> dict:
        loc = None if self.location is None else [round(self.location.x, 7), round(self.location.y, 7)]
        return {"code": self.code, "message": self.message, "location": loc}


@dataclass
class EditCheck:
    """The outcome of :func:`check_edit`.

    ``geometry`` is what would be stored (after clipping when chosen), None
    when refused before it could be computed.  ``overlaps`` has one row per
    neighbour overlapped (``unit_id``, ``code``, ``owners``, ``area_m2``,
    geometry of the shared piece); ``gaps`` one row per gap piece
    (``area_m2``); ``outside`` is the part beyond the jurisdiction (None if
    there is none).  Geometries are EPSG:4326.
    """

    geometry: BaseGeometry | None
    problems: list[Problem] = field(default_factory=list)
    overlaps: gpd.GeoDataFrame | None = None
    gaps: gpd.GeoDataFrame | None = None
    outside: BaseGeometry | None = None
    outside_m2: float = 0.0
    area_m2: float = 0.0
    clipped: bool = False
    #: the areas of the units the edit leaves (a split: one per piece), m²
    parts_m2: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        """A JSON-ready dict (GeoJSON geometries) for the editor page."""

        def features(frame):
            if frame is None or frame.empty:
                return {"type": "FeatureCollection", "features": []}
            return frame.__geo_interface__

        return {
            "ok": self.ok,
            "area_m2": round(self.area_m2, 2),
            "parts_m2": [round(a, 2) for a in self.parts_m2],
            "clipped": self.clipped,
            "geometry": None if self.geometry is None else shapely.geometry.mapping(self.geometry),
            "problems": [p.to_json() for p in self.problems],
            "overlaps": features(self.overlaps),
            "gaps": features(self.gaps),
            "outside": None
            if self.outside is None
            else {"area_m2": round(self.outside_m2, 2), "geometry": shapely.geometry.mapping(self.outside)},
        }


def _empty_frame(columns: list[str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in columns}, geometry=gpd.GeoSeries([], crs=crs.STORAGE_SRID))


def area_m2(geoms, epsg: int) -> np.ndarray:
    geoms = np.atleast_1d(np.asarray(geoms, dtype=object))
    if not len(geoms):
        return np.zeros(0)
    return shapely.area(crs.reproject(geoms, crs.STORAGE_SRID, epsg))


def _polygons(geom: BaseGeometry | None) -> list[Polygon]:
    """The polygon parts of any geometry (lines and points from overlays dropped)."""
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type == "Polygon":
        return [geom]
    if geom.geom_type in ("MultiPolygon", "GeometryCollection"):
        return [p for g in geom.geoms for p in _polygons(g)]
    return []


def significant(geom: BaseGeometry | None, epsg: int, floor_m2: float = NOISE_M2) -> list[Polygon]:
    """The polygon parts of ``geom`` that are not numerical noise (see NOISE_M2, NOISE_WIDTH_M)."""
    parts = _polygons(geom)
    if not parts:
        return []
    metric = crs.reproject(np.asarray(parts, dtype=object), crs.STORAGE_SRID, epsg)
    area = shapely.area(metric)
    width = 2.0 * area / np.maximum(shapely.length(metric), 1e-12)
    keep = (area >= floor_m2) & (width >= NOISE_WIDTH_M)
    return [p for p, k in zip(parts, keep) if k]


def parse_drawing(geom: BaseGeometry | None) -> tuple[Polygon | None, list[Problem]]:
    """One valid polygon from a drawing, or the problems that make it unusable as a unit."""
    if geom is None or geom.is_empty:
        return None, [Problem("empty", "the drawing is empty: draw a polygon with at least three corners")]
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        return None, [
            Problem(
                "not_polygon",
                f"a unit must be a polygon, not a {geom.geom_type}",
                geom.representative_point() if not geom.is_empty else None,
            )
        ]
    parts = list(shapely.get_parts(geom))
    if len(parts) > 1:
        return None, [
            Problem(
                "multi_part",
                f"the drawing has {len(parts)} separate parts: a unit must be one "
                "piece, so draw each part as a unit of its own",
                parts[1].representative_point(),
            )
        ]
    poly = parts[0]
    xy = shapely.get_coordinates(poly)
    if not np.isfinite(xy).all() or (np.abs(xy[:, 0]) > 180).any() or (np.abs(xy[:, 1]) > 90).any():
        return None, [Problem("bad_coordinates", "coordinates must be longitude/latitude in degrees (EPSG:4326)")]
    reason = shapely.is_valid_reason(poly)
    if reason != "Valid Geometry":
        match = _LOCATED.search(reason)
        where = Point(float(match.group(1)), float(match.group(2))) if match else None
        what = reason.split("[")[0].strip()
        text = {
            "Self-intersection": "the outline crosses itself",
            "Ring Self-intersection": "the outline touches itself",
            "Too few points": "the outline has fewer than three distinct corners",
        }.get(what, what)
        at = f" at {where.x:.6f}, {where.y:.6f}" if where is not None else ""
        return None, [
            Problem("invalid", f"invalid polygon: {text}{at}; redraw it so that its edges do not cross", where)
        ]
    return poly, []


def check_edit(
    drawn: BaseGeometry | None,
    *,
    boundary: BaseGeometry,
    boundary_name: str,
    neighbours: gpd.GeoDataFrame,
    metric_epsg: int,
    previous: BaseGeometry | None = None,
    overlap: str = "refuse",
    min_area_m2: float = MIN_AREA_M2,
) -> EditCheck:
    """Check one drawn unit against its jurisdiction and neighbours.

    Parameters
    ----------
    drawn : shapely geometry or None
        The planner's polygon, EPSG:4326.
    boundary : shapely Polygon or MultiPolygon
        The jurisdiction the unit must lie in (a cell's community, a segment's town), EPSG:4326.
    boundary_name : str
        Its name, for messages.
    neighbours : GeoDataFrame
        The other units of the same layer near the drawing (not the ones being
        edited): ``unit_id``, ``code``, ``owners`` and polygon geometry, EPSG:4326.
    metric_epsg : int
        Projected CRS in which areas are measured.
    previous : shapely geometry, optional
        What the edited unit(s) covered before, for the gaps the edit opens.
    overlap : {"refuse", "clip"}
        Refuse the edit when it overlaps a neighbour or leaves the
        jurisdiction, or clip those parts away.
    min_area_m2 : float, default 1.0
        Smallest unit accepted, m².

    Returns
    -------
    EditCheck
    """
    if overlap not in OVERLAP_MODES:
        return EditCheck(
            None, [Problem("bad_request", f"overlap must be one of {', '.join(OVERLAP_MODES)}, got {overlap!r}")]
        )
    poly, problems = parse_drawing(drawn)
    if poly is None:
        return EditCheck(None, problems)
    result = EditCheck(poly, area_m2=float(area_m2(poly, metric_epsg)[0]))

    inside = shapely.intersection(poly, boundary)
    if not significant(inside, metric_epsg):
        result.problems.append(
            Problem(
                "outside",
                f"the drawing lies outside {boundary_name}: draw the unit inside its jurisdiction",
                poly.representative_point(),
            )
        )
        return result
    outside = significant(shapely.difference(poly, boundary), metric_epsg)
    geom = poly
    if outside:
        result.outside = MultiPolygon(outside) if len(outside) > 1 else outside[0]
        result.outside_m2 = float(area_m2(outside, metric_epsg).sum())
        if overlap == "refuse":
            result.problems.append(
                Problem(
                    "outside",
                    f"{result.outside_m2:,.1f} m² of the drawing lie outside {boundary_name}: clip them away or redraw",
                    result.outside.representative_point(),
                )
            )
        geom = inside

    near = neighbours[neighbours.intersects(geom)] if len(neighbours) else neighbours
    rows, pieces = [], []
    for row in near.itertuples(index=False):
        shared = significant(shapely.intersection(geom, row.geometry), metric_epsg)
        if shared:
            piece = MultiPolygon(shared) if len(shared) > 1 else shared[0]
            rows.append(
                {
                    "unit_id": int(row.unit_id),
                    "code": str(row.code),
                    "owners": row.owners or "",
                    "area_m2": round(float(area_m2(shared, metric_epsg).sum()), 2),
                }
            )
            pieces.append(piece)
    result.overlaps = (
        gpd.GeoDataFrame(rows, geometry=gpd.GeoSeries(pieces, crs=crs.STORAGE_SRID))
        if rows
        else _empty_frame(["unit_id", "code", "owners", "area_m2"])
    )
    if rows and overlap == "refuse":
        total = sum(r["area_m2"] for r in rows)
        names = ", ".join(r["code"] for r in rows[:5]) + (" …" if len(rows) > 5 else "")
        result.problems.append(
            Problem(
                "overlap",
                f"the drawing overlaps {len(rows)} neighbouring unit(s) ({names}) by {total:,.1f} m²: "
                "clip the overlap away or redraw",
                pieces[int(np.argmax([r["area_m2"] for r in rows]))].representative_point(),
            )
        )
    if len(near):
        # also removes sub-noise slivers left by snapping, so neighbours share edges exactly
        geom = shapely.difference(geom, shapely.union_all(near.geometry.to_numpy()))
    parts = significant(geom, metric_epsg)
    if not parts:
        result.problems.append(
            Problem(
                "no_room",
                "nothing is left of the drawing once the neighbouring units are clipped away: this part of the "
                "town is already covered by cells; to make room, delete a cell or split one first, then draw "
                "the new cell in the space freed",
                poly.representative_point(),
            )
        )
        return result
    if len(parts) > 1:
        result.problems.append(
            Problem(
                "multi_part",
                f"clipping leaves {len(parts)} separate pieces: a unit must be one piece; "
                "redraw it so the pieces connect",
                parts[1].representative_point(),
            )
        )
    geom = parts[0] if len(parts) == 1 else MultiPolygon(parts)
    result.clipped = bool(outside or rows)
    result.geometry = geom
    result.area_m2 = float(area_m2(parts, metric_epsg).sum())
    if result.area_m2 < min_area_m2:
        result.problems.append(
            Problem(
                "too_small",
                f"the unit would be {result.area_m2:.2f} m², less than {min_area_m2:g} m²",
                poly.representative_point(),
            )
        )

    gaps: list[Polygon] = []
    if previous is not None and not previous.is_empty:
        left = shapely.difference(previous, geom)
        if len(neighbours):
            around = neighbours[neighbours.intersects(previous)]
            if len(around):
                left = shapely.difference(left, shapely.union_all(around.geometry.to_numpy()))
        gaps = significant(left, metric_epsg)
    result.gaps = (
        gpd.GeoDataFrame(
            {"area_m2": np.round(area_m2(gaps, metric_epsg), 2)}, geometry=gpd.GeoSeries(gaps, crs=crs.STORAGE_SRID)
        )
        if gaps
        else _empty_frame(["area_m2"])
    )
    return result


def split_polygon(
    poly: Polygon, line: BaseGeometry | None, *, metric_epsg: int, min_area_m2: float = MIN_AREA_M2
) -> tuple[list[Polygon], list[Problem]]:
    """Cut a unit in two (or more) along a drawn line, largest piece first.

    The line's ends are extended by about a metre, so a line drawn to (not
    quite across) the edges still cuts.  Returns the pieces, or no pieces and
    the reason the cut is refused.
    """
    if line is None or line.is_empty or line.geom_type != "LineString":
        return [], [Problem("split_line", "draw the cutting line as one line across the unit")]
    xy = shapely.get_coordinates(line)
    if len(xy) < 2 or np.allclose(xy[0], xy[-1]):
        return [], [Problem("split_line", "the cutting line needs two distinct ends")]
    ext = 1e-5  # degrees, about 1 m
    first, last = xy[1] - xy[0], xy[-1] - xy[-2]
    xy = (
        np.vstack(
            [
                xy[0] - first / max(np.hypot(*first), 1e-12) * ext,
                xy[1:-1],
                xy[-1] + last / max(np.hypot(*last), 1e-12) * ext,
            ]
        )
        if len(xy) > 2
        else np.vstack(
            [xy[0] - first / max(np.hypot(*first), 1e-12) * ext, xy[-1] + last / max(np.hypot(*last), 1e-12) * ext]
        )
    )
    pieces = [p for p in shapely.get_parts(shapely.ops.split(poly, LineString(xy))) if p.geom_type == "Polygon"]
    if len(pieces) < 2:
        return [], [
            Problem(
                "split_line",
                "the line does not cut the unit: draw it from one edge across to another",
                line.interpolate(0.5, normalized=True),
            )
        ]
    areas = area_m2(pieces, metric_epsg)
    order = np.argsort(-areas, kind="stable")
    if areas.min() < min_area_m2:
        small = pieces[int(np.argmin(areas))]
        return [], [
            Problem(
                "too_small",
                f"a piece would be {areas.min():.2f} m², less than {min_area_m2:g} m²",
                small.representative_point(),
            )
        ]
    return [pieces[i] for i in order], []


def merge_polygons(
    polys: list[BaseGeometry], codes: list[str], *, metric_epsg: int
) -> tuple[Polygon | None, list[Problem]]:
    """The union of units that touch along an edge, or the reason they cannot be merged."""
    if len(polys) < 2:
        return None, [Problem("merge", "select at least two units to merge")]
    union = shapely.union_all(np.asarray(polys, dtype=object))
    parts = significant(union, metric_epsg)
    if len(parts) != 1:
        return None, [
            Problem(
                "merge",
                f"{', '.join(codes)} do not form one piece: only units that share an edge can be merged",
                union.representative_point(),
            )
        ]
    return parts[0], []
