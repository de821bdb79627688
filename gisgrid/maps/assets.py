"""Point Folium at gisgrid's vendored Leaflet assets instead of CDNs, and inline them for offline files.

Offices run gisgrid on intranets with no internet, so every script and style
sheet a map page loads must come from ``gisgrid/web/static/vendor/``
(:data:`gisgrid.config.VENDOR_DIR`; see the README there for the npm package,
version and licence of each file).  Folium keeps its resource lists in the
``default_js`` / ``default_css`` class attributes of :class:`folium.Map` and
of each plugin; :func:`use_local_assets` rewrites those lists, by resource
name, to local URLs.  :func:`standalone_html` inlines the same files into a
page that opens from disk.

Only the plugins gisgrid uses are vendored (see ``_ASSETS``); a map that adds
another plugin would still reference a CDN, which :func:`remote_urls` and
:func:`assert_no_remote_assets` catch in tests.
"""

from __future__ import annotations

import base64
import logging
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import folium
import folium.plugins

from gisgrid.config import VENDOR_DIR
from gisgrid.errors import InputError

LOGGER = logging.getLogger(__name__)

__all__ = ["VENDOR_DIR", "use_local_assets", "standalone_html", "remote_urls", "assert_no_remote_assets"]

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
#: Added to every map after Folium's own: labels along streets (Leaflet.TextPath) and gisgrid's map tools
#: (basemap, search box, legend behaviour: ``vendor/gisgrid/gg-map.js``, started by :mod:`gisgrid.maps._base`).
_MAP_EXTRA_JS = {
    "leaflet_textpath": "leaflet-textpath/leaflet.textpath.js",
    "gisgrid_map": "gisgrid/gg-map.js",
}
_MAP_EXTRA_CSS = {"gisgrid_map_css": "gisgrid/gg-map.css"}
_MAP_JS.update(_MAP_EXTRA_JS)
_MAP_CSS.update(_MAP_EXTRA_CSS)
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
    current = list(getattr(cls, attr))
    if cls is folium.Map:  # gisgrid's additions, once, after Folium's resources
        extra = _MAP_EXTRA_JS if attr == "default_js" else _MAP_EXTRA_CSS
        current += [(name, "") for name in extra if name not in {n for n, _ in current}]
    unknown = [name for name, _ in current if name not in files]
    if unknown:
        raise ValueError(
            f"{cls.__name__}.{attr} lists resources gisgrid has not vendored: {unknown}; "
            "vendor them under gisgrid/web/static/vendor/ and add them to gisgrid.maps.assets"
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


# --------------------------------------------------------------------------- offline files

_ASSET = re.compile(
    r'<script src="(/static/vendor/[^"]+)"></script>|<link rel="stylesheet" href="(/static/vendor/[^"]+)"\s*/?>'
)
_CSS_URL = re.compile(r"url\((['\"]?)([^)'\"]+)\1\)")
_IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".gif": "image/gif"}


def _vendor_file(url: str, vendor_dir: Path) -> Path:
    path = (vendor_dir / url.removeprefix("/static/vendor/")).resolve()
    if vendor_dir.resolve() not in path.parents:
        raise InputError(f"asset outside the vendor directory: {url}")
    return path


def _inline_css(path: Path) -> str:
    """The style sheet with its relative image URLs as data: URIs (fonts are left out)."""

    def image(match):
        ref = match.group(2)
        if ref.startswith(("data:", "http:", "https:", "//", "#")):
            return match.group(0) if ref.startswith(("data:", "#")) else "url()"
        target = (path.parent / ref.split("?")[0].split("#")[0]).resolve()
        kind = _IMAGE_TYPES.get(target.suffix.lower())
        if kind and target.is_file():
            return f"url(data:{kind};base64,{base64.b64encode(target.read_bytes()).decode()})"
        return "url()"

    return _CSS_URL.sub(image, path.read_text(encoding="utf-8"))


def standalone_html(html: str, *, vendor_dir: Path = VENDOR_DIR) -> str:
    """``html`` with every local vendored script and style sheet inlined: opens from a file, offline.

    Parameters
    ----------
    html : str
        A page whose assets are served from ``/static/vendor/`` (:func:`use_local_assets` with its default prefix).
    vendor_dir : Path, default :data:`gisgrid.config.VENDOR_DIR`
        Where those files are on disk.

    Raises
    ------
    InputError
        If the page names a file outside ``vendor_dir``.
    """

    def inline(match):
        js, css = match.groups()
        if js:
            text = _vendor_file(js, vendor_dir).read_text(encoding="utf-8").replace("</script", "<\\/script")
            return f"<script>{text}</script>"
        return f"<style>{_inline_css(_vendor_file(css, vendor_dir))}</style>"

    return _ASSET.sub(inline, html)
