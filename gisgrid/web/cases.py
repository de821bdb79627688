"""Cases in the browser and over JSON: lists, the case page, intake (form, phone, API), steps, photos, inbox.

Thin: every rule is in :mod:`gisgrid.cases` (the workflow table, intake
checks, the store that applies the visibility predicate).  Who acts comes
from the session (:func:`gisgrid.web.auth.current_actor`), never from the
request body; what the user may see is :func:`gisgrid.web.access.current_scope`.
Access to each route is in :data:`gisgrid.web.access.RULES`; which *steps*
a user may take on a case is the workflow table's answer.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid

import pandas as pd
from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from gisgrid import timeutil
from gisgrid.cases import bulk as case_bulk
from gisgrid.cases import calendar as case_calendar
from gisgrid.cases import context as case_context
from gisgrid.cases import duplicates as case_duplicates
from gisgrid.cases import lists as case_lists
from gisgrid.cases import store
from gisgrid.cases import trail as case_trail
from gisgrid.cases import workflow as wf
from gisgrid.cases.intake import CaseInput, parse_case_input
from gisgrid.cases.photos import PhotoError, resolve, store_photo
from gisgrid.demo import ATTRIBUTION
from gisgrid.errors import Conflict, Forbidden, GisgridError, InputError, NotFound
from gisgrid.io.records import plain, records
from gisgrid.maps import cases as case_maps
from gisgrid.text import N_
from gisgrid.web.access import current_scope
from gisgrid.web.auth import current_actor
from gisgrid.web.db import get_conn, get_engine
from gisgrid.web.i18n import reason, say_geocode_note

LOGGER = logging.getLogger(__name__)

bp = Blueprint("cases", __name__)

#: States and steps in the page's language (their English and Chinese terms are the workflow table's).
STATE_LABELS = {k: _l(v.template) for k, v in wf.STATE_TEXT.items()}
ACTION_LABELS = {k: _l(v.template) for k, v in wf.STEP_TEXT.items()}
VIEW_LABELS = {"mine": _l("My cases"), "queue": _l("Dispatch queue"), "all": _l("All cases in my area")}
INBOX_LABELS = {
    "assigned": _l("assigned to you"),
    "deadline_near": _l("deadline near"),
    "escalated": _l("escalated to you"),
    "returned": _l("returned"),
    "extension": _l("more time asked"),
}
#: Routing rules (gisgrid.routing.rules.RULES) as people read them on the case page.
RULE_LABELS = {
    "category_route": _l("by category: its department or route"),
    "address_street": _l("by the written address: its street"),
    "segment_area": _l("inside a segment's area"),
    "nearest_segment": _l("nearest segment within the tolerance"),
    "grid_cell": _l("inside a grid cell"),
    "jurisdiction_default": _l("the territory's default owner"),
    "frontage_unit": _l("in a frontage unit's frontage"),
    "unassigned": _l("nobody's area: unassigned"),
}
COLOUR_LABELS = {"green": _l("on time"), "yellow": _l("deadline near"), "red": _l("overdue")}


def _settings():
    return current_app.config["GISGRID_SETTINGS"]


def _user():
    return current_user.user


def _deployment():
    return current_app.extensions["gisgrid.snapshots"].deployment.get(get_conn())


def _lang() -> str:
    return "en" if str(get_locale()).startswith("en") else "zh_CN"


@bp.app_template_filter("local_time")
def _local_time_filter(value, tz: str | None = None, *, seconds: bool = False) -> str:
    """``{{ when | local_time }}``: :func:`gisgrid.timeutil.local_text` in the deployment's time zone, or
    ``tz`` (a case's jurisdiction's).  Pages show no UTC."""
    return timeutil.local_text(value, tz or _settings().timezone, seconds=seconds)


def _unread() -> int:
    """Unread inbox rows of the signed-in user (asked once per page, when the menu is drawn)."""
    if not getattr(current_user, "is_authenticated", False):
        return 0
    from flask import g

    if "gisgrid_unread" not in g:
        try:
            g.gisgrid_unread = case_trail.unread_count(get_conn(), _user())
        except GisgridError:
            g.gisgrid_unread = 0
    return g.gisgrid_unread


@bp.app_context_processor
def _case_labels():
    return {
        "state_label": lambda s: STATE_LABELS.get(s, s),
        "action_label": lambda a: ACTION_LABELS.get(a, a),
        "colour_label": lambda c: COLOUR_LABELS.get(c, ""),
        "rule_label": lambda r: RULE_LABELS.get(r, r or ""),
        "inbox_unread": _unread,
        "calendar_years": _calendar_years,
        "case_categories": lambda: store.category_rows(get_conn()),
    }


# --- lists -----------------------------------------------------------------------------------
def _filters_from(args) -> case_lists.CaseFilters:
    def day(name):
        value = args.get(name)
        if not value:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise InputError(_("%(field)s must be a date (YYYY-MM-DD).", field=name)) from None

    bbox = None
    if args.get("bbox"):
        try:
            bbox = tuple(float(v) for v in args["bbox"].split(","))
            assert len(bbox) == 4
        except (ValueError, AssertionError):
            raise InputError(_("bbox must be west,south,east,north in degrees.")) from None
    owner_id, namesakes = case_lists.owner_id_from(get_conn(), current_scope(), (args.get("owner") or "")[:200])
    if namesakes:
        raise _Namesakes(namesakes)
    return case_lists.CaseFilters(
        status=tuple(s for s in args.getlist("status") if s),
        category=args.get("category") or None,
        owner_person_id=owner_id,
        overdue=args.get("overdue") in ("1", "on", "true"),
        since=day("since"),
        until=day("until"),
        jurisdiction=args.get("jurisdiction") or None,
        bbox=bbox,
        area_wkt=_area(args.get("area")),
    )


class _Namesakes(InputError):
    """An owner box naming several people: the list page asks which one (by number and place)."""

    def __init__(self, people: list[dict]):
        super().__init__(N_("several people have this name: pick one"))
        self.people = people


def _area(text: str | None) -> str | None:
    """A drawn area as WKT, checked here: PostGIS would fail the whole query on text that is not a polygon."""
    if not text:
        return None
    import numpy as np  # noqa: PLC0415
    import shapely  # noqa: PLC0415

    with np.errstate(over="ignore", invalid="ignore"):  # 1e400 reads as infinity, NaN as NaN: refused below
        geom = shapely.from_wkt(text, on_invalid="ignore") if len(text) < 1_000_000 else None
    if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon") or not _in_degrees(geom):
        raise InputError(_("area must be a polygon in WKT, e.g. POLYGON((lon lat, …)), in degrees."))
    return text


def _in_degrees(geom) -> bool:
    """Every vertex a longitude and latitude (finite, within ±180 and ±90)."""
    import numpy as np  # noqa: PLC0415
    import shapely  # noqa: PLC0415

    xy = shapely.get_coordinates(geom)
    return bool(np.isfinite(xy).all() and (np.abs(xy[:, 0]) <= 180).all() and (np.abs(xy[:, 1]) <= 90).all())


@bp.get("/cases")
def case_list():
    user = _user()
    view = request.args.get("view") or case_lists.default_view(user)
    if view not in case_lists.VIEWS:
        view = case_lists.default_view(user)
    owner_error = None
    try:
        filters = _filters_from(request.args)
    except (_Namesakes, InputError) as exc:  # an owner box naming several or nobody: asked, nothing lost
        unowned = request.args.copy()
        unowned["owner"] = ""
        filters = _filters_from(unowned)  # another bad filter still answers 400 with its reason
        namesakes = getattr(exc, "people", [])
        owner_error = None if namesakes else reason(exc)
    else:
        namesakes = []
    try:
        page = min(max(1, int(request.args.get("page") or 1)), 1_000_000)  # beyond the last page: an empty list
    except ValueError:
        page = 1
    per_page = 50
    conn = get_conn()
    found = case_lists.case_page(
        conn, current_scope(), user, _settings(), view=view, filters=filters, page=page, per_page=per_page
    )
    args = {k: v for k, v in request.args.items() if k not in ("page", "view") and v}
    pages = max(1, math.ceil((found.total or 0) / per_page))
    return render_template(
        "cases.html",
        cases=found.rows,
        total=found.total,
        more=found.more,
        page=page,
        pages=max(pages, page + 1) if found.more else pages,
        view=view,
        views=VIEW_LABELS,
        filters=filters,
        categories=store.category_rows(conn),
        states=wf.STATES,
        args=args,
        places=_places(conn, filters.jurisdiction),
        namesakes=namesakes,
        owner_error=owner_error,
        args_no_owner={k: v for k, v in args.items() if k != "owner"},
        owner_text=request.args.get("owner", "")
        if namesakes or owner_error
        else _owner_label(conn, filters.owner_person_id),
    )


def _places(conn, chosen: str | None) -> list[dict]:
    """The jurisdictions the user sees whole, for the list's place filter (by name; the code is the value)."""
    from gisgrid.accounts.store import list_jurisdictions

    places = list_jurisdictions(conn, current_scope())
    if chosen and chosen not in {p["code"] for p in places}:
        places.insert(0, {"code": chosen, "name": chosen, "level": ""})
    return places


