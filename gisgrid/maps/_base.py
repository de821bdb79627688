"""What every gisgrid map shares: the base map, its chrome, labels in the page's language, rendering.

Pure: no Flask, no database.  Maps load no online tile server (offices sit on
intranets); Folium loads Leaflet from the vendored copies
(:func:`gisgrid.maps.assets.use_local_assets`).  Every map starts gisgrid's
map tools (:class:`MapTools`, ``static/vendor/gisgrid/gg-map.js``), the one
place that draws the basemap (a configured tile service, the installed tile
package, or boundaries and named streets from gisgrid's own layers), the
search box and the legend's filter, fold and highlight.  The page says which
basemap and search URL in its ``gg-map-config`` meta tag; a map saved as a
file has neither and draws on the plain light background.

Map text comes from the same message catalogs as the pages
(``gisgrid/translations``), read with Babel for the map's language, so a map
and the page around it say the same words.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from html import escape

import branca.element
import folium
import geopandas as gpd
import numpy as np
import shapely
from babel.support import NullTranslations, Translations
from branca.element import MacroElement
from folium.template import Template

from gisgrid.config import TRANSLATIONS_DIR
from gisgrid.errors import InputError

LOGGER = logging.getLogger(__name__)

#: Languages maps are drawn in.
LANGUAGES = ("zh_CN", "en")
BACKGROUND_COLOUR = "#f4f3ef"
#: Decimal places kept in lon/lat coordinates drawn on maps (1e-6 deg ~ 0.1 m).
COORDINATE_DECIMALS = 6

_CSS = f"""
.leaflet-container {{ background: {BACKGROUND_COLOUR}; }}
.gg-panel {{ background: rgba(255,255,255,.92); padding: 6px 10px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,.3); font-size: 13px; line-height: 1.4; }}
.gg-title {{ font-size: 15px; font-weight: 600; }}
.gg-legend {{ max-height: 40vh; max-width: 260px; overflow-y: auto; }}
.gg-legend h4 {{ font-size: 13px; font-weight: 600; margin: 0 0 4px; }}
.gg-legend-row {{ display: flex; align-items: center; gap: 6px; white-space: nowrap; }}
.gg-legend-row .gg-count {{ color: #666; margin-left: auto; padding-left: 8px; }}
.gg-swatch {{ flex: none; width: 14px; height: 14px; border: 1px solid rgba(0,0,0,.45); }}
.gg-swatch.gg-unassigned {{ border: 1.5px dashed #616161; }}
.gg-popup dt {{ font-weight: 600; margin: 0; }}
.gg-popup dd {{ margin: 0 0 4px; }}
"""


# --------------------------------------------------------------------------- language


class _RenderedText:
    """Text branca holds as an element's "template" that is already rendered output: it renders as itself.

    folium renders each layer's macros, then wraps the output in
    ``Element(text)``, and branca compiled that text as a jinja template
    (``Element.__init__`` calls ``jinja2.Template(text)``).  Two harms:

    * **template injection**: a report's description or a person's name
      holding ``{{ … }}`` reached the page's text, was compiled and run on
      the server (jinja is not sandboxed);
    * **time**: a map spent a third of its render time in jinja's lexer
      scanning its own GeoJSON.

    Every ``Element(text)`` in folium and branca passes rendered output (and
    gisgrid passes literal HTML), so it stands for itself; templates that
    are meant as templates are class attributes, compiled once at import.
    """

    __slots__ = ("source",)

    def __init__(self, source: str):
        self.source = source

    def render(self, *args, **kwargs) -> str:
        return self.source


branca.element.Template = _RenderedText  # what Element.__init__ calls on its text; class templates are untouched


def language(lang: str) -> str:
    """The canonical map language for ``lang`` ("zh_CN", "zh-CN", "zh", "en", "en_US" ...).

    Raises
    ------
    InputError
        For a language maps are not drawn in.
    """
    key = str(lang).replace("-", "_")
    key = {"zh": "zh_CN", "en_US": "en", "en_GB": "en"}.get(key, key)
    if key not in LANGUAGES:
        raise InputError(f"unsupported map language {lang!r}; use one of {sorted(LANGUAGES)}")
    return key


@functools.lru_cache(maxsize=len(LANGUAGES))
def _catalog(lang: str) -> NullTranslations:
    return Translations.load(str(TRANSLATIONS_DIR), [lang])


def translator(lang: str) -> Callable[..., str]:
    """``gettext`` for ``lang``: ``_("%(n)s reports", n=3)`` as Flask-Babel's, from the same catalogs.

    Parameters
    ----------
    lang : str
        ``"zh_CN"`` or ``"en"`` (English is the source language: messages as written).
    """
    catalog = _catalog(language(lang))

    def gettext(message: str, **variables) -> str:
        text = catalog.gettext(message)
        return text % variables if variables else text

    return gettext


# --------------------------------------------------------------------------- map chrome


class Chrome(MacroElement):
    """Page CSS, container language and attribution of a gisgrid map."""

    _template = Template("""
        {% macro header(this, kwargs) %}
        <style>{{ this.css }}</style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.getContainer().setAttribute("lang", {{ this.lang_tag|tojson }});
        {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.attribution_html|tojson }});
        {% endmacro %}
    """)

    def __init__(self, *, attribution: str, lang: str):
        super().__init__()
        self._name = "GisgridChrome"
        self.css = _CSS
        self.lang_tag = lang.replace("_", "-")
        self.attribution_html = escape(attribution)


class HtmlControl(MacroElement):
    """A Leaflet control showing fixed HTML (already escaped by the caller)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function (map) {
            var div = L.DomUtil.create("div", {{ this.css_class|tojson }});
            div.innerHTML = {{ this.html|tojson }};
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, html: str, *, position: str, css_class: str):
        super().__init__()
        self._name = "HtmlControl"
        self.html = html
        self.position = position
        self.css_class = css_class


class MapTools(MacroElement):
    """Starts ``ggMap.attach`` (basemap, search box, legend behaviour) on the map, when the page loaded it."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        if (window.ggMap) { window.ggMap.attach({{ this._parent.get_name() }}); }
        {% endmacro %}
    """)

    def __init__(self):
        super().__init__()
        self._name = "MapTools"


def _validate_bounds(bounds) -> tuple[float, float, float, float]:
    try:
        minx, miny, maxx, maxy = (float(v) for v in bounds)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bounds must be (min_lon, min_lat, max_lon, max_lat), got {bounds!r}") from exc
    problems = []
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        problems.append("values must be finite")
    else:
        if not (-180 <= minx <= maxx <= 180):
            problems.append("need -180 <= min_lon <= max_lon <= 180")
        if not (-90 <= miny <= maxy <= 90):
            problems.append("need -90 <= min_lat <= max_lat <= 90")
    if problems:
        raise InputError(f"bad lon/lat bounds {bounds!r}: {'; '.join(problems)}")
    return minx, miny, maxx, maxy


def base_map(bounds: Sequence[float], *, attribution: str, lang: str = "zh_CN") -> folium.Map:
    """An empty map with no tile server, fitted to ``bounds``.

    Parameters
    ----------
    bounds : sequence of 4 float
        ``(min_lon, min_lat, max_lon, max_lat)`` in EPSG:4326 degrees.
    attribution : str
        Plain text shown in the attribution control (escaped here), e.g.
        ``"© OpenStreetMap contributors (ODbL)"`` for OSM-derived data.
    lang : str, default "zh_CN"
        Language of the map's labels (``"zh_CN"`` or ``"en"``); also set as
        the ``lang`` attribute of the map container so CJK text gets CJK fonts.

    Returns
    -------
    folium.Map
        A map with a plain light background, a scale bar and the attribution,
        drawing vectors as SVG.

    Raises
    ------
    InputError
        For malformed bounds or an unsupported language.
    """
    lang = language(lang)
    minx, miny, maxx, maxy = _validate_bounds(bounds)
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=15,
        tiles=None,
        control_scale=True,
        prefer_canvas=False,  # SVG: segment paths stay DOM elements with our CSS class
        max_zoom=21,
    )
    m.add_child(Chrome(attribution=attribution, lang=lang))
    m.add_child(MapTools())
    m.fit_bounds([[miny, minx], [maxy, maxx]], padding=(12, 12), max_zoom=19)
    return m


