"""Point Folium at gisgrid's vendored Leaflet assets instead of CDNs.

Offices run gisgrid on intranets with no internet, so every script and style
sheet a map page loads must come from ``gisgrid/web/static/vendor/`` (see the
README there for the npm package, version and licence of each file).  Folium
keeps its resource lists in the ``default_js`` / ``default_css`` class
attributes of :class:`folium.Map` and of each plugin; :func:`use_local_assets`
rewrites those lists, by resource name, to local URLs.

Only the plugins gisgrid uses are vendored (see ``_ASSETS``); a map that adds
another plugin would still reference a CDN, which :func:`remote_urls` and
:func:`assert_no_remote_assets` catch in tests.
"""

from __future__ import annotations

import logging
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import folium
import folium.plugins

LOGGER = logging.getLogger(__name__)

#: Directory holding the vendored files.
VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor"

#: Folium resource name -> file under ``VENDOR_DIR``, per Folium class.  The
#: names are those in each class's ``default_js`` / ``default_css`` (folium 0.20).
_MAP_JS = {
    "leaflet": "leaflet/leaflet.js",
    "jquery": "jquery/jquery.min.js",
    "bootstrap": "bootstrap/js/bootstrap.bundle.min.js",
    "awesome_markers": "leaflet.awesome-markers/leaflet.awesome-markers.min.js",
}
_MAP_CSS = {
    "leaflet_css": "leaflet/leaflet.css",
    "bootstrap_css": "bootstrap/css/bootstrap.min.css",
    "glyphicons_css": "bootstrap-3-glyphicons/css/bootstrap-glyphicons.css",
    "awesome_markers_font_css": "fontawesome-free/css/all.min.css",
    "awesome_markers_css": "leaflet.awesome-markers/leaflet.awesome-markers.css",
    "awesome_rotate_css": "folium/leaflet.awesome.rotate.css",
}
_MARKERCLUSTER_JS = {"markerclusterjs": "leaflet.markercluster/leaflet.markercluster.js"}
_MARKERCLUSTER_CSS = {
    "markerclustercss": "leaflet.markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": "leaflet.markercluster/MarkerCluster.Default.css",
}
_ASSETS: dict[type, tuple[dict[str, str], dict[str, str]]] = {
    folium.Map: (_MAP_JS, _MAP_CSS),
    folium.plugins.MarkerCluster: (_MARKERCLUSTER_JS, _MARKERCLUSTER_CSS),
    folium.plugins.FastMarkerCluster: (_MARKERCLUSTER_JS, _MARKERCLUSTER_CSS),
    folium.plugins.HeatMap: ({"leaflet-heat.js": "leaflet.heat/leaflet-heat.js"}, {}),
    folium.plugins.GeoMan: (
        {"leaflet_geoman_js": "leaflet-geoman-free/leaflet-geoman.min.js"},
        {"leaflet_geoman_css": "leaflet-geoman-free/leaflet-geoman.css"},
    ),
}


def _localise(cls: type, attr: str, files: dict[str, str], prefix: str) -> list[tuple[str, str]]:
    """``cls.<attr>`` with every URL replaced by ``prefix/<file>``, order kept."""
    current = getattr(cls, attr)
    unknown = [name for name, _ in current if name not in files]
    if unknown:
        raise ValueError(
            f"{cls.__name__}.{attr} lists resources gisgrid has not vendored: {unknown}; "
            "vendor them under gisgrid/web/static/vendor/ and add them to gisgrid.web.vendor"
        )
    return [(name, f"{prefix}/{files[name]}") for name, _ in current]


def use_local_assets(prefix: str = "/static/vendor") -> None:
    """Make Folium maps and the vendored plugins load their JS/CSS from ``prefix``.

    Sets the ``default_js`` / ``default_css`` class attributes of
    :class:`folium.Map`, ``MarkerCluster``, ``FastMarkerCluster``, ``HeatMap``
    and ``GeoMan``, so it affects every map rendered afterwards in the process.
    Calling it again (with the same or another prefix) is safe.

    Parameters
    ----------
    prefix : str, default "/static/vendor"
        URL path under which ``gisgrid/web/static/vendor/`` is served, e.g.
        ``app.static_url_path + "/vendor"``.  Must not be an absolute
        ``http(s)://`` URL: pages have to work offline.

    Raises
    ------
    ValueError
        If ``prefix`` points at another host, or Folium lists a resource that
        is not vendored (after a Folium upgrade).
    """
    prefix = prefix.rstrip("/")
    if _is_remote(prefix + "/"):
        raise ValueError(f"prefix {prefix!r} points at another host; use a path such as '/static/vendor'")
    # Compute every list first so a failure leaves Folium untouched.
    new = {
        cls: (_localise(cls, "default_js", js, prefix), _localise(cls, "default_css", css, prefix))
        for cls, (js, css) in _ASSETS.items()
    }
    for cls, (js_list, css_list) in new.items():
        cls.default_js = js_list
        cls.default_css = css_list
    LOGGER.debug("folium assets served from %s", prefix)


def _is_remote(url: str) -> bool:
    """True for ``http(s)://host/...`` and protocol-relative ``//host/...`` URLs."""
    parts = urlsplit(url.strip())
    return parts.scheme.lower() in {"http", "https"} or (not parts.scheme and bool(parts.netloc))


class _ResourceLinks(HTMLParser):
    """Collects the URLs a page loads: script src, link href, img/iframe/source src."""

    _ATTRS = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = self._ATTRS.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)

    handle_startendtag = handle_starttag


def remote_urls(html: str) -> list[str]:
    """Return the remote URLs a rendered page loads, in document order.

    Looks at ``<script src>``, ``<link href>`` and ``<img>``/``<iframe>``/``<source>``
    ``src`` attributes; a URL is remote when it is ``http(s)://`` or
    protocol-relative (``//host/...``).  Text inside scripts is not parsed.
    """
    parser = _ResourceLinks()
    parser.feed(html)
    parser.close()
    return [url for url in parser.urls if _is_remote(url)]


def assert_no_remote_assets(html: str) -> None:
    """Raise ``AssertionError`` listing the remote URLs ``html`` would load, if any."""
    urls = remote_urls(html)
    if urls:
        raise AssertionError(f"page loads {len(urls)} remote resource(s): {urls}")
