"""Saving edits from the /plan editor in PostGIS: versions, owners following cells, conflicts, the JSON API.

A module-scoped scratch database holds a small square-grid town (two
communities, one 网格员 per cell, one street with two segment areas); each
test works in a transaction it rolls back, except where it needs two
connections (the concurrent save), which cleans up after itself.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import LineString, mapping

from gisgrid.audit.store import audit_store
from gisgrid.errors import InputError
from gisgrid.grid.edit_check import check_plan_edit
from gisgrid.grid.edit_request import EditConflict, EditRefused
from gisgrid.grid.edit_store import save_plan_edit
from gisgrid.grid.edit_units import load_units
from gisgrid.grid.edit_versions import unit_history
from gisgrid.grid.store import build_and_store_grid

TOWN = "990098001"
TODAY = dt.date.today()


@pytest.fixture(scope="module")
def plan_db(server_url, settings):
    from tests.conftest import scratch_database

    with scratch_database(server_url, "plan", migrated=True) as url:
        eng = sa.create_engine(url)
        _load_town(eng, settings)
        yield eng, url
        eng.dispose()


def _load_town(eng: sa.Engine, settings) -> None:
    """Two square communities, a square grid with one 网格员 per cell, a street with two segment areas."""
    with eng.begin() as conn:
        county = conn.execute(
            sa.text("""
            INSERT INTO jurisdiction (code, level, name, geom) VALUES ('990098', 'county', '试验县',
            ST_Multi(ST_MakeEnvelope(100.0, 30.0, 100.01, 30.01, 4326))) RETURNING id""")
        ).scalar()
        town = conn.execute(
            sa.text("""
            INSERT INTO jurisdiction (code, level, name, parent_id, metric_epsg, geom) VALUES (:c, 'town', '试验镇', :p,
            4544, ST_Multi(ST_MakeEnvelope(100.0, 30.0, 100.004, 30.0018, 4326))) RETURNING id"""),
            {"c": TOWN, "p": county},
        ).scalar()
        for i, (x0, x1) in enumerate([(100.0, 100.002), (100.002, 100.004)], start=1):
            conn.execute(
                sa.text("""
                INSERT INTO jurisdiction (code, level, name, parent_id, geom) VALUES (:c, 'community', :n, :t,
                ST_Multi(ST_MakeEnvelope(:x0, 30.0, :x1, 30.0018, 4326)))"""),
                {"c": f"{TOWN}00{i}", "n": f"第{i}社区", "t": town, "x0": x0, "x1": x1},
            )
        build_and_store_grid(conn, settings, TOWN, layout="square")
        conn.execute(
            sa.text("""
            WITH c AS (SELECT id, code FROM grid_cell),
                 p AS (INSERT INTO person (name) SELECT '网格员 ' || code FROM c RETURNING id, name)
            INSERT INTO owner_assignment (person_id, target_type, target_id, role, valid_from)
            SELECT p.id, 'cell', c.id, '网格员', :d FROM c JOIN p ON p.name = '网格员 ' || c.code"""),
            {"d": TODAY - dt.timedelta(days=30)},
        )
        street = conn.execute(
            sa.text("""
            INSERT INTO street (name, road_class, jurisdiction_id, geom) VALUES ('试验路', 'residential', :t,
            ST_Multi(ST_GeomFromText('LINESTRING(100.0 30.0009, 100.004 30.0009)', 4326))) RETURNING id"""),
            {"t": town},
        ).scalar()
        for seq, (x0, x1) in enumerate([(100.0, 100.002), (100.002, 100.004)], start=1):
            conn.execute(
                sa.text("""
                INSERT INTO segment (street_id, seq, name, road_class, geom, area) VALUES (:s, :q, :n, 'residential',
                ST_MakeLine(ST_Point(:x0, 30.0009, 4326), ST_Point(:x1, 30.0009, 4326)),
                ST_Multi(ST_MakeEnvelope(:x0, 30.0007, :x1, 30.0011, 4326)))"""),
                {"s": street, "q": seq, "n": f"试验路{'西' if seq == 1 else '东'}段", "x0": x0, "x1": x1},
            )


@pytest.fixture()
def conn(plan_db):
    eng, _ = plan_db
    with eng.connect() as c:
        c.begin()
        yield c
        c.rollback()


def _units(conn, layer="cell"):
    return load_units(conn, TOWN, layer).set_index("unit_id", drop=False)


def _m2(conn, geom_or_sql) -> float:
    return conn.execute(
        sa.text("SELECT ST_Area(ST_Transform(ST_GeomFromWKB(:g, 4326), 4544))"), {"g": shapely.to_wkb(geom_or_sql)}
    ).scalar()


def _cell(conn, code_suffix="001001"):
    units = _units(conn)
    return units[units["code"] == TOWN + code_suffix].iloc[0]


def _cells_clean(result) -> bool:
    """No gap or overlap among the cells (the synthetic segment areas are not the full street frontage)."""
    return (result.gaps["layer"] == "cell").sum() == 0 and (result.overlaps["layer"] == "cell").sum() == 0


def _cell_gaps_m2(result) -> float:
    return float(result.gaps.loc[result.gaps["layer"] == "cell", "area_m2"].sum())


def _edit(unit, **kw):
    return {
        "layer": "cell",
        "unit_ids": [int(unit.unit_id)],
        "revisions": {str(unit.unit_id): int(unit.revision)},
        "saved_by": "规划员甲",
        **kw,
    }


def _owners(conn, cell_id):
    return conn.execute(
        sa.text("""
        SELECT p.name, a.valid_from, a.valid_to FROM owner_assignment a JOIN person p ON p.id = a.person_id
        WHERE a.target_type = 'cell' AND a.target_id = :i ORDER BY a.id"""),
        {"i": cell_id},
    ).all()


def test_the_town_has_a_clean_grid(conn, settings):
    units = _units(conn)
    assert len(units) >= 4 and units["owners"].str.startswith("网格员").all()
    assert _cells_clean(audit_store(conn, settings, TOWN))


def test_reshape_is_versioned_keeps_owners_and_shows_the_gap(conn, settings):
    cell = _cell(conn)
    minx, miny, maxx, maxy = cell.geometry.bounds
    smaller = shapely.intersection(cell.geometry, shapely.box(minx, miny, minx + (maxx - minx) * 0.7, maxy))
    out = save_plan_edit(conn, settings, _edit(cell, action="reshape", geometry=mapping(smaller), reason="让出道路"))
    assert out["units"] == [
        {"unit_id": cell.unit_id, "code": cell.code, "revision": 2, "kind": "update", "action": "reshape"}
    ]
    expected_gap = _m2(conn, cell.geometry) - _m2(conn, smaller)
    assert sum(f["properties"]["area_m2"] for f in out["gaps"]["features"]) == pytest.approx(expected_gap, abs=0.1)
    history = unit_history(conn, settings, "cell", int(cell.unit_id))
    assert [(v["revision"], v["action"], v["saved_by"], v["reason"]) for v in history] == [
        (2, "reshape", "规划员甲", "让出道路"),
        (1, "original", None, None),
    ]
    assert shapely.geometry.shape(history[1]["geometry"]).equals(cell.geometry)
    # the owner stays with the cell
    assert [o.name for o in _owners(conn, int(cell.unit_id)) if o.valid_to is None] == ["网格员 " + cell.code]
    # and the audit now finds exactly the gap the editor showed
    audit = audit_store(conn, settings, TOWN)
    assert _cell_gaps_m2(audit) == pytest.approx(expected_gap, abs=0.1)


def test_restore_brings_back_an_earlier_version(conn, settings):
    cell = _cell(conn)
    minx, miny, maxx, maxy = cell.geometry.bounds
    out = save_plan_edit(
        conn,
        settings,
        _edit(
            cell,
            action="reshape",
            geometry=mapping(shapely.intersection(cell.geometry, shapely.box(minx, miny, maxx, (miny + maxy) / 2))),
        ),
    )
    original = [v for v in unit_history(conn, settings, "cell", int(cell.unit_id)) if v["action"] == "original"][0]
    out = save_plan_edit(
        conn,
        settings,
        {
            **_edit(cell, action="restore", version_id=original["version_id"], reason="画错了，恢复"),
            "revisions": {str(cell.unit_id): out["units"][0]["revision"]},
        },
    )
    assert out["units"][0]["revision"] == 3 and out["units"][0]["action"] == "restore"
    assert _units(conn).loc[cell.unit_id, "geometry"].equals(cell.geometry)
    assert _cells_clean(audit_store(conn, settings, TOWN))


def test_overlap_is_refused_or_clipped(conn, settings):
    cell = _cell(conn)
    minx, miny, maxx, maxy = cell.geometry.bounds
    east = _cell(conn, "001002")
    ex0, ey0, ex1, ey1 = east.geometry.bounds
    bite = shapely.intersection(east.geometry, shapely.box(ex0, ey0, ex0 + (ex1 - ex0) * 0.25, ey1))
    wider = shapely.union_all([cell.geometry, bite])  # a quarter into the east neighbour
    with pytest.raises(EditRefused) as refused:
        save_plan_edit(conn, settings, _edit(cell, action="reshape", geometry=mapping(wider)))
    body = refused.value.check.to_json()
    assert [p["code"] for p in body["problems"]] == ["overlap"]
    (overlap,) = body["overlaps"]["features"]
    assert (
        overlap["properties"]["code"] == east.code and overlap["properties"]["owners"] == "网格员 网格员 " + east.code
    )
    assert overlap["properties"]["area_m2"] == pytest.approx(_m2(conn, bite), abs=0.01)
    assert _units(conn).loc[cell.unit_id, "revision"] == 1  # nothing saved
    save_plan_edit(conn, settings, _edit(cell, action="reshape", geometry=mapping(wider), overlap="clip"))
    assert _m2(conn, _units(conn).loc[cell.unit_id, "geometry"]) == pytest.approx(_m2(conn, cell.geometry), abs=0.01)
    assert _cells_clean(audit_store(conn, settings, TOWN))


def test_split_gives_new_cells_the_owners_and_merge_ends_them(conn, settings):
    cell = _cell(conn)
    minx, miny, maxx, maxy = cell.geometry.bounds
    x = minx + (maxx - minx) * 0.4
    out = save_plan_edit(
        conn, settings, _edit(cell, action="split", line=mapping(LineString([(x, miny - 1e-4), (x, maxy + 1e-4)])))
    )
    kept, new = out["units"]
    assert kept["unit_id"] == cell.unit_id and kept["kind"] == "update"
    top = max(int(c[-3:]) for c in _units(conn)["code"] if c.startswith(TOWN + "001") and c != new["code"])
    assert new["kind"] == "insert" and new["code"] == f"{TOWN}001{top + 1:03d}"
    units = _units(conn)
    assert _m2(conn, units.loc[kept["unit_id"], "geometry"]) + _m2(
        conn, units.loc[new["unit_id"], "geometry"]
    ) == pytest.approx(_m2(conn, cell.geometry), abs=0.01)
    assert [(o.name, o.valid_from, o.valid_to) for o in _owners(conn, new["unit_id"])] == [
        ("网格员 " + cell.code, TODAY, None)
    ]
    assert _cells_clean(audit_store(conn, settings, TOWN))

    out = save_plan_edit(
        conn,
        settings,
        {
            "layer": "cell",
            "action": "merge",
            "saved_by": "规划员乙",
            "unit_ids": [kept["unit_id"], new["unit_id"]],
            "revisions": {str(kept["unit_id"]): 2, str(new["unit_id"]): 1},
        },
    )
    assert [(u["unit_id"], u["action"]) for u in out["units"]] == [(cell.unit_id, "merge"), (new["unit_id"], "merged")]
    merged = _units(conn).loc[cell.unit_id, "geometry"]
    assert _m2(conn, merged) == pytest.approx(_m2(conn, cell.geometry), abs=0.01)
    assert new["unit_id"] not in _units(conn).index
    # the merged-away cell's assignment (started today) is gone, the survivor's stays
    assert _owners(conn, new["unit_id"]) == []
    assert [o.valid_to for o in _owners(conn, int(cell.unit_id))] == [None]
    assert _cells_clean(audit_store(conn, settings, TOWN))


def test_merge_across_communities_or_apart_is_refused(conn, settings):
    units = _units(conn)
    west = units[units["code"].str.startswith(TOWN + "001")]
    east = units[units["code"].str.startswith(TOWN + "002")]
    pair = [west.iloc[0], east.iloc[0]]
    with pytest.raises(EditRefused, match="different communities"):
        save_plan_edit(
            conn,
            settings,
            {
                "layer": "cell",
                "action": "merge",
                "saved_by": "甲",
                "unit_ids": [int(u.unit_id) for u in pair],
                "revisions": {str(u.unit_id): int(u.revision) for u in pair},
            },
        )


def test_delete_then_restore_brings_the_cell_back_with_its_code(conn, settings):
    cell = _cell(conn, "002001")
    out = save_plan_edit(conn, settings, _edit(cell, action="delete", reason="并入公园"))
    assert out["units"][0]["action"] == "delete"
    assert sum(f["properties"]["area_m2"] for f in out["gaps"]["features"]) == pytest.approx(
        _m2(conn, cell.geometry), abs=0.1
    )
    assert cell.unit_id not in _units(conn).index
    assert [o.valid_to for o in _owners(conn, int(cell.unit_id))] == [TODAY]  # history kept, ended today
    history = unit_history(conn, settings, "cell", int(cell.unit_id))
    assert history[0]["action"] == "delete" and history[0]["geometry"] is None
    with pytest.raises(Exception, match="removal"):
        save_plan_edit(
            conn,
            settings,
            {**_edit(cell, action="restore", version_id=history[0]["version_id"], reason="恢复"), "revisions": {}},
        )
    out = save_plan_edit(
        conn,
        settings,
        {
            **_edit(cell, action="restore", version_id=history[1]["version_id"], reason="误删"),
            "revisions": {str(cell.unit_id): history[0]["revision"]},
        },
    )
    assert out["units"][0]["kind"] == "reinsert"
    back = _units(conn).loc[cell.unit_id]
    assert back["code"] == cell.code and back["geometry"].equals(cell.geometry)
    assert _cells_clean(audit_store(conn, settings, TOWN))


def test_a_drawn_cell_fills_a_gap_exactly_with_clipping_and_gets_a_fresh_code(conn, settings):
    units = _units(conn)
    cell = units.iloc[-1]
    save_plan_edit(conn, settings, _edit(cell, action="delete"))
    big = cell.geometry.buffer(0.0002, join_style="mitre")
    with pytest.raises(EditRefused) as refused:
        save_plan_edit(
            conn,
            settings,
            {"layer": "cell", "action": "create", "town": TOWN, "saved_by": "甲", "geometry": mapping(big)},
        )
    assert {p.code for p in refused.value.check.problems} >= {"overlap"}
    out = save_plan_edit(
        conn,
        settings,
        {
            "layer": "cell",
            "action": "create",
            "town": TOWN,
            "saved_by": "甲",
            "geometry": mapping(big),
            "overlap": "clip",
        },
    )
    (created,) = out["units"]
    assert created["code"] != cell.code  # a retired code is never reused
    assert int(created["code"][-3:]) > int(cell.code[-3:]) or created["code"][:-3] != cell.code[:-3]
    # clipped to the neighbours and the community: the gap exactly (a built cell meets the community
    # boundary only to about a millimetre, so along its border edges the new cell may differ by < 1 m²)
    assert _m2(conn, _units(conn).loc[created["unit_id"], "geometry"]) == pytest.approx(
        _m2(conn, cell.geometry), abs=1.0
    )
    assert _cells_clean(audit_store(conn, settings, TOWN))


def test_segment_split_cuts_area_and_centerline_and_merge_joins_them(conn, settings):
    segs = _units(conn, "segment").set_index("code", drop=False)
    west = segs.loc["试验路西段"]
    sid = int(west.unit_id)
    conn.execute(
        sa.text("""
        INSERT INTO owner_assignment (department_id, target_type, target_id, role, valid_from)
        VALUES (:dep, 'segment', :s, '段长', :d)"""),
        {
            "s": sid,
            "d": TODAY,
            "dep": conn.execute(
                sa.text("INSERT INTO department (code, name) VALUES ('t_dept', '试验局') RETURNING id")
            ).scalar(),
        },
    )
    person = conn.execute(sa.text("INSERT INTO person (name) VALUES ('段长甲') RETURNING id")).scalar()
    conn.execute(
        sa.text("""INSERT INTO owner_assignment (person_id, target_type, target_id, role, valid_from)
                            VALUES (:p, 'segment', :s, '段长', :d)"""),
        {"p": person, "s": sid, "d": TODAY - dt.timedelta(days=10)},
    )
    length = conn.execute(
        sa.text("SELECT ST_Length(ST_Transform(geom, 4544)) FROM segment WHERE id = :s"), {"s": sid}
    ).scalar()
    cut = LineString([(100.0013, 30.0005), (100.0013, 30.0013)])  # 65% of the way east
    out = save_plan_edit(
        conn,
        settings,
        {
            "layer": "segment",
            "action": "split",
            "unit_ids": [sid],
            "revisions": {str(sid): 1},
            "saved_by": "甲",
            "line": mapping(cut),
        },
    )
    kept, new = out["units"]
    assert (kept["unit_id"], kept["code"]) == (sid, "试验路西段") and new["code"] == "试验路西段 (2)"
    rows = {
        r.id: r
        for r in conn.execute(
            sa.text("""
        SELECT id, street_id, length_m, ST_Length(ST_Transform(geom, 4544)) AS len,
               ST_Area(ST_Transform(area, 4544)) AS a, ST_Covers(area, geom) AS covers FROM segment
        WHERE id = ANY(:ids)"""),
            {"ids": [sid, new["unit_id"]]},
        )
    }
    assert rows[sid].len == pytest.approx(length * 0.65, rel=1e-3) and rows[sid].length_m == pytest.approx(
        rows[sid].len
    )
    assert rows[sid].len + rows[new["unit_id"]].len == pytest.approx(length, abs=0.01)
    assert all(r.covers for r in rows.values())  # each piece of area holds its piece of centerline
    assert rows[sid].a + rows[new["unit_id"]].a == pytest.approx(_m2(conn, west.geometry), abs=0.01)
    owners = conn.execute(
        sa.text(
            "SELECT count(*) FROM owner_assignment WHERE target_type = 'segment' "
            "AND target_id = :s AND valid_to IS NULL"
        ),
        {"s": new["unit_id"]},
    ).scalar()
    assert owners == 2  # the 段长 person and department came along
    assert audit_store(conn, settings, TOWN).overlaps.empty

    out = save_plan_edit(
        conn,
        settings,
        {
            "layer": "segment",
            "action": "merge",
            "saved_by": "甲",
            "unit_ids": [sid, new["unit_id"]],
            "revisions": {str(sid): 2, str(new["unit_id"]): 1},
        },
    )
    assert [(u["unit_id"], u["action"]) for u in out["units"]] == [(sid, "merge"), (new["unit_id"], "merged")]
    back = conn.execute(
        sa.text(
            "SELECT ST_Length(ST_Transform(geom, 4544)), ST_Area(ST_Transform(area, 4544)) FROM segment WHERE id = :s"
        ),
        {"s": sid},
    ).one()
    assert back[0] == pytest.approx(length, abs=0.01) and back[1] == pytest.approx(_m2(conn, west.geometry), abs=0.01)
    assert conn.execute(sa.text("SELECT count(*) FROM segment WHERE id = :s"), {"s": new["unit_id"]}).scalar() == 0
    # a cut that misses the centerline is refused
    with pytest.raises(EditRefused, match="centerline"):
        save_plan_edit(
            conn,
            settings,
            {
                "layer": "segment",
                "action": "split",
                "unit_ids": [sid],
                "revisions": {str(sid): 3},
                "saved_by": "甲",
                "line": mapping(LineString([(99.9995, 30.00095), (100.0025, 30.00095)])),
            },
        )


def test_segment_areas_can_be_reshaped_not_deleted(conn, settings):
    segs = _units(conn, "segment").set_index("code", drop=False)
    west, east = segs.loc["试验路西段"], segs.loc["试验路东段"]
    minx, miny, maxx, maxy = west.geometry.bounds
    narrower = shapely.box(minx, miny + 0.00005, maxx, maxy - 0.00005)
    out = save_plan_edit(
        conn,
        settings,
        {
            "layer": "segment",
            "action": "reshape",
            "unit_ids": [int(west.unit_id)],
            "revisions": {str(west.unit_id): 1},
            "saved_by": "甲",
            "geometry": mapping(narrower),
        },
    )
    assert out["units"][0]["code"] == west.code and out["gaps"]["features"]
    assert conn.execute(sa.text("SELECT revision FROM segment WHERE id = :i"), {"i": int(west.unit_id)}).scalar() == 2
    wider = shapely.box(minx, miny, maxx + 0.0005, maxy)
    with pytest.raises(EditRefused) as refused:
        save_plan_edit(
            conn,
            settings,
            {
                "layer": "segment",
                "action": "reshape",
                "unit_ids": [int(west.unit_id)],
                "revisions": {str(west.unit_id): 2},
                "saved_by": "甲",
                "geometry": mapping(wider),
            },
        )
    assert refused.value.check.overlaps["code"].tolist() == [east.code]
    with pytest.raises(Exception, match="segments build"):
        save_plan_edit(
            conn,
            settings,
            {
                "layer": "segment",
                "action": "delete",
                "unit_ids": [int(west.unit_id)],
                "revisions": {str(west.unit_id): 2},
                "saved_by": "甲",
            },
        )


def test_two_planners_saving_the_same_cell_at_once(plan_db, settings):
    """The second save waits for the first, then is told; the first's cell is what is stored."""
    eng, _ = plan_db
    with eng.connect() as c:
        cell = _cell(c, "002002")
    minx, miny, maxx, maxy = cell.geometry.bounds
    first_geom = shapely.intersection(cell.geometry, shapely.box(minx, miny, maxx, miny + (maxy - miny) * 0.8))
    second_geom = shapely.intersection(cell.geometry, shapely.box(minx, miny, maxx, miny + (maxy - miny) * 0.6))
    outcome = {}
    first = eng.connect()
    try:
        first.begin()
        save_plan_edit(
            first, settings, _edit(cell, action="reshape", geometry=mapping(first_geom)) | {"saved_by": "甲"}
        )

        def second():
            with eng.connect() as c2:
                c2.begin()
                try:
                    save_plan_edit(
                        c2, settings, _edit(cell, action="reshape", geometry=mapping(second_geom)) | {"saved_by": "乙"}
                    )
                    c2.commit()
                    outcome["second"] = "saved"
                except EditConflict as exc:
                    c2.rollback()
                    outcome["second"] = exc

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive(), "the second save must wait for the first to finish"
        first.commit()
        thread.join(timeout=20)
    finally:
        first.close()
    try:
        exc = outcome["second"]
        assert isinstance(exc, EditConflict)
        assert "甲" in str(exc) and "nothing was saved" in str(exc)
        assert exc.current[0]["revision"] == 2 and shapely.geometry.shape(exc.current[0]["geometry"]).equals(first_geom)
        with eng.connect() as c:
            assert _units(c).loc[cell.unit_id, "geometry"].equals(first_geom)
    finally:
        with eng.begin() as c:  # put the cell back for the other tests
            c.execute(
                sa.text("UPDATE grid_cell SET geom = ST_Multi(ST_GeomFromWKB(:g, 4326)), revision = 1 WHERE id = :i"),
                {"g": shapely.to_wkb(cell.geometry), "i": int(cell.unit_id)},
            )
            c.execute(sa.text("DELETE FROM plan_version WHERE unit_id = :i"), {"i": int(cell.unit_id)})


