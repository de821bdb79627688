"""The one table reader: every row with its number, in chunks, whatever the file looks like."""

from __future__ import annotations

import csv
import io
import json

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
from shapely.geometry import Point

from gisgrid.crs import reconcile_crs
from gisgrid.errors import CRSError
from gisgrid.io.tables import open_table, read_table


def _rows(path, **options):
    table = open_table(path, **options)
    frames, malformed = [], {}
    for chunk in table.chunks(chunk_rows=64):
        frames.append(chunk.frame)
        malformed.update(chunk.malformed)
    return table, pd.concat(frames), malformed


def _irregular_csv(n: int = 1000) -> tuple[str, dict[int, list[str]]]:
    """A CSV whose rows are numbered in their first cell, with a blank, a short, a long and a multi-line row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "lon", "lat", "note"])
    expected = {}
    for i in range(1, n + 1):
        if i == 100:
            out.write("\n")  # a blank line: no data row, but it keeps its number
            continue
        row = [str(i), "114.2", "22.7", f"note {i}"]
        if i == 500:
            row = [str(i), "114.2"]  # short: padded with empty cells
        if i == 800:
            row[3] = "two\nlines, and a comma"
        if i == 700:
            row = [str(i), "114.2", "22.7", "a", "b"]  # an unquoted comma too many: reported, not dropped
        writer.writerow(row)
        expected[i] = (row + ["", "", "", ""])[:4]
    return out.getvalue(), expected


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_rows_keep_their_numbers_past_an_irregular_row(tmp_path, encoding):
    text, expected = _irregular_csv()
    path = tmp_path / "reports.csv"
    path.write_bytes(text.replace("note", "备注").encode(encoding))
    table, frame, malformed = _rows(path)
    assert table.columns == ["id", "lon", "lat", "备注"]
    assert list(malformed) == [700] and "5 fields but the header has 4" in malformed[700]
    assert 100 not in frame.index and 700 not in frame.index
    assert frame.index.tolist() == [i for i in expected if i != 700]
    assert (frame["id"] == frame.index.astype(str)).all()  # every row has its own number
    assert frame.loc[500].tolist() == ["500", "114.2", "", ""]
    assert frame.loc[800, "备注"] == "two\nlines, and a comma"
    assert len(frame) + len(malformed) == 999  # 1000 lines of data, one of them blank


def test_a_clean_csv_is_read_in_chunks_with_row_numbers(tmp_path):
    path = tmp_path / "clean.csv"
    pd.DataFrame({"id": range(1, 301), "name": [f"r{i}" for i in range(1, 301)]}).to_csv(path, index=False)
    table = open_table(path)
    chunks = list(table.chunks(chunk_rows=100))
    assert all(not c.malformed for c in chunks)
    frame = pd.concat(c.frame for c in chunks)
    assert frame.index.tolist() == list(range(1, 301)) and frame["id"].tolist() == [str(i) for i in range(1, 301)]
    assert frame["id"].dtype == "str" and table.size_hint() == 300


def test_title_rows_above_the_header_are_skipped_in_csv_and_xlsx(tmp_path):
    rows = [
        ["2026年7月 热线工单汇总", "", "", ""],
        ["填报单位：沙田区", "", "", "填报日期：2026-07-01"],
        ["编号", "地址", "经度", "纬度"],
        ["R1", "源禾路10号", "114.19", "22.38"],
        ["", "", "", ""],
        ["R3", "沙田正街1号", "114.2", "22.39"],
    ]
    with (tmp_path / "t.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    book = openpyxl.Workbook()
    book.active.title = "说明"
    book.active.append(["这一页不是数据"])
    sheet = book.create_sheet("7月")
    for row in rows:
        sheet.append([None if c == "" else c for c in row])
    sheet.merge_cells("A1:D1")
    book.save(tmp_path / "t.xlsx")
    for path, options in ((tmp_path / "t.csv", {}), (tmp_path / "t.xlsx", {"sheet": "7月"})):
        # 填报单位 … 填报日期 … has two values of four: a header by count, so the caller names a column
        table, chunk = read_table(path, column=("lon", "经度"), **options)
        assert table.columns == ["编号", "地址", "经度", "纬度"], path
        assert chunk.frame.index.tolist() == [1, 3]
        assert chunk.frame.loc[3].tolist() == ["R3", "沙田正街1号", "114.2", "22.39"]


def test_xlsx_merged_header_and_cells_numbers_and_chunks(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["编号", "位置", None, "数量"])
    sheet.append([None, "地址", "社区", None])
    for i in range(1, 8):
        sheet.append([f"R{i}", f"路{i}号", "西社区" if i == 1 else None, i * 1.0])
    sheet.merge_cells("B1:C1")
    sheet.merge_cells("A1:A2")
    sheet.merge_cells("D1:D2")
    sheet.merge_cells("C3:C5")  # one community for rows 1-3
    sheet.append(["R8", "路8号", "东社区", "几个"])
    book.save(tmp_path / "m.xlsx")
    table = open_table(tmp_path / "m.xlsx")
    assert table.columns == ["编号", "地址", "社区", "数量"]
    chunks = list(table.chunks(chunk_rows=3))
    frame = pd.concat(c.frame for c in chunks)
    assert frame.index.tolist() == list(range(1, 9))
    assert frame["社区"].tolist()[:4] == ["西社区", "西社区", "西社区", ""]
    assert frame["数量"].tolist()[:2] == ["1", "2"]  # 1.0 in the workbook: as a person sees it
    whole = table.read()
    assert "数量" not in whole.number_columns and "编号" not in whole.number_columns  # 几个 is text
    assert chunks[0].number_columns == ["数量"]


def test_xlsx_cells_right_of_the_header_are_kept_or_reported(tmp_path):
    book = openpyxl.Workbook()
    book.active.append(["地址", "备注"])
    book.active.append(["源禾路10号", "a", "b"])  # near the top: gets a column of its own
    for i in range(30):
        book.active.append([f"路{i}号", "x"])
    book.active.append(["远处", "y", None, "z"])  # further down, wider still: reported with its number
    book.save(tmp_path / "w.xlsx")
    table, chunk = read_table(tmp_path / "w.xlsx")
    assert table.columns == ["地址", "备注", "column_3"]
    assert chunk.frame.loc[1, "column_3"] == "b"
    assert list(chunk.malformed) == [32] and "column 4" in chunk.malformed[32]


def test_vector_chunks_number_features_and_note_geometry_problems(tmp_path):
    gdf = gpd.GeoDataFrame(
        {"name": [f"p{i}" for i in range(10)]}, geometry=[Point(114 + i / 100, 22.5) for i in range(10)], crs=4326
    )
    gdf.to_file(tmp_path / "p.gpkg", driver="GPKG")
    table = open_table(tmp_path / "p.gpkg")
    chunks = list(table.chunks(chunk_rows=4))
    assert [c.frame.index.tolist() for c in chunks] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert table.stated_crs is not None and table.crs().epsg == 4326
    assert np.allclose([g.x for g in np.concatenate([c.geoms for c in chunks])], gdf.geometry.x)


def test_geojson_crs_member_is_found_without_reading_the_whole_file(tmp_path):
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"a": 1}, "geometry": {"type": "Point", "coordinates": [114.2, 22.7]}}
        ],
    }
    (tmp_path / "plain.geojson").write_text(json.dumps(doc))
    doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}}
    (tmp_path / "cgcs.geojson").write_text(json.dumps(doc))
    plain, cgcs = open_table(tmp_path / "plain.geojson"), open_table(tmp_path / "cgcs.geojson")
    assert plain.stated_crs is None and plain.crs().epsg == 4326  # RFC 7946
    assert plain.crs("EPSG:4547").epsg == 4547  # nothing stated: the declaration holds
    assert cgcs.crs().epsg == 4490 and cgcs.crs("EPSG:4326").epsg == 4326  # geographic, stored as is
    with pytest.raises(CRSError, match="states EPSG:4490 but EPSG:4547"):
        cgcs.crs("EPSG:4547")


@pytest.mark.parametrize(
    "declared, stated, expected",
    [
        (None, "EPSG:4326", "EPSG:4326"),
        ("EPSG:4490", "EPSG:4326", "EPSG:4490"),
        ("EPSG:4326", "EPSG:4490", "EPSG:4326"),
        ("gcj02", "EPSG:4326", "GCJ-02"),
        ("bd09", "EPSG:4490", "BD-09"),
        ("EPSG:4547", None, "EPSG:4547"),
        ("EPSG:4547", "EPSG:4547", "EPSG:4547"),
        ("EPSG:4547", "EPSG:4326", None),
        ("gcj02", "EPSG:4547", None),
        (None, None, None),
    ],
)
def test_one_crs_rule_for_files(declared, stated, expected):
    if expected is None:
        with pytest.raises(CRSError):
            reconcile_crs(declared, stated, source="f")
    else:
        assert reconcile_crs(declared, stated, source="f").name == expected


def test_pyarrow_hands_over_to_the_csv_module_mid_file_without_losing_a_number(tmp_path, caplog):
    """Blocks before the first irregular row come from pyarrow, the rest from Python's csv module."""
    lines = ["id,name,lon,lat"]
    for i in range(1, 400_001):
        if i == 20_000:
            lines.append("")  # blank, in pyarrow's part
        elif i == 350_000:
            lines.append(f"{i},a,b,114.2,22.7")  # too long: the hand-over, blocks after the first
        elif i == 355_000:
            lines.append(f"{i},short")
        else:
            lines.append(f"{i},name {i},114.2,22.7")
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = open_table(path)
    with caplog.at_level("INFO", logger="gisgrid.io.tables"):
        chunks = list(table.chunks(chunk_rows=20_000))
    handed_over = [r.getMessage() for r in caplog.records if "reading on with the csv module" in r.getMessage()]
    assert handed_over and "after data row 0;" not in handed_over[0]  # pyarrow read the first blocks
    frame = pd.concat(c.frame for c in chunks)
    malformed = {k: v for c in chunks for k, v in c.malformed.items()}
    assert list(malformed) == [350_000]
    assert frame.index.tolist() == [i for i in range(1, 400_001) if i not in (20_000, 350_000)]
    assert (frame["id"] == frame.index.astype(str)).all()
    assert frame.loc[355_000].tolist() == ["355000", "short", "", ""]
