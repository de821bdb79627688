"""One rule, one home: owner on a day, the owner chain and "has no owner" agree in SQL and in memory.

A small hand-built county (county → town → community, two streets, three
segments, two cells) where the demo's completeness hides nothing: street 1 has
no 一级街长 of its own, segment 3 has only a street-level 段长 and a 门前三包
unit, segment 2 has two 段长 starting on the same day, cell 2's 网格员 left.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import LineString, MultiPolygon, box

from gisgrid.analytics.store import ReportFilters, coverage_gaps
from gisgrid.audit.store import audit_store
from gisgrid.db import sql
from gisgrid.ownership.history import (
    CHAIN_ROLES,
    OwnerHistory,
    OwnerLookup,
    chain_text,
    owned_units,
    valid_mask,
)
from gisgrid.ownership.store import segment_owner_chains
from gisgrid.routing.store import assign_stored_reports, explain_point, load_deployment
from tests.conftest import scratch_database

DAYS = [dt.date(2026, 2, 1), dt.date(2026, 6, 30), dt.date(2026, 7, 1), dt.date(2026, 12, 1)]
HANDOVER = dt.date(2026, 7, 1)


def _ewkt(geom) -> str:
    return "SRID=4326;" + shapely.to_wkt(geom)


@pytest.fixture(scope="module")
def world(server_url):
    """The hand-built county in its own database; yields (engine, ids)."""
    with scratch_database(server_url, "rules", migrated=True) as url:
        engine = sa.create_engine(url)
        ids: dict[str, int] = {}
        with engine.begin() as conn:

            def insert(sql_text: str, **params) -> int:
                return conn.execute(sa.text(sql_text + " RETURNING id"), params).scalar()

            def jurisdiction(key, code, level, parent, geom):
                ids[key] = insert(
                    "INSERT INTO jurisdiction (code, level, name, parent_id, metric_epsg, geom) "
                    "VALUES (:c, :l, :n, :p, 4547, ST_GeomFromEWKT(:g))",
                    c=code, l=level, n=key, p=parent, g=_ewkt(MultiPolygon([geom])),
                )  # fmt: skip

            jurisdiction("county", "440399", "county", None, box(114.18, 22.68, 114.22, 22.72))
            jurisdiction("town", "440399001", "town", ids["county"], box(114.185, 22.685, 114.215, 22.715))
            jurisdiction("community", "440399001001", "community", ids["town"], box(114.19, 22.69, 114.21, 22.71))
            for key, y, jur in (("street1", 22.700, "town"), ("street2", 22.705, "community")):
                ids[key] = insert(
                    "INSERT INTO street (name, jurisdiction_id, geom) VALUES (:n, :j, ST_GeomFromEWKT(:g))",
                    n=key, j=ids[jur], g=_ewkt(shapely.MultiLineString([[(114.195, y), (114.205, y)]])),
                )  # fmt: skip
            for key, street, x0, x1, y in (
                ("seg1", "street1", 114.195, 114.200, 22.700),
                ("seg2", "street1", 114.200, 114.205, 22.700),
                ("seg3", "street2", 114.195, 114.205, 22.705),
            ):
                ids[key] = insert(
                    "INSERT INTO segment (street_id, name, road_class, length_m, geom, area) "
                    "VALUES (:s, :n, 'residential', 500, ST_GeomFromEWKT(:g), ST_GeomFromEWKT(:a))",
                    s=ids[street], n=key, g=_ewkt(LineString([(x0, y), (x1, y)])),
                    a=_ewkt(MultiPolygon([box(x0, y - 0.0002, x1, y + 0.0002)])),
                )  # fmt: skip
            for key, x0 in (("cell1", 114.19), ("cell2", 114.20)):
                ids[key] = insert(
                    "INSERT INTO grid_cell (code, jurisdiction_id, geom) VALUES (:c, :j, ST_GeomFromEWKT(:g))",
                    c=key, j=ids["community"], g=_ewkt(MultiPolygon([box(x0, 22.69, x0 + 0.01, 22.695)])),
                )  # fmt: skip
            people = ["总", "镇一级", "街一二级", "街二二级", "街二一级", "段一旧", "段一新", "段二甲", "段二乙",
                      "街二段长", "门店", "网格甲", "网格乙"]  # fmt: skip
            for name in people:
                ids[name] = insert("INSERT INTO person (name) VALUES (:n)", n=name)
            since, left = dt.date(2026, 1, 1), dt.date(2026, 3, 1)
            for who, ttype, target, role, vf, vt in (
                ("总", "jurisdiction", "county", "总街长", since, None),
                ("镇一级", "jurisdiction", "town", "一级街长", since, None),  # street1 has no 一级街长 of its own
                ("街一二级", "street", "street1", "二级街长", since, None),
                ("街二二级", "street", "street2", "二级街长", since, None),
                ("街二一级", "street", "street2", "一级街长", since, None),
                ("段一旧", "segment", "seg1", "段长", since, HANDOVER),
                ("段一新", "segment", "seg1", "段长", HANDOVER, None),
                ("段二甲", "segment", "seg2", "段长", since, None),  # two 段长 from the same day:
                ("段二乙", "segment", "seg2", "段长", since, None),  # the one recorded last answers
                ("街二段长", "street", "street2", "段长", since, None),  # a street-level 段长 ...
                ("门店", "segment", "seg3", "门前三包", since, None),  # ... and a frontage unit: seg3 has no chief
                ("网格甲", "cell", "cell1", "网格员", since, None),
                ("网格乙", "cell", "cell2", "网格员", since, left),
            ):
                conn.execute(
                    sa.text(
                        "INSERT INTO owner_assignment (person_id, target_type, target_id, role, valid_from, valid_to) "
                        "VALUES (:p, :t, :i, :r, :f, :u)"
                    ),
                    {"p": ids[who], "t": ttype, "i": ids[target], "r": role, "f": vf, "u": vt},
                )
        yield engine, ids
        engine.dispose()


def _assignments(conn) -> pd.DataFrame:
    return pd.read_sql_query(
        sa.text("""
        SELECT a.id, a.target_type, a.target_id, a.role, a.valid_from, a.valid_to, a.person_id, a.department_id,
               p.name AS owner_name
        FROM owner_assignment a LEFT JOIN person p ON p.id = a.person_id ORDER BY a.id"""),
        conn,
    )


@pytest.mark.parametrize("day", DAYS)
def test_owner_on_a_day_is_the_same_rule_in_sql_and_in_memory(world, day):
    engine, _ = world
    with engine.connect() as conn:
        in_sql = {r[0] for r in conn.execute(sa.text(f"SELECT id FROM {sql.owner_on()}"), {"day": day})}
        frame = _assignments(conn)
    in_memory = set(frame["id"][valid_mask(frame["valid_from"], frame["valid_to"], day)])
    assert in_sql == in_memory and in_sql


def test_handover_day_belongs_to_the_new_owner_everywhere(world):
    """valid_to is exclusive: on the handover day the new 段长 answers, the day before the old one."""
    engine, ids = world
    with engine.connect() as conn:
        history = OwnerHistory(_assignments(conn))
        lookup = OwnerLookup(_assignments(conn))
        for day, expected in ((HANDOVER - dt.timedelta(days=1), "段一旧"), (HANDOVER, "段一新")):
            chains = segment_owner_chains(conn, day, segment_ids=[ids["seg1"]])
            assert chains.loc[ids["seg1"], "段长"] == expected
            vec = history.owners_on(["segment"], [ids["seg1"]], [day], role="段长")
            assert vec["owner_name"][0] == expected
            assert lookup.on("segment", ids["seg1"], "段长", day)[0] == expected


def test_two_owners_from_the_same_day_resolve_to_the_one_recorded_last(world):
    engine, ids = world
    day = DAYS[1]
    with engine.connect() as conn:
        frame = _assignments(conn)
        chains = segment_owner_chains(conn, day)
    assert chains.loc[ids["seg2"], "段长"] == "段二乙"
    assert OwnerHistory(frame).owners_on(["segment"], [ids["seg2"]], [day])["owner_name"][0] == "段二乙"
    assert OwnerLookup(frame).on("segment", ids["seg2"], "段长", day)[0] == "段二乙"
    # the rows' order does not decide: the id does
    shuffled = frame.iloc[::-1].reset_index(drop=True)
    assert OwnerHistory(shuffled).owners_on(["segment"], [ids["seg2"]], [day])["owner_name"][0] == "段二乙"
    assert OwnerLookup(shuffled).on("segment", ids["seg2"], "段长", day)[0] == "段二乙"


@pytest.mark.parametrize("day", DAYS)
def test_chain_is_the_same_on_the_map_in_a_routing_explanation_and_in_bulk_routing(world, settings, day):
    engine, ids = world
    segs = [ids["seg1"], ids["seg2"], ids["seg3"]]
    with engine.connect() as conn:
        on_map = segment_owner_chains(conn, day)["chain"]
        deployment = load_deployment(conn, settings)
    explained = {s: deployment.chain_of(s, day) for s in segs}
    bulk = deployment.owners.chains_on(segs, [day] * 3, deployment.topology)["chain"].tolist()
    assert [on_map[s] for s in segs] == [explained[s] for s in segs] == bulk


def test_a_street_without_its_own_first_chief_shows_the_towns_on_the_map_and_in_routing(world, settings):
    """Issue 15: the map took the town's 一级街长, the routing explanation skipped the role."""
    engine, ids = world
    day = DAYS[1]
    with engine.connect() as conn:
        chains = segment_owner_chains(conn, day)
        deployment = load_deployment(conn, settings)
    result = explain_point(deployment, lon=114.1975, lat=22.7, day=day)
    assert (result["target_type"], result["target_id"]) == ("segment", ids["seg1"])
    expected = chain_text({"段长": "段一旧", "二级街长": "街一二级", "一级街长": "镇一级", "总街长": "总"})
    assert chains.loc[ids["seg1"], "chain"] == expected
    assert result["chain"] == expected
    # street 2 has its own 一级街长, which wins over the town's
    assert chains.loc[ids["seg3"], "一级街长"] == "街二一级"


