"""One rule for every batch entry point, over one set of broken files.

``gisgrid import reports``, ``gisgrid assign``, ``gisgrid geocode`` and the
``/geocode/`` upload each read the same files (a ragged row, a quote never
closed, a pasted document, a NUL character, bad and swapped coordinates, a
title row above the header, formula text, an unclosed ring).  For each, the
good rows go through, each bad row is reported with its number and reason,
and rows in = rows out + rows reported:

* import: stored + skipped = rows, the skipped rows named ``skipped row N: why``;
* assign and geocode (which keep every row in their output): rows out = rows
  in, in order, the bad rows carrying their reason (``error_code`` /
  ``geocode_note``).

The import runs the command itself; assign and geocode run the functions their
commands call, with the deployment and gazetteer loaded once (the commands
themselves are run by tests/geocode/test_bounded.py and tests/routing).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

HEADER = ["编号", "地点", "经度", "纬度", "时间", "描述"]
LON, LAT = "114.1955", "22.3865"  # on 源禾路, Sha Tin


def _row(i: int, address: str = "源禾路", description: str = "垃圾", lon: str = LON, lat: str = LAT) -> list[str]:
    return [f"R{i}", address, lon, lat, "2026-11-01 08:00", description]


def _csv(rows: list[list[str]], raw: dict[int, str] | None = None) -> bytes:
    """A CSV as a spreadsheet program writes it; ``raw`` replaces data row N with that exact text."""
    lines = []
    for i, row in enumerate([HEADER, *rows]):
        out = io.StringIO(newline="")
        csv.writer(out).writerow(row)  # CR LF between rows; a value holding CR or LF quoted
        lines.append(raw[i] + "\r\n" if raw and i in raw else out.getvalue())
    return "".join(lines).encode("utf-8")


def _title_xlsx(path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["2026年11月热线工单"])
    sheet.merge_cells("A1:F1")
    sheet.append(HEADER)
    sheet.append(_row(1))
    sheet.append(_row(2, lon="abc"))
    book.save(path)


def _ring_geojson(path: Path) -> None:
    ring = [[114.195, 22.386], [114.196, 22.386], [114.196, 22.387]]  # not closed
    features = [
        {"type": "Feature", "properties": {"编号": "G1", "时间": "2026-11-01"},
         "geometry": {"type": "Point", "coordinates": [114.1955, 22.3865]}},
        {"type": "Feature", "properties": {"编号": "G2", "时间": "2026-11-01"},
         "geometry": {"type": "Polygon", "coordinates": [ring]}},
    ]  # fmt: skip
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")


#: name → (rows in the file, bad rows per entry point; None: the entry point refuses the whole file)
CASES = {
    "ragged.csv": (3, {"import": {2}, "assign": {2}, "geocode": {2}}),
    "quote.csv": (4, {"import": {2}, "assign": {2}, "geocode": {2}}),
    "long.csv": (3, {"import": {2, 3}, "assign": {2, 3}, "geocode": {2, 3}}),
    "nul.csv": (3, {"import": {2}, "assign": {2}, "geocode": {2}}),
    "coordinates.csv": (4, {"import": {2, 3, 4}, "assign": {2, 3, 4}, "geocode": set()}),
    "title.xlsx": (2, {"import": {2}, "assign": {2}, "geocode": set()}),
    "formula.csv": (3, {"import": set(), "assign": set(), "geocode": set()}),
    "ring.geojson": (2, {"import": {2}, "assign": {2}, "geocode": None}),
}
#: What the geocoder says of a row it does not read (its other failures are addresses it cannot place).
UNREAD = re.compile(r"could not be read|characters;|NUL character")


def _write(name: str, folder: Path) -> Path:
    path = folder / name
    if name == "ragged.csv":
        path.write_bytes(_csv([_row(1), _row(2), _row(3)], raw={2: f"R2,源禾路,{LON},{LAT},2026-11-01,垃圾,多,余"}))
    elif name == "quote.csv":
        path.write_bytes(_csv([_row(i) for i in range(1, 5)], raw={2: f'R2,"源禾路,{LON},{LAT},2026-11-01,垃圾'}))
    elif name == "long.csv":
        path.write_bytes(_csv([_row(1), _row(2, description="长" * 12_000), _row(3, address="沙田" * 60_000)]))
    elif name == "nul.csv":
        path.write_bytes(_csv([_row(1), _row(2, description="a\x00b"), _row(3)]))
    elif name == "coordinates.csv":
        path.write_bytes(
            _csv(
                [
                    _row(1),
                    _row(2, lon=LAT, lat=LON),
                    _row(3, lon="东经114度"),
                    _row(4, lon=""),
                ]
            )
        )
    elif name == "formula.csv":
        hostile = ["\r=1+1", '=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0"]
        path.write_bytes(_csv([_row(i + 1, description=d) for i, d in enumerate(hostile)]))
    elif name == "title.xlsx":
        _title_xlsx(path)
    else:
        _ring_geojson(path)
    return path


@pytest.fixture(scope="module")
def loaded(shatin_url, settings):
    """The Sha Tin deployment and gazetteer, loaded once."""
    from gisgrid.geocode.store import load_gazetteer
    from gisgrid.routing.store import load_deployment

    engine = sa.create_engine(shatin_url)
    with engine.connect() as conn:
        deployment, gazetteers = load_deployment(conn, settings), load_gazetteer(conn)
    engine.dispose()
    return deployment, gazetteers


def _import(path: Path, url: str) -> tuple[int, dict[int, str]]:
    from gisgrid.cli import main

    res = CliRunner().invoke(
        main, ["import", "reports", str(path), "--crs", "EPSG:4326", "--again"], env={"GISGRID_DATABASE_URL": url}
    )
    assert res.exit_code in (0, 1), res.output
    head = re.search(r"reports: (\d+) of (\d+) rows imported", res.output)
    skipped = {int(n): why for n, why in re.findall(r"skipped row (\d+): (.+)", res.output)}
    return int(head.group(1)), int(head.group(2)), skipped


def _by_row(frame: pd.DataFrame, column: str, bad) -> dict[int, str]:
    """Data row number → the reason in ``column``, for the rows whose reason ``bad`` accepts."""
    return {i: str(v) for i, v in enumerate(frame[column].fillna("").astype(str), start=1) if bad(str(v))}


@pytest.mark.parametrize("name", list(CASES))
def test_every_entry_point_keeps_good_rows_and_names_bad_ones(name, tmp_path, shatin_url, loaded, settings):
    from gisgrid.geocode.route import geocode_route_file
    from gisgrid.web import create_app

    deployment, gazetteers = loaded
    total, bad = CASES[name]
    path = _write(name, tmp_path)

    stored, rows, skipped = _import(path, shatin_url)
    assert rows == total and set(skipped) == bad["import"], skipped
    assert stored + len(skipped) == total and all(why.strip() for why in skipped.values())

    out = tmp_path / f"assigned-{Path(name).stem}.csv"
    deployment.assign_file(path, out, crs="EPSG:4326", progress=False)
    assigned = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(assigned) == total
    errors = _by_row(assigned, "error_code", bool)
    assert set(errors) == bad["assign"], assigned[["error_code", "error_message"]]
    assert all(assigned["error_message"].iloc[i - 1] for i in errors)

    if bad["geocode"] is None:
        from gisgrid.errors import InputError

        with pytest.raises(InputError):
            geocode_route_file(path, tmp_path / "g.csv", "地点", gazetteers, deployment, progress=False)
        return
    out = tmp_path / f"geocoded-{Path(name).stem}.csv"
    result = geocode_route_file(path, out, "地点", gazetteers, deployment, progress=False, limits=settings.text_limits)
    geocoded = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(geocoded) == result.rows_total == total
    assert set(_by_row(geocoded, "geocode_note", UNREAD.search)) == bad["geocode"]

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": shatin_url,
            # geocoded in the request (a larger upload is a background job, tested in tests/test_jobs.py)
            "GISGRID_SETTINGS": dataclasses.replace(
                settings, var_dir=str(tmp_path / "var"), geocode_inline_max_bytes=1 << 20
            ),
        }
    )
    client = app.test_client()
    upload = client.post(
        "/geocode/?lang=en",
        data={"file": (io.BytesIO(path.read_bytes()), name), "column": "地点"},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 302, upload.get_data(as_text=True)[-500:]
    job = upload.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    web = pd.read_csv(
        io.BytesIO(client.get(f"/geocode/{job}.csv").data), dtype=str, keep_default_na=False, encoding="utf-8-sig"
    )
    assert len(web) == total
    unread = _by_row(web, "geocode_note", UNREAD.search)
    assert set(unread) == bad["geocode"]
    page = client.get(f"/geocode/{job}?lang=en").get_data(as_text=True)
    for number in unread:  # the page names the row
        assert f"row {number} could not be read" in page or "characters" in page or "NUL" in page
    app.extensions["gisgrid.engine"].dispose()


def test_assign_reports_an_unclosed_ring_itself_and_gdal_prints_nothing(tmp_path, shatin_url):
    """GDAL's "Warning 1: Non closed ring detected" came out on the terminal from the reader thread, between
    the progress bar's lines; the row is gisgrid's to report (its number, code and reason), GDAL stays quiet."""
    import os
    import subprocess
    import sys

    path = _write("ring.geojson", tmp_path)
    out = tmp_path / "ring.assigned.csv"
    gisgrid = Path(sys.executable).with_name("gisgrid")
    env = {**os.environ, "GISGRID_DATABASE_URL": shatin_url.replace("+psycopg", "")}
    env.pop("CPL_LOG", None)
    done = subprocess.run(
        [str(gisgrid), "assign", str(path), "--crs", "EPSG:4326", "-o", str(out)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Non closed ring" not in done.stderr and "Warning 1" not in done.stderr, done.stderr
    assigned = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(assigned["error_code"]) == ["", "not_a_point"]
    assert assigned["error_message"].iloc[1] and "error not_a_point" in done.stdout
