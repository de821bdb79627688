"""``gisgrid import`` into a real PostGIS: every format, and bad files reported row by row."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import box

from gisgrid import crs
from gisgrid.config import DATA_DIR
from gisgrid.db.imports import import_file
from gisgrid.errors import CRSError, FileFormatError, InputError

DATA = DATA_DIR
SHATIN = box(114.1788, 22.3725, 114.2104, 22.3984)


def _jurisdictions(tmp_path) -> Path:
    west, east = box(114.1788, 22.3725, 114.1946, 22.3984), box(114.1946, 22.3725, 114.2104, 22.3984)
    gdf = gpd.GeoDataFrame(
        {
            "code": ["810006", "810006001", "810006001001", "810006001002"],
            "name": ["沙田区", "沙田市中心", "西社区", "东社区"],
            "level": ["县", "街道", "社区", "community"],
            "parent_code": [None, "810006", "810006001", "810006001"],
        },
        geometry=[SHATIN.buffer(0.01), SHATIN, west, east],
        crs=4326,
    )
    path = tmp_path / "jurisdictions.geojson"
    gdf.to_file(path, driver="GeoJSON")
    return path


def _count(engine, table):
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()


@pytest.fixture()
def shatin_db(scratch_engine, tmp_path):
    with scratch_engine.begin() as conn:
        summary = import_file(conn, "jurisdictions", _jurisdictions(tmp_path))
    assert summary.inserted == 4 and not summary.rejected
    return scratch_engine


def test_streets_from_geojson_with_field_mapping(shatin_db, tmp_path):
    src = gpd.read_file(DATA / "shatin_streets.geojson").rename(columns={"name": "路名"})
    path = tmp_path / "streets.geojson"
    src.to_file(path, driver="GeoJSON")
    with shatin_db.begin() as conn:
        summary = import_file(conn, "streets", path, mapping={"name": "路名"})
        inside = conn.execute(sa.text("SELECT count(*) FROM street WHERE jurisdiction_id IS NOT NULL")).scalar()
        alias = conn.execute(sa.text("SELECT aliases FROM street WHERE name = '沙田鄉事會路' LIMIT 1")).scalar()
    assert summary.inserted == len(src) == summary.total
    assert inside > 0.8 * len(src)  # streets placed in the town that contains them
    assert "Sha Tin Rural Committee Road" in alias


@pytest.mark.parametrize("fmt", ["gpkg", "shpzip", "csv_wkt", "xlsx"])
def test_streets_from_every_format(shatin_db, tmp_path, fmt):
    src = gpd.read_file(DATA / "shatin_streets.geojson").head(40)
    if fmt == "gpkg":
        path = tmp_path / "streets.gpkg"
        src.to_file(path, driver="GPKG")
    elif fmt == "shpzip":
        shp = tmp_path / "shp"
        shp.mkdir()
        src.to_file(shp / "streets.shp", encoding="utf-8")
        path = tmp_path / "streets.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for f in shp.iterdir():
                zf.write(f, f.name)
    else:
        table = pd.DataFrame(src.drop(columns="geometry"))
        table["wkt"] = src.geometry.to_wkt()
        path = tmp_path / ("streets.csv" if fmt == "csv_wkt" else "streets.xlsx")
        if fmt == "csv_wkt":
            table.to_csv(path, index=False)
        else:
            table.to_excel(path, index=False, sheet_name="道路")
    with shatin_db.begin() as conn:
        summary = import_file(
            conn,
            "streets",
            path,
            crs_name="EPSG:4326" if fmt in {"csv_wkt", "xlsx"} else None,
            jurisdiction_code="810006001",
        )
    assert summary.inserted == 40, summary.lines()
    with shatin_db.connect() as conn:
        names = {n for (n,) in conn.execute(sa.text("SELECT name FROM street"))}
        length = conn.execute(sa.text("SELECT sum(ST_Length(geom::geography)) FROM street")).scalar()
    assert set(src["name"]) == names
    expected = src.to_crs(crs.metric_crs_for(114.19, 22.38)).length.sum()
    assert abs(length - expected) / expected < 0.005


def test_bad_rows_are_listed_and_good_rows_load(shatin_db, tmp_path):
    path = tmp_path / "cells.csv"
    bowtie = "POLYGON((114.19 22.38, 114.191 22.381, 114.191 22.38, 114.19 22.381, 114.19 22.38))"
    ok = box(114.19, 22.38, 114.191, 22.381).wkt
    pd.DataFrame(
        {
            "code": ["810006001001001", "810006001001002", "", "810006001001001", "810006001001004"],
            "wkt": [ok, bowtie, ok, ok, "POLYGON((114.19 95, 114.2 95, 114.2 96, 114.19 95))"],
        }
    ).to_csv(path, index=False)
    with shatin_db.begin() as conn:
        summary = import_file(conn, "cells", path, crs_name="EPSG:4326")
    rejected = {p.row: p.reason for p in summary.rejected}
    repaired = {p.row for p in summary.repaired}
    assert summary.total == 5
    assert summary.inserted == 2  # row 1, and row 2 repaired
    assert 2 in repaired
    assert 3 in rejected and "empty" in rejected[3]
    assert "duplicate" in rejected[4]
    assert 5 in rejected
    assert summary.inserted + len(summary.rejected) == summary.total


def test_strict_loads_nothing_when_a_row_is_bad(shatin_db, tmp_path):
    path = tmp_path / "cells.csv"
    pd.DataFrame({"code": ["A1", ""], "wkt": [box(114.19, 22.38, 114.191, 22.381).wkt] * 2}).to_csv(path, index=False)
    with pytest.raises(InputError, match="row 2"):
        with shatin_db.begin() as conn:
            import_file(conn, "cells", path, crs_name="EPSG:4326", strict=True)
    assert _count(shatin_db, "grid_cell") == 0


def test_reports_from_gbk_csv_in_gcj02(shatin_db, tmp_path):
    with shatin_db.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO category (code, name, kind, deadline_hours) VALUES ('0101','暴露垃圾','event',4)")
        )
    lon, lat = 114.1994533, 22.3807552
    glon, glat = crs.from_storage([lon], [lat], "gcj02")
    path = tmp_path / "reports.csv"
    pd.DataFrame(
        {
            "编号": ["R1", "R2"],
            "经度": [glon[0], glon[0]],
            "纬度": [glat[0], glat[0]],
            "category": ["暴露垃圾", "不存在的类别"],
            "reported_at": ["2026-11-01 08:00", "2026-11-01"],
            "address": ["圓洲角路13号", "<script>alert(1)</script>"],
        }
    ).to_csv(path, index=False, encoding="gbk")
    with shatin_db.begin() as conn:
        summary = import_file(conn, "reports", path, crs_name="gcj02", mapping={"id": "编号"})
        row = conn.execute(sa.text("SELECT ST_X(geom), ST_Y(geom), address, external_id FROM report")).one()
    assert summary.inserted == 1 and summary.rejected[0].row == 2 and "category" in summary.rejected[0].reason
    assert abs(row[0] - lon) < 1e-6 and abs(row[1] - lat) < 1e-6
    assert row[2] == "圓洲角路13号" and row[3] == "R1"


def test_swapped_lonlat_is_flagged_not_fixed(shatin_db, tmp_path):
    path = tmp_path / "reports.csv"
    pd.DataFrame({"lon": [22.3807552], "lat": [114.1994533], "reported_at": ["2026-11-01"]}).to_csv(path, index=False)
    with shatin_db.begin() as conn:
        summary = import_file(conn, "reports", path, crs_name="EPSG:4326", jurisdiction_code="810006001")
    assert summary.inserted == 0
    assert "swap" in summary.rejected[0].reason


def test_owners_from_xlsx_with_named_sheet(shatin_db, tmp_path):
    with shatin_db.begin() as conn:
        conn.execute(sa.text("INSERT INTO department (code, name) VALUES ('enforcement', '城市管理综合执法局')"))
    path = tmp_path / "owners.xlsx"
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"x": [1]}).to_excel(xl, sheet_name="说明", index=False)
        pd.DataFrame(
            {
                "target_type": ["jurisdiction", "jurisdiction", "jurisdiction", "segment"],
                "target": ["810006", "810006001", "999", "1"],
                "role": ["总街长", "一级街长", "一级街长", "段长"],
                "person": ["王伟", None, "张三", "李四"],
                "department": [None, "城市管理综合执法局", None, None],
                "valid_from": ["2026-01-01", "2026-01-01", "2026-01-01", "2026-13-01"],
            }
        ).to_excel(xl, sheet_name="责任人", index=False)
    with shatin_db.begin() as conn:
        summary = import_file(conn, "owners", path, sheet="责任人")
    assert summary.inserted == 2
    assert {p.row for p in summary.rejected} == {3, 4}
    with pytest.raises(InputError, match="责任人"):
        with shatin_db.begin() as conn:
            import_file(conn, "owners", path, sheet="Sheet9")


def test_whole_file_problems(shatin_db, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    nofeat = tmp_path / "none.geojson"
    nofeat.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    unknown = tmp_path / "streets.kml"
    unknown.write_text("<kml/>")
    nocrs = tmp_path / "streets.csv"
    pd.DataFrame({"name": ["a"], "wkt": ["LINESTRING(114.19 22.38, 114.2 22.39)"]}).to_csv(nocrs, index=False)
    with shatin_db.begin() as conn:
        with pytest.raises(FileFormatError, match="not found"):
            import_file(conn, "streets", tmp_path / "missing.geojson")
        with pytest.raises(FileFormatError, match="empty"):
            import_file(conn, "streets", empty, crs_name="EPSG:4326")
        with pytest.raises(FileFormatError, match="empty"):
            import_file(conn, "streets", nofeat)
        with pytest.raises(FileFormatError, match="geojson"):
            import_file(conn, "streets", unknown)
        with pytest.raises(CRSError, match="crs"):
            import_file(conn, "streets", nocrs)


def test_mixed_geometry_types_are_rejected_per_row(shatin_db, tmp_path):
    gdf = gpd.GeoDataFrame(
        {"name": ["线", "点", "面"]},
        geometry=[
            shapely.LineString([(114.19, 22.38), (114.2, 22.39)]),
            shapely.Point(114.19, 22.38),
            box(114.19, 22.38, 114.2, 22.39),
        ],
        crs=4326,
    )
    path = tmp_path / "mixed.gpkg"
    gdf.to_file(path, driver="GPKG")
    with shatin_db.begin() as conn:
        summary = import_file(conn, "streets", path)
    assert summary.inserted == 1 and {p.row for p in summary.rejected} == {2, 3}


def test_cli_import_prints_rows_and_exits_nonzero(tmp_path, scratch_url):
    path = tmp_path / "cells.csv"
    pd.DataFrame({"code": ["A", ""], "wkt": [box(114.19, 22.38, 114.191, 22.381).wkt] * 2}).to_csv(path, index=False)
    from gisgrid.db import migrate

    migrate(scratch_url)
    out = subprocess.run(
        [str(Path(sys.executable).parent / "gisgrid"), "import", "cells", str(path), "--crs", "EPSG:4326"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "GISGRID_DATABASE_URL": scratch_url},
    )
    assert out.returncode == 1, out.stderr
    assert "1 of 2 rows imported" in out.stdout and "row 2" in out.stdout
    # the import is in the audit log, with who ran it and what it did
    engine = sa.create_engine(scratch_url)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT actor_name, action, detail FROM audit_log WHERE action LIKE 'import.%'")
        ).one()
    engine.dispose()
    assert row.action == "import.cells" and row.actor_name.startswith("cli:")
    assert row.detail["imported"] == 1 and row.detail["rejected"] == 1


def test_a_title_row_above_the_header_is_skipped_as_geocode_skips_it(shatin_db, tmp_path):
    """The one table reader: import finds the header under a merged title, as the geocoder does."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["沙田区 2026年11月 市民报告"])
    sheet.merge_cells("A1:D1")
    sheet.append(["id", "lon", "lat", "reported_at"])
    sheet.append(["R1", 114.19, 22.385, "2026-11-01"])
    sheet.append(["R2", 114.20, 22.39, "2026-11-02"])
    path = tmp_path / "reports.xlsx"
    book.save(path)
    with shatin_db.begin() as conn:
        summary = import_file(conn, "reports", path, crs_name="EPSG:4326")
        ids = conn.execute(sa.text("SELECT external_id FROM report ORDER BY external_id")).scalars().all()
    assert summary.inserted == 2 and not summary.rejected and ids == ["R1", "R2"]
