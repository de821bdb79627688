"""``gisgrid signboards`` and ``gisgrid frontage`` on the Sha Tin sample town."""

from __future__ import annotations

import openpyxl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gisgrid.cli import main

TOWN = "810006001"


@pytest.fixture()
def cli(shatin_url, monkeypatch):
    monkeypatch.setenv("GISGRID_DATABASE_URL", shatin_url.replace("postgresql+psycopg://", "postgresql://", 1))
    runner = CliRunner()

    def run(*args, ok=True):
        out = runner.invoke(main, list(args), catch_exceptions=False)
        if ok:
            assert out.exit_code == 0, out.output
        return out

    return run


def test_signboards_print_then_list_only_changed_boards(cli, shatin_url, tmp_path):
    pdf = tmp_path / "boards.pdf"
    out = cli("signboards", "--jurisdiction", TOWN, "-o", str(pdf))
    engine = sa.create_engine(shatin_url)
    with engine.connect() as conn:
        n = conn.execute(
            sa.text("SELECT count(*) FROM segment g JOIN street s ON s.id = g.street_id JOIN jurisdiction j "
                    "ON j.id = s.jurisdiction_id WHERE j.code LIKE :c || '%'"), {"c": TOWN}).scalar()  # fmt: skip
    assert f"wrote {n} boards" in out.output and pdf.read_bytes().startswith(b"%PDF")
    assert "0 boards to print again" in cli("signboards", "--jurisdiction", TOWN, "--changed").output
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE person SET phone = '29999999' WHERE id = (SELECT person_id FROM owner_assignment "
                             "WHERE target_type = 'segment' AND role = '段长' AND person_id IS NOT NULL "
                             "AND valid_to IS NULL ORDER BY id LIMIT 1)"))  # fmt: skip
    engine.dispose()
    again = cli("signboards", "--jurisdiction", TOWN, "--changed")
    assert "boards to print again" in again.output and "段长" in again.output
    assert "0 boards to print again" not in again.output
    bad = cli("signboards", "--jurisdiction", "999", ok=False)
    assert bad.exit_code != 0 and "no jurisdiction" in bad.output


def test_frontage_commands(cli, tmp_path):
    assert "frontages derived" in cli("frontage", "derive").output
    book = tmp_path / "rb.xlsx"
    out = cli("frontage", "redblack", "--month", "2026-11", "--jurisdiction", TOWN, "--xlsx", str(book), "--publish",
              "--pdf", str(tmp_path / "rb.pdf"))  # fmt: skip
    assert (tmp_path / "rb.pdf").read_bytes().startswith(b"%PDF")
    assert "黑榜" in out.output and "红榜" in out.output and "published as ranking" in out.output
    assert openpyxl.load_workbook(book).sheetnames == ["黑榜", "红榜"]
    assert cli("frontage", "redblack", "--month", "2026-xx", ok=False).exit_code != 0
    audit = cli("audit", "--jurisdiction", TOWN).output
    assert "frontage agreements:" in audit and "overlapping frontages: 0 pairs" in audit
