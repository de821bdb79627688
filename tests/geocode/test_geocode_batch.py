"""Whole files through `gisgrid geocode` and the geocoder's readers: what comes out beside the input."""

from __future__ import annotations

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner

from gisgrid.geocode.batch import added_names

# a downloaded result uploaded again: the input has its own lon, lat, quality … (and even a lon_geocoded)
REUSED = pd.DataFrame(
    {
        "编号": ["R1", "R2", "R3"],
        "地址": ["Kaivokatu 1", "zzqx flurb 77", "Mannerheimintie 5"],
        "lon": ["东经114度", "114.05", ""],
        "lat": ["北纬22度", "22.61", ""],
        "quality": ["好", "差", "好"],
        "confidence": ["高", "0.9", "中"],
        "owner_name": ["张三", "李四", ""],
        "target": ["人民路", "", ""],
        "lon_geocoded": ["旧", "", "=1+1"],
    }
)


def _geocode(tmp_path, db_url, src, *args):
    from gisgrid.cli import main

    return CliRunner().invoke(
        main, ["geocode", str(src), *args, "--quiet"], env={"GISGRID_DATABASE_URL": db_url}, catch_exceptions=False
    )


def test_added_names_never_reuse_an_input_column():
    names = added_names(["lon", "lon_geocoded", "quality", "地址"])
    assert names["lon"] == "lon_geocoded_2" and names["lat"] == "lat"
    assert names["quality"] == "quality_geocoded" and names["confidence"] == "confidence"


def test_input_columns_named_like_the_output_are_kept_as_they_are(tmp_path, db_url, town):
    src = tmp_path / "cols.csv"
    REUSED.to_csv(src, index=False)
    res = _geocode(tmp_path, db_url, src, "--column", "地址", "-o", str(tmp_path / "x.xlsx"))
    assert res.exit_code == 0, res.output
    sheet = openpyxl.load_workbook(tmp_path / "x.xlsx").active
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header == [
        *REUSED.columns,
        "lon_geocoded_2",
        "lat_geocoded",
        "quality_geocoded",
        "confidence_geocoded",
        "matched_name",
        "geocode_note",
        "target_type",
        "target_id",
        "target_geocoded",
        "rule",
        "owner_name_geocoded",
        "chain",
        "route_note",
    ]
    got = {name: [row[i] for row in rows] for i, name in enumerate(header)}
    for col in REUSED.columns:  # text stays text, empty stays empty; only formulas are quoted, as everywhere
        assert got[col] == [None if v == "" else "'=1+1" if v == "=1+1" else v for v in REUSED[col]], col
    assert isinstance(got["lon_geocoded_2"][0], float) and abs(got["lat_geocoded"][0] - 60.17) < 0.01
    assert isinstance(got["confidence_geocoded"][0], (int, float))  # a number, not text
    assert got["quality_geocoded"][:2] == ["address_point", "failed"] and got["lon_geocoded_2"][1] is None
    assert got["owner_name_geocoded"][0] and got["owner_name"][0] == "张三"

    res = _geocode(tmp_path, db_url, src, "--column", "地址", "-o", str(tmp_path / "x.csv"))
    assert res.exit_code == 0, res.output
    out = pd.read_csv(tmp_path / "x.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert out[["编号", "地址", "lon", "lat", "quality", "confidence", "owner_name", "target"]].equals(
        REUSED.drop(columns="lon_geocoded")
    )
    assert out["quality_geocoded"].tolist()[:2] == ["address_point", "failed"]


def test_a_csv_renamed_to_xlsx_is_a_clear_error(tmp_path, db_url, town):
    from gisgrid.cli import main

    fake = tmp_path / "fake.xlsx"
    REUSED.to_csv(fake, index=False)
    res = _geocode(tmp_path, db_url, fake, "--column", "地址")
    assert res.exit_code == 2 and "fake.xlsx is not a readable XLSX workbook" in res.output
    assert len(res.output.strip().splitlines()) == 1
    for layer in ("streets", "owners"):  # the layer imports open workbooks the same way
        res = CliRunner().invoke(
            main,
            ["import", layer, str(fake), "--crs", "EPSG:4326"],
            env={"GISGRID_DATABASE_URL": db_url},
            catch_exceptions=False,
        )
        assert res.exit_code == 2 and "fake.xlsx is not a readable XLSX workbook" in res.output, res.output


def _two_row_header(path):
    """Sheet 7月: 位置 merged over the sub-headers 地址 and 社区, the other names merged down over both rows."""
    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    wb.active.append(["本表为巡查记录"])
    ws = wb.create_sheet("7月")
    ws.append(["编号", "位置", None, "类别", "备注"])
    ws.append([None, "地址", "社区", None, None])
    for cells in ("A1:A2", "B1:C1", "D1:D2", "E1:E2"):
        ws.merge_cells(cells)
    ws.append([1, "Kaivokatu 1", "红星社区", "0101", ""])
    ws.append([2, "Mannerheimintie 5", "红星社区", "0102", "复查"])
    wb.save(path)


