"""Signboards: the PDF rendered and looked at (pdftoppm → PNG), its QR codes decoded back (zbarimg), reprints."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from gisgrid.accounts.users import Actor
from gisgrid.frontage.signboards import board_contents, boards_to_reprint, record_prints, render_pdf, report_url

ARTIFACTS = Path(__file__).parents[1] / "artifacts"
TOWN = "110108001"  # 学院路街道（演示）


@pytest.fixture()
def conn(engine, town):
    with engine.connect() as c:
        tx = c.begin()
        yield c
        tx.rollback()


def test_boards_name_the_chain_with_phones(conn, settings):
    boards = board_contents(conn, settings, TOWN)
    assert len(boards) == conn.execute(
        sa.text("SELECT count(*) FROM segment g JOIN street s ON s.id = g.street_id JOIN jurisdiction j "
                "ON j.id = s.jurisdiction_id WHERE j.code LIKE :c || '%'"), {"c": TOWN}
    ).scalar()  # fmt: skip
    b = boards[0]
    assert [c["role"] for c in b["chain"]] == ["段长", "二级街长", "一级街长", "总街长"]
    chief = conn.execute(
        sa.text("SELECT owner_name, owner_phone FROM owner_on(CURRENT_DATE) WHERE target_type = 'segment' "
                "AND target_id = :s AND role = '段长'"), {"s": b["segment_id"]}
    ).first()  # fmt: skip
    assert (b["chain"][0]["name"], b["chain"][0]["phone"]) == (chief.owner_name, chief.owner_phone)
    assert b["url"] == report_url(settings, b["segment_id"]) and b["hotline"] == settings.supervision_hotline


@pytest.mark.skipif(not shutil.which("pdftoppm") or not shutil.which("zbarimg"), reason="make sysdeps-test")
def test_the_pdf_renders_and_its_qr_code_opens_the_segment(conn, settings, tmp_path):
    boards = board_contents(conn, settings, TOWN)[:2]
    pdf = tmp_path / "boards.pdf"
    pdf.write_bytes(render_pdf(boards, printed_on=dt.date(2026, 12, 1)))
    assert pdf.read_bytes().startswith(b"%PDF")
    subprocess.run(["pdftoppm", "-r", "110", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) == 2  # one board a page
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(pages[0], ARTIFACTS / "signboard.png")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "街长公示牌" in text and boards[0]["chain"][0]["name"] in text and settings.supervision_hotline in text
    decoded = subprocess.run(["zbarimg", "-q", "--raw", str(pages[1])], capture_output=True, text=True, check=True)
    assert decoded.stdout.strip() == boards[1]["url"]


def test_an_owner_change_lists_the_boards_to_reprint(conn, settings):
    boards = board_contents(conn, settings, TOWN)
    record_prints(conn, Actor.system("test"), boards)
    assert boards_to_reprint(conn, settings, TOWN) == []
    seg = boards[3]["segment_id"]
    new = conn.execute(
        sa.text("INSERT INTO person (name, phone) VALUES ('新段长', '13900000000') RETURNING id")
    ).scalar()
    conn.execute(
        sa.text("UPDATE owner_assignment SET valid_to = CURRENT_DATE WHERE target_type = 'segment' AND target_id = :s "
                "AND role = '段长' AND valid_to IS NULL AND valid_from < CURRENT_DATE"), {"s": seg}
    )  # fmt: skip
    conn.execute(
        sa.text("INSERT INTO owner_assignment (person_id, target_type, target_id, role, valid_from) "
                "VALUES (:p, 'segment', :s, '段长', CURRENT_DATE)"), {"p": new, "s": seg}
    )  # fmt: skip
    again = boards_to_reprint(conn, settings, TOWN)
    assert [(b["segment_id"], b["changed"]) for b in again] == [(seg, ["段长"])]
    assert again[0]["chain"][0]["name"] == "新段长"