# --- the JSON API --------------------------------------------------------------
@pytest.fixture(scope="module")
def plan_client(plan_db, settings):
    from gisgrid.web import create_app

    _, url = plan_db
    return create_app({"TESTING": True, "DATABASE_URL": url, "GISGRID_SETTINGS": settings}).test_client()


def test_api_units_and_check(plan_client, plan_db):
    body = plan_client.get(f"/api/plan/units?town={TOWN}&layer=cell").get_json()
    features = body["units"]["features"]
    assert features and {"unit_id", "code", "revision", "owners"} <= set(features[0]["properties"])
    assert body["removed"] == []
    f = features[0]
    bowtie = shapely.geometry.Polygon(
        [(100.0001, 30.0001), (100.0003, 30.0003), (100.0003, 30.0001), (100.0001, 30.0003)]
    )
    res = plan_client.post(
        "/api/plan/check",
        json={
            "layer": "cell",
            "action": "reshape",
            "unit_ids": [f["id"]],
            "revisions": {str(f["id"]): 1},
            "geometry": mapping(bowtie),
        },
    )
    assert res.status_code == 200
    check = res.get_json()
    assert check["ok"] is False and check["problems"][0]["code"] == "invalid"
    assert check["problems"][0]["location"] == pytest.approx([100.0002, 30.0002], abs=1e-9)


