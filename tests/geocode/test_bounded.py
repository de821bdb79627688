"""Bounded work per row: a pasted document in the address column costs a row, not the server.

One 360 KB CSV holding a 120,000-character address drove `gisgrid geocode` past 12 GB of memory: the
parser and the matcher did quadratic work on it (every tail of the text looked up, and cached).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import geopandas as gpd
import pandas as pd
import pytest

from gisgrid.config import DATA_DIR, MAX_ADDRESS_CHARS, TextLimits
from gisgrid.geocode.batch import geocode_table
from gisgrid.geocode.gazetteer import Gazetteer
from gisgrid.geocode.match import geocode
from gisgrid.geocode.parse import PARSE_WINDOW, parse_address

HUGE = "沙田" + "大埔公路" * 30_000  # 120,002 characters, every tail of it a candidate street name


@pytest.fixture(scope="module")
def shatin() -> Gazetteer:
    return Gazetteer.build(gpd.read_file(DATA_DIR / "shatin_streets.geojson"))


def test_a_long_address_fails_its_row_with_the_reason(shatin):
    frame = pd.DataFrame({"编号": ["1", "2", "3"], "地址": ["源禾路", HUGE, "大埔公路"]})
    started = time.perf_counter()
    out = geocode_table(frame, "地址", shatin)
    assert time.perf_counter() - started < 10
    assert out["quality"].tolist()[0] != "failed" and out["quality"].tolist()[2] != "failed"
    assert out["quality"][1] == "failed" and pd.isna(out["lon"][1])
    assert "120,002 characters" in out["geocode_note"][1] and f"at most {MAX_ADDRESS_CHARS}" in out["geocode_note"][1]
    assert out["地址"][1] == HUGE  # the row is kept as it was: rows in = rows out


def test_any_long_cell_fails_its_row_and_the_limit_is_a_setting(shatin):
    frame = pd.DataFrame({"地址": ["源禾路", "源禾路"], "描述": ["短", "长" * 50]})
    out = geocode_table(frame, "地址", shatin, limits=TextLimits(text=40, address=300))
    assert out["quality"][0] != "failed"
    assert out["quality"][1] == "failed" and "'描述' has 50 characters; at most 40 fit" in out["geocode_note"][1]
    out = geocode_table(frame, "地址", shatin, limits=TextLimits(address=2))
    assert (out["quality"] == "failed").all() and "at most 2 are read" in out["geocode_note"][0]


@pytest.mark.parametrize(
    "text",
    [
        HUGE,
        "Tai Po Road " * 10_000,
        "源禾路" + "1" * 50_000 + "号",  # more digits than int() converts
        "源禾路与" * 30_000,
        "x and " * 20_000,
    ],
    ids=["cjk", "latin", "digits", "crossings", "and"],
)
def test_the_parser_reads_a_bounded_window(text, shatin):
    started = time.perf_counter()
    parsed = parse_address(text)
    assert len(parsed.raw) == PARSE_WINDOW
    assert geocode(text, shatin).quality == "failed"
    assert geocode(parsed, shatin) is not None  # a parsed address is already bounded
    assert time.perf_counter() - started < 5


def _geocode_peak(src, dst, db_url) -> int:
    """Run `gisgrid geocode SRC -o DST` in a process of its own; its peak resident size in KiB."""
    script = textwrap.dedent(f"""
        import resource, sys
        from gisgrid.cli import main
        try:
            main(["geocode", {str(src)!r}, "--column", "地址", "-o", {str(dst)!r}, "--quiet"])
        except SystemExit as exc:
            code = exc.code
        print("peak", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
        sys.exit(code)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"GISGRID_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stderr.rsplit("peak", 1)[1].split()[0])


def test_the_geocode_command_stays_small_on_a_pasted_document(tmp_path, db_url, town):
    """The issue's file: `gisgrid geocode` on it ends in seconds and names the row, and the pasted document
    costs next to nothing beyond the same command on a plain file (it took 12 GB).

    The command's own size (gazetteers and routing snapshot of every town in the session database, which
    other tests add to) is measured on the plain file, so the check does not depend on what else is stored.
    """
    plain, src = tmp_path / "plain.csv", tmp_path / "hostile.csv"
    rows = [("R1", "源禾路"), ("R2", HUGE), ("R3", "Tai Po Road")]
    src.write_text("编号,地址\n" + "".join(f"{i},{a}\n" for i, a in rows), encoding="utf-8")
    plain.write_text("编号,地址\nR1,源禾路\nR2,沙田正街\nR3,Tai Po Road\n", encoding="utf-8")
    assert src.stat().st_size > 360_000
    dst = tmp_path / "out.csv"
    base_kib = _geocode_peak(plain, tmp_path / "plain_out.csv", db_url)
    peak_kib = _geocode_peak(src, dst, db_url)
    assert peak_kib < base_kib + 200 * 1024, f"peak RSS {peak_kib // 1024} MB, {base_kib // 1024} MB on a plain file"
    assert peak_kib < 2 * 1024 * 1024, f"peak RSS {peak_kib // 1024} MB"
    out = pd.read_csv(dst, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert out["编号"].tolist() == ["R1", "R2", "R3"]
    assert out["quality"][1] == "failed" and "120,002 characters" in out["geocode_note"][1]
