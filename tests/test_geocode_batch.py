"""Whole files through `gisgrid geocode` and the geocoder's readers: what comes out beside the input."""
from __future__ import annotations

import openpyxl
import pandas as pd
from click.testing import CliRunner

from gisgrid.geocode.batch import added_names

# a downloaded result uploaded again: the input has its own lon, lat, quality … (and even a lon_geocoded)
REUSED = pd.DataFrame({
    "编号": ["R1", "R2", "R3"],
    "地址": ["Kaivokatu 1", "zzqx flurb 77", "Mannerheimintie 5"],
    "lon": ["东经114度", "114.05", ""],
    "lat": ["北纬22度", "22.61", ""],
    "quality": ["好", "差", "好"],
    "confidence": ["高", "0.9", "中"],
    "owner_name": ["张三", "李四", ""],
    "target": ["人民路", "", ""],
    "lon_geocoded": ["旧", "", "=1+1"],
})


def _geocode(tmp_path, db_url, src, *args):
    from gisgrid.cli import main

    return CliRunner().invoke(main, ["geocode", str(src), *args, "--quiet"],
                              env={"GISGRID_DATABASE_URL": db_url}, catch_exceptions=False)


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
    assert header == [*REUSED.columns, "lon_geocoded_2", "lat_geocoded", "quality_geocoded", "confidence_geocoded",
                      "matched_name", "geocode_note", "target_type", "target_id", "target_geocoded", "rule",
                      "owner_name_geocoded", "chain", "route_note"]
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
        REUSED.drop(columns="lon_geocoded"))
    assert out["quality_geocoded"].tolist()[:2] == ["address_point", "failed"]


def test_a_csv_renamed_to_xlsx_is_a_clear_error(tmp_path, db_url, town):
    from gisgrid.cli import main

    fake = tmp_path / "fake.xlsx"
    REUSED.to_csv(fake, index=False)
    res = _geocode(tmp_path, db_url, fake, "--column", "地址")
    assert res.exit_code == 2 and "fake.xlsx is not a readable XLSX workbook" in res.output
    assert len(res.output.strip().splitlines()) == 1
    for layer in ("streets", "owners"):  # the layer imports open workbooks the same way
        res = CliRunner().invoke(main, ["import", layer, str(fake), "--crs", "EPSG:4326"],
                                 env={"GISGRID_DATABASE_URL": db_url}, catch_exceptions=False)
        assert res.exit_code == 2 and "fake.xlsx is not a readable XLSX workbook" in res.output, res.output