@pytest.mark.parametrize(
    "payload, status, text",
    [
        ({"layer": "cell", "action": "explode", "saved_by": "x"}, 400, "action must be one of"),
        ({"layer": "road", "action": "reshape", "saved_by": "x"}, 400, "layer must be one of"),
        (
            {"layer": "cell", "action": "reshape", "unit_ids": [1], "saved_by": "x", "geometry": {"type": "Polygon"}},
            400,
            "revision",
        ),
        ({"layer": "cell", "action": "create", "town": TOWN, "saved_by": "x", "geometry": "{not json"}, 400, "GeoJSON"),
        (
            {
                "layer": "cell",
                "action": "create",
                "town": TOWN,
                "saved_by": "x",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[101, 31], [101.001, 31], [101.001, 31.001], [101, 31]]],
                },
            },
            422,
            "outside",
        ),
        (
            {
                "layer": "cell",
                "action": "create",
                "town": "000000000",
                "saved_by": "x",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[101, 31], [101.001, 31], [101.001, 31.001], [101, 31]]],
                },
            },
            404,
            "no town",
        ),
        (
            {
                "layer": "cell",
                "action": "reshape",
                "unit_ids": [987654],
                "revisions": {"987654": 1},
                "saved_by": "x",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[100, 30], [100.001, 30], [100.001, 30.001], [100, 30]]],
                },
            },
            409,
            "removed",
        ),
    ],
)
def test_api_save_refusals(plan_client, payload, status, text):
    res = plan_client.post("/api/plan/save", json=payload)
    assert res.status_code == status, res.get_json()
    assert text in res.get_json()["detail"]


