"""The unit grid stored in PostGIS, its re-runs, and the audit of the stored data (and their CLI commands).

One scratch database per module holds the Beijing sample town (real OSM
streets, demo owners and reports); the tests run in order on it: build,
re-build, audit clean, delete a cell, audit the gap, CLI.
"""

from __future__ import annotations

import datetime as dt
import json

import openpyxl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gisgrid.audit.store import audit_store
from gisgrid.demo import TOWNS
from gisgrid.errors import InputError, NotFound
from gisgrid.grid.store import build_and_store_grid

BEIJING = next(t for t in TOWNS if t.key == "beijing_haidian")
TOWN_CODE = BEIJING.town_code


@pytest.fixture(scope="module")
def grid_db(server_url, settings):
    """A migrated scratch database with the Beijing town (module scope: the grid tests share it)."""
    from gisgrid.demo import load_demo
    from tests.conftest import scratch_database

    with scratch_database(server_url, "grid", migrated=True) as url:
        eng = sa.create_engine(url)
        with eng.begin() as conn:
            load_demo(conn, settings, towns=[BEIJING], reports_per_town=20)
        yield eng, url
        eng.dispose()


@pytest.fixture(scope="module")
def built(grid_db, settings):
    eng, _ = grid_db
    with eng.begin() as conn:
        summary = build_and_store_grid(conn, settings, TOWN_CODE)
    return summary


def _cells(conn) -> dict[str, int]:
    return dict(conn.execute(sa.text("SELECT code, id FROM grid_cell ORDER BY code")).all())


def test_build_stores_cells_that_tile_the_town(grid_db, built):
    eng, _ = grid_db
    assert built["cells"] > 20 and built["new"] == built["cells"] and built["kept"] == built["retired"] == 0
    town = built["towns"][0]
    assert town["layout"] == "blocks" and town["overlap_m2"] < 1e-6
    with eng.connect() as conn:
        epsg = conn.execute(sa.text("SELECT metric_epsg FROM jurisdiction WHERE code = :c"), {"c": TOWN_CODE}).scalar()
        town_m2, union_m2, n = conn.execute(
            sa.text(f"""
            SELECT ST_Area(ST_Transform(t.geom, {epsg})), ST_Area(ST_Transform(ST_Union(c.geom), {epsg})), count(*)
            FROM jurisdiction t, grid_cell c WHERE t.code = :c GROUP BY t.geom"""),
            {"c": TOWN_CODE},
        ).one()
        assert n == built["cells"]
        assert abs(union_m2 - town_m2) <= 1e-4 * town_m2
        # the 1 mm snap-rounding moves borders by under 0.7 mm: what is left is far below 0.01 %
        assert town["gap_m2"] + town["outside_m2"] <= 1e-4 * town_m2
        overlap = conn.execute(
            sa.text(f"""
            SELECT COALESCE(sum(ST_Area(ST_Transform(ST_Intersection(a.geom, b.geom), {epsg}))), 0)
            FROM grid_cell a JOIN grid_cell b ON a.id < b.id AND a.geom && b.geom AND ST_Intersects(a.geom, b.geom)
            """)
        ).scalar()
        assert overlap == pytest.approx(0.0, abs=1e-6)
        rows = conn.execute(
            sa.text(f"""
            SELECT c.code, j.code AS community, j.level,
                   ST_Area(ST_Intersection(ST_Transform(c.geom, {epsg}), ST_Transform(j.geom, {epsg})))
                   / ST_Area(ST_Transform(c.geom, {epsg})) >= 0.9999
            FROM grid_cell c JOIN jurisdiction j ON j.id = c.jurisdiction_id""")
        ).all()
    codes = [r[0] for r in rows]
    assert len(set(codes)) == len(codes)
    for code, community, level, inside in rows:
        assert level == "community" and len(community) == 12
        assert len(code) == 15 and code.isdigit() and code.startswith(community)
        # measured in the metric CRS, where the cells were cut (vertex-wise transforms bend long borders)
        assert inside, f"cell {code} crosses the border of community {community}"


