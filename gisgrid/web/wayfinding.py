"""Finding one's way on the maps: the basemap (tiles or gisgrid's own layers), the search box, the help page.

Every map page reads its basemap and search settings from the ``gg-map-config`` meta tag of ``base.html``
(:func:`map_config`); ``static/vendor/gisgrid/gg-map.js`` (added to every Folium map by
:mod:`gisgrid.maps._base`) draws them.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from gisgrid.basemap import mbtiles
from gisgrid.basemap.store import context_layers, parse_view
from gisgrid.errors import InputError
from gisgrid.search.store import search_units
from gisgrid.web.access import current_scope
from gisgrid.web.db import get_conn

LOGGER = logging.getLogger(__name__)

bp = Blueprint("wayfinding", __name__)

#: Tiles are the same for everybody and change only when a package is installed: browsers keep them a day.
TILE_MAX_AGE_S = 24 * 3600


def _settings():
    return current_app.config["GISGRID_SETTINGS"]


def map_config() -> dict:
    """What the map script of every page needs: the basemap, the search URL and its words in the page language."""
    settings = _settings()
    tiles = None
    if settings.basemap_url:
        tiles = {
            "url": settings.basemap_url,
            "attribution": settings.basemap_attribution,
            "maxZoom": int(settings.basemap_max_zoom),
        }
    else:
        package = _installed()
        if package is not None:
            tiles = {
                "url": url_for("wayfinding.tile", z=0, x=0, y=0).replace("/0/0/0", "/{z}/{x}/{y}"),
                "attribution": package.attribution,
                "maxZoom": 21,
                "maxNativeZoom": package.max_zoom,
                "minNativeZoom": package.min_zoom,
            }
    signed_in = current_user.is_authenticated
    return {
        "tiles": tiles,
        "context": url_for("wayfinding.context") if tiles is None and signed_in else None,
        "search": url_for("wayfinding.search") if signed_in else None,
        "caseUrl": url_for("cases.case_page", case_id=0).replace("/0", "/{id}") if signed_in else None,
        "words": {
            "search": _("Search: street, address, person, cell, segment, case no."),
            "nothing": _("Nothing found."),
            "failed": _("Search failed; try again."),
            "legendFilter": _("Find a name"),
            "legendToggle": _("Legend"),
            "legend": _("Legend"),
            "filters": _("Filters"),
            "street": _("Street"),
            "segment": _("Segment"),
            "cell": _("Grid cell"),
            "person": _("Person"),
            "case": _("Case"),
            "address": _("Address"),
            "units": _("units"),
            "open": _("Open"),
        },
    }


def _installed():
    try:
        return mbtiles.installed(_settings().var_dir)
    except InputError:
        LOGGER.exception("the installed basemap package cannot be read")
        return None


def init_app(app) -> None:
    @app.context_processor
    def _map_config():
        return {"map_config": map_config}


@bp.get("/basemap/tiles/<int:z>/<int:x>/<int:y>")
def tile(z: int, x: int, y: int):
    """A tile of the installed MBTiles package; a transparent one where the package has none."""
    package_path = mbtiles.installed_path(_settings().var_dir)
    if not package_path.is_file():
        abort(404)
    data = mbtiles.read_tile(package_path, z, x, y)
    if data is None:
        response = Response(mbtiles.EMPTY_PNG, mimetype="image/png")
    else:
        kind = mbtiles._sniff(data) or "png"
        response = Response(data, mimetype=mbtiles.MEDIA_TYPES[kind])
    response.cache_control.private = True
    response.cache_control.max_age = TILE_MAX_AGE_S
    return response


@bp.get("/api/basemap/context")
def context():
    """Jurisdiction boundaries and streets of the view ``?bbox=w,s,e,n&zoom=z``, GeoJSON in EPSG:4326."""
    try:
        bbox, zoom = parse_view(request.args.get("bbox"), request.args.get("zoom"))
    except InputError:
        raise InputError(_("The map view must be given as bbox=west,south,east,north and a zoom of 0 to 24.")) from None
    return jsonify(context_layers(get_conn(), bbox, zoom))


@bp.get("/api/search")
def search():
    """``?q=``: streets, segments, cells, people and cases the user sees, and the address the geocoder finds."""
    q = " ".join((request.args.get("q") or "").split())[:100]
    if not q:
        return jsonify(results=[])
    conn = get_conn()
    results = [f.as_dict() for f in search_units(conn, q, current_scope())]
    if not any(r["kind"] == "case" for r in results) and len(q) >= 3:
        found = current_app.extensions["gisgrid.snapshots"].gazetteers.get(conn).geocode(q)
        if found.ok:
            results.append(
                {
                    "kind": "address",
                    "id": None,
                    "label": found.matched_name or q,
                    "detail": q,
                    "bbox": [found.lon, found.lat, found.lon, found.lat],
                    "count": None,
                    "geometry": {"type": "Point", "coordinates": [found.lon, found.lat]},
                }
            )
    return jsonify(results=results)


@bp.get("/help")
def help_page():
    """What each role does with gisgrid, step by step, with pictures of the pages."""
    return render_template("help.html")