def rounded(geoms: gpd.GeoSeries) -> np.ndarray:
    """Geometries with coordinates rounded for drawing (smaller pages, same picture)."""
    values = geoms.values if isinstance(geoms, gpd.GeoSeries) else geoms
    return shapely.transform(values, lambda xy: np.round(xy, COORDINATE_DECIMALS))


def round_coordinate(value: float) -> float:
    """A lon or lat rounded as drawn."""
    return round(float(value), COORDINATE_DECIMALS)


def drop_layer_control(m: folium.Map) -> folium.Map:
    """``m`` without its layer control (to add more layers, then one control at the end)."""
    for key in [k for k, child in m._children.items() if isinstance(child, folium.LayerControl)]:
        del m._children[key]
    return m


def add_layer_control(m: folium.Map) -> folium.Map:
    """The expanded layer switcher, top right, as on every gisgrid map."""
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    return m


# --------------------------------------------------------------------------- rendering


def render(m: folium.Map, *, title: str | None = None) -> str:
    """The complete HTML page of ``m``, titled ``title`` (plain text, escaped here) if given."""
    if title is not None:
        m.get_root().title = escape(title)
    return m.get_root().render()


def map_parts(m: folium.Map) -> dict[str, str]:
    """Split ``m`` into what a page template embeds.

    Returns
    -------
    dict
        ``map_header`` (scripts and styles for ``<head>``), ``map_html`` (the
        map's ``<div>``), ``map_script`` (the script drawing it) and
        ``map_name`` (the JavaScript variable holding the Leaflet map).
    """
    root = m.get_root()
    root.render()
    return {
        "map_header": root.header.render(),
        "map_html": root.html.render(),
        "map_script": root.script.render(),
        "map_name": m.get_name(),
    }