def _owner_label(conn, person_id: int | None) -> str:
    """What the owner box shows for a filter by person number: the picker's label (name · #id · places)."""
    if person_id is None:
        return ""
    found = case_lists.owner_candidates(conn, current_scope(), person_id=person_id, limit=1)
    return found[0]["label"] if found else f"#{person_id}"


@bp.get("/cases/area.json")
def area_json():
    """What the case list's area map draws: the box of the user's area and its streets (loaded when the
    user opens the map to draw an area to filter or export by)."""
    conn = get_conn()
    scope = current_scope()
    bounds = case_context.scope_bounds(conn, scope) or case_context.scope_bounds(conn, scope.everything())
    if bounds is None:
        return jsonify(bounds=None, streets={"type": "FeatureCollection", "features": []})
    return jsonify(bounds=list(bounds), streets=case_context.streets_geojson(conn, bounds))


@bp.get("/cases/owners.json")
def owners_json():
    """People to filter a case list by (``?q=`` part of a name): those owning a place the user sees, each
    with its number and places so that namesakes stay apart; the box sends the label back."""
    q = (request.args.get("q") or "").strip()[:100]
    people = case_lists.owner_candidates(get_conn(), current_scope(), text=q, limit=20) if q else []
    return jsonify(people=[{"id": p["id"], "label": p["label"]} for p in people])