def test_rerun_keeps_codes_ids_and_owners(grid_db, built, settings):
    eng, _ = grid_db
    with eng.begin() as conn:
        before = _cells(conn)
        cell_id = before[min(before)]
        person = conn.execute(sa.text("INSERT INTO person (name) VALUES ('网格员 王五') RETURNING id")).scalar()
        conn.execute(
            sa.text("""INSERT INTO owner_assignment (person_id, target_type, target_id, role, valid_from)
                                VALUES (:p, 'cell', :c, '网格员', :d)"""),
            {"p": person, "c": cell_id, "d": dt.date.today() - dt.timedelta(days=10)},
        )
    with eng.begin() as conn:
        again = build_and_store_grid(conn, settings, TOWN_CODE)
    assert again["kept"] == built["cells"] and again["new"] == again["retired"] == 0
    with eng.connect() as conn:
        assert _cells(conn) == before
        owner = conn.execute(
            sa.text(
                "SELECT p.name, a.valid_to FROM owner_assignment a JOIN person p "
                "ON p.id = a.person_id WHERE a.target_type = 'cell' AND a.target_id = :c"
            ),
            {"c": cell_id},
        ).one()
    assert owner == ("网格员 王五", None)


def test_bad_input(grid_db, settings):
    eng, _ = grid_db
    with eng.connect() as conn:
        with pytest.raises(NotFound):
            build_and_store_grid(conn, settings, "999999001")
        with pytest.raises(InputError, match="layout"):
            build_and_store_grid(conn, settings, TOWN_CODE, layout="triangles")
        with pytest.raises(InputError, match="target area"):
            build_and_store_grid(conn, settings, TOWN_CODE, target_area_m2=0)
        with pytest.raises(NotFound):
            audit_store(conn, settings, "999")


def test_audit_clean_grid(grid_db, built, settings):
    eng, _ = grid_db
    with eng.connect() as conn:
        result = audit_store(conn, settings, TOWN_CODE)
    assert len(result.gaps) == 0 and len(result.overlaps[result.overlaps["layer"] == "cell"]) == 0
    summary = result.summary()
    assert summary["gaps_cell_m2"] == 0 and summary["overlaps_cell_m2"] == 0
    # the demo gives segments owners but no cell any: all cells but the one owned above are vacant
    vacant_cells = result.vacant[result.vacant["layer"] == "cell"]
    assert len(vacant_cells) == built["cells"] - 1


def _audit_without_largest_interior(grid_db, settings, table: str, column: str, remove: str):
    """Audit after removing (``remove``, SQL with :id) the largest unit touching no town border; rolled back.

    Returns the audit and the removed unit's area in m² (interior, so its gap is exactly that area).
    """
    eng, _ = grid_db
    with eng.begin() as conn:
        epsg = conn.execute(sa.text("SELECT metric_epsg FROM jurisdiction WHERE code = :c"), {"c": TOWN_CODE}).scalar()
        unit_id, area = conn.execute(
            sa.text(f"""
            SELECT u.id, ST_Area(ST_Transform(u.{column}, {epsg})) FROM {table} u, jurisdiction t
            WHERE t.code = :c AND u.{column} IS NOT NULL AND NOT ST_Intersects(u.{column}, ST_Boundary(t.geom))
            ORDER BY 2 DESC LIMIT 1"""),
            {"c": TOWN_CODE},
        ).one()
        conn.execute(sa.text(remove), {"id": unit_id})
        result = audit_store(conn, settings, TOWN_CODE)
        conn.rollback()
    return result, area


def test_audit_finds_deleted_cell_as_gap(grid_db, built, settings):
    result, area = _audit_without_largest_interior(
        grid_db, settings, "grid_cell", "geom", "DELETE FROM grid_cell WHERE id = :id"
    )
    gaps = result.gaps[result.gaps["layer"] == "cell"]
    assert len(gaps) == 1
    assert gaps["area_m2"].iloc[0] == pytest.approx(area, abs=0.1)
    assert result.summary()["gaps_cell_m2"] == pytest.approx(area, abs=0.1)
    assert not result.clean


