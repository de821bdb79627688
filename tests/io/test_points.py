"""The one point rule (gisgrid.io.points), and every entry point that applies it agreeing row by row."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gisgrid import crs
from gisgrid.io import read_layer
from gisgrid.io.points import POINT_ERRORS, PointError, check_point, check_points
from tests.db.test_imports import _jurisdictions

HELSINKI = (24.78, 60.10, 25.25, 60.30)
SHENZHEN = (114.0, 22.5, 114.4, 22.9)


def test_check_points_codes_and_storage_coordinates():
    x = np.array([114.2, np.nan, 200.0, 22.7, 116.0, 60.19, 24.9])
    y = np.array([22.7, 22.7, 22.7, 114.2, 22.7, 24.95, 60.2])
    lon, lat, problems = check_points(x, y, "EPSG:4490", areas=[HELSINKI, SHENZHEN])
    assert problems.codes().tolist() == [
        None,
        "missing_coordinates",
        "out_of_range",
        "swapped_lonlat",  # out of range as written, inside Shenzhen exchanged
        None,  # outside every area: no error, it is "outside coverage"
        "swapped_lonlat",  # a valid place as written (Iran), inside Helsinki exchanged
        None,
    ]
    assert lon[0] == 114.2 and np.isnan(lon[1:4]).all() and np.isnan(lon[5])
    assert "lon/lat appear swapped" in problems.messages()[3]
    # a point between the two areas is in their common box but in neither: not swapped
    _, _, between = check_points([60.0], [50.0], 4326, areas=[HELSINKI, SHENZHEN])
    assert between.ok.all()


def test_web_map_and_projected_points():
    lon, lat = 114.2, 22.7
    glon, glat = crs.from_storage([lon], [lat], "gcj02")
    out_lon, out_lat, problems = check_points(glon, glat, "gcj02", areas=[SHENZHEN])
    assert problems.ok.all() and abs(out_lon[0] - lon) < 1e-7 and abs(out_lat[0] - lat) < 1e-7
    x, y = crs.from_storage([lon], [lat], 4547)
    assert check_points(x, y, 4547, areas=[SHENZHEN])[2].ok.all()
    swapped = check_points(y, x, 4547, areas=[SHENZHEN])[2]
    assert swapped.codes().tolist() == ["swapped_lonlat"] and "x/y appear swapped" in swapped.messages()[0]


@pytest.mark.parametrize(
    "lon, lat, code",
    [
        ("114.2", "22.7", None),
        (114.2, 22.7, None),
        (None, 22.7, "missing_coordinates"),
        ("", "22.7", "missing_coordinates"),
        ("abc", 22.7, "bad_coordinates"),
        ("inf", 22.7, "bad_coordinates"),
        (float("nan"), 22.7, "missing_coordinates"),
        (22.7, 114.2, "swapped_lonlat"),
        (114.2, 95, "out_of_range"),
    ],
)
def test_one_point(lon, lat, code):
    if code is None:
        assert check_point(lon, lat, areas=[SHENZHEN]) == (114.2, 22.7)
    else:
        with pytest.raises(PointError) as info:
            check_point(lon, lat, areas=[SHENZHEN])
        assert info.value.code == code and code in POINT_ERRORS


# --- every entry point, one verdict ---------------------------------------------------------
def _reports(system: str) -> pd.DataFrame:
    """Reports around Sha Tin in ``system``: good, swapped, missing, unreadable, out of range, far away."""
    points = [(114.19, 22.385), (114.20, 22.39), (114.185, 22.38), (114.19, 22.39), (114.2, 22.38), (0.5, 0.5)]
    lon, lat = crs.from_storage([p[0] for p in points], [p[1] for p in points], system)
    text = [f"{v:.9f}" for v in lon], [f"{v:.9f}" for v in lat]
    table = pd.DataFrame({"id": [f"R{i + 1}" for i in range(8)], "lon": "", "lat": "", "reported_at": "2026-11-01"})
    table.loc[:5, "lon"], table.loc[:5, "lat"] = text[0], text[1]
    table.loc[1, ["lon", "lat"]] = [text[1][1], text[0][1]]  # R2: swapped
    table.loc[2, "lon"] = ""  # R3: missing
    table.loc[3, "lat"] = "北纬22.39"  # R4: not a number
    table.loc[4, "lat"] = "95"  # R5: out of range
    table.loc[6, ["lon", "lat"]] = ["inf", text[1][0]]  # R7: not a number
    table.loc[7, ["lon", "lat"]] = [text[0][0], text[1][0]]  # R8: good
    return table


@pytest.fixture()
def shatin(scratch_engine, scratch_url, tmp_path):
    from gisgrid.db.imports import import_file

    with scratch_engine.begin() as conn:
        assert import_file(conn, "jurisdictions", _jurisdictions(tmp_path)).inserted == 4
    return scratch_engine, scratch_url


@pytest.mark.parametrize("system", ["EPSG:4326", "gcj02"])
def test_import_assign_api_and_read_give_the_same_verdict_row_by_row(shatin, tmp_path, settings, system):
    """`gisgrid import reports` flags the swapped row (it used to store it swapped) as `gisgrid assign` does."""
    from gisgrid.cli import main
    from gisgrid.routing.store import explain_point, load_deployment

    engine, url = shatin
    table = _reports(system)
    src = tmp_path / "reports.csv"
    table.to_csv(src, index=False)
    env = {"GISGRID_DATABASE_URL": url}

    imported = CliRunner().invoke(main, ["import", "reports", str(src), "--crs", system], env=env)
    assert imported.exit_code == 1, imported.output  # some rows were skipped
    import_verdicts = {int(m[1]): m[2] for m in re.finditer(r"skipped row (\d+): (.*)", imported.output)}

    dst = tmp_path / "assigned.csv"
    assigned = CliRunner().invoke(main, ["assign", str(src), "--crs", system, "-o", str(dst)], env=env)
    assert assigned.exit_code == 0, assigned.output
    out = pd.read_csv(dst, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(out) == len(table)
    assign_verdicts = {i + 1: m for i, m in enumerate(out["error_message"]) if m}

    assert import_verdicts == assign_verdicts
    assert set(import_verdicts) == {2, 3, 4, 5, 7}
    codes = dict(enumerate(out["error_code"], start=1))
    assert [codes[r] for r in (2, 3, 4, 5, 7)] == [
        "swapped_lonlat",
        "missing_coordinates",
        "bad_coordinates",
        "out_of_range",
        "bad_coordinates",
    ]
    read = read_layer(src, crs=system, expected_geom="point", extent=load_deployment_areas(engine))
    assert {p.row: p.reason for p in read.rejected} == import_verdicts

    with engine.connect() as conn:
        stored = pd.read_sql_query(
            sa.text("SELECT external_id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM report ORDER BY external_id"), conn
        )
        deployment = load_deployment(conn, settings)
    assert stored["external_id"].tolist() == ["R1", "R6", "R8"]
    assert abs(stored["lon"].iloc[0] - 114.19) < 1e-6 and abs(stored["lat"].iloc[0] - 22.385) < 1e-6
    for row, rec in enumerate(table.itertuples(), start=1):  # the API's single-point path agrees
        answer = explain_point(deployment, lon=rec.lon, lat=rec.lat, crs=system)
        assert answer.get("error") == (codes[row] or None), row
        if row in import_verdicts:
            assert answer["detail"] == import_verdicts[row]


def load_deployment_areas(engine):
    from gisgrid.db.areas import served_areas

    with engine.connect() as conn:
        return served_areas(conn)