EXPORT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "geojson": "application/geo+json",
}


@bp.get("/cases/export.<fmt>")
def export(fmt: str):
    """The cases of a list (same view and filters; ``area``: a WKT polygon drawn on the map) as XLSX or GeoJSON."""
    import io as _io

    from flask import Response

    from gisgrid.io import to_geojson_bytes, write_table

    if fmt not in EXPORT_TYPES:
        raise NotFound(_("No export as %(fmt)s: xlsx or geojson.", fmt=fmt))
    user = _user()
    view = request.args.get("view") if request.args.get("view") in case_lists.VIEWS else case_lists.default_view(user)
    frame = case_lists.export_cases(
        get_conn(), current_scope(), user, _settings(), view=view, filters=_filters_from(request.args)
    )
    if fmt == "geojson":
        body = to_geojson_bytes(frame, layer="cases")
    else:
        # a spreadsheet for people: sheet, columns and states in the page's language (GeoJSON keeps the keys)
        from gisgrid.web.inspections import SOURCE_LABELS

        table = frame.drop(columns="geometry").assign(
            status=[str(STATE_LABELS.get(v, v)) for v in frame["status"]],
            source=[str(SOURCE_LABELS.get(v, v)) if v else v for v in frame["source"]],
        )
        buf = _io.BytesIO()
        write_table(table, buf, kind="xlsx", sheet="cases", number_columns=("lon", "lat"),
                    labels=_export_labels())  # fmt: skip
        body = buf.getvalue()
    stamp = timeutil.local_today(_settings().timezone).isoformat()
    return Response(
        body, mimetype=EXPORT_TYPES[fmt], headers={"Content-Disposition": f'attachment; filename="cases-{stamp}.{fmt}"'}
    )


