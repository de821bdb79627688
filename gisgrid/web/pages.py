"""HTML pages.  The home page shows the segments of a town coloured by owner."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _

from gisgrid.accounts.store import list_towns
from gisgrid.errors import InputError, NotFound
from gisgrid.maps import map_parts
from gisgrid.maps.ownership import ownership_map
from gisgrid.ownership.store import segments_with_owners
from gisgrid.web.access import current_scope
from gisgrid.web.db import get_conn
from gisgrid.web.i18n import map_language

bp = Blueprint("pages", __name__)


def _parse_day(value: str | None) -> dt.date:
    if not value:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"date must be YYYY-MM-DD, got {value!r}") from None


@bp.get("/")
def home():
    """The segments of a town coloured by owner: only the towns and segments the user sees on the day."""
    conn = get_conn()
    day = _parse_day(request.args.get("date"))
    scope = current_scope(day)
    towns = list_towns(conn, scope)
    if not towns:
        return render_template("home.html", towns=[], town=None, stats=None)
    code = request.args.get("town") or towns[0]["code"]
    town = next((t for t in towns if t["code"] == code), None)
    if town is None:
        raise NotFound(_("No town with code %(code)s.", code=code))
    segs = segments_with_owners(conn, day, jurisdiction_code=code, scope=scope)
    m = ownership_map(
        segs, attribution=current_app.config["GISGRID_SETTINGS"].attribution, title=town["name"], lang=map_language()
    )
    stats = {
        "segments": len(segs),
        "owners": int(segs["owner_id"].nunique()),
        "vacant": int(segs["owner_name"].isna().sum()),
        "day": day.isoformat(),
    }
    return render_template("home.html", towns=towns, town=town, stats=stats, **map_parts(m))