def test_api_save_conflict_and_history(plan_client, plan_db):
    eng, _ = plan_db
    f = plan_client.get(f"/api/plan/units?town={TOWN}&layer=cell").get_json()["units"]["features"][1]
    geom = shapely.geometry.shape(f["geometry"])
    minx, miny, maxx, maxy = geom.bounds
    half = mapping(shapely.intersection(geom, shapely.box(minx, miny, maxx, (miny + maxy) / 2)))
    edit = {
        "layer": "cell",
        "action": "reshape",
        "unit_ids": [f["id"]],
        "revisions": {str(f["id"]): f["properties"]["revision"]},
        "geometry": half,
        "saved_by": "<script>alert(1)</script>",
        "reason": "=cmd|' /C calc'!A0",
    }
    try:
        assert plan_client.post("/api/plan/save", json=edit).status_code == 200
        res = plan_client.post("/api/plan/save", json=edit)  # the same base revision again
        assert res.status_code == 409
        body = res.get_json()
        assert body["error"] == "EditConflict" and body["current"][0]["revision"] == f["properties"]["revision"] + 1
        versions = plan_client.get(f"/api/plan/history?layer=cell&id={f['id']}").get_json()["versions"]
        assert [v["action"] for v in versions] == ["reshape", "original"]
        # the author is the signed-in user, never the request body's saved_by
        assert versions[0]["saved_by"] == plan_client.account.name != "<script>alert(1)</script>"
        assert plan_client.get("/api/plan/history?layer=cell&id=abc").status_code == 400
        assert plan_client.get("/api/plan/history?layer=cell&id=987654").status_code == 404
    finally:
        with eng.begin() as c:
            c.execute(
                sa.text("UPDATE grid_cell SET geom = ST_Multi(ST_GeomFromWKB(:g, 4326)), revision = 1 WHERE id = :i"),
                {"g": shapely.to_wkb(geom), "i": f["id"]},
            )
            c.execute(sa.text("DELETE FROM plan_version WHERE unit_id = :i"), {"i": f["id"]})