def _export_labels() -> dict[str, str]:
    """The XLSX export's sheet and column names (store.EXPORT_COLUMNS) in the page's language."""
    return {
        "cases": _("Cases"),
        "id": _("Case number"),
        "status": _("Status"),
        "category": _("Category code"),
        "category_name": _("Category"),
        "reported_at": _("Reported"),
        "due_at": _("Deadline"),
        "closed_at": _("Closed at"),
        "overdue": _("Overdue"),
        "address": _("Address"),
        "description": _("Description"),
        "owner_name": _("Owner"),
        "jurisdiction_code": _("Jurisdiction code"),
        "jurisdiction_name": _("Jurisdiction"),
        "escalation_level": _("Escalation level"),
        "escalated_name": _("Escalated to"),
        "rework_count": _("Rework"),
        "recurrence_of_id": _("Recurrence of case"),
        "merged_into_id": _("Merged into case"),
        "source": _("Source"),
        "lon": _("Longitude"),
        "lat": _("Latitude"),
    }


# --- the case page ---------------------------------------------------------------------------
def _case_page(case_id: int, *, status: int = 200, error: str | None = None, form: dict | None = None):
    conn = get_conn()
    scope = current_scope()
    case = store.get_case(conn, scope, case_id)  # NotFound outside the user's sight; checked once per page
    events = store.case_events(conn, None, case_id)
    photos = store.case_photos(conn, None, case_id)
    user = _user()
    actions = store.actions_for(case, user)
    duplicates = []
    if "merge" in actions and case["category_id"] is not None:
        duplicates = case_duplicates.find_duplicates(
            conn,
            _settings(),
            category_id=case["category_id"],
            lon=case["lon"],
            lat=case["lat"],
            at=case["reported_at"],
            case_id=case_id,
            scope=scope,
        )
    owners = case_context.owner_choices(conn, case) if "dispatch" in actions else []
    return render_template(
        "case.html",
        case=case,
        events=events,
        before=[p for p in photos if p["kind"] == "before"],
        after=[p for p in photos if p["kind"] == "after"],
        actions=actions,
        transitions=wf.TRANSITIONS,
        duplicates=duplicates,
        owners=owners,
        error=error,
        form=form or {},
        case_map={
            **case_context.case_map_data(conn, case),
            "colour": case_maps.DEADLINE_COLOURS.get(case["colour"], case_maps.DEADLINE_COLOURS[None]),
            "label": f"#{case['id']} {case['category_name'] or ''}",
            "attribution": ATTRIBUTION,
            "lang": "en" if _lang() == "en" else "zh-CN",
        },
    ), status


def _map_parts(m) -> dict:
    root = m.get_root()
    root.render()
    return {
        "map_header": root.header.render(),
        "map_html": root.html.render(),
        "map_script": root.script.render(),
        "map_name": m.get_name(),
    }


@bp.get("/cases/<int:case_id>")
def case_page(case_id: int):
    return _case_page(case_id)


def _photos_from_request(field: str = "photos") -> list:
    """Store the uploaded photos (checked, EXIF stripped); a bad one is a PhotoError naming it."""
    settings = _settings()
    out = []
    for f in request.files.getlist(field):
        if not f or not f.filename:
            continue
        data = f.read(settings.photo_max_bytes + 1)
        out.append(
            store_photo(
                data,
                settings.var_dir,
                max_bytes=settings.photo_max_bytes,
                max_pixels=settings.photo_max_pixels,
                thumb_px=settings.photo_thumb_px,
                name=f.filename[:80],
            )
        )
    return out


