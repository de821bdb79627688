"""Rankings (一季一排名): the ranking page, the cases behind a unit's figures, published snapshots, the bulletin.

``/rankings/`` ranks the towns, communities, streets or owners of a
jurisdiction the user sees for a month or a quarter: a table that sorts, a
map coloured by grade and each unit's last 12 months as a small line.  A
manager publishes a ranking (``POST /rankings/publish``): its snapshot never
changes (``/rankings/N``), and the page says whether a re-run today would
differ and by how much.  Each snapshot prints as a bulletin (通报, PDF) and
downloads as XLSX.  The work is :mod:`gisgrid.supervision`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from gisgrid import timeutil
from gisgrid.errors import InputError
from gisgrid.supervision import bulletin, charts
from gisgrid.supervision import indicators as ind
from gisgrid.supervision import ranking_store as store
from gisgrid.supervision.ranking import GRADE_TABLES, Rules
from gisgrid.web.access import current_scope
from gisgrid.web.auth import current_actor
from gisgrid.web.db import get_conn, get_engine

LOGGER = logging.getLogger(__name__)

bp = Blueprint("rankings", __name__, url_prefix="/rankings")


def kind_labels() -> dict[str, str]:
    return {"town": _("Towns"), "community": _("Communities"), "street": _("Streets"), "owner": _("Owners")}


def column_labels() -> list[tuple[str, str]]:
    """(column, header) of the ranking table, in order."""
    return [
        ("rank", _("Rank")),
        ("unit_name", _("Ranked unit")),
        ("composite", _("Composite score")),
        ("grade", _("Grade")),
        ("cases_filed", _("Cases filed")),
        ("closure_rate", _("Closure rate")),
        ("on_time_rate", _("On-time closure rate")),
        ("rework_rate", _("Rework rate")),
        ("recurrence_rate", _("Recurrence rate")),
        ("mean_handling_hours", _("Mean handling time (working hours)")),
        ("cases_per_km", _("Cases per km of street")),
        ("inspection_score", _("Inspection score")),
        ("commended", _("Commended")),
        ("named", _("Named")),
    ]


def figure_labels() -> dict[str, str]:
    return {
        "filed": _("Cases filed"),
        "due": _("Due to close"),
        "closed": _("Closed"),
        "on_time": _("Closed on time"),
        "not_on_time": _("Late or still open"),
        "suspended": _("Suspended (not counted in the on-time rate)"),
        "reworked": _("Reworked"),
        "recurrences": _("Recurrences (same place within 90 days)"),
    }


def legend(rules: Rules) -> list[tuple[str, str]]:
    names = {"good": _("good"), "middle": _("middle"), "poor": _("poor")}
    out = []
    for floor, g in GRADE_TABLES[rules.grades]:
        label = names.get(g, g)
        out.append((g, label if floor == float("-inf") else f"{label} ≥ {floor:g}"))
    return out


def _settings():
    return current_app.config["GISGRID_SETTINGS"]


def _params(source=None) -> tuple[str, ind.Period, str | None]:
    source = source if source is not None else request.args
    settings = _settings()
    kind = (source.get("kind") or "town").strip()
    if kind not in ind.UNIT_KINDS:
        raise InputError(_("Unknown kind of unit %(v)s: choose towns, communities, streets or owners.", v=kind))
    raw = (source.get("period") or "").strip()
    if raw:
        try:
            period = ind.parse_period(raw, settings.timezone)
        except InputError:
            raise InputError(_("Period %(v)s: write a month as 2026-11 or a quarter as 2026-Q4.", v=raw)) from None
    else:
        period = ind.last_full_quarter(timeutil.local_today(settings.timezone), settings.timezone)
    code = (source.get("jurisdiction") or "").strip() or None
    return kind, period, code


def _fmt(col: str, value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if col.endswith("_rate"):
        return f"{float(value) * 100:.1f}%"
    if col in ("composite", "inspection_score", "mean_handling_hours", "cases_per_km"):
        return f"{float(value):.1f}" if col != "composite" else f"{float(value):.2f}"
    if col in ("commended", "named"):
        return "✓" if value else ""
    return str(value)


def _sort_value(col: str, value):
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool):
        return int(value)
    return value


def table_rows(rows, sparklines: dict | None = None) -> list[dict]:
    """The ranking frame as template rows: per column the text and the value it sorts by."""
    out = []
    for uid, row in rows.iterrows():
        out.append(
            {
                "unit_id": uid,
                "cells": [(c, _fmt(c, row.get(c)), _sort_value(c, row.get(c))) for c, _h in column_labels()],
                "grade": row.get("grade"),
                "commended": bool(row.get("commended")),
                "named": bool(row.get("named")),
                "sparkline": Markup((sparklines or {}).get(uid, "")),
            }
        )
    return out


def _sparklines(trend: dict, rows) -> dict:
    out = {}
    for uid in rows.index:
        values = trend["units"].get(uid, [None] * len(trend["months"]))
        label = _("%(unit)s, composite score by month", unit=rows.loc[uid, "unit_name"])
        out[uid] = charts.sparkline_svg(values, label=label)
    return out


@bp.get("/")
def index():
    kind, period, code = _params()
    conn = get_conn()
    scope = current_scope()
    settings = _settings()
    jur = store.find_jurisdiction(conn, scope, code)
    rules = Rules.from_settings(settings)
    ranking = store.compute_ranking(conn, settings, period, kind, jurisdiction=jur, rules=rules)
    rows = ranking.rows
    trend = store.trends(conn, settings, period, kind, jurisdiction=jur, rules=rules)
    title = _("%(place)s: %(kind)s by composite score, %(period)s", place=jur["name"], kind=kind_labels()[kind],
              period=period.label)  # fmt: skip
    map_svg = bulletin.unit_map(conn, kind, rows, period.last_day, legend=legend(rules)) if len(rows) else ""
    return render_template(
        "rankings/index.html",
        kind=kind,
        kinds=kind_labels(),
        period=period,
        jurisdiction=jur,
        choices=store.jurisdiction_choices(conn, scope),
        columns=column_labels(),
        rows=table_rows(rows, _sparklines(trend, rows)),
        map_svg=Markup(map_svg),
        title=title,
        rules=rules,
        snapshots=store.list_snapshots(conn, scope),
        may_publish=current_user.may("publish_rankings"),
        months=trend["months"],
    )


def _unit_id(kind: str, raw: str | None):
    raw = (raw or "").strip()
    if kind == "owner":
        if not re.fullmatch(r"(person|department):\d{1,9}", raw):
            raise InputError(_("Unit %(v)s: an owner is person:N or department:N.", v=raw))
        return raw
    if not raw.isdigit() or len(raw) > 9:
        raise InputError(_("Unit %(v)s: a whole number is needed.", v=raw))
    return int(raw)


@bp.get("/unit")
def unit():
    kind, period, code = _params()
    uid = _unit_id(kind, request.args.get("id"))
    conn = get_conn()
    settings = _settings()
    jur = store.find_jurisdiction(conn, current_scope(), code)
    ranking = store.compute_ranking(conn, settings, period, kind, jurisdiction=jur, rules=Rules.from_settings(settings))
    behind = store.cases_behind(conn, settings, ranking, uid)
    row = ranking.rows.loc[uid]
    return render_template(
        "rankings/unit.html",
        kind=kind,
        kinds=kind_labels(),
        period=period,
        jurisdiction=jur,
        unit_name=row["unit_name"],
        row=table_rows(ranking.rows.loc[[uid]])[0],
        columns=column_labels(),
        figures=[(k, label, behind.get(k, [])) for k, label in figure_labels().items()],
    )


@bp.post("/publish")
def publish():
    kind, period, code = _params(request.form)
    title = (request.form.get("title") or "").strip()
    if not title:
        raise InputError(_("A published ranking needs a title."))
    if len(title) > 200:
        raise InputError(_("The title is too long (at most 200 characters)."))
    settings = _settings()
    with get_engine().begin() as conn:
        jur = store.find_jurisdiction(conn, current_scope(), code)
        ranking = store.compute_ranking(
            conn, settings, period, kind, jurisdiction=jur, rules=Rules.from_settings(settings)
        )
        if ranking.rows.empty:
            raise InputError(_("No cases in %(period)s: nothing to publish.", period=period.label))
        sid = store.publish(conn, current_actor(), ranking, title=title)
    return redirect(url_for("rankings.snapshot", snapshot_id=sid), 303)


@bp.get("/<int:snapshot_id>")
def snapshot(snapshot_id: int):
    conn = get_conn()
    snap = store.get_snapshot(conn, current_scope(), snapshot_id)
    _current, diff = store.rerun(conn, _settings(), snap)
    names = snap["rows"]["unit_name"].to_dict() if len(snap["rows"]) else {}
    for u in diff["units"]:
        u["name"] = names.get(u["unit_id"], str(u["unit_id"]))
    return render_template(
        "rankings/snapshot.html",
        snap=snap,
        kinds=kind_labels(),
        columns=column_labels(),
        rows=table_rows(snap["rows"]),
        diff=diff,
    )


def bulletin_context(conn, snapshot_id: int, scope) -> dict:
    """What ``rankings/bulletin.html`` renders: the snapshot, its rules, table rows, map and trend (SVG)."""
    snap = store.get_snapshot(conn, scope, snapshot_id)
    rules = Rules.from_dict(snap["rules"])
    parts = bulletin.bulletin_parts(conn, _settings(), snap, legend=legend(rules))
    return {
        "snap": snap,
        "rules": rules,
        "kinds": kind_labels(),
        "columns": column_labels(),
        "rows": table_rows(snap["rows"]),
        "commended": list(parts["commended"]["unit_name"]),
        "named": list(parts["named"]["unit_name"]),
        "map_svg": parts["map_svg"],
        "trend_svg": parts["trend_svg"],
        "printed": dt.date.today(),
        "legend": legend(rules),
    }


def bulletin_html(ctx: dict) -> str:
    """The bulletin as HTML for WeasyPrint (the SVG pictures as data: images, which it draws)."""
    import base64

    for key in ("map_svg", "trend_svg"):
        svg = ctx[key]
        ctx[key + "_src"] = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode() if svg else ""
    return render_template("rankings/bulletin.html", **ctx)


def _file_name(snap: dict, ext: str) -> str:
    return f"ranking-{snap['id']}-{re.sub(r'[^0-9A-Za-z_-]', '_', snap['period'])}.{ext}"


@bp.get("/<int:snapshot_id>/bulletin.pdf")
def bulletin_pdf(snapshot_id: int):
    ctx = bulletin_context(get_conn(), snapshot_id, current_scope())
    data = bulletin.pdf_bytes(bulletin_html(ctx), base_url=request.url_root)
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{_file_name(ctx["snap"], "pdf")}"'},
    )


@bp.get("/<int:snapshot_id>/bulletin.xlsx")
def bulletin_xlsx(snapshot_id: int):
    conn = get_conn()
    snap = store.get_snapshot(conn, current_scope(), snapshot_id)
    data = bulletin.xlsx_bytes(snap["rows"], column_labels(), sheet=snap["period"])
    return Response(
        data,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{_file_name(snap, "xlsx")}"'},
    )
