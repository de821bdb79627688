"""Static pictures of a ranking as SVG text: a choropleth of units by grade, and trend lines.

The same SVG goes into the rankings page (inline, no script, no tiles) and
into the bulletin PDF, so the printed map is the one on screen.  Pure:
shapely and pyproj (through :mod:`gisgrid.crs`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np
import shapely

from gisgrid import crs

#: Fill colour of each grade (A–E, good/middle/poor); units without a score are grey.
GRADE_COLOURS = {
    "A": "#1a9850",
    "B": "#91cf60",
    "C": "#fee08b",
    "D": "#fc8d59",
    "E": "#d73027",
    "good": "#1a9850",
    "middle": "#fee08b",
    "poor": "#d73027",
}
NO_SCORE = "#d9d9d9"


def _ring_path(coords: np.ndarray) -> str:
    return "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in coords) + " Z"


def choropleth_svg(
    geoms: Sequence,
    grades: Sequence[str | None],
    labels: Sequence[str],
    *,
    legend: Sequence[tuple[str, str]] = (),
    width: int = 640,
    title: str = "",
    labels_on_map: bool = True,
) -> str:
    """An SVG map of polygons (or lines) (EPSG:4326) filled by grade, each labelled at a point inside it.

    Parameters
    ----------
    geoms : sequence of shapely (Multi)Polygons in EPSG:4326
    grades : sequence of str or None
        The grade of each unit (:data:`GRADE_COLOURS`); None is grey (no score).
    labels : sequence of str
        Text drawn on each unit (its name and score).
    legend : sequence of (grade, text)
        The legend's entries, in order.
    width : int
        Width in px; the height follows the area's shape (in the metric CRS).
    """
    geoms = [g for g in geoms]
    if not geoms:
        return ""
    arr = np.asarray(geoms, dtype=object)
    minx, miny, maxx, maxy = shapely.total_bounds(arr)
    epsg = crs.metric_crs_for((minx + maxx) / 2, (miny + maxy) / 2)
    tf = crs.transformer(crs.STORAGE_SRID, epsg)
    projected = [shapely.transform(g, lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1]))) for g in geoms]
    x0, y0, x1, y1 = shapely.total_bounds(np.asarray(projected, dtype=object))
    pad = 10.0
    legend_h = 24.0 * math.ceil(len(legend) / 3) + (8 if legend else 0)
    title_h = 28.0 if title else 0.0
    scale = (width - 2 * pad) / max(x1 - x0, 1.0)
    map_h = max((y1 - y0) * scale, 40.0)
    height = map_h + 2 * pad + legend_h + title_h

    def px(xy: np.ndarray) -> np.ndarray:
        return np.column_stack([pad + (xy[:, 0] - x0) * scale, title_h + pad + (y1 - xy[:, 1]) * scale])

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0f}" width="100%" '
        f'role="img" aria-label="{escape(title)}" font-family="Noto Sans CJK SC, sans-serif">'
    ]
    if title:
        parts.append(f'<text x="{pad}" y="20" font-size="15" font-weight="bold">{escape(title)}</text>')
    for g, grade, label in zip(projected, grades, labels):
        colour = GRADE_COLOURS.get(grade or "", NO_SCORE)
        parts_ = list(getattr(g, "geoms", [g]))
        if all(p.geom_type == "Polygon" for p in parts_):
            d = " ".join(
                _ring_path(px(np.asarray(ring.coords)[:, :2])) for p in parts_ for ring in (p.exterior, *p.interiors)
            )
            style = f'fill="{colour}" fill-rule="evenodd" stroke="#444" stroke-width="1"'
        else:
            d = " ".join(_ring_path(px(np.asarray(p.coords)[:, :2]))[:-2] for p in parts_ if not p.is_empty)
            style = f'fill="none" stroke="{colour}" stroke-width="4" stroke-linecap="round"'
        parts.append(f'<path d="{d}" {style}><title>{escape(label)}</title></path>')
    for g, label in zip(projected, labels) if labels_on_map else ():
        pt = shapely.point_on_surface(g)
        (lx, ly), = px(np.array([[pt.x, pt.y]]))  # fmt: skip
        parts.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="14" text-anchor="middle" paint-order="stroke" '
            f'stroke="#fff" stroke-width="3">{escape(label)}</text>'
        )
    for i, (grade, text) in enumerate(legend):
        lx = pad + (i % 3) * (width - 2 * pad) / 3
        ly = title_h + map_h + 2 * pad + 4 + 24 * (i // 3)
        parts.append(
            f'<rect x="{lx:.1f}" y="{ly:.1f}" width="16" height="12" fill="{GRADE_COLOURS.get(grade, NO_SCORE)}" '
            f'stroke="#444"/><text x="{lx + 22:.1f}" y="{ly + 11:.1f}" font-size="14">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def sparkline_svg(values: Sequence[float | None], *, width: int = 120, height: int = 28, label: str = "") -> str:
    """A small line of scores 0–100 (None: no cases that month, a gap), the last point marked."""
    n = len(values)
    if n == 0:
        return ""
    step = (width - 6) / max(n - 1, 1)

    def y(v: float) -> float:
        return 3 + (100 - max(0.0, min(100.0, v))) / 100 * (height - 6)

    runs, run = [], []
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            if run:
                runs.append(run)
            run = []
        else:
            run.append(f"{3 + i * step:.1f},{y(v):.1f}")
    if run:
        runs.append(run)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>'
        f'<line x1="0" y1="{y(60):.1f}" x2="{width}" y2="{y(60):.1f}" stroke="#ccc" stroke-dasharray="2,2"/>'
    ]
    for r in runs:
        if len(r) == 1:
            cx, cy = r[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="1.5" fill="#2b6cb0"/>')
        else:
            parts.append(f'<polyline points="{" ".join(r)}" fill="none" stroke="#2b6cb0" stroke-width="1.5"/>')
    last = next((i for i in range(n - 1, -1, -1) if values[i] is not None), None)
    if last is not None:
        parts.append(f'<circle cx="{3 + last * step:.1f}" cy="{y(values[last]):.1f}" r="2.5" fill="#c53030"/>')
    parts.append("</svg>")
    return "".join(parts)


def trend_chart_svg(
    months: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *, width: int = 640, height: int = 220
) -> str:
    """A line chart of several units' scores over the months, with axes, month labels and a legend."""
    palette = ["#2b6cb0", "#c53030", "#2f855a", "#b7791f", "#6b46c1", "#319795"]
    left, right, top, bottom = 34, 22, 10, 58
    n = len(months)
    step = (width - left - right) / max(n - 1, 1)

    def y(v: float) -> float:
        return top + (100 - max(0.0, min(100.0, v))) / 100 * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'font-family="Noto Sans CJK SC, sans-serif" font-size="10">'
    ]
    for v in (0, 20, 40, 60, 80, 100):
        parts.append(
            f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" stroke="#e2e2e2"/>'
            f'<text x="{left - 4}" y="{y(v) + 3:.1f}" text-anchor="end">{v}</text>'
        )
    for i, m in enumerate(months):
        parts.append(f'<text x="{left + i * step:.1f}" y="{height - bottom + 14}" text-anchor="middle">{m[2:]}</text>')
    for k, (name, values) in enumerate(series):
        colour = palette[k % len(palette)]
        pts = [(left + i * step, y(v)) for i, v in enumerate(values) if v is not None]
        if len(pts) > 1:
            parts.append(
                f'<polyline points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in pts)}" fill="none" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        for a, b in pts:
            parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="{colour}"/>')
        lx = left + (k % 3) * (width - left - right) / 3
        ly = height - bottom + 30 + 14 * (k // 3)
        parts.append(
            f'<rect x="{lx:.1f}" y="{ly - 8}" width="14" height="4" fill="{colour}"/>'
            f'<text x="{lx + 18:.1f}" y="{ly - 3}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
