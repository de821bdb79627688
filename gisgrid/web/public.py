"""The residents' channel: the public report page, a resident's report, a segment's public page (公示).

No login.  Every route here is PUBLIC in :data:`gisgrid.web.access.RULES`.

``GET  /public/report?segment=ID``   the report form (390 px phones first): place from the QR code's segment,
                                     the GPS or a map click; category, description, optional photo
``POST /public/report``              take the report in: a case in the dispatcher's queue (source ``public``)
                                     that counts against nobody until a dispatcher accepts it (立案)
``GET  /public/case/<id>?t=TOKEN``   the resident follows their report by its number and the link's token
``GET  /public/segment/<id>``        who answers for the segment and its recently closed cases

Abuse limits (Flask-Limiter, counting in PostgreSQL so that every process
counts together): reports per device (a cookie this page sets) and per
client address, each a setting
(``public_rate_per_device``, ``public_rate_per_address``); a report larger
than ``public_max_bytes`` is a 413 before it is read.  A photo passes the
checks of every case photo (:mod:`gisgrid.cases.photos`).
"""

from __future__ import annotations

import logging
import secrets

from flask import Blueprint, current_app, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_limiter import Limiter
from werkzeug.exceptions import RequestEntityTooLarge

from gisgrid.accounts.scope import Scope
from gisgrid.accounts.users import Actor
from gisgrid.cases import context as case_context
from gisgrid.cases import store as case_store
from gisgrid.cases.intake import parse_case_input
from gisgrid.cases.photos import PhotoError, store_photo
from gisgrid.db.ratelimits import STORAGE_URI as RATE_LIMIT_STORAGE
from gisgrid.demo import ATTRIBUTION
from gisgrid.errors import InputError, NotFound
from gisgrid.frontage.public import new_token, resident_case, segment_page
from gisgrid.frontage.signboards import board_for_segment
from gisgrid.maps import cases as case_maps
from gisgrid.web.auth import client_address
from gisgrid.web.db import get_conn, get_engine

LOGGER = logging.getLogger(__name__)

bp = Blueprint("public", __name__, url_prefix="/public")

DEVICE_COOKIE = "gg_device"


def _settings():
    return current_app.config["GISGRID_SETTINGS"]


def _lang() -> str:
    return "en" if str(get_locale()).startswith("en") else "zh_CN"


def _state_label(state: str) -> str:
    labels = {
        "waiting": _("waiting for a dispatcher to confirm it"),
        "accepted": _("confirmed: a case was opened"),
        "rejected": _("not taken up"),
        "in_hand": _("being handled"),
        "closed": _("closed"),
        "merged": _("joined to a report of the same problem"),
    }
    return labels.get(state, state)


def device_key() -> str:
    """The device's id (this page's cookie); a client without it is counted by its address."""
    device = request.cookies.get(DEVICE_COOKIE, "")
    if 16 <= len(device) <= 64 and device.isalnum():
        return f"device:{device}"
    return f"nodevice:{client_address()}"


def address_key() -> str:
    return f"address:{client_address()}"


@bp.errorhandler(429)
def _too_many(_exc):
    # this blueprint's own answer (the app's 429 page speaks of logins)
    text = _("Too many reports from this phone or network. Please try again later, or call the hotline.")
    return make_response(render_template("public/error.html", error=text), 429)


def _form_context(conn, form: dict, *, segment_id: int | None) -> dict:
    board = None
    if segment_id is not None:
        board = board_for_segment(conn, _settings(), segment_id)
        form.setdefault("lon", board["lon"])
        form.setdefault("lat", board["lat"])
    bounds = None
    if form.get("lon") and form.get("lat"):
        x, y = float(form["lon"]), float(form["lat"])
        bounds = (x - 0.002, y - 0.0016, x + 0.002, y + 0.0016)
    else:
        bounds = case_context.scope_bounds(conn, Scope.everything())
    parts = {}
    if bounds:
        m = case_maps.intake_map(
            bounds, streets=case_context.context_streets(conn, bounds), attribution=ATTRIBUTION, lang=_lang()
        )
        root = m.get_root()
        root.render()
        parts = {
            "map_header": root.header.render(),
            "map_html": root.html.render(),
            "map_script": root.script.render(),
            "map_name": m.get_name(),
        }
    return {"categories": case_store.categories(conn).to_dict("records"), "form": form, "board": board, **parts}


@bp.context_processor
def _links():
    def lang_link(code: str) -> str:
        args = {k: v for k, v in request.args.items() if k != "lang"}
        return url_for(request.endpoint, **(request.view_args or {}), **args, lang=code)

    return {"lang_link": lang_link}


