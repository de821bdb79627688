"""Export round trips: what gisgrid writes, gisgrid (and other systems) read back unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa

from gisgrid.db import layers
from gisgrid.db.imports import import_file
from gisgrid.io import read_layer, write_layer


@pytest.mark.parametrize("ext", ["geojson", "gpkg", "csv", "xlsx"])
def test_jurisdictions_and_streets_round_trip(engine, town, scratch_engine, tmp_path, ext):
    with engine.connect() as conn:
        juris = layers.fetch_layer(conn, "jurisdictions", under_jurisdiction="110108")
        streets = layers.fetch_layer(conn, "streets", under_jurisdiction="110108")
    jpath, spath = tmp_path / f"j.{ext}", tmp_path / f"s.{ext}"
    write_layer(juris, jpath)
    write_layer(streets, spath)
    crs_name = "EPSG:4326" if ext in {"csv", "xlsx"} else None
    with scratch_engine.begin() as conn:
        js = import_file(conn, "jurisdictions", jpath, crs_name=crs_name)
        ss = import_file(conn, "streets", spath, crs_name=crs_name)
    assert (js.inserted, ss.inserted) == (len(juris), len(streets)), js.lines() + ss.lines()
    with scratch_engine.connect() as conn:
        back = layers.fetch_layer(conn, "streets")
        area_back = conn.execute(sa.text("SELECT sum(ST_Area(geom::geography)) FROM jurisdiction")).scalar()
    with engine.connect() as conn:
        area = conn.execute(
            sa.text("SELECT sum(ST_Area(geom::geography)) FROM jurisdiction WHERE code LIKE '110108%'")
        ).scalar()
    assert sorted(back["name"]) == sorted(streets["name"])
    assert sorted(back["jurisdiction"]) == sorted(streets["jurisdiction"])
    assert abs(area_back - area) / area < 1e-6
    # geometries survive to ~1 cm (7 decimals)
    merged = back.merge(streets, on="name", suffixes=("", "_orig"))
    dist = shapely.hausdorff_distance(merged["geometry"].values, merged["geometry_orig"].values)
    assert dist.max() < 2e-7


def test_cli_export_every_format(town, db_url, tmp_path):
    env = {**os.environ, "GISGRID_DATABASE_URL": db_url}
    exe = str(Path(sys.executable).parent / "gisgrid")
    for name in ("segments.geojson", "owners.xlsx", "reports.csv", "cells.gpkg"):
        out = subprocess.run(
            [exe, "export", name.split(".")[0], str(tmp_path / name)], capture_output=True, text=True, env=env
        )
        assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "segments.geojson").read_text(encoding="utf-8"))
    assert "crs" not in doc and len(doc["features"]) == town["segment"]
    reports = pd.read_csv(tmp_path / "reports.csv", dtype=str, encoding="utf-8-sig")
    assert len(reports) == town["report"]
    result = read_layer(tmp_path / "reports.csv", crs="EPSG:4326")
    assert len(result.frame) == town["report"] and not result.rejected


def test_formula_text_is_neutralised_in_spreadsheets(scratch_engine, tmp_path):
    with scratch_engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO department (code, name) VALUES ('x', '=cmd|'' /C calc''!A0')"))
        frame = layers.fetch_layer(conn, "departments")
    write_layer(frame, tmp_path / "d.xlsx")
    write_layer(frame, tmp_path / "d.csv")
    cell = openpyxl.load_workbook(tmp_path / "d.xlsx").active["B2"]
    assert cell.data_type == "s" and cell.value.startswith("'=")
    assert "'=cmd" in (tmp_path / "d.csv").read_text(encoding="utf-8-sig")
