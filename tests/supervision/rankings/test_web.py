"""The rankings pages on the hand-built county: the table, the cases behind a figure, publishing, the bulletin."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import openpyxl
import sqlalchemy as sa

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
Q = {"kind": "owner", "period": "2025-Q4", "jurisdiction": "440307"}


def test_the_ranking_table_in_rank_order(rank_app):
    r = rank_app.test_client().get("/rankings/", query_string=Q)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    order = [html.index(f">{name}</a>") for name in ("市政所", "丙", "乙", "甲")]
    assert order == sorted(order)  # the tie of 乙 and 丙 goes to 丙 (higher on-time rate)
    assert "综合指标值" in html and "按期结案率" in html
    assert html.count("<svg") >= 5  # a trend line per unit and the map


def test_english_page_is_english(rank_app):
    html = rank_app.test_client().get("/rankings/", query_string={**Q, "lang": "en"}).get_data(as_text=True)
    assert "Composite score" in html and "On-time closure rate" in html
    assert "综合指标值" not in html


def test_the_cases_behind_a_figure(rank_app):
    r = rank_app.test_client().get("/rankings/unit", query_string={**Q, "id": "person:1"})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    row = html[html.index('id="gg-behind-suspended"') :]
    row = row[: row.index("</tr>")]
    assert "/cases/3" in row and "/cases/4" not in row


def test_bad_input_is_a_clear_error_in_the_pages_language(rank_app):
    client = rank_app.test_client()
    r = client.get("/rankings/", query_string={**Q, "period": "2025-13"})
    assert r.status_code == 400 and "2026-Q4" in r.get_data(as_text=True)
    assert "期间" in r.get_data(as_text=True)
    r = client.get("/rankings/", query_string={**Q, "kind": "planet"})
    assert r.status_code == 400
    r = client.get("/rankings/unit", query_string={**Q, "id": "person:99"})
    assert r.status_code == 404
    r = client.get("/rankings/", query_string={**Q, "jurisdiction": "999"})
    assert r.status_code == 404
    r = client.post("/rankings/publish", data={**Q, "title": " "})
    assert r.status_code == 400


def test_a_chief_may_not_open_rankings(rank_app):
    assert rank_app.test_client(role="chief").get("/rankings/", query_string=Q).status_code == 403


def test_publish_then_the_bulletin_pdf_and_xlsx(rank_app, rank_engine, tmp_path):
    client = rank_app.test_client()
    r = client.post("/rankings/publish", data={**Q, "title": "2025年第四季度街长制工作排名通报"})
    assert r.status_code == 303
    page = client.get(r.headers["Location"])
    assert page.status_code == 200 and "gg-rerun-same" in page.get_data(as_text=True)
    sid = int(r.headers["Location"].rstrip("/").split("/")[-1])
    with rank_engine.connect() as conn:
        author = conn.execute(sa.text("SELECT published_by_user_id FROM ranking_snapshot WHERE id = :i"), {"i": sid})
        assert author.scalar() is not None  # the author is the session's user

    pdf = client.get(f"/rankings/{sid}/bulletin.pdf")
    assert pdf.status_code == 200 and pdf.data[:5] == b"%PDF-"
    path = tmp_path / "bulletin.pdf"
    path.write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True).stdout
    for expected in ("2025年第四季度街长制工作排名通报", "市政所", "综合指标值", "表扬", "通报批评", "96.00", "51.00"):
        assert expected in text, expected
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, check=True, text=True).stdout
    assert "CJK" in fonts and "yes" in fonts  # the CJK font is embedded
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "2", str(path), str(ARTIFACTS / "bulletin")],
                   check=True)  # fmt: skip

    xlsx = client.get(f"/rankings/{sid}/bulletin.xlsx")
    assert xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("名次", "单位", "综合指标值")
    assert [r[1] for r in rows[1:]] == ["市政所", "丙", "乙", "甲"]
    assert rows[4][2] == 51.0
