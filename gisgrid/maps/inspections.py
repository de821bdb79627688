"""Inspection maps: a round's units and findings, and patrol coverage (units nobody inspected or patrolled).

Pure: data in, :class:`folium.Map` out.  Every text from users is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import folium
import geopandas as gpd
import pandas as pd

from gisgrid.maps._base import add_layer_control, base_map, rounded, translator

#: Styles: unvisited units red (segments) and orange (cells), visited ones a light green, findings dark dots.
UNVISITED_SEGMENT = ("#c62828", "gg-unvisited-segment")
UNVISITED_CELL = ("#ef6c00", "gg-unvisited-cell")
VISITED = ("#81c784", "gg-visited")
TARGET = ("#3a6ea5", "gg-target")
UNVISITED_TARGET = ("#c62828", "gg-target gg-target-unvisited")
FINDING = ("#212121", "gg-finding")


def _bounds(frames: Sequence[gpd.GeoDataFrame], fallback: Sequence[float] | None) -> Sequence[float]:
    boxes = [f.total_bounds for f in frames if f is not None and len(f) and not f.geometry.isna().all()]
    if not boxes:
        return fallback or (113.9, 22.5, 114.4, 22.8)
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _areas(m, frame: gpd.GeoDataFrame, name: str, style: tuple[str, str], *, fill: float, label: str) -> None:
    if frame is None or frame.empty:
        return
    shapes = frame[frame.geometry.notna()][["name", "geometry"]].copy()
    shapes["name"] = shapes["name"].fillna("").astype(str).map(escape)
    shapes["geometry"] = rounded(shapes.geometry)
    colour, css = style
    folium.GeoJson(
        shapes.to_json(),
        name=label,
        style_function=lambda _f, c=colour, k=css: {
            "color": c,
            "weight": 1,
            "fillColor": c,
            "fillOpacity": fill,
            "className": k,
        },
        tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
    ).add_to(m)


def _points(m, points: pd.DataFrame, label: str, style: tuple[str, str]) -> None:
    if points is None or points.empty:
        return
    group = folium.FeatureGroup(name=label)
    colour, css = style
    for row in points.itertuples():
        folium.CircleMarker(
            (row.lat, row.lon),
            radius=6,
            color="#ffffff",
            weight=1,
            fill=True,
            fill_color=colour,
            fill_opacity=0.95,
            class_name=css,
            tooltip=escape(str(getattr(row, "label", "") or "")),
        ).add_to(group)
    group.add_to(m)


def round_map(
    targets: gpd.GeoDataFrame,
    findings: pd.DataFrame,
    *,
    attribution: str,
    lang: str = "zh_CN",
    bounds: Sequence[float] | None = None,
) -> folium.Map:
    """A round's units (``name``; visited ones blue, those nobody visited yet in its period red when ``targets``
    has ``visits``) and its findings (``lon``, ``lat``, ``label``; dark dots)."""
    _ = translator(lang)
    m = base_map(_bounds([targets], bounds), attribution=attribution, lang=lang)
    if targets is not None and "visits" in targets and len(targets):
        seen = targets["visits"].astype(int) > 0
        _areas(m, targets[seen], "targets", TARGET, fill=0.15, label=_("Units of the round"))
        _areas(m, targets[~seen], "unvisited", UNVISITED_TARGET, fill=0.3, label=_("Units nobody visited yet"))
    else:
        _areas(m, targets, "targets", TARGET, fill=0.15, label=_("Units of the round"))
    _points(m, findings, _("Findings"), FINDING)
    return add_layer_control(m)


def coverage_map(
    segments: gpd.GeoDataFrame,
    cells: gpd.GeoDataFrame,
    visits: gpd.GeoDataFrame,
    *,
    attribution: str,
    lang: str = "zh_CN",
    bounds: Sequence[float] | None = None,
) -> folium.Map:
    """Patrol coverage: segments (red) and cells (orange) nobody visited, visited ones light green, the visits."""
    _ = translator(lang)
    m = base_map(_bounds([segments, cells], bounds), attribution=attribution, lang=lang)
    visited = pd.concat(
        [f[f["visited"]][["name", "geometry"]] for f in (cells, segments) if f is not None and len(f)],
        ignore_index=True,
    ) if any(f is not None and len(f) for f in (cells, segments)) else None  # fmt: skip
    if visited is not None:
        _areas(m, gpd.GeoDataFrame(visited, geometry="geometry", crs=4326), "visited", VISITED, fill=0.25,
               label=_("Visited this period"))  # fmt: skip
    if cells is not None and len(cells):
        _areas(m, cells[~cells["visited"]], "cells", UNVISITED_CELL, fill=0.35, label=_("Cells nobody visited"))
    if segments is not None and len(segments):
        _areas(m, segments[~segments["visited"]], "segments", UNVISITED_SEGMENT, fill=0.5,
               label=_("Segments nobody visited"))  # fmt: skip
    if visits is not None and len(visits):
        kinds = {
            "finding": _("finding"),
            "case_step": _("case step by a patrol member"),
            "checkin": _("patrolled here"),
        }
        pts = pd.DataFrame({"lon": visits.geometry.x, "lat": visits.geometry.y, "label": visits["kind"].map(kinds)})
        _points(m, pts.head(2000), _("Visits"), FINDING)
    return add_layer_control(m)
