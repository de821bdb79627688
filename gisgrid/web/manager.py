"""The manager map (/map): where problems concentrate, come back and have no owner.

The data is read by :func:`gisgrid.analytics.store.manager_map_data` and drawn
by :func:`gisgrid.maps.manager.manager_map` (ownership, reports or hexagons,
heatmap, Gi* hotspots, choropleth, recurring places, coverage gaps, overdue
reports).  Exports: a standalone offline HTML file, a PNG (headless Chromium)
and the summaries as XLSX.
"""

from __future__ import annotations

import datetime as dt
import io
import logging

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from gisgrid.accounts.store import list_jurisdictions, list_towns, visible_jurisdiction
from gisgrid.analytics import store as manager
from gisgrid.analytics.filters import OWNER_KEY, STATUSES
from gisgrid.analytics.hotspots import METHOD_TEXT, METHOD_TEXT_ZH
from gisgrid.errors import InputError, NotFound
from gisgrid.io import write_workbook
from gisgrid.maps import manager as manager_maps
from gisgrid.maps import map_parts, render
from gisgrid.maps.assets import standalone_html
from gisgrid.maps.manager import (
    DENSITY_COLOURS,
    GAP_COLOUR,
    HOTSPOT_COLOURS,
    OVERDUE_COLOUR,
    RECURRING_COLOUR,
    hotspot_labels,
    status_labels,
)
from gisgrid.maps.slide import for_slide, manager_legend
from gisgrid.ownership.store import search_people
from gisgrid.web.access import current_scope
from gisgrid.web.db import get_conn
from gisgrid.web.i18n import map_language

LOGGER = logging.getLogger(__name__)

bp = Blueprint("manager", __name__, url_prefix="/map")

HEX_SIZE_M = 100.0
#: At most this many overdue reports and recurring places are drawn (the worst); counts are of all.
MAX_DRAWN = 300
#: Recurring places are searched in memory (pairs of nearby reports): only up to this many reports.
MAX_RECURRING_REPORTS = 50_000


def _lang() -> str:
    return map_language()


