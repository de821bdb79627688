"""HTML pages.  The home page shows the segments of a town coloured by owner."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import sqlalchemy as sa
from flask import Blueprint, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _

from gisgrid.accounts.store import list_towns
from gisgrid.crs import STORAGE_SRID
from gisgrid.db import layers
from gisgrid.demo import ATTRIBUTION
from gisgrid.errors import InputError, NotFound
from gisgrid.maps import ownership as maps
from gisgrid.ownership.store import segment_owner_chains
from gisgrid.web.access import current_scope
from gisgrid.web.db import get_conn

bp = Blueprint("pages", __name__)


def _towns(conn) -> list[dict]:
    rows = conn.execute(
        sa.text(
            "SELECT j.code, j.name, (SELECT count(*) FROM segment g JOIN street s ON s.id = g.street_id "
            "WHERE s.jurisdiction_id = j.id) AS segments FROM jurisdiction j WHERE j.level = 'town' ORDER BY j.code"
        )
    )
    return [dict(r._mapping) for r in rows]


def _parse_day(value: str | None) -> dt.date:
    if not value:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"date must be YYYY-MM-DD, got {value!r}") from None


def _map_parts(m) -> dict:
    """Split a Folium map into the header, body and script the page template embeds."""
    root = m.get_root()
    root.render()
    return {"map_header": root.header.render(), "map_html": root.html.render(), "map_script": root.script.render()}


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
    segs = layers.fetch_layer(
        conn,
        "segments",
        where="street_id IN (SELECT s.id FROM street s JOIN jurisdiction j "
        "ON j.id = s.jurisdiction_id WHERE j.code = :code)",
        params={"code": code},
        scope=scope,
    )
    chains = segment_owner_chains(conn, day, segment_ids=segs["id"].tolist())
    segs = segs.join(chains, on="id").rename(
        columns={"street": "street_name", "name": "segment_name", "owner_key": "owner_id"}
    )
    segs["centerline"] = gpd.GeoSeries.from_wkt(segs.pop("centerline_wkt"), crs=STORAGE_SRID)
    lang = "en" if str(get_locale()).startswith("en") else "zh_CN"
    m = maps.ownership_map(segs, attribution=ATTRIBUTION, title=town["name"], lang=lang)
    stats = {
        "segments": len(segs),
        "owners": int(segs["owner_id"].nunique()),
        "vacant": int(segs["owner_name"].isna().sum()),
        "day": day.isoformat(),
    }
    return render_template("home.html", towns=towns, town=town, stats=stats, **_map_parts(m))
