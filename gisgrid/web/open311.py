"""Open311 GeoReport v2 at ``/open311/v2/`` (https://wiki.open311.org/GeoReport_v2), in JSON and XML.

Thin: the checks are :mod:`gisgrid.interop.open311`, the queries
:mod:`gisgrid.interop.open311_store`.  A client authenticates with its API key
(``api_key`` in the query or the form, as Open311 clients send it, or
``Authorization: Bearer``; :mod:`gisgrid.web.auth`): it then acts as its
account, within that account's sight.  Errors are the specification's list of
``{code, description}``.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, Response, current_app, json, request, url_for
from flask_babel import get_locale
from werkzeug.exceptions import HTTPException

from gisgrid.cases import context as case_context
from gisgrid.errors import GisgridError
from gisgrid.interop import open311, open311_store
from gisgrid.interop.open311 import Open311Error
from gisgrid.text import N_
from gisgrid.web.access import current_scope
from gisgrid.web.auth import current_actor
from gisgrid.web.db import get_conn, get_engine
from gisgrid.web.i18n import api_say

LOGGER = logging.getLogger(__name__)

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

_MIMETYPES = {"json": "application/json", "xml": "text/xml; charset=utf-8"}


def _lang() -> str:
    return "en" if str(get_locale()).startswith("en") else "zh"


def _fmt(fmt: str) -> str:
    if fmt not in open311.FORMATS:
        raise Open311Error(400, N_("format must be json or xml, not %(value)s", value=repr(fmt[:10])))
    return fmt


def _answer(data, fmt: str, root: str, item: str | None, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(open311.to_xml(root, item, data), status=status, mimetype="text/xml")
    return Response(json.dumps(data, ensure_ascii=False), status=status, mimetype="application/json")


def _request_fmt() -> str:
    """The format an error should be in: the URL's extension (JSON when it has none)."""
    return "xml" if request.path.endswith(".xml") else "json"


def error_response(status: int, description) -> Response:
    """An Open311 error list with its HTTP status; the description in Chinese when the request asks for it
    (``Accept-Language: zh``, :func:`gisgrid.web.i18n.api_say`)."""
    error = Open311Error(status, api_say(description))
    return _answer(error.as_list(), _request_fmt(), "errors", "error", status)


@bp.errorhandler(Open311Error)
def _open311_error(exc: Open311Error):
    return error_response(exc.status, exc.description)


@bp.errorhandler(GisgridError)
def _gisgrid_error(exc: GisgridError):
    return error_response(exc.http_status_code, api_say(exc))


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    if exc.code is None or exc.code < 400:
        return exc
    descriptions = {
        401: N_("api_key is missing or not valid"),
        403: N_("this API key's account may not do this"),
        404: N_("not found"),
        405: N_("this address does not accept that method"),
    }
    return error_response(exc.code, descriptions.get(exc.code, exc.description or exc.name))


@bp.get("/discovery.<fmt>")
def discovery(fmt: str):
    fmt = _fmt(fmt)
    base = url_for("open311.services", fmt="json", _external=True).rsplit("/", 1)[0] + "/"
    changed = dt.datetime.now(dt.timezone.utc).replace(microsecond=0, hour=0, minute=0, second=0)
    data = {
        "changeset": open311.iso(changed),
        "contact": "gisgrid street-chief office",
        "key_service": "API keys are issued by the administrators (/admin/users)",
        "endpoints": [
            {
                "specification": "http://wiki.open311.org/GeoReport_v2",
                "url": base,
                "changeset": open311.iso(changed),
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }
    return _answer(data, fmt, "discovery", None)


@bp.get("/services.<fmt>")
def services(fmt: str):
    fmt = _fmt(fmt)
    _check_jurisdiction_arg()
    return _answer(open311_store.services(get_conn(), lang=_lang()), fmt, "services", "service")


def _check_jurisdiction_arg() -> None:
    code = (request.args.get("jurisdiction_id") or "").strip()
    if code and code not in {j["code"] for j in open311_store.jurisdiction_codes(get_conn())}:
        raise Open311Error(400, N_("unknown jurisdiction_id %(code)s", code=repr(code[:40])))


@bp.get("/services/<code>.<fmt>")
def service_definition(code: str, fmt: str):
    fmt = _fmt(fmt)
    _check_jurisdiction_arg()
    return _answer(open311_store.service_definition(get_conn(), code), fmt, "service_definition", None)


@bp.get("/requests.<fmt>")
def list_requests(fmt: str):
    fmt = _fmt(fmt)
    filters = open311.parse_request_filters(request.args, now=dt.datetime.now(dt.timezone.utc))
    rows = open311_store.list_requests(get_conn(), current_scope(), filters, _settings(), lang=_lang())
    return _answer(rows, fmt, "service_requests", "request")


@bp.post("/requests.<fmt>")
def create_request(fmt: str):
    fmt = _fmt(fmt)
    form = {k: request.form.getlist(k) for k in request.form if k != "api_key"}
    new = open311.parse_new_request(form)
    snapshots = current_app.extensions["gisgrid.snapshots"]
    geocoder = snapshots.gazetteers.get(get_conn()) if new.lat is None else None
    with get_engine().begin() as conn:
        made = open311_store.create_request(
            conn,
            current_actor(),
            snapshots.deployment.get(get_conn()),
            _settings(),
            new,
            geocoder=geocoder,
            fallback_jurisdiction_id=case_context.home_jurisdiction(_user()),
        )
    return _answer([made], fmt, "service_requests", "request", 201)


@bp.get("/requests/<int:request_id>.<fmt>")
def get_request(request_id: int, fmt: str):
    fmt = _fmt(fmt)
    if request_id > 2**31 - 1:
        raise Open311Error(404, N_("no service request %(id)s", id=request_id))
    row = open311_store.get_request(get_conn(), current_scope(), request_id, _settings(), lang=_lang())
    return _answer([row], fmt, "service_requests", "request")


@bp.get("/tokens/<token>.<fmt>")
def token(token: str, fmt: str):
    fmt = _fmt(fmt)
    return _answer(
        open311_store.request_for_token(get_conn(), current_scope(), token), fmt, "service_requests", "request"
    )


def _settings():
    return current_app.config["GISGRID_SETTINGS"]


def _user():
    from flask_login import current_user

    return current_user.user