def _step_input(values) -> store.StepInput:
    def number(name, kind=float):
        raw = values.get(name)
        if raw in (None, ""):
            return None
        try:
            return kind(raw)
        except (TypeError, ValueError):
            raise InputError(_("%(field)s must be a number.", field=name)) from None

    version = number("version", int)
    if version is None:
        raise InputError(_("The form is missing the case's version: reload the case."))
    return store.StepInput(
        version=version,
        note=values.get("note"),
        reason=values.get("reason"),
        owner=values.get("owner") or None,
        hours=number("hours"),
        into=number("into", int),
    )


def _take_step(case_id: int, action: str, values, photos) -> dict:
    user = _user()
    with get_engine().begin() as conn:
        return store.take_step(
            conn,
            current_actor(),
            user,
            current_scope(),
            _settings(),
            case_id,
            action,
            _step_input(values),
            photos=photos,
            deployment=_deployment() if action == "reopen" else None,
        )


@bp.post("/cases/<int:case_id>/step")
def case_step(case_id: int):
    action = request.form.get("action") or ""
    form = {k: v for k, v in request.form.items() if k not in ("csrf_token",)}
    try:
        photos = _photos_from_request()
        case = _take_step(case_id, action, request.form, photos)
    except NotFound:
        raise
    except Conflict as exc:
        return _case_page(
            case_id,
            status=409,
            error=_("Someone else changed this case meanwhile: %(why)s", why=reason(exc)),
            form=form,
        )
    except GisgridError as exc:
        return _case_page(case_id, status=exc.http_status_code, error=reason(exc), form=form)
    flash(_("Done: %(step)s.", step=ACTION_LABELS.get(action, action)))
    if action == "reopen" and case.get("recurrences"):
        return redirect(url_for("cases.case_page", case_id=case["recurrences"][-1]), 303)
    return redirect(url_for("cases.case_page", case_id=case_id), 303)


@bp.get("/cases/photos/<int:photo_id>")
def photo(photo_id: int):
    return _photo(photo_id, thumb=False)


@bp.get("/cases/photos/<int:photo_id>/thumb")
def photo_thumb(photo_id: int):
    return _photo(photo_id, thumb=True)


def _photo(photo_id: int, *, thumb: bool):
    info = store.photo_file(get_conn(), current_scope(), photo_id)
    rel = info["thumb_path"] if thumb else info["path"]
    try:
        path = resolve(_settings().var_dir, rel)
    except InputError:
        raise NotFound(_("No such photo.")) from None
    if not path.is_file():
        raise NotFound(_("The photo file is missing from the data folder."))
    response = send_file(path, mimetype=info["content_type"], max_age=3600, conditional=True)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


# --- intake ----------------------------------------------------------------------------------
def _intake_context(conn, form: dict | None = None) -> dict:
    scope = current_scope()
    bounds = case_context.scope_bounds(conn, scope) or case_context.scope_bounds(conn, scope.everything())
    parts = {}
    if bounds:
        m = case_maps.intake_map(
            bounds, streets=case_context.context_streets(conn, bounds), attribution=ATTRIBUTION, lang=_lang()
        )
        parts = _map_parts(m)
    return {
        "categories": store.category_rows(conn),
        "form": form or {"client_id": str(uuid.uuid4())},
        **parts,
    }


def _geocoded(form: dict) -> dict:
    """The form with lon/lat from its address when no point was picked (a GeocodeResult note otherwise)."""
    if form.get("lon") and form.get("lat") or not form.get("address"):
        return form
    gazetteers = current_app.extensions["gisgrid.snapshots"].gazetteers.get(get_conn())
    found = gazetteers.geocode(form["address"])
    if not found.ok:
        why = say_geocode_note(found.note) or "-"
        raise InputError(_("The address was not found (%(why)s): click the place on the map.", why=why))
    return {**form, "lon": found.lon, "lat": found.lat, "crs": "EPSG:4326"}


