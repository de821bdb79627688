"""Demo frontage units (门前三包) on the sample towns' shopping streets, and frontage-duty cases against them."""

from __future__ import annotations

import datetime as dt
import logging

import geopandas as gpd
import numpy as np
import shapely
import sqlalchemy as sa

from gisgrid import crs
from gisgrid.accounts.users import Actor
from gisgrid.config import Settings, load_settings
from gisgrid.demo.towns import (
    DESCRIPTIONS,
    FI_LAST,
    FRONTAGE_CATEGORIES,
    GIVEN,
    SEED,
    SURNAMES,
    TOWNS,
    _names,
    _phone,
)

LOGGER = logging.getLogger(__name__)


_SHOP_KINDS_ZH = ("面馆", "便利店", "水果店", "药房", "五金店", "茶餐厅", "理发店", "书店", "花店", "烟酒店")
_SHOP_KINDS_FI = ("Kahvila", "Kioski", "Apteekki", "Kukkakauppa", "Kirjakauppa", "Parturi")
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def demo_frontage(
    conn: sa.Connection,
    settings: Settings,
    *,
    towns=TOWNS,
    today: dt.date | None = None,
    units_per_town: int = 40,
    spacing_m: float = 18.0,
) -> int:
    """Frontage units (门前三包) on the sample towns' shopping streets, with agreements (some expired).

    Each town's two longest streets of a main road class are shopping streets
    (``street.commercial``); shops stand every ``spacing_m`` along their
    segments on both sides, just behind the carriageway, with stretches left
    empty (for the audit).  Agreements: most valid, some expired, some about
    to expire, some never signed.  Returns the number of units.
    """
    from gisgrid.frontage.store import add_unit, derive_and_store
    from gisgrid.frontage.units import UnitInput, make_uscc
    from gisgrid.network.segments import half_width_m

    today = today or dt.date.today()
    rng = np.random.default_rng(SEED + 22)
    actor = Actor.system("demo")
    made = 0
    for town in towns:
        streets = (
            conn.execute(
                sa.text("""
            SELECT s.id FROM street s JOIN jurisdiction j ON j.id = s.jurisdiction_id
            WHERE j.code LIKE :code || '%' AND s.road_class IN ('primary', 'secondary', 'tertiary')
            ORDER BY ST_Length(s.geom) DESC, s.id LIMIT 2"""),
                {"code": town.town_code},
            )
            .scalars()
            .all()
        )
        if not streets:
            continue
        conn.execute(sa.text("UPDATE street SET commercial = true WHERE id = ANY(:ids)"), {"ids": list(streets)})
        segs = conn.execute(
            sa.text("""
            SELECT g.id, g.road_class, ST_AsBinary(g.geom) AS geom, ST_AsBinary(g.area) AS area,
                   COALESCE(j.metric_epsg, 0) AS epsg
            FROM segment g JOIN street s ON s.id = g.street_id LEFT JOIN jurisdiction j ON j.id = s.jurisdiction_id
            WHERE g.street_id = ANY(:ids) ORDER BY g.street_id, g.seq, g.id"""),
            {"ids": list(streets)},
        ).all()
        latin = town.key == "helsinki"
        n_town = 0
        for seg in segs:  # per segment: shops along it, until the town has its units
            if n_town >= units_per_town:
                break
            line = shapely.from_wkb(bytes(seg.geom))
            epsg = int(seg.epsg) or crs.resolve_metric_crs(settings.metric_crs, line.centroid.x, line.centroid.y)
            if seg.area is None:
                continue
            metric, area = gpd.GeoSeries([line, shapely.from_wkb(bytes(seg.area))], crs=crs.STORAGE_SRID).to_crs(epsg)
            back = half_width_m(seg.road_class or "", settings.road_half_widths_m) + 6.0
            for side in (1, -1):
                measures = np.arange(spacing_m / 2, metric.length - spacing_m / 2, spacing_m)
                keep = rng.random(len(measures)) < 0.55  # empty shop fronts leave frontage nobody answers for
                for m in measures[keep]:
                    if n_town >= units_per_town:
                        break
                    shop = _shop_point(metric, float(m), side * back)
                    if not area.contains(shop.buffer(2.0)):  # the other carriageway's, or a crossing street's
                        continue
                    where = gpd.GeoSeries([shop], crs=epsg).to_crs(crs.STORAGE_SRID).iloc[0]
                    made_on = today - dt.timedelta(days=int(rng.integers(30, 700)))
                    fate = rng.random()
                    if fate < 0.12:  # expired
                        signed, expires = (
                            made_on - dt.timedelta(days=730),
                            today - dt.timedelta(days=int(rng.integers(1, 200))),
                        )
                    elif fate < 0.2:  # expiring within the audit's window
                        signed, expires = made_on, today + dt.timedelta(days=int(rng.integers(1, 25)))
                    elif fate < 0.27:  # never signed
                        signed = expires = None
                    else:
                        signed, expires = made_on, made_on + dt.timedelta(days=3 * 365)
                    surname = SURNAMES[int(rng.integers(len(SURNAMES)))]
                    if latin:
                        name = f"{_SHOP_KINDS_FI[int(rng.integers(len(_SHOP_KINDS_FI)))]} {FI_LAST[int(rng.integers(len(FI_LAST)))]}"
                        contact = _names(rng, 1, True)[0]
                    else:
                        name = f"{surname}记{_SHOP_KINDS_ZH[int(rng.integers(len(_SHOP_KINDS_ZH)))]}"
                        contact = surname + "".join(GIVEN[int(i)] for i in rng.integers(len(GIVEN), size=2))
                    body = "92" + town.county_code + "".join(_USCC_CHARS[int(i)] for i in rng.integers(31, size=9))
                    add_unit(
                        conn,
                        actor,
                        UnitInput(
                            name=f"{name}（{seg.id}-{n_town + 1}）",
                            kind="shop",
                            uscc=make_uscc(body),
                            contact_name=contact,
                            contact_phone=_phone(rng),
                            signed_on=signed,
                            expires_on=expires,
                        ),
                        location=where,
                        segment_id=int(seg.id),
                    )
                    n_town += 1
        made += n_town
    if made:
        derive_and_store(conn, settings)
    return made


