"""The assignment engine on the sample town in PostGIS: rules, owners by date, CRSs, batches, history, API."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from gisgrid import crs
from gisgrid.routing.store import assign_stored_reports, explain_point, load_deployment


@pytest.fixture(scope="module")
def deployment(engine, town, settings):
    with engine.connect() as conn:
        return load_deployment(conn, settings)


def _segment_point(engine, where: str):
    """Midpoint of the centerline of a segment matching ``where`` (and its id, road class)."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(f"""
            SELECT g.id, g.road_class, ST_X(ST_LineInterpolatePoint(g.geom, 0.5)),
                   ST_Y(ST_LineInterpolatePoint(g.geom, 0.5))
            FROM segment g WHERE {where} AND ST_Contains(g.area, ST_LineInterpolatePoint(g.geom, 0.5))
              AND (SELECT count(*) FROM segment o WHERE ST_Intersects(o.area, ST_LineInterpolatePoint(g.geom, 0.5))) = 1
            ORDER BY g.id LIMIT 1""")
        ).one()
    return row


def test_point_in_a_segment_area_goes_to_that_segment_and_its_chain(engine, deployment):
    seg, _, lon, lat = _segment_point(engine, "g.road_class = 'residential'")
    r = explain_point(deployment, lon=lon, lat=lat)
    assert (r["rule"], r["target_type"], r["target_id"], r["distance_m"]) == ("segment_area", "segment", seg, 0.0)
    assert r["owner"] and r["chain"].startswith(f"段长 {r['owner']}") and "总街长" in r["chain"]
    assert r["ruleset_version"] == deployment.ruleset.version


def test_category_routes_override_location(engine, deployment):
    seg, _, lon, lat = _segment_point(engine, "g.road_class = 'residential'")
    parking = explain_point(deployment, lon=lon, lat=lat, category="0502")  # illegal parking: traffic police
    assert (parking["rule"], parking["target_type"], parking["target_name"]) == (
        "category_route",
        "department",
        "交警大队",
    )
    assert parking["segment_id"] == seg  # the segment still explains where
    vending = explain_point(deployment, lon=lon, lat=lat, category="0501")  # by road class: residential → segment
    assert (vending["rule"], vending["target_id"]) == ("segment_area", seg)
    pseg, _, plon, plat = _segment_point(engine, "g.road_class = 'primary'")
    trunk = explain_point(deployment, lon=plon, lat=plat, category="0501")  # on a primary road → enforcement
    assert (trunk["rule"], trunk["target_name"], trunk["segment_id"]) == ("category_route", "城市管理综合执法局", pseg)


def test_nearest_segment_within_tolerance_then_jurisdiction_then_unassigned(engine, deployment, settings):
    with engine.connect() as conn:
        # a place inside a town, outside every area: walk away from a centerline perpendicular to it
        rows = conn.execute(
            sa.text("""
            WITH town AS (SELECT geom, metric_epsg FROM jurisdiction WHERE code = '990091001'),
            cand AS (
              SELECT g.id, ST_Transform(ST_Project(ST_LineInterpolatePoint(g.geom, 0.5)::geography,
                                                   d, radians(a))::geometry, 4326) AS p
              FROM segment g, generate_series(5, 120, 5) AS d, generate_series(0, 315, 45) AS a
              WHERE g.id IN (SELECT id FROM segment ORDER BY id DESC LIMIT 40))
            SELECT ST_X(p), ST_Y(p),
                   (SELECT min(ST_Distance(s.geom::geography, p::geography)) FROM segment s) AS d
            FROM cand, town WHERE ST_Contains(town.geom, p)
              AND NOT EXISTS (SELECT 1 FROM segment s WHERE ST_Intersects(s.area, p))""")
        ).all()
    near = [r for r in rows if 2 < r[2] < settings.nearest_tolerance_m - 2]
    far = [r for r in rows if r[2] > settings.nearest_tolerance_m + 2]
    assert near and far
    r = explain_point(deployment, lon=near[0][0], lat=near[0][1])
    assert r["rule"] == "nearest_segment" and abs(r["distance_m"] - near[0][2]) < 0.5
    r = explain_point(deployment, lon=far[0][0], lat=far[0][1])
    assert r["rule"] == "jurisdiction_default" and r["target_type"] == "jurisdiction"
    assert r["owner"]  # the community's 网格员 answers (属地兜底)
    r = explain_point(deployment, lon=0.5, lat=0.5)
    assert (r["rule"], r["reason"], r["target_id"]) == ("unassigned", "outside coverage", None)


def test_grid_cell_rule(scratch_engine, settings):
    from gisgrid.demo import TOWNS, load_demo

    with scratch_engine.begin() as conn:
        load_demo(conn, settings, towns=[t for t in TOWNS if t.key == "beijing_haidian"], reports_per_town=5)
        town = conn.execute(sa.text("SELECT id FROM jurisdiction WHERE code = '110108001'")).scalar()
        # a cell over a corner of the town with no segment area in it
        conn.execute(
            sa.text("""
            INSERT INTO grid_cell (code, jurisdiction_id, geom)
            SELECT '110108001001001', :t, ST_Multi(ST_Difference(ST_Intersection(j.geom,
                   ST_Expand(ST_PointN(ST_ExteriorRing(ST_GeometryN(j.geom, 1)), 1), 0.002)),
                   (SELECT ST_Union(area) FROM segment)))
            FROM jurisdiction j WHERE j.id = :t"""),
            {"t": town},
        )
        conn.execute(
            sa.text("""INSERT INTO person (name) VALUES ('格网员甲');
            INSERT INTO owner_assignment (person_id, target_type, target_id, role, valid_from)
            SELECT currval('person_id_seq'), 'cell', id, '网格员', '2020-01-01' FROM grid_cell""")
        )
        p = conn.execute(
            sa.text(
                "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), "
                "(SELECT min(ST_Distance(s.geom::geography, ST_PointOnSurface(c.geom)::geography)) "
                "FROM segment s) FROM grid_cell c"
            )
        ).one()
        dep = load_deployment(conn, settings)
    assert p[2] > settings.nearest_tolerance_m
    r = explain_point(dep, lon=p[0], lat=p[1])
    assert (r["rule"], r["target_type"], r["target_name"], r["owner"]) == (
        "grid_cell",
        "cell",
        "110108001001001",
        "格网员甲",
    )


def test_owner_is_the_one_valid_on_the_report_date(engine, deployment):
    with engine.connect() as conn:
        seg, handover = conn.execute(
            sa.text("""
            SELECT a.target_id, a.valid_to FROM owner_assignment a JOIN segment g ON g.id = a.target_id
            WHERE a.role = '段长' AND a.target_type = 'segment' AND a.valid_to IS NOT NULL
              AND ST_Contains(g.area, ST_LineInterpolatePoint(g.geom, 0.5))
              AND (SELECT count(*) FROM segment o WHERE ST_Intersects(o.area, ST_LineInterpolatePoint(g.geom, 0.5))) = 1
            ORDER BY a.target_id LIMIT 1""")
        ).one()
        lon, lat = conn.execute(
            sa.text(
                "SELECT ST_X(ST_LineInterpolatePoint(geom, 0.5)), "
                "ST_Y(ST_LineInterpolatePoint(geom, 0.5)) FROM segment WHERE id = :s"
            ),
            {"s": seg},
        ).one()
    before = explain_point(deployment, lon=lon, lat=lat, day=handover - dt.timedelta(days=1))
    after = explain_point(deployment, lon=lon, lat=lat, day=handover)
    assert before["target_id"] == after["target_id"] == seg
    assert before["owner"] and after["owner"] and before["owner"] != after["owner"]


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_chinese_web_map_coordinates_land_on_the_true_owner(engine, deployment, system):
    seg, _, lon, lat = _segment_point(engine, "g.road_class = 'residential' AND g.id < 400")
    x, y = crs.from_storage([lon], [lat], system)
    shifted = explain_point(deployment, lon=float(x[0]), lat=float(y[0]), crs=system)
    true = explain_point(deployment, lon=lon, lat=lat)
    assert shifted["target_id"] == true["target_id"] == seg and shifted["owner"] == true["owner"]
    # read as WGS84 the same numbers land hundreds of metres away
    naive = explain_point(deployment, lon=float(x[0]), lat=float(y[0]))
    assert naive.get("target_id") != seg


@pytest.mark.parametrize(
    "bad,code",
    [
        ({"lon": float("nan"), "lat": 22.38}, "missing_coordinates"),
        ({"lon": 22.38, "lat": 114.2}, "swapped_lonlat"),
        ({"lon": 114.2, "lat": 95.0}, "out_of_range"),
        ({"lon": 114.2, "lat": 22.38, "category": "9999"}, "unknown_category"),
        ({"lon": 114.2, "lat": 22.38, "day": "2026-02-30"}, "bad_date"),
    ],
)
def test_bad_single_points_are_explained(deployment, bad, code):
    assert explain_point(deployment, **bad)["error"] == code


def test_swapped_check_uses_each_area_not_one_box_around_all(deployment):
    """The demo covers Helsinki, Beijing, Shenzhen and Sha Tin: a point just north-east of Helsinki's streets
    swapped (lon 60.19, lat 24.975) lies in the box around all four but in none of them, so it is
    simply unassigned, not called swapped."""
    east = explain_point(deployment, lon=24.975, lat=60.19)
    assert "error" not in east and east["rule"] == "unassigned"
    assert explain_point(deployment, lon=22.38, lat=114.2)["error"] == "swapped_lonlat"  # Sha Tin, swapped


def test_batch_file_rows_in_equal_rows_out(deployment, engine, tmp_path):
    with engine.connect() as conn:
        pts = pd.read_sql_query(
            sa.text("SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM report ORDER BY id LIMIT 500"), conn
        )
    glon, glat = crs.from_storage(pts["lon"], pts["lat"], "gcj02")
    table = pd.DataFrame(
        {"编号": range(len(pts)), "经度": glon, "纬度": glat, "category": "0101", "date": "2026-10-01"}
    )
    table.loc[3, "经度"] = None  # missing
    table.loc[4, ["经度", "纬度"]] = [glat[4], glon[4]]  # swapped
    table.loc[5, "category"] = "nope"  # unknown category
    table.loc[6, "date"] = "yesterday-ish"  # bad date
    table.loc[7, "纬度"] = 123.0  # out of range
    src = tmp_path / "hotline.csv"
    table.to_csv(src, index=False, encoding="gbk")
    dst = tmp_path / "hotline.assigned.csv"
    summary = deployment.assign_file(src, dst, crs="gcj02", progress=False)
    out = pd.read_csv(dst, dtype=str, encoding="utf-8-sig")
    assert len(out) == len(table) == summary.rows
    assert list(out.columns[:5]) == list(table.columns)
    codes = out.set_index("编号")["error_code"]
    assert codes.loc["3"] == "missing_coordinates" and codes.loc["4"] == "swapped_lonlat"
    assert codes.loc["5"] == "unknown_category" and codes.loc["6"] == "bad_date" and codes.loc["7"] == "out_of_range"
    good = out[out["error_code"].isna()]
    assert len(good) == len(table) - 5 and good["rule"].notna().all()
    owned = good[good["target_type"] == "segment"]
    assert owned["owner_name"].notna().all() and owned["chain"].str.contains("总街长").all()


def test_stored_reports_rerun_keeps_history(scratch_engine, settings):
    from gisgrid.demo import TOWNS, load_demo

    with scratch_engine.begin() as conn:
        load_demo(conn, settings, towns=[t for t in TOWNS if t.key == "shatin"], reports_per_town=300)
    with scratch_engine.begin() as conn:
        first = conn.execute(sa.text("SELECT count(*), count(DISTINCT report_id) FROM report_assignment")).one()
        chains = conn.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE chain LIKE '段长 % → 二级街长 % → 一级街长 % → 总街长 %'), "
                "count(*) FROM report_current WHERE target_type = 'segment'"
            )
        ).one()
        # the 段长 of the busiest segment hands over today
        seg, old_pid, n = conn.execute(
            sa.text("""
            SELECT r.target_id, r.owner_person_id, count(*) FROM report_current r
            WHERE r.target_type = 'segment' AND r.owner_person_id IS NOT NULL
            GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT 1""")
        ).one()
        today = dt.date.today()
        conn.execute(
            sa.text(
                "UPDATE owner_assignment SET valid_to = :d WHERE target_type = 'segment' "
                "AND target_id = :s AND role = '段长' AND valid_to IS NULL"
            ),
            {"d": today, "s": seg},
        )
        new_pid = conn.execute(sa.text("INSERT INTO person (name) VALUES ('新段长') RETURNING id")).scalar()
        conn.execute(
            sa.text(
                "INSERT INTO owner_assignment (person_id, target_type, target_id, role, valid_from) "
                "VALUES (:p, 'segment', :s, '段长', :d)"
            ),
            {"p": new_pid, "s": seg, "d": today},
        )
        moved = conn.execute(
            sa.text(
                "UPDATE report SET reported_at = now() WHERE id = (SELECT min(report_id) "
                "FROM report_current WHERE target_id = :s AND target_type = 'segment' AND owner_person_id = :p) "
                "RETURNING id"
            ),
            {"s": seg, "p": old_pid},
        ).scalar()
        out = assign_stored_reports(conn, load_deployment(conn, settings), since=today)
        trail = (
            conn.execute(
                sa.text("SELECT owner_person_id FROM report_assignment WHERE report_id = :r ORDER BY id"), {"r": moved}
            )
            .scalars()
            .all()
        )
        conn.execute(sa.text("DELETE FROM report WHERE id = :r"), {"r": moved})
        orphans = conn.execute(
            sa.text("SELECT count(*) FROM report_assignment WHERE report_id = :r"), {"r": moved}
        ).scalar()
        owners = conn.execute(
            sa.text("""SELECT r.owner_person_id, count(*) FROM report_current r
            WHERE r.target_type = 'segment' AND r.target_id = :s GROUP BY 1"""),
            {"s": seg},
        ).all()
        history = conn.execute(sa.text("SELECT count(*) FROM report_assignment")).scalar()
    assert first[0] == first[1] == 300
    assert chains[0] == chains[1] > 0  # each result records the whole chain of the report's day
    assert out["reports"] >= 1 and history == 300 + out["reports"] - len(trail)
    assert trail == [old_pid, new_pid]  # the earlier assignment stays in the history
    assert orphans == 0  # deleting a report deletes its history
    owners = dict(owners)
    assert new_pid not in owners  # the re-dated report (new owner) was deleted above
    assert owners.get(old_pid) == n - 1  # earlier reports keep the owner of their day


def test_api_assign(client, engine):
    seg, _, lon, lat = _segment_point(engine, "g.road_class = 'residential'")
    ok = client.post(
        "/api/assign", json={"lon": lon, "lat": lat, "crs": "EPSG:4490", "category": "0101", "date": "2026-10-01"}
    )
    assert ok.status_code == 200
    body = ok.get_json()
    assert (body["target_id"], body["rule"]) == (seg, "segment_area") and body["chain"]
    bad = client.post("/api/assign", json={"lon": lat, "lat": lon})
    assert bad.status_code == 400 and bad.get_json()["error"] == "swapped_lonlat"
    assert client.post("/api/assign", data="lon=1").status_code == 400
    assert client.post("/api/assign", json={"lat": 1}).get_json()["error"] == "missing_coordinates"


def test_cli_assign_point_file_and_rerun(db_url, town, tmp_path):
    env = {**os.environ, "GISGRID_DATABASE_URL": db_url}
    exe = str(Path(sys.executable).parent / "gisgrid")
    out = subprocess.run(
        [exe, "assign", "point", "--lon", "0.5", "--lat", "0.5"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0 and "outside coverage" in out.stdout
    src = tmp_path / "r.csv"
    pd.DataFrame({"lon": [0.5, None], "lat": [0.5, 1]}).to_csv(src, index=False)
    out = subprocess.run([exe, "assign", str(src), "--crs", "EPSG:4326"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert len(pd.read_csv(tmp_path / "r.assigned.csv")) == 2
    out = subprocess.run([exe, "assign", "--rerun", "--since", "2000-01-01"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert f"assigned {town['report']} reports" in out.stdout


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_cli_assign_output_is_safe_to_open_in_a_spreadsheet(db_url, town, tmp_path, suffix):
    """Formula text in any column goes out as text, and a CR inside a value does not split its row."""
    import csv as _csv

    import openpyxl
    from click.testing import CliRunner

    from gisgrid.cli import main

    hostile = ['=HYPERLINK("http://evil.example","详情")', "+cmd|' /C calc'!A0", "@SUM(A1)", "-1+cmd", "a\r=1+1"]
    src = tmp_path / "reports.csv"
    pd.DataFrame({"id": ["=1+1", "2", "3", "4", "5"], "lon": 114.2, "lat": 22.38, "description": hostile}).to_csv(
        src,
        index=False,
        quoting=_csv.QUOTE_ALL,  # pandas leaves a bare CR unquoted otherwise
    )
    dst = tmp_path / f"out{suffix}"
    res = CliRunner().invoke(
        main,
        ["assign", str(src), "--crs", "EPSG:4326", "-o", str(dst)],
        env={"GISGRID_DATABASE_URL": db_url},
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    if suffix == ".csv":
        rows = list(_csv.reader(dst.read_text(encoding="utf-8-sig").splitlines(keepends=True)))
        header, rows = rows[0], rows[1:]
        cells = [dict(zip(header, r)) for r in rows]
    else:
        sheet = openpyxl.load_workbook(dst).active
        assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)
        values = list(sheet.iter_rows(values_only=True))
        cells = [dict(zip(values[0], r)) for r in values[1:]]
    assert len(cells) == 5  # rows in = rows out
    assert [c["description"] for c in cells[:4]] == ["'" + h for h in hostile[:4]]
    assert cells[4]["description"].replace("\n", "\r") == "a\r=1+1"
    assert cells[0]["id"] == "'=1+1"