def _segment_arg() -> int | None:
    raw = (request.values.get("segment") or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise NotFound(_("No such street segment.")) from None


def _resident_text(exc: Exception) -> str:
    """What was wrong, in the page's language: residents read no English error codes."""
    text = str(exc)
    parts = []
    if isinstance(exc, PhotoError):
        parts.append(_("The photo could not be used (a JPEG, PNG or WebP picture of at most %(mb)s MB is needed).",
                       mb=_settings().photo_max_bytes // (1024 * 1024)))  # fmt: skip
    if "location is needed" in text or text.startswith(("lon", "lat")) or "outside" in text:
        parts.append(_("Set the place first: tap the map or use your location."))
    if "category" in text:
        parts.append(_("Choose what the problem is."))
    if "description has" in text:
        parts.append(_("The description is too long: at most 2000 characters."))
    return "\n".join(parts) or _("The report could not be taken: %(why)s", why=text)


@bp.get("/report")
def report_form():
    conn = get_conn()
    form = {"client_id": secrets.token_hex(16)}
    resp = make_response(render_template("public/report.html", **_form_context(conn, form, segment_id=_segment_arg())))
    if not request.cookies.get(DEVICE_COOKIE):
        resp.set_cookie(DEVICE_COOKIE, secrets.token_hex(16), max_age=365 * 24 * 3600, httponly=True,
                        samesite="Lax", secure=request.is_secure)  # fmt: skip
    return resp


@bp.post("/report")
def report_submit():
    """Take a resident's report in (:func:`init_app` puts the abuse limits around this view)."""
    settings = _settings()
    if (request.content_length or 0) > settings.public_max_bytes:
        raise RequestEntityTooLarge()
    request.max_content_length = settings.public_max_bytes
    form = {k: v for k, v in request.form.items() if k in ("lon", "lat", "category", "description", "client_id")}
    segment_id = _segment_arg()
    form["crs"] = "EPSG:4326"
    try:
        data = parse_case_input(form, source="public")
        photos = []
        for f in request.files.getlist("photo")[:1]:
            if f and f.filename:
                blob = f.read(settings.photo_max_bytes + 1)
                photos.append(store_photo(blob, settings.var_dir, max_bytes=settings.photo_max_bytes,
                                          max_pixels=settings.photo_max_pixels, thumb_px=settings.photo_thumb_px,
                                          name=f.filename[:80]))  # fmt: skip
        actor = Actor(name="public report page", address=client_address())
        token = new_token()
        deployment = current_app.extensions["gisgrid.snapshots"].deployment.get(get_conn())
        with get_engine().begin() as conn:
            made = case_store.create_case(conn, actor, deployment, settings, data, public_token=token)
            if photos and made.created:
                case_store.add_photos(conn, actor, made.id, photos, kind="before")
    except (InputError, PhotoError) as exc:
        ctx = _form_context(get_conn(), form, segment_id=segment_id)
        return render_template("public/report.html", error=_resident_text(exc), **ctx), exc.http_status_code
    if not made.created:  # the same form sent twice: the first report answers (its token is in that link)
        return render_template(
            "public/error.html", error=_("This report was sent before as number %(id)s.", id=made.id)
        )
    return redirect(url_for("public.case_status", case_id=made.id, t=token), 303)


@bp.get("/case/<int:case_id>")
def case_status(case_id: int):
    case = resident_case(get_conn(), case_id, request.args.get("t"))
    if request.args.get("format") == "json":
        return jsonify({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in case.items()})
    return render_template("public/case.html", case=case, state_label=_state_label(case["state"]),
                           link=request.url)  # fmt: skip


@bp.get("/segment/<int:segment_id>")
def segment(segment_id: int):
    return render_template("public/segment.html", **segment_page(get_conn(), _settings(), segment_id))


def init_app(app) -> None:
    """Register the blueprint with the abuse limits around the report's POST.

    The counters are kept in PostgreSQL (:mod:`gisgrid.db.ratelimits`), not in the process: every process of
    ``gisgrid serve --processes N`` (and every app on the same database) counts against the same limits.
    """
    settings = app.config["GISGRID_SETTINGS"]
    limiter = Limiter(
        address_key,
        app=app,
        storage_uri=RATE_LIMIT_STORAGE,
        storage_options={"engine": app.extensions["gisgrid.engine"]},
        default_limits=[],
        headers_enabled=True,
        enabled=app.config.get("RATELIMIT_ENABLED", True),
    )
    app.extensions["gisgrid.public_limiter"] = limiter
    app.register_blueprint(bp)
    view = app.view_functions["public.report_submit"]
    # what counts is a stored report (the redirect to its number); refused input costs the abuser nothing stored
    stored = lambda response: response.status_code == 303  # noqa: E731
    view = limiter.limit(app.config.get("PUBLIC_RATE_PER_DEVICE") or settings.public_rate_per_device,
                         key_func=device_key, scope="public-device", deduct_when=stored)(view)  # fmt: skip
    view = limiter.limit(app.config.get("PUBLIC_RATE_PER_ADDRESS") or settings.public_rate_per_address,
                         key_func=address_key, scope="public-address", deduct_when=stored)(view)  # fmt: skip
    app.view_functions["public.report_submit"] = view