def _create(form: dict, *, source: str, photos=()) -> store.NewCase:
    if form.get("round_id"):  # a finding of an inspection round (督查 / 暗访): the round's rules apply
        from gisgrid.web.inspections import record_finding

        return record_finding(form, photos)
    data: CaseInput = parse_case_input(form, source=source)
    user = _user()
    with get_engine().begin() as conn:
        made = store.create_case(
            conn,
            current_actor(),
            _deployment(),
            _settings(),
            data,
            fallback_jurisdiction_id=case_context.home_jurisdiction(user),
        )
        if photos and made.created:
            store.add_photos(conn, current_actor(), made.id, photos, kind="before")
    return made


@bp.route("/cases/new", methods=["GET", "POST"])
def intake():
    conn = get_conn()
    if request.method == "GET":
        return render_template("case_new.html", **_intake_context(conn))
    form = {k: v for k, v in request.form.items() if k != "csrf_token"}
    try:
        photos = _photos_from_request()
        made = _create(_geocoded(form), source="phone" if form.get("channel") == "phone" else "web", photos=photos)
    except (InputError, PhotoError) as exc:
        ctx = _intake_context(conn, form)
        template = "case_phone.html" if form.get("channel") == "phone" else "case_new.html"
        return render_template(template, error=reason(exc), **ctx), exc.http_status_code
    if made.created:
        flash(_("Case %(id)s taken in.", id=made.id))
        if made.unassigned:
            flash(_("Nobody owns this place: the case waits, unassigned, in the dispatch queue."))
        if made.duplicates:
            flash(_("Possible duplicates nearby: %(ids)s.", ids=", ".join(f"#{d['id']}" for d in made.duplicates)))
    else:
        flash(_("This report was taken in before as case %(id)s.", id=made.id))
    return redirect(url_for("cases.case_page", case_id=made.id), 303)


@bp.post("/cases/from-geocode/<job>")
def from_geocode(job: str):
    """The geocoding page's located rows as cases, in one step, keeping each source row.

    A row's category is its category column's (the one named at upload),
    else the one picked on the page; each row's client id is the job and the
    row, so that taking the same job in twice makes no case twice.
    """
    from gisgrid.cases.intake import rows_to_inputs
    from gisgrid.web.geocode import _job_dir, _job_meta, _read_result

    path = _job_dir(job)  # another clerk's job answers 404
    meta = _job_meta(path)
    frame, names = _read_result(path)
    default = (request.form.get("category") or "").strip() or None
    table = pd.DataFrame(
        {
            "lon": pd.to_numeric(frame[names["lon"]], errors="coerce"),
            "lat": pd.to_numeric(frame[names["lat"]], errors="coerce"),
            "category": frame[meta["category"]].replace("", None).fillna(default or "")
            if meta.get("category") in frame.columns
            else default,
            "address": frame[meta["column"]],
            "client_id": [f"geocode:{job}:{i + 1}" for i in range(len(frame))],
        }
    )
    inputs, errors = rows_to_inputs(plain(table), crs="EPSG:4326", source="geocode")
    errors = [
        _("not located: place the row on the map first") if (e and pd.isna(lon)) else e
        for e, lon in zip(errors, table["lon"])
    ]
    user = _user()
    with get_engine().begin() as conn:
        made = case_bulk.create_cases(
            conn,
            current_actor(),
            _deployment(),
            _settings(),
            inputs,
            fallback_jurisdiction_id=case_context.home_jurisdiction(user),
        )
    made["error"] = [e or m for e, m in zip(errors, made["error"])]
    made.insert(0, "row", range(1, len(made) + 1))
    made.insert(1, "address", table["address"].to_numpy())
    made["case_id"] = made["case_id"].astype("Int64")
    return render_template(
        "case_import.html",
        rows=records(made),
        made=int(made["created"].sum()),
        again=int((made["case_id"].notna() & ~made["created"].astype(bool)).sum()),
        bad=int(made["error"].notna().sum()),
        back=url_for("geocode.show_job", job=job),
    )