def _shop_point(line, measure: float, offset_m: float):
    """A point ``offset_m`` left (+) or right (-) of ``line`` at ``measure`` (metric)."""
    a = line.interpolate(max(0.0, measure - 1.0))
    b = line.interpolate(min(line.length, measure + 1.0))
    dx, dy = b.x - a.x, b.y - a.y
    norm = (dx * dx + dy * dy) ** 0.5 or 1.0
    p = line.interpolate(measure)
    return shapely.Point(p.x - dy / norm * offset_m, p.y + dx / norm * offset_m)


def demo_frontage_cases(
    conn: sa.Connection, settings: Settings | None = None, *, deployment=None, units: int = 24
) -> int:
    """Frontage-duty cases of last month against some demo units, taken in and dispatched by the demo accounts,
    a third of them found by inspection (source ``inspection``, 督查): the red and black list of last month has rows.

    Does nothing when made before or without the demo accounts.  Returns how many cases were made.
    """
    from gisgrid.accounts.store import find_user
    from gisgrid.cases import store as cases
    from gisgrid.cases.intake import CaseInput
    from gisgrid.errors import NotFound
    from gisgrid.routing.store import load_deployment

    settings = settings or load_settings()
    if conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM report WHERE external_id LIKE 'DEMO-FRONTAGE-%')")).scalar():
        return 0
    try:
        clerk, dispatcher = find_user(conn, "clerk"), find_user(conn, "dispatcher")
    except NotFound:
        return 0
    deployment = deployment or load_deployment(conn, settings)
    today = dt.date.today()
    first = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)  # last month
    spots = conn.execute(
        sa.text("""
        SELECT u.id, ST_X(ST_PointOnSurface(u.frontage)) AS lon, ST_Y(ST_PointOnSurface(u.frontage)) AS lat
        FROM frontage_unit u WHERE NOT ST_IsEmpty(u.frontage) ORDER BY u.id LIMIT :n"""),
        {"n": units},
    ).all()
    rng = np.random.default_rng(SEED + 23)
    made = []
    for spot in spots:
        for _k in range(int(rng.choice([0, 0, 1, 1, 2, 3, 4]))):
            category = FRONTAGE_CATEGORIES[int(rng.integers(len(FRONTAGE_CATEGORIES)))][0]
            at = dt.datetime.combine(first + dt.timedelta(days=int(rng.integers(0, 27))), dt.time(9, 30))
            new = cases.create_case(
                conn, clerk.actor("demo"), deployment, settings,
                # a third found by the month's inspection round (督查): the list counts them as findings
                CaseInput(lon=spot.lon, lat=spot.lat, crs="EPSG:4326", category=category,
                          source="inspection" if len(made) % 3 == 2 else "web",
                          description=DESCRIPTIONS.get(category, "门前三包问题") + "（演示）", reported_at=at),
            )  # fmt: skip
            for action in ("accept", "dispatch"):
                version = conn.execute(sa.text("SELECT version FROM report WHERE id = :i"), {"i": new.id}).scalar()
                cases.take_step(conn, dispatcher.actor("demo"), dispatcher, cases.Scope.everything(), settings, new.id,
                                action, cases.StepInput(version=version), deployment=deployment)  # fmt: skip
            made.append(new.id)
    if made:
        conn.execute(
            sa.text("UPDATE report SET external_id = 'DEMO-FRONTAGE-' || id, is_demo = true WHERE id = ANY(:ids)"),
            {"ids": made},
        )
    return len(made)
