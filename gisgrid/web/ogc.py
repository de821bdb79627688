"""OGC API – Features (Part 1 Core, GeoJSON, HTML, OpenAPI 3.0; Part 2 CRS) at ``/ogc/``.

Thin: the collections and the checks are :mod:`gisgrid.interop.features`,
the queries :mod:`gisgrid.interop.features_store` (every row within the
caller's sight).  JSON by default, HTML with ``f=html`` or a browser's
``Accept``; errors are ``{code, description}`` with 400 or 404.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, Response, current_app, json, render_template, request, url_for
from flask_babel import get_locale
from flask_login import current_user

from gisgrid.accounts.roles import Permission
from gisgrid.errors import GisgridError
from gisgrid.interop import features_store
from gisgrid.interop.features import (
    COLLECTIONS,
    CONFORMANCE,
    ITEM_PARAMETERS,
    OTHER_PARAMETERS,
    Collection,
    FeaturesError,
    ItemsQuery,
    check_parameters,
    crs_uri,
    page_links,
    parse_crs,
    parse_datetime,
    parse_items_query,
    supported_crs,
)
from gisgrid.text import N_
from gisgrid.web.access import current_scope
from gisgrid.web.db import get_conn
from gisgrid.web.i18n import api_say

LOGGER = logging.getLogger(__name__)

bp = Blueprint("ogc", __name__, url_prefix="/ogc")

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"


def _lang() -> str:
    return "en" if str(get_locale()).startswith("en") else "zh"


def _wants_html() -> bool:
    f = request.args.get("f")
    if f is not None:
        if f not in ("json", "html", "geojson"):
            raise FeaturesError(400, "InvalidParameterValue", N_("f must be json or html"))
        return f == "html"
    best = request.accept_mimetypes.best_match([JSON, GEOJSON, HTML], default=JSON)
    return best == HTML and request.accept_mimetypes[HTML] > request.accept_mimetypes[JSON]


def _json(data, mimetype: str = JSON, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(data, ensure_ascii=False), status=status, mimetype=mimetype, headers=headers or {})


def _url(endpoint: str, **values) -> str:
    return url_for(endpoint, _external=True, **values)


@bp.errorhandler(FeaturesError)
def _features_error(exc: FeaturesError):
    # the description in Chinese when the request asks for it (Accept-Language: zh); the code stays the standard's
    return _json({"code": exc.code, "description": api_say(exc.description)}, status=exc.status)


@bp.errorhandler(GisgridError)
def _gisgrid_error(exc: GisgridError):
    return _json({"code": type(exc).__name__, "description": api_say(exc)}, status=exc.http_status_code)


def _collections_for_user() -> list[Collection]:
    return [c for c in COLLECTIONS.values() if current_user.may(Permission(c.permission))]


def _collection(cid: str) -> Collection:
    found = COLLECTIONS.get(cid)
    if found is None or not current_user.may(Permission(found.permission)):
        raise FeaturesError(
            404, "NotFound", N_("no collection %(id)s; collections: %(all)s", id=repr(cid), all=", ".join(COLLECTIONS))
        )
    return found


def _supported() -> list[str]:
    return supported_crs(features_store.metric_epsgs(get_conn(), current_app.config["GISGRID_SETTINGS"]))


def _links_self(endpoint: str, title: str, **values) -> list[dict]:
    return [
        {"href": _url(endpoint, f="json", **values), "rel": "self", "type": JSON, "title": title},
        {"href": _url(endpoint, f="html", **values), "rel": "alternate", "type": HTML, "title": title + " (HTML)"},
    ]


@bp.get("/")
def landing():
    check_parameters(request.args, OTHER_PARAMETERS)
    data = {
        "title": "gisgrid",
        "description": "Street-chief grid management: jurisdictions, streets, segments with their owner chain, "
        "grid cells with their owners, owner appointments, cases and coverage problems",
        "links": [
            *_links_self("ogc.landing", "This document"),
            {
                "href": _url("api.openapi_doc"),
                "rel": "service-desc",
                "type": "application/vnd.oai.openapi+json;version=3.0",
                "title": "The API definition",
            },  # fmt: skip
            {"href": _url("ogc.landing", f="html"), "rel": "service-doc", "type": HTML, "title": "These pages"},
            {"href": _url("ogc.conformance"), "rel": "conformance", "type": JSON, "title": "Conformance"},
            {"href": _url("ogc.collections"), "rel": "data", "type": JSON, "title": "Collections"},
        ],
    }
    if _wants_html():
        return render_template("ogc.html", view="landing", data=data)
    return _json(data)


@bp.get("/conformance")
def conformance():
    check_parameters(request.args, OTHER_PARAMETERS)
    data = {"conformsTo": list(CONFORMANCE)}
    if _wants_html():
        return render_template("ogc.html", view="conformance", data=data)
    return _json(data)


def _collection_doc(c: Collection, supported: list[str]) -> dict:
    lang = _lang()
    return {
        "id": c.id,
        "title": c.title(lang),
        "description": c.description_en,
        "itemType": "feature",
        "crs": supported,
        "storageCrs": supported[0],
        "extent": features_store.extent(get_conn(), current_scope(), c.id),
        "links": [
            *_links_self("ogc.collection", c.title(lang), cid=c.id),
            {"href": _url("ogc.items", cid=c.id, f="json"), "rel": "items", "type": GEOJSON, "title": c.title(lang)},
            {"href": _url("ogc.items", cid=c.id, f="html"), "rel": "items", "type": HTML, "title": c.title(lang)},
        ],
    }


@bp.get("/collections")
def collections():
    check_parameters(request.args, OTHER_PARAMETERS)
    supported = _supported()
    data = {
        "links": _links_self("ogc.collections", "Collections"),
        "collections": [_collection_doc(c, supported) for c in _collections_for_user()],
        "crs": supported,
    }
    if _wants_html():
        return render_template("ogc.html", view="collections", data=data)
    return _json(data)


@bp.get("/collections/<cid>")
def collection(cid: str):
    check_parameters(request.args, OTHER_PARAMETERS)
    data = _collection_doc(_collection(cid), _supported())
    if _wants_html():
        return render_template("ogc.html", view="collection", data=data)
    return _json(data)


def _settings():
    return current_app.config["GISGRID_SETTINGS"]


@bp.get("/collections/<cid>/items")
def items(cid: str):
    c = _collection(cid)
    supported = _supported()
    query = parse_items_query(request.args, c, supported)
    html = _wants_html()
    scope = current_scope(query.day)
    page = features_store.items(get_conn(), scope, cid, query, _settings())
    matched = page.matched
    base = _url("ogc.items", cid=cid)
    args = {k: v for k, v in request.args.items() if k != "f"}
    pages = page_links(base, {**args, "f": "json"}, query, page.returned, matched)
    links = [
        {"href": _self(base, args, "json"), "rel": "self", "type": GEOJSON, "title": "This page"},
        {"href": _self(base, args, "html"), "rel": "alternate", "type": HTML, "title": "This page (HTML)"},
        {"href": _url("ogc.collection", cid=cid), "rel": "collection", "type": JSON, "title": c.title(_lang())},
    ]
    if pages["next"]:
        links.append({"href": pages["next"], "rel": "next", "type": GEOJSON, "title": "Next page"})
    if pages["prev"]:
        links.append({"href": pages["prev"], "rel": "prev", "type": GEOJSON, "title": "Previous page"})
    data = {
        "type": "FeatureCollection",
        "links": links,
        "timeStamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "numberReturned": page.returned,
    }
    if matched is not None:
        data["numberMatched"] = matched
    headers = {"Content-Crs": f"<{crs_uri(query.crs)}>"}
    if html:
        data["features"] = page.features
        html_pages = {k: (v.replace("f=json", "f=html") if v else None) for k, v in pages.items()}
        return (
            render_template(
                "ogc.html",
                view="items",
                data=data,
                collection=c,
                pages=html_pages,
                lang=_lang(),
                json_url=_self(base, args, "json"),
            ),
            200,
            headers,
        )
    # the features' JSON as PostgreSQL wrote it, spliced in (a page of 10,000 is never parsed here)
    body = json.dumps(data, ensure_ascii=False)[:-1] + ', "features": ' + page.text + "}"
    return Response(body, mimetype=GEOJSON, headers=headers)


def _self(base: str, args: dict, f: str) -> str:
    from urllib.parse import urlencode

    return f"{base}?{urlencode({**args, 'f': f})}"


@bp.get("/collections/<cid>/items/<fid>")
def item(cid: str, fid: str):
    c = _collection(cid)
    check_parameters(request.args, ITEM_PARAMETERS)
    if not (fid.isascii() and fid.isdigit()) or len(fid) > 12:  # "¹".isdigit(), yet int() refuses it
        raise FeaturesError(404, "NotFound", N_("no feature %(id)s in %(name)s", id=repr(fid[:20]), name=cid))
    supported = _supported()
    crs = parse_crs(request.args.get("crs"), supported)
    start = end = None
    if request.args.get("datetime"):
        start, end = parse_datetime(request.args["datetime"])
    query = ItemsQuery(limit=1, crs=crs, start=start if cid != "cases" else None, end=end if cid != "cases" else None)
    html = _wants_html()
    found = features_store.items(
        get_conn(), current_scope(query.day), cid, query, _settings(), feature_id=int(fid), count=False
    )
    feature = features_store.check_feature_exists(found, cid, int(fid))
    feature["links"] = [
        {"href": _url("ogc.item", cid=cid, fid=fid, f="json"), "rel": "self", "type": GEOJSON, "title": "This feature"},
        {"href": _url("ogc.item", cid=cid, fid=fid, f="html"), "rel": "alternate", "type": HTML, "title": "HTML"},
        {"href": _url("ogc.collection", cid=cid), "rel": "collection", "type": JSON, "title": c.title(_lang())},
    ]
    headers = {"Content-Crs": f"<{crs_uri(crs)}>"}
    if html:
        data = {"type": "FeatureCollection", "features": [feature], "links": feature["links"]}
        page = render_template(
            "ogc.html",
            view="item",
            data=data,
            collection=c,
            pages={},
            lang=_lang(),
            json_url=_url(
                "ogc.item",
                cid=cid,
                fid=fid,
                f="json",
                **({"crs": request.args["crs"]} if "crs" in request.args else {}),
            ),
        )
        return page, 200, headers
    return _json(feature, GEOJSON, headers=headers)