def test_a_save_without_an_author_is_refused(conn, settings):
    """Outside the web (where the session names the author), a save must say who saves it."""
    cell = _cell(conn)
    with pytest.raises(InputError, match="saved_by"):
        save_plan_edit(conn, settings, {k: v for k, v in _edit(cell, action="delete").items() if k != "saved_by"})


def test_check_writes_nothing(conn, settings):
    cell = _cell(conn)
    out = check_plan_edit(conn, settings, _edit(cell, action="delete"))
    assert out["changes"] == [{"kind": "remove", "unit_id": int(cell.unit_id)}]
    assert cell.unit_id in _units(conn).index
    assert conn.execute(sa.text("SELECT count(*) FROM plan_version")).scalar() == 0


# --- issue 21: the planner's rough edges -----------------------------------------------------------
def test_a_restore_needs_a_reason_kept_in_the_history(conn, settings):
    cell = _cell(conn)
    minx, miny, maxx, maxy = cell.geometry.bounds
    half = shapely.intersection(cell.geometry, shapely.box(minx, miny, maxx, (miny + maxy) / 2))
    out = save_plan_edit(conn, settings, _edit(cell, action="reshape", geometry=mapping(half)))
    original = [v for v in unit_history(conn, settings, "cell", int(cell.unit_id)) if v["action"] == "original"][0]
    revs = {"revisions": {str(cell.unit_id): out["units"][0]["revision"]}}
    with pytest.raises(InputError, match="reason"):
        save_plan_edit(conn, settings, {**_edit(cell, action="restore", version_id=original["version_id"]), **revs})
    save_plan_edit(
        conn, settings, {**_edit(cell, action="restore", version_id=original["version_id"], reason="核对"), **revs}
    )
    assert unit_history(conn, settings, "cell", int(cell.unit_id))[0]["reason"] == "核对"