@pytest.mark.parametrize("day", DAYS)
def test_has_no_owner_is_one_rule_for_the_manager_map_and_the_audit(world, settings, day):
    engine, ids = world
    with engine.connect() as conn:
        gaps = coverage_gaps(conn, ReportFilters(), day=day)
        audit = audit_store(conn, settings, "440399001", today=day)
        frame = _assignments(conn)
    on_map = set(zip(gaps["kind"], gaps["id"].astype(int)))
    in_audit = set(zip(audit.vacant["layer"], audit.vacant["unit_id"].astype(int)))
    owned = owned_units(frame, day)
    units = {("segment", ids[k]) for k in ("seg1", "seg2", "seg3")} | {("cell", ids[k]) for k in ("cell1", "cell2")}
    assert on_map == in_audit == units - owned
    # a street-level 段长 or a 门前三包 unit is not the segment's own chief: segment 3 is a gap
    assert ("segment", ids["seg3"]) in on_map
    assert (("cell", ids["cell2"]) in on_map) == (day >= dt.date(2026, 3, 1))


def test_routing_owner_of_a_segment_is_its_own_chief(world, settings):
    """Routing sends a report on segment 3 to nobody (its chief is missing), as the gap layers say."""
    engine, ids = world
    with engine.connect() as conn:
        deployment = load_deployment(conn, settings)
    result = explain_point(deployment, lon=114.20, lat=22.705, day=DAYS[1])
    assert (result["target_type"], result["target_id"], result["owner"]) == ("segment", ids["seg3"], None)
    assert "段长 街二段长" in result["chain"]  # the chain still names who answers by default