@bp.get("/cases/phone/")
def phone():
    """The phone page (390 px): GPS location, a camera photo, and an outbox kept on the device without signal."""
    from gisgrid.web.inspections import phone_context

    return render_template("case_phone.html", categories=store.category_rows(get_conn()), **phone_context())


@bp.get("/cases/phone/sw.js")
def phone_worker():
    """The phone page's service worker (under /cases/phone/, so that its scope covers the page)."""
    from pathlib import Path

    response = send_file(Path(bp.root_path) / "static" / "case_sw.js", mimetype="text/javascript", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.post("/api/cases/phone")
def api_phone():
    """A report from the phone page's outbox: form fields and photos (multipart) → JSON, as ``POST /api/cases``.

    201 new, 200 when its client id was seen before (sent twice: one case),
    400 ``{error, detail}`` for input that will never be accepted.
    """
    form = {k: v for k, v in request.form.items() if k != "csrf_token"}
    try:
        photos = _photos_from_request()
        made = _create(form, source="phone", photos=photos)
    except (InputError, Forbidden) as exc:  # Forbidden: a round's finding by someone not its inspector
        return jsonify(error=getattr(exc, "code", None) or type(exc).__name__, detail=reason(exc)), exc.http_status_code
    return jsonify(made.as_dict()), 201 if made.created else 200


# --- the working-day calendar ---------------------------------------------------------------
@bp.route("/cases/calendar", methods=["GET", "POST"])
def calendar():
    """An admin enters a year's official holidays and make-up working days (they override the package).

    One day a line, ``date,workday,note`` — e.g. ``2027-01-01,休,元旦`` or
    ``2027-02-07,班,春节调休`` — or a CSV/XLSX file with those columns.
    """
    from gisgrid.cases.workflow import parse_calendar_rows

    error = None
    status = 200
    text = ""
    if request.method == "POST":
        text = request.form.get("days") or ""
        try:
            upload = request.files.get("file")
            if upload and upload.filename:
                frame = _calendar_file(upload)
            else:
                lines = [ln.strip() for ln in text.replace("，", ",").splitlines() if ln.strip()]
                frame = pd.DataFrame(
                    [(ln.split(",") + ["", ""])[:3] for ln in lines], columns=["date", "workday", "note"]
                )
            days = parse_calendar_rows(frame)
            if not days:
                raise InputError(_("No days given."))
            year = days[0][0].year
            with get_engine().begin() as conn:
                n = case_calendar.enter_calendar_year(conn, current_actor(), year, days)
            flash(_("%(year)s: %(n)s days entered.", year=year, n=n))
            return redirect(url_for("cases.calendar"), 303)
        except InputError as exc:
            error, status = reason(exc), exc.http_status_code
    conn = get_conn()
    return render_template(
        "calendar.html",
        entries=case_calendar.calendar_entries(conn).to_dict("records"),
        missing=case_calendar.uncovered_years(conn, _settings()),
        error=error,
        text=text,
    ), status


def _calendar_file(upload):
    import tempfile
    from pathlib import Path

    from gisgrid.db.imports import read_table

    suffix = Path(upload.filename).suffix.lower()
    if suffix not in (".csv", ".xlsx", ".txt"):
        raise InputError(_("Send a CSV or XLSX file."))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"calendar{suffix}"
        upload.save(path)
        frame, malformed = read_table(path)
    if malformed:
        raise InputError(
            N_.join("; ", [N_("row %(n)s: %(why)s", n=r, why=why) for r, why in sorted(malformed.items())])
        )
    return frame.drop(columns="row")


def _calendar_years() -> list[int]:
    """Years counted Monday–Friday for want of the calendar: the warning admins and managers see on every page."""
    from flask import g

    if not getattr(current_user, "is_authenticated", False) or not (_user().roles & {"admin", "manager"}):
        return []
    if "gisgrid_calendar_years" not in g:
        try:
            g.gisgrid_calendar_years = case_calendar.uncovered_years(get_conn(), _settings())
        except GisgridError:
            g.gisgrid_calendar_years = []
    return g.gisgrid_calendar_years


# --- inbox -----------------------------------------------------------------------------------
@bp.get("/cases/inbox")
def inbox():
    frame = case_trail.inbox(get_conn(), _user(), current_scope())
    return render_template("inbox.html", rows=frame.to_dict("records"), labels=INBOX_LABELS)


@bp.post("/cases/inbox/read")
def inbox_read():
    ids = [int(i) for i in request.form.getlist("id") if str(i).isdigit() and len(str(i)) < 19] or None
    with get_engine().begin() as conn:
        case_trail.mark_read(conn, _user(), ids)
    return redirect(url_for("cases.inbox"), 303)


# --- JSON ------------------------------------------------------------------------------------
def _json_case(case: dict) -> dict:
    out = {}
    for k, v in case.items():
        if isinstance(v, (dt.datetime, dt.date)):
            out[k] = v.isoformat()
        elif isinstance(v, float) and math.isnan(v):
            out[k] = None
        else:
            out[k] = v
    return out


@bp.post("/api/cases")
def api_create():
    """Take in a case: JSON ``{lon, lat, crs, category, description, address, client_id, reported_at}``.

    201 with the case, its routing and the duplicates offered; 200 with the
    existing case when ``client_id`` was seen before; 400 ``{error, detail}``
    for bad input.
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(
            error="bad_request", detail="send a JSON object: {lon, lat, crs, category, description, client_id}"
        ), 400
    source = body.get("source") if body.get("source") in ("phone", "api") else "api"
    try:
        made = _create(_geocoded({k: body.get(k) for k in body}), source=source)
    except InputError as exc:
        return jsonify(error=getattr(exc, "code", None) or type(exc).__name__, detail=reason(exc)), exc.http_status_code
    answer = made.as_dict()
    answer["url"] = url_for("cases.case_page", case_id=made.id)
    return jsonify(answer), 201 if made.created else 200


@bp.get("/api/cases/<int:case_id>")
def api_case(case_id: int):
    conn = get_conn()
    scope = current_scope()
    case = store.get_case(conn, scope, case_id)
    case["events"] = [_json_case(e) for e in store.case_events(conn, None, case_id)]  # seen by get_case
    case["actions"] = store.actions_for(case, _user())
    return jsonify(_json_case(case))


@bp.post("/api/cases/<int:case_id>/<action>")
def api_step(case_id: int, action: str):
    """Take a step: JSON ``{version, note, reason, owner, hours, into}``; 409 for a stale version or a wrong
    state, 403 for a step the user's roles do not allow, 404 for a case out of sight."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="bad_request", detail="send a JSON object with the version you saw"), 400
    case = _take_step(case_id, action, body, ())
    return jsonify(_json_case({k: v for k, v in case.items() if k not in ("merged", "routing")}))


@bp.get("/api/cases/geocode")
def api_geocode():
    """An address → a point (EPSG:4326) for the intake form; 404 when not found, with the reason."""
    address = (request.args.get("address") or "").strip()[:300]
    if not address:
        return jsonify(error="missing_address", detail="give ?address="), 400
    gazetteers = current_app.extensions["gisgrid.snapshots"].gazetteers.get(get_conn())
    found = gazetteers.geocode(address)
    if not found.ok:
        return jsonify(error="not_found", detail=say_geocode_note(found.note) or _("not found")), 404
    note = say_geocode_note(found.note)
    return jsonify(lon=found.lon, lat=found.lat, quality=found.quality, matched=found.matched_name, note=note)