def _parse_day(value: str | None, what: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{what} must be a date YYYY-MM-DD, not {value!r}") from None


def _filters(conn) -> manager.ReportFilters:
    """Filters from the query string; the jurisdiction defaults to the first town.

    Every query is limited by the user's sight (``scope``): a chief sees the
    reports routed to what they own, inside a town where they own something.
    """
    args = request.args
    jurisdiction = args.get("jurisdiction")
    scope = current_scope()
    if jurisdiction is None or (not jurisdiction and not scope.unlimited):
        # a town the user sees whole, else one holding something of theirs
        towns = list_towns(conn, scope, whole=True) or list_towns(conn, scope)
        jurisdiction = towns[0]["code"] if towns else None
        if jurisdiction is None and not scope.unlimited:
            raise NotFound(_("No jurisdiction of yours to show."))
    if jurisdiction:
        visible_jurisdiction(conn, scope, jurisdiction, partly=True)  # another's: 404
    return manager.ReportFilters(
        date_from=_parse_day(args.get("from"), "date from"),
        date_to=_parse_day(args.get("to"), "date to"),
        categories=tuple(v for v in args.getlist("category") if v),
        statuses=tuple(v for v in args.getlist("status") if v),
        jurisdiction=jurisdiction or None,
        owner=_owner(conn, args.get("owner")),
        scope=scope,
    )


def _owner(conn, text: str | None) -> str | None:
    """The owner filter as ``person:ID``/``department:ID``.  A typed name that is exactly one owner's is
    taken; another is dropped with a message naming it (not a bare 400): people are told apart by id."""
    text = (text or "").strip()
    if not text or OWNER_KEY.fullmatch(text):
        return text or None
    found = search_people(conn, text, limit=50)
    exact = found[found["name"] == text]
    if len(exact) == 1:
        return f"{exact.iloc[0]['kind']}:{int(exact.iloc[0]['id'])}"
    if len(exact) > 1:
        flash(_("%(n)s owners are named %(name)s: pick one from the list as you type.", n=len(exact), name=text))
    else:
        flash(_("No owner is named %(name)s: pick one from the list as you type.", name=text))
    return None


def _status_labels() -> dict[str, str]:
    """The filter's statuses in the page's language: the map's labels and the pseudo-status "open"."""
    return {"open": _("open (not closed)"), **status_labels(_)}


def build_map(conn, filters: manager.ReportFilters, *, permutations: int = 9999):
    """The manager map for ``filters`` and the figures shown beside it."""
    data = manager.manager_map_data(
        conn,
        filters,
        size_m=HEX_SIZE_M,
        permutations=permutations,
        max_drawn=MAX_DRAWN,
        max_recurring_reports=MAX_RECURRING_REPORTS,
    )
    settings = current_app.config["GISGRID_SETTINGS"]
    return manager_maps.manager_map(data, attribution=settings.attribution, lang=_lang(), timezone=settings.timezone)


def _options(conn) -> dict:
    owners = []  # offered as the user types, by /owners/people.json (people are told apart by id)
    return {
        "categories": manager.categories(conn).to_dict("records"),
        "jurisdictions": list_jurisdictions(conn, current_scope()) or list_towns(conn, current_scope()),
        "statuses": STATUSES,
        "status_labels": _status_labels(),
        "owners": owners,
    }


@bp.get("")
@bp.get("/")
def manager_map():
    conn = get_conn()
    filters = _filters(conn)
    m, stats = build_map(conn, filters)
    return render_template(
        "manager.html",
        filters=filters,
        stats=stats,
        options=_options(conn),
        method_text=METHOD_TEXT if _lang() == "en" else METHOD_TEXT_ZH,
        hotspot_colours=HOTSPOT_COLOURS,
        hotspot_labels=hotspot_labels(_lang()),
        density_colours=DENSITY_COLOURS,
        gap_colour=GAP_COLOUR,
        overdue_colour=OVERDUE_COLOUR,
        recurring_colour=RECURRING_COLOUR,
        query=request.query_string.decode(),
        **map_parts(m),
    )


# --------------------------------------------------------------------------- exports


def _standalone(conn, filters) -> str:
    """The exported page: the map with a title, the jurisdiction, the period and a legend, and no controls
    (:func:`gisgrid.maps.slide.for_slide`), to go on a slide."""
    m, stats = build_map(conn, filters)
    place = filters.jurisdiction or ""
    if filters.jurisdiction:
        place = visible_jurisdiction(conn, filters.scope, filters.jurisdiction, partly=True)["name"]
    start, end = filters.date_from, filters.date_to
    period = _("%(first)s to %(last)s", first=start or "…", last=end or "…") if start or end else _("all dates")
    lines = [place, _("Period: %(period)s", period=period), _("%(n)s reports", n=stats["n"])]
    for_slide(m, title=_("Manager map"), lines=[v for v in lines if v], legend=manager_legend(stats, _lang()))
    return standalone_html(render(m, title=_("Manager map") + f" · {place} · {period}"))


@bp.get("/export.html")
def export_html():
    conn = get_conn()
    html = _standalone(conn, _filters(conn))
    return Response(
        html,
        mimetype="text/html; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="gisgrid-map.html"'},
    )


@bp.get("/export.png")
def export_png():
    """The standalone map as PNG: rendered by headless Chromium in a background job; its progress page.

    The page is built here (as for the HTML export); the browser runs in the
    worker (:data:`gisgrid.jobs.MAP_PNG`), and the progress page links to the PNG.
    """
    from gisgrid.web.jobs import start_map_png

    conn = get_conn()
    job = start_map_png(_standalone(conn, _filters(conn)))
    return redirect(url_for("jobs.show", job=job), code=303)


@bp.get("/summary.xlsx")
def summary_xlsx():
    conn = get_conn()
    tables = manager.summaries(conn, _filters(conn))
    buf = io.BytesIO()
    # sheet and column names in the page's language (a meeting's spreadsheet, not a data exchange)
    columns = {
        "owner": _("owner"),
        "code": _("code"),
        "name": _("name"),
        "level": _("level"),
        "reports": _("reports"),
        "open": _("open"),
        "street_km": _("street km"),
        "cells": _("cells"),
        "per_km": _("reports per km"),
        "per_cell": _("reports per cell"),
        "share_open": _("share open"),
    }
    write_workbook(
        {
            _("owners"): tables["owner"].rename(columns=columns),
            _("jurisdictions"): tables["jurisdiction"].rename(columns=columns),
        },
        buf,
    )
    return Response(
        buf.getvalue(),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="gisgrid-summary.xlsx"'},
    )