def test_the_local_day_of_a_report_follows_the_jurisdictions_time_zone(world, settings):
    """20:30 UTC on the day before the handover: the next day in Shanghai (new 段长), the same day in
    Helsinki (old 段长) — the stored routing uses the zone of the place, not a hard-coded one."""
    engine, ids = world
    at = dt.datetime(2026, 6, 30, 20, 30, tzinfo=dt.timezone.utc)
    with engine.begin() as conn:
        rid = conn.execute(
            sa.text(
                "INSERT INTO report (geom, reported_at) VALUES (ST_SetSRID(ST_MakePoint(114.1975, 22.7), 4326), :t) "
                "RETURNING id"
            ),
            {"t": at},
        ).scalar()
    try:
        owners = {}
        for zone in (None, "Europe/Helsinki"):
            with engine.begin() as conn:
                conn.execute(
                    sa.text("UPDATE jurisdiction SET timezone = :z WHERE id = :c"), {"z": zone, "c": ids["county"]}
                )
                assign_stored_reports(conn, load_deployment(conn, settings))
                owners[zone] = conn.execute(
                    sa.text("SELECT owner_name FROM report_current WHERE report_id = :r"), {"r": rid}
                ).scalar()
        assert settings.timezone == "Asia/Shanghai"
        assert owners == {None: "段一新", "Europe/Helsinki": "段一旧"}
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM report WHERE id = :r"), {"r": rid})
            conn.execute(sa.text("UPDATE jurisdiction SET timezone = NULL"))


def test_chain_roles_are_the_same_in_sql_and_python(world):
    engine, _ = world
    with engine.connect() as conn:
        body = conn.execute(sa.text("SELECT prosrc FROM pg_proc WHERE proname = 'owner_chain_on'")).scalar()
    assert all(f"'{role}'" in body for role in CHAIN_ROLES)