def test_drawing_where_cells_already_tile_the_town_says_to_delete_or_split_first(conn, settings):
    cell = _cell(conn)
    inner = shapely.buffer(cell.geometry.centroid, 0.0001)  # inside a cell of a fully tiled town
    edit = {"layer": "cell", "action": "create", "town": TOWN, "unit_ids": [], "revisions": {}, "saved_by": "甲"}
    out = check_plan_edit(conn, settings, {**edit, "overlap": "clip", "geometry": mapping(inner)})
    assert [p["code"] for p in out["problems"]] == ["no_room"]
    assert "delete a cell or split one first" in out["problems"][0]["message"]
    refused = check_plan_edit(conn, settings, {**edit, "overlap": "refuse", "geometry": mapping(inner)})
    assert {p["code"] for p in refused["problems"]} == {"overlap", "no_room"}


def test_check_of_a_split_gives_the_areas_of_the_new_cells(conn, settings):
    cell = _cell(conn)
    minx, miny, maxx, maxy = cell.geometry.bounds
    x = minx + (maxx - minx) * 0.3
    line = mapping(LineString([(x, miny - 1e-4), (x, maxy + 1e-4)]))
    out = check_plan_edit(conn, settings, _edit(cell, action="split", line=line))
    parts = out["parts_m2"]
    assert len(parts) == 2 and parts[0] != pytest.approx(parts[1], rel=0.05)
    assert sum(parts) == pytest.approx(out["area_m2"], abs=0.05)
    assert out["area_m2"] == pytest.approx(_m2(conn, cell.geometry), abs=0.05)
