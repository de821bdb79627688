"""``gisgrid cases import | tick | calendar`` on a town: rows in = cases out + rows reported."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gisgrid.cli import main


@pytest.fixture()
def cli(case_db, case_settings, monkeypatch):
    url, engine = case_db
    monkeypatch.setenv("GISGRID_DATABASE_URL", url.replace("postgresql+psycopg://", "postgresql://", 1))
    monkeypatch.setenv("GISGRID_VAR_DIR", case_settings.var_dir)
    runner = CliRunner()

    def run(*args, ok=True):
        out = runner.invoke(main, list(args), catch_exceptions=False)
        if ok:
            assert out.exit_code == 0, out.output
        return out

    run.engine = engine
    yield run
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM report WHERE source = 'import'"))


def test_import_makes_a_case_per_good_row_and_reports_the_others(cli, tmp_path):
    with cli.engine.connect() as conn:
        lon, lat = conn.execute(
            sa.text(
                "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_LineInterpolatePoint(geom, 0.5) AS c FROM segment "
                "ORDER BY length_m DESC LIMIT 1) s"
            )  # fmt: skip
        ).one()
    key = f"hotline-{uuid.uuid4().hex[:12]}"
    rows = pd.DataFrame(
        {
            "经度": [lon, lon, lat, 114.6, lon, lon],
            "纬度": [lat, lat, lon, 22.95, lat, None],
            "类别": ["0101", "no-such", "0101", "0101", "0101", "0101"],
            "描述": ['=HYPERLINK("x")', "b", "swapped", "outside", "again", "no latitude"],
            "编号": [key, None, None, None, key, None],
        }
    )
    src = tmp_path / "cases.csv"
    rows.to_csv(src, index=False)
    out_file = tmp_path / "out.csv"
    out = cli("cases", "import", str(src), "--crs", "EPSG:4326", "-o", str(out_file))
    assert "6 rows: 2 cases created (1 unassigned" in out.output, out.output
    assert "1 already taken in" in out.output and "3 refused" in out.output
    assert "row 2: unknown category 'no-such'" in out.output
    assert "row 3:" in out.output and "swapped" in out.output
    result = pd.read_csv(out_file)
    assert result["row"].tolist() == [1, 2, 3, 4, 5, 6]  # rows in = rows out
    assert result["case_id"].notna().tolist() == [True, False, False, True, True, False]
    assert result.loc[0, "case_id"] == result.loc[4, "case_id"]  # the same client id: one case
    with cli.engine.connect() as conn:
        text = conn.execute(sa.text("SELECT description FROM report WHERE client_id = :k"), {"k": key}).scalar()
    assert text == '=HYPERLINK("x")'  # stored as typed; neutralised only where it is written out


def test_import_without_a_crs_says_how_to_give_one(cli, tmp_path):
    src = tmp_path / "c.csv"
    src.write_text("lon,lat,category\n114.2,22.7,0101\n", encoding="utf-8")
    out = cli("cases", "import", str(src), ok=False)
    assert out.exit_code == 2 and "--crs" in out.output


def test_tick_and_calendar(cli, tmp_path):
    out = cli("cases", "tick")
    assert "escalated" in out.output
    cal = tmp_path / "2027.csv"
    cal.write_text("日期,上班,说明\n2027-01-01,休,元旦\n2027-02-06,班,春节调休\n", encoding="utf-8")
    assert "2027: 2 days entered (1 holidays)" in cli("cases", "calendar", str(cal)).output
    assert "2027: 1 holidays, 1 make-up days" in cli("cases", "calendar").output
    with cli.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM work_calendar_day; DELETE FROM work_calendar_year"))
