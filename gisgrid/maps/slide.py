"""A map made ready for a slide: title, jurisdiction, period and legend on the map, without its controls.

The manager map's HTML and PNG exports (``/map/export.html``, ``/map/export.png``)
go through :func:`for_slide`: a box in the top-left corner names what the map
shows, a legend lists what its colours mean, and the zoom buttons and the layer
switcher are hidden (the attribution, a credit of the data, stays).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import folium

from gisgrid.maps._base import translator
from gisgrid.maps.manager import (
    DENSITY_COLOURS,
    GAP_COLOUR,
    HOTSPOT_COLOURS,
    OVERDUE_COLOUR,
)

_CSS = """
.leaflet-control-zoom, .leaflet-control-layers, .leaflet-bar, .gg-map-controls { display: none !important; }
.gg-slide-box { position: absolute; top: 10px; left: 10px; z-index: 1000; background: rgba(255,255,255,.92);
  padding: 8px 12px; border: 1px solid #888; border-radius: 4px; max-width: 46%;
  font: 13px/1.35 "Noto Sans CJK SC", "Noto Sans", sans-serif; color: #111; }
.gg-slide-box h1 { font-size: 18px; margin: 0 0 4px; }
.gg-slide-box p { margin: 0 0 2px; color: #333; }
.gg-slide-legend { margin-top: 6px; }
.gg-slide-legend div { display: flex; align-items: center; gap: 6px; }
.gg-slide-legend i { display: inline-block; width: 14px; height: 10px; border: 1px solid #555; }
"""


def for_slide(m: folium.Map, *, title: str, lines: Sequence[str], legend: Sequence[tuple[str, str]]) -> folium.Map:
    """``m`` with a title box (``title``, then ``lines`` such as the jurisdiction and period), a legend of
    (colour, text) entries, and no map controls.  Texts are plain and escaped here; ``m`` is changed and
    returned."""
    items = "".join(f'<div><i style="background:{escape(c)}"></i>{escape(t)}</div>' for c, t in legend)
    box = (
        f'<div class="gg-slide-box" id="gg-slide-box"><h1>{escape(title)}</h1>'
        + "".join(f"<p>{escape(line)}</p>" for line in lines)
        + (f'<div class="gg-slide-legend">{items}</div>' if items else "")
        + "</div>"
    )
    root = m.get_root()
    root.header.add_child(folium.Element(f"<style>{_CSS}</style>"))
    root.html.add_child(folium.Element(box))
    return m


def manager_legend(stats: dict, lang: str) -> list[tuple[str, str]]:
    """What the manager map's colours mean, for the layers it drew (``stats`` of
    :func:`gisgrid.maps.manager.manager_map`)."""
    _ = translator(lang)
    out = []
    if stats.get("mode") == "hexes":
        out.append((DENSITY_COLOURS[-1], _("Reports (per hexagon)")))
    elif stats.get("mode") == "points":
        out.append(("#3388ff", _("Reports")))
    if stats.get("hot"):
        out.append((HOTSPOT_COLOURS["hot_99"], _("Hot spot, confidence 99%")))
    if stats.get("cold"):
        out.append((HOTSPOT_COLOURS["cold_99"], _("Cold spot, confidence 99%")))
    if stats.get("overdue"):
        out.append((OVERDUE_COLOUR, _("Overdue reports")))
    if stats.get("gaps"):
        out.append((GAP_COLOUR, _("Coverage gaps")))
    return out  # the choropleth, heatmap and recurring layers start hidden: not on the slide