def test_audit_finds_frontage_left_by_a_removed_segment_area(grid_db, built, settings):
    result, area = _audit_without_largest_interior(
        grid_db, settings, "segment", "area", "UPDATE segment SET area = NULL WHERE id = :id"
    )
    frontage = result.gaps[result.gaps["layer"] == "frontage"]
    assert frontage["area_m2"].sum() == pytest.approx(area, abs=0.1)
    assert result.summary()["gaps_frontage_m2"] == pytest.approx(area, abs=0.1)


def test_audit_limits_come_from_settings(grid_db, built, settings):
    import dataclasses

    eng, _ = grid_db
    strict = dataclasses.replace(settings, audit_sliver_area_m2=1e9, audit_max_units_per_owner=0)
    with eng.connect() as conn:
        default = audit_store(conn, settings, TOWN_CODE)
        result = audit_store(conn, strict, TOWN_CODE)
    assert len(default.slivers) < built["cells"]
    # every cell is below a 1 km² sliver limit, and every owner is over a limit of 0 units
    assert (result.slivers["kind"] == "cell").sum() == built["cells"]
    assert len(result.over_limit) > len(default.over_limit)
    assert result.params["sliver_area_m2"] == 1e9


def test_cli_build_and_audit_exports(grid_db, built, tmp_path, monkeypatch):
    from gisgrid.cli.grid import audit_cmd, grid

    _, url = grid_db
    monkeypatch.setenv("GISGRID_DATABASE_URL", url)
    runner = CliRunner()
    out = runner.invoke(grid, ["build", "--jurisdiction", TOWN_CODE, "--target-area", "10000"])
    assert out.exit_code == 0, out.output
    assert f"kept {built['cells']}, new 0, retired 0" in out.output

    bad = runner.invoke(grid, ["build", "--jurisdiction", "nope"])
    assert bad.exit_code == 2 and "error: no town or county" in bad.output

    # plant a gap and a formula-looking name that must not run in a spreadsheet
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        victim = conn.execute(sa.text("SELECT code FROM grid_cell ORDER BY code DESC LIMIT 1")).scalar()
        conn.execute(sa.text("DELETE FROM grid_cell WHERE code = :c"), {"c": victim})
        seg = conn.execute(sa.text("SELECT min(id) FROM segment")).scalar()
        conn.execute(sa.text("UPDATE segment SET name = '=HYPERLINK(\"http://x\")' WHERE id = :s"), {"s": seg})
        conn.execute(
            sa.text("DELETE FROM owner_assignment WHERE target_type = 'segment' AND target_id = :s"), {"s": seg}
        )
    eng.dispose()
    geojson, xlsx = tmp_path / "audit.geojson", tmp_path / "audit.xlsx"
    out = runner.invoke(
        audit_cmd, ["--jurisdiction", TOWN_CODE, "--days", "30", "--geojson", str(geojson), "--xlsx", str(xlsx)]
    )
    assert out.exit_code == 0, out.output
    assert "gaps: 1" in out.output and "m²" in out.output

    doc = json.loads(geojson.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    problems = {f["properties"]["problem"] for f in doc["features"]}
    assert "gaps" in problems and "vacant" in problems
    gap = next(f for f in doc["features"] if f["properties"]["problem"] == "gaps")
    assert gap["geometry"]["type"] in ("Polygon", "MultiPolygon") and gap["properties"]["area_m2"] > 0

    book = openpyxl.load_workbook(xlsx)
    assert {"summary", "gaps", "overlaps", "slivers", "vacant", "expiring", "over_limit", "reports"} <= set(
        book.sheetnames
    )
    gaps = list(book["gaps"].iter_rows(values_only=True))
    assert "area_m2" in gaps[0] and len(gaps) == 2
    texts = [c for row in book["vacant"].iter_rows(values_only=True) for c in row if isinstance(c, str)]
    assert not any(t.startswith("=") for t in texts)
    assert any(t.startswith("'=HYPERLINK") for t in texts)