def test_a_wrong_column_lists_exactly_the_names_accepted(tmp_path, db_url, town):
    from gisgrid.geocode.batch import ColumnNotFound, read_table

    src = tmp_path / "hotline.xlsx"
    _two_row_header(src)
    res = _geocode(tmp_path, db_url, src, "--column", "地点", "--sheet", "7月")
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert res.output.count("地点") == 1  # said once, not "column '地点': column '地点' not found"
    listed = res.output.split("columns are: ", 1)[1].strip().split(", ")
    assert listed == ["编号", "地址", "社区", "类别", "备注"]
    for name in listed:
        assert len(read_table(src, sheet="7月", column=name)) == 2
    for name in ("位置", "位置_2"):
        with pytest.raises(ColumnNotFound):
            read_table(src, sheet="7月", column=name)
    res = _geocode(tmp_path, db_url, src, "--column", "地址", "-o", str(tmp_path / "out.csv"), "--sheet", "7月")
    assert res.exit_code == 0, res.output


def test_a_wrong_column_on_the_first_of_several_sheets_names_the_sheets(tmp_path, db_url, town):
    src = tmp_path / "hotline.xlsx"
    _two_row_header(src)
    res = _geocode(tmp_path, db_url, src, "--column", "地址")
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert "in sheet '说明'" in res.output and "说明, 7月" in res.output and "--sheet" in res.output


def test_header_below_a_title_and_a_two_cell_line(tmp_path):
    from gisgrid.geocode.batch import read_table

    src = tmp_path / "report.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["2024年3月巡查问题清单"])
    ws.merge_cells("A1:E1")
    ws.append(["填报单位：沙田街道", None, None, "填报日期：2024-03-31"])
    for row in (
        ["序号", "地址", "类别", "上报日期", "备注"],
        [1, "人民路10号", "0101", "2024-03-02", None],
        [2, "紅門路", "0102", "2024-03-03", "复查"],
    ):
        ws.append(row)
    wb.save(src)
    frame = read_table(src)
    assert list(frame.columns) == ["序号", "地址", "类别", "上报日期", "备注"] and len(frame) == 2


def test_csv_and_xlsx_headers_get_the_same_names(tmp_path, db_url, town):
    header = ["编号", "备注", "备注", "", "地址"]
    rows = [["1", "a", "b", "c", "Kaivokatu 1"], ["2", "d", "e", "f", ""]]
    src = tmp_path / "dup.csv"
    pd.DataFrame(rows, columns=header).to_csv(src, index=False)
    wb = openpyxl.Workbook()
    for row in (header, *rows):
        wb.active.append(row)
    wb.save(tmp_path / "dup.xlsx")
    names = ["编号", "备注", "备注_2", "column_4", "地址"]
    for name in ("dup.csv", "dup.xlsx"):
        out = tmp_path / f"{name}.out.csv"
        res = _geocode(tmp_path, db_url, tmp_path / name, "--column", "地址", "-o", str(out))
        assert res.exit_code == 0, res.output
        got = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        assert list(got.columns[:5]) == names and got[names].values.tolist() == rows, name


def _typed_workbook(path) -> None:
    """A clerk's workbook with number, date, datetime and ID-as-text cells (and old lon/lat numbers)."""
    import datetime as dt

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["编号", "地址", "日期", "时间", "电话", "代码", "混合", "lon"])
    ws.append(
        [1, "Kaivokatu 1", dt.datetime(2026, 7, 1), dt.datetime(2026, 7, 1, 8, 30), "13800138000", "007", 12, 24.9414]
    )
    ws.append([2.5, "zzqx flurb 77", dt.date(2026, 7, 2), None, "13900139000", "042", "暂无", None])
    wb.save(path)


def test_xlsx_cells_are_written_back_as_they_were(tmp_path, db_url, town):
    _typed_workbook(tmp_path / "typed.xlsx")
    out = tmp_path / "typed.out.xlsx"
    res = _geocode(tmp_path, db_url, tmp_path / "typed.xlsx", "--column", "地址", "-o", str(out))
    assert res.exit_code == 0, res.output
    header, *rows = openpyxl.load_workbook(out).active.iter_rows(values_only=True)
    got = [dict(zip(header, row)) for row in rows]
    assert [r["编号"] for r in got] == [1, 2.5] and got[0]["lon"] == 24.9414 and got[1]["lon"] is None
    assert [r["日期"] for r in got] == ["2026-07-01", "2026-07-02"] and got[0]["时间"] == "2026-07-01 08:30:00"
    assert [r["电话"] for r in got] == ["13800138000", "13900139000"] and got[0]["代码"] == "007"
    assert [r["混合"] for r in got] == ["12", "暂无"]  # a column with text stays text
    assert isinstance(got[0]["lon_geocoded"], float)


@pytest.mark.parametrize(
    "rows, columns",
    [
        # a title line with as many values as half the header, over a narrow table
        (
            [
                ["填报单位：沙田区", "", "", "填报日期：2026-07-01"],
                ["序号", "地址", "类别", "日期"],
                [1, "源禾路10号", "0101", "2026-07-01"],
            ],
            ["序号", "地址", "类别", "日期"],
        ),
        # a one-column sheet under a one-cell title
        ([["热线工单 7月"], ["地址"], ["源禾路10号"]], ["地址"]),
        # data rows wider than the header
        ([["地址", "备注"], ["源禾路10号", "a", "b", "c", "d"]], ["地址", "备注", "column_3", "column_4", "column_5"]),
    ],
)
def test_the_header_is_the_row_holding_the_column_asked_for(tmp_path, rows, columns):
    from gisgrid.geocode.batch import read_table

    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(tmp_path / "t.xlsx")
    frame = read_table(tmp_path / "t.xlsx", column="地址")
    assert list(frame.columns) == columns and list(frame["地址"]) == ["源禾路10号"]
