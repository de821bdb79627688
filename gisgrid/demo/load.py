"""Loading the sample towns: jurisdictions, streets, segments, address points, owners, grids and reports.

:func:`load_demo` fills an empty, migrated database in the caller's transaction; :func:`clear_data` empties it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import zlib

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gisgrid import crs, timeutil
from gisgrid.cases.workflow import WorkingTime, deadlines
from gisgrid.config import Settings, load_settings
from gisgrid.db.layers import insert_frame
from gisgrid.demo.frontage import demo_frontage
from gisgrid.demo.towns import (
    CATEGORIES,
    CATEGORY_WEIGHTS,
    DEPARTMENTS,
    DESCRIPTIONS,
    FRONTAGE_CATEGORIES,
    SEED,
    TOWNS,
    DemoTown,
    _names,
    _phone,
    _town_polygons,
    read_addresses,
    read_streets,
)
from gisgrid.io.records import plain
from gisgrid.shapes import as_multi

LOGGER = logging.getLogger(__name__)


def load_demo(
    conn: sa.Connection,
    settings: Settings | None = None,
    *,
    towns=TOWNS,
    reports_per_town: int = 600,
    today: dt.date | None = None,
    grid: bool = False,
) -> dict:
    """Load the sample towns into an empty, migrated database (one transaction: the caller's).

    With ``grid=True`` each town also gets its unit grid (``gisgrid grid
    build``, about 10,000 m² cells, coarser where a community would need more
    than 999) and one 网格员 per 15 cells, before the reports are assigned.
    Returns counts per table.
    """
    from gisgrid.network.store import build_town_segments, segment_rows

    settings = settings or load_settings()
    today = today or dt.date.today()
    rng = np.random.default_rng(SEED)
    counts = {"jurisdiction": 0, "street": 0, "segment": 0, "person": 0, "owner_assignment": 0, "report": 0}

    dept_ids = dict(
        zip(
            [d[0] for d in DEPARTMENTS],
            insert_frame(conn, "department", pd.DataFrame(DEPARTMENTS, columns=["code", "name", "phone"])),
        )
    )
    # the frontage-duty categories (门前三包) route by location, to the unit whose frontage holds the report
    both = [(*c, False) for c in CATEGORIES] + [(*c, {"mode": "location"}, True) for c in FRONTAGE_CATEGORIES]
    conn.execute(
        sa.text(
            "INSERT INTO category (code, name, name_en, kind, department_id, deadline_hours, working_time, routing, "
            "frontage_duty) VALUES (:code, :name, :name_en, :kind, :department_id, :deadline_hours, :working_time, "
            "CAST(:routing AS jsonb), :frontage_duty)"
        ),
        [
            {
                "code": c[0],
                "name": c[1],
                "name_en": c[2],
                "kind": c[3],
                "department_id": dept_ids.get(c[4]),
                "deadline_hours": float(c[5]),
                "working_time": c[6],
                "routing": json.dumps(c[7]),
                "frontage_duty": c[8],
            }
            for c in both
        ],
    )
    category_ids = dict(conn.execute(sa.text("SELECT code, id FROM category")).all())

    for town in towns:
        streets = read_streets(town)
        centre = streets.union_all().centroid
        epsg = crs.resolve_metric_crs(settings.metric_crs, centre.x, centre.y)
        latin = town.key == "helsinki"
        town_geom, community_geoms = _town_polygons(streets, epsg)
        county_geom = town_geom.buffer(0.002)
        (county_id,) = insert_frame(
            conn,
            "jurisdiction",
            pd.DataFrame(
                [
                    {
                        "code": town.county_code,
                        "level": "county",
                        "name": town.county_name,
                        "parent_id": None,
                        "metric_epsg": epsg,
                        "timezone": town.timezone,
                        "geom": as_multi(county_geom),
                    }
                ]
            ),
        )
        (town_id,) = insert_frame(
            conn,
            "jurisdiction",
            pd.DataFrame(
                [
                    {
                        "code": town.town_code,
                        "level": "town",
                        "name": town.town_name,
                        "parent_id": county_id,
                        "metric_epsg": epsg,
                        "geom": as_multi(town_geom),
                    }
                ]
            ),
        )
        community_ids = insert_frame(
            conn,
            "jurisdiction",
            pd.DataFrame(
                [
                    {
                        "code": f"{town.town_code}{i + 1:03d}",
                        "level": "community",
                        "name": name,
                        "parent_id": town_id,
                        "metric_epsg": epsg,
                        "geom": as_multi(g),
                    }
                    for i, (name, g) in enumerate(zip(town.community_names, community_geoms))
                ]
            ),
        )
        counts["jurisdiction"] += 6

        # one street per name, its ways merged
        grouped = streets.dissolve(
            by="name", aggfunc={"road_class": "first", "osm_id": "first", "aliases": "first"}, sort=True
        ).reset_index()
        grouped["geom"] = [
            g if g.geom_type == "MultiLineString" else shapely.geometry.MultiLineString([g]) for g in grouped.geometry
        ]
        street_rows = pd.DataFrame(
            {
                "name": grouped["name"],
                "aliases": grouped["aliases"],
                "road_class": grouped["road_class"],
                "jurisdiction_id": town_id,
                "source_id": "osm:way/" + grouped["osm_id"].astype(str),
                "geom": grouped["geom"],
            }
        )
        street_ids = insert_frame(conn, "street", street_rows)
        name_to_street = dict(zip(grouped["name"], street_ids))
        counts["street"] += len(street_ids)
        counts["address_point"] = counts.get("address_point", 0) + _load_address_points(conn, town, town_id)

        ways = streets.copy()
        ways["street_id"] = ways["name"].map(name_to_street)
        segs = build_town_segments(ways, settings, metric_epsg=epsg, boundary=town_geom)
        seg_rows = segment_rows(segs)
        seg_ids = insert_frame(conn, "segment", plain(seg_rows), geometry_columns=("geom", "area"))
        counts["segment"] += len(seg_ids)
        seg_rows["id"] = seg_ids

        # owners: 总街长 (county), 一级街长 and 二级街长 per street, 段长 per segment
        people: list[dict] = []
        assignments: list[dict] = []

        def person(title: str, people=people, latin=latin) -> int:
            people.append({"name": _names(rng, 1, latin)[0], "phone": _phone(rng), "title": title})
            return len(people) - 1

        since = dt.date(today.year - 1, 1, 1)

        def assign(
            target_type,
            target_id,
            role,
            *,
            who=None,
            dept=None,
            valid_from=since,
            valid_to=None,
            assignments=assignments,
        ) -> None:
            """One assignment, to a person (``who``: their index in ``people``) or a department."""
            assignments.append(
                {
                    "who": who,
                    "dept": dept,
                    "target_type": target_type,
                    "target_id": target_id,
                    "role": role,
                    "valid_from": valid_from,
                    "valid_to": valid_to,
                }
            )

        assign("jurisdiction", county_id, "总街长", who=person("县（区）领导"))
        leaders = [person("镇（街道）领导") for _ in range(4)]
        assign("jurisdiction", town_id, "一级街长", who=leaders[0])
        for cid in community_ids:  # 网格员 of each community: the default owner (属地兜底)
            assign("jurisdiction", cid, "网格员", who=person("社区网格员"))
        for k, sid in enumerate(street_ids):
            assign("street", sid, "一级街长", who=leaders[k % len(leaders)])
            assign("street", sid, "二级街长", who=person("居民代表/商户"))
        trunk_dept = {"motorway": "road_admin", "trunk": "road_admin", "primary": "enforcement"}
        handover = dt.date(today.year, 7, 1) if today >= dt.date(today.year, 7, 2) else dt.date(today.year - 1, 7, 1)
        for sid, rc in zip(seg_ids, seg_rows["road_class"]):
            if rc in trunk_dept:
                assign("segment", sid, "段长", dept=dept_ids[trunk_dept[rc]])
            elif rng.random() < 0.15:  # owners change: the earlier 段长 stays answerable for past dates
                assign("segment", sid, "段长", who=person("商户"), valid_to=handover)
                assign("segment", sid, "段长", who=person("商户"), valid_from=handover)
            else:
                assign("segment", sid, "段长", who=person("商户"))
        person_ids = insert_frame(conn, "person", pd.DataFrame(people))
        counts["person"] += len(person_ids)
        arows = pd.DataFrame(
            [
                {
                    "person_id": None if a["who"] is None else person_ids[a["who"]],
                    "department_id": a["dept"],
                    "target_type": a["target_type"],
                    "target_id": a["target_id"],
                    "role": a["role"],
                    "valid_from": a["valid_from"],
                    "valid_to": a["valid_to"],
                }
                for a in assignments
            ]
        )
        insert_frame(conn, "owner_assignment", plain(arows), returning=None)
        counts["owner_assignment"] += len(arows)

        # each town's reports draw from a generator of their own, so a change to how streets are
        # cut (or to the people) does not move the demo's hotspots
        town_rng = np.random.default_rng([SEED, zlib.crc32(town.key.encode())])
        reports = _demo_reports(
            town, streets, seg_rows, epsg, town_rng, reports_per_town, today, category_ids, settings=settings
        )
        insert_frame(conn, "report", reports, returning=None)
        counts["report"] += len(reports)
        LOGGER.info(
            "loaded %s: %d streets, %d segments, %d reports", town.key, len(street_ids), len(seg_ids), len(reports)
        )
    if grid:
        counts["grid_cell"] = sum(_demo_grid(conn, settings, town, rng, today) for town in towns)
    counts["frontage_unit"] = demo_frontage(conn, settings, towns=towns, today=today)
    from gisgrid.cases.bulk import adopt_routing
    from gisgrid.routing.store import assign_stored_reports, load_deployment

    deployment = load_deployment(conn, settings)
    assign_stored_reports(conn, deployment)
    adopt_routing(conn)  # each case is assigned to its routed owner
    return counts


def _demo_grid(
    conn: sa.Connection, settings: Settings, town: DemoTown, rng, today: dt.date, cells_per_worker: int = 15
) -> int:
    """Build a town's unit grid and give every ``cells_per_worker`` cells of a community one 网格员."""
    from gisgrid.errors import InputError
    from gisgrid.grid.store import build_and_store_grid

    target = 10_000.0
    while True:
        try:
            summary = build_and_store_grid(conn, settings, town.town_code, target_area_m2=target)
            break
        except InputError as exc:
            if "needs more than" not in str(exc) or target > 1e6:
                raise
            target *= 2
    cells = conn.execute(
        sa.text("""
        SELECT c.id, c.jurisdiction_id FROM grid_cell c JOIN jurisdiction j ON j.id = c.jurisdiction_id
        WHERE j.code LIKE :p ORDER BY c.code"""),
        {"p": town.town_code + "%"},
    ).all()
    latin = town.key == "helsinki"
    since = dt.date(today.year - 1, 1, 1)
    rows, k = [], 0
    for _, group in pd.DataFrame(cells, columns=["id", "jid"]).groupby("jid", sort=False):
        for start in range(0, len(group), cells_per_worker):
            name = _names(rng, 1, latin)[0]
            pid = conn.execute(
                sa.text("INSERT INTO person (name, phone, title) VALUES (:n, :p, '网格员') RETURNING id"),
                {"n": name, "p": _phone(rng)},
            ).scalar()
            rows += [
                {"p": pid, "t": int(cid), "d": since} for cid in group["id"].iloc[start : start + cells_per_worker]
            ]
            k += 1
    if rows:
        conn.execute(
            sa.text(
                "INSERT INTO owner_assignment (person_id, target_type, target_id, role, valid_from) "
                "VALUES (:p, 'cell', :t, '网格员', :d)"
            ),
            rows,
        )
    LOGGER.info("grid of %s: %d cells at %.0f m², %d 网格员", town.key, summary["cells"], target, k)
    return int(summary["cells"])


def _load_address_points(conn: sa.Connection, town: DemoTown, town_id: int) -> int:
    """The town's OSM address points into ``address_point`` (one executemany); returns the count.

    Chinese towns write the street in Chinese where OSM has ``street_zh``; the
    place name (``name_zh``, e.g. a school) is kept as the point's ``name``.
    """
    table = read_addresses(town)
    if table.empty:
        return 0
    street = (
        table["street_zh"].where(table["street_zh"].fillna("").str.strip() != "", table["street"])
        if "street_zh" in table.columns
        else table["street"]
    )
    name = table["name_zh"] if "name_zh" in table.columns else pd.Series(None, index=table.index, dtype=object)
    lon = pd.to_numeric(table["lon"], errors="coerce")
    lat = pd.to_numeric(table["lat"], errors="coerce")
    ok = street.fillna("").str.strip().ne("") & lon.notna() & lat.notna()
    rows = [
        {
            "street": s,
            "housenumber": h if isinstance(h, str) else None,
            "name": n if isinstance(n, str) else None,
            "source_id": f"osm:{t}/{i}",
            "jurisdiction_id": town_id,
            "x": float(x),
            "y": float(y),
        }
        for s, h, n, t, i, x, y in zip(
            street[ok], table["housenumber"][ok], name[ok], table["osm_type"][ok], table["osm_id"][ok], lon[ok], lat[ok]
        )
    ]
    if rows:
        conn.execute(
            sa.text(
                "INSERT INTO address_point (street, housenumber, name, source_id, jurisdiction_id, geom) "
                "VALUES (:street, :housenumber, :name, :source_id, :jurisdiction_id, "
                f"ST_SetSRID(ST_MakePoint(:x, :y), {crs.STORAGE_SRID}))"
            ),
            rows,
        )
    return len(rows)


def _demo_reports(
    town: DemoTown,
    streets: gpd.GeoDataFrame,
    segs: pd.DataFrame,
    epsg: int,
    rng: np.random.Generator,
    n: int,
    today: dt.date,
    category_ids: dict,
    *,
    settings: Settings,
) -> pd.DataFrame:
    """Reports over the last 365 days, between 07:00 and 20:00 local time, with their deadline
    (:func:`gisgrid.cases.workflow.deadlines`): half anywhere along the real streets (by length), half
    around three seeded hotspots a few hundred metres across, as problems gather where people and
    shops are.  They lie on the streets or at real address points, and say where."""
    to_storage = crs.transformer(epsg, crs.STORAGE_SRID)
    lines = gpd.GeoSeries(segs["geom"].values, crs=crs.STORAGE_SRID).to_crs(epsg).values
    length = shapely.length(lines)
    on = rng.choice(len(lines), size=4000, p=length / length.sum())
    places = shapely.line_interpolate_point(lines[on], rng.random(len(on)), normalized=True)
    px, py = shapely.get_x(places), shapely.get_y(places)
    labels = [str(segs["name"].iloc[i]) for i in on]
    addresses = read_addresses(town)
    if len(addresses):
        ax, ay = crs.transformer(crs.STORAGE_SRID, epsg).transform(
            addresses["lon"].astype(float).to_numpy(), addresses["lat"].astype(float).to_numpy()
        )
        px, py = np.concatenate([px, ax]), np.concatenate([py, ay])
        labels += (addresses["street"].fillna("") + " " + addresses["housenumber"].fillna("")).str.strip().tolist()
    weight = np.zeros(len(px))
    for c in rng.choice(len(on), size=3, replace=False):
        weight += np.exp(-((px - px[c]) ** 2 + (py - py[c]) ** 2) / (2 * 150.0**2))
    n_hot = n // 2
    pick = np.concatenate(
        [rng.choice(len(px), size=n_hot, p=weight / weight.sum()), rng.integers(0, len(on), size=n - n_hot)]
    )
    place = [labels[i] for i in pick]
    # phone GPS scatter of a few metres
    x = px[pick] + rng.normal(0, 4.0, n)
    y = py[pick] + rng.normal(0, 4.0, n)
    lon, lat = to_storage.transform(x, y)
    cats = rng.choice([c[0] for c in CATEGORIES], size=n, p=CATEGORY_WEIGHTS / CATEGORY_WEIGHTS.sum())
    age_days = rng.uniform(0, 365, n)
    tz = town.timezone or settings.timezone
    start = dt.datetime.combine(today, dt.time(0, 0), tzinfo=timeutil.zone(tz))
    reported = [
        start - dt.timedelta(days=float(a)) + dt.timedelta(hours=float(h))
        for a, h in zip(age_days, rng.uniform(7, 20, n))
    ]
    closed_share = np.clip(age_days / 30.0, 0, 0.95)
    is_closed = rng.random(n) < closed_share
    status = np.where(is_closed, "closed", rng.choice(["reported", "accepted", "dispatched", "handled"], size=n))
    closed_at = [
        r + dt.timedelta(hours=float(h)) if c else None for r, c, h in zip(reported, is_closed, rng.gamma(2.0, 6.0, n))
    ]
    # some closed cases failed an on-site check first (返工), so that rankings show a rework rate; drawn from a
    # generator of their own, leaving the other demo values as they were
    rework = np.where(is_closed & (np.random.default_rng(n).random(n) < 0.08), 1, 0)
    limits = {c[0]: (float(c[5]), bool(c[6])) for c in CATEGORIES}
    due = deadlines(
        reported,
        [limits[c][0] for c in cats],
        [limits[c][1] for c in cats],
        calendar=WorkingTime.from_settings(settings),
        tz=tz,
    )
    return pd.DataFrame(
        {
            "external_id": [f"DEMO-{town.key}-{i:05d}" for i in range(n)],
            "geom": shapely.points(lon, lat),
            "category_id": [category_ids[c] for c in cats],
            "reported_at": reported,
            "closed_at": closed_at,
            "due_at": [None if pd.isna(d) else d.to_pydatetime() for d in due],
            "source": rng.choice(["巡查上报", "12345热线", "市民随手拍", "街长巡街"], size=n),
            "address": place,
            "description": [DESCRIPTIONS[c] + "（演示数据）" for c in cats],
            "status": status,
            "rework_count": rework,
            "is_demo": True,
        }
    )


def count_jurisdictions(conn: sa.Connection) -> int:
    """Jurisdictions in the database: 0 before any data is loaded."""
    return int(conn.execute(sa.text("SELECT count(*) FROM jurisdiction")).scalar())


def clear_data(conn: sa.Connection) -> None:
    """Empty every data table (streets, owners, reports, cells, plan history …) and restart their ids."""
    conn.execute(
        sa.text(
            "TRUNCATE report, owner_assignment, category, person, department, grid_cell, "
            "segment, street, jurisdiction, plan_version, frontage_unit, frontage_agreement, signboard_print, "
            "frontage_ranking RESTART IDENTITY CASCADE"
        )
    )
