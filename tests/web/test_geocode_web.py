"""The clerks' geocoding page: upload, results on a map, review list, placing a row by clicking the map."""

from __future__ import annotations

import dataclasses
import html
import io
import re
from pathlib import Path

import pandas as pd
import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

ROWS = [
    ("R1", "Kaivokatu 1", "0101"),
    ("R2", "Mannerheimintie 5", "0101"),
    ("R3", "Aleksanterinkatu 52", "0102"),
    ("R4", "<b>Kaivokatu</b> 8<script>alert(1)</script>", "0101"),
    ("R5", "", "0101"),
    ("R6", "zzqx flurb 77", "0101"),
    ("R7", "Kaivokatu", "0101"),
]


@pytest.fixture()
def geo_app(db_url, town, settings, tmp_path):
    """The app with job folders under a temporary var_dir."""
    from gisgrid.web import create_app

    own = dataclasses.replace(settings, var_dir=str(tmp_path / "var"))
    return create_app({"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": own})


def _csv_bytes() -> bytes:
    frame = pd.DataFrame(ROWS, columns=["编号", "地址", "category"])
    return frame.to_csv(index=False).encode("utf-8")


def _upload(client, data: bytes = None, name: str = "hotline.csv", column: str = "地址", sheet: str = "", **fields):
    return client.post(
        "/geocode/",
        data={"file": (io.BytesIO(data or _csv_bytes()), name), "column": column, "sheet": sheet, **fields},
        content_type="multipart/form-data",
    )


def _job(response) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def _download(client, job: str) -> pd.DataFrame:
    return pd.read_csv(
        io.BytesIO(client.get(f"/geocode/{job}.csv").data), dtype=str, keep_default_na=False, encoding="utf-8-sig"
    )


def test_upload_shows_results_review_rows_and_escapes_html(geo_app):
    client = geo_app.test_client()
    assert client.get("/geocode/").status_code == 200
    res = _upload(client)
    assert res.status_code == 302
    job = res.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert re.fullmatch(r"[0-9a-f]{32}", job)
    page = client.get(f"/geocode/{job}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'id="gg-review-4"' in page and 'id="gg-review-5"' in page  # empty and garbage rows need review
    assert 'id="gg-review-0"' not in page
    csv = client.get(f"/geocode/{job}.csv")
    assert csv.status_code == 200
    out = pd.read_csv(io.BytesIO(csv.data), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert out["编号"].tolist() == [r[0] for r in ROWS]
    assert out.loc[0, "quality"] == "address_point" and out.loc[0, "owner_name"]
    xlsx = client.get(f"/geocode/{job}.xlsx")
    assert xlsx.status_code == 200 and len(pd.read_excel(io.BytesIO(xlsx.data))) == len(ROWS)


def test_bad_uploads_and_job_ids(geo_app):
    client = geo_app.test_client()
    res = _upload(client, column="address")
    assert res.status_code == 400 and "编号, 地址, category" in res.get_data(as_text=True)
    assert _upload(client, name="evil.exe").status_code == 400
    for bad in ("..", "..%2f..%2fetc", "ABC", "0" * 31, "0" * 32):
        assert client.get(f"/geocode/{bad}").status_code == 404
        assert client.post(f"/geocode/{bad}/place", json={"row": 0, "lon": 1, "lat": 1}).status_code in (404, 405)
    job = _upload(client).headers["Location"].rsplit("/", 1)[-1]
    assert client.post(f"/geocode/{job}/place", json={"row": 99, "lon": 24.94, "lat": 60.17}).status_code == 404
    assert client.post(f"/geocode/{job}/place", json={"row": "x", "lon": 24.94, "lat": 60.17}).status_code == 400
    assert client.post(f"/geocode/{job}/place", json={"row": 0, "lon": 240, "lat": 60.17}).status_code == 400
    assert client.get(f"/geocode/{job}.exe").status_code == 404


def _upload_in_browser(page, base: str, data: bytes) -> None:
    page.goto(f"{base}/geocode/")
    page.set_input_files("#gg-file", files=[{"name": "hotline.csv", "mimeType": "text/csv", "buffer": data}])
    page.fill("#gg-column", "地址")
    page.click("#gg-submit")
    page.wait_for_selector("path.gg-geocoded")


def _place_garbage_row(page) -> dict:
    """Pick review row 5 (garbage) and click the middle of the map; the server's answer."""
    page.locator("#gg-review-5").click()
    box = page.locator("#gg-map-box").bounding_box()
    with page.expect_response(lambda r: r.url.endswith("/place")) as placed:
        page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    assert placed.value.status == 200
    page.wait_for_selector("#gg-review-5.gg-placed")
    return placed.value.json()


def test_clerk_places_a_review_row_on_the_map(geo_app, page, live_server):
    base = live_server(geo_app)
    _upload_in_browser(page, base, _csv_bytes())
    assert page.locator("path.gg-geocoded").count() >= 4
    review = page.locator("#gg-review li[data-row]")
    assert review.count() >= 2
    # the address with markup is shown as text
    assert "<script>alert(1)</script>" in page.locator('#gg-results tr[data-row="3"]').inner_text()
    failed_before = int(re.search(r"失败 (\d+)", page.locator("#gg-summary").inner_text()).group(1))
    body = _place_garbage_row(page)
    assert body["quality"] == "manual" and body["owner_name"]
    # the summary line counts the placed row as manual, no longer as failed
    summary = page.locator("#gg-summary").inner_text()
    assert f"失败 {failed_before - 1}" in summary and "人工 1" in summary
    row = page.locator('#gg-results tr[data-row="5"]')
    assert row.locator('td[data-col="quality"]').inner_text() == "manual"  # the table shows the file's codes
    assert page.locator("#gg-review-5 .gg-q").inner_text() == "人工"
    assert row.locator('td[data-col="owner_name"]').inner_text() == body["owner_name"]
    page.wait_for_selector("path.gg-q-manual")
    assert page.locator("path.gg-row-5").count() == 1
    # placed again elsewhere: the earlier marker goes, one marker per row (issue 21)
    page.locator("#gg-review-5").click()
    box = page.locator("#gg-map-box").bounding_box()
    with page.expect_response(lambda r: r.url.endswith("/place")) as again:
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
    assert again.value.status == 200
    body = again.value.json()
    page.wait_for_function("() => document.querySelectorAll('path.gg-row-5').length === 1")
    page.wait_for_timeout(200)
    assert page.locator("path.gg-row-5").count() == 1
    # picking a row that has a (doubtful) point zooms the map to it and rings it
    located = page.locator("#gg-review li[data-lat]:not(.gg-placed)")
    assert located.count() >= 1
    zoom = "() => window[Object.keys(window).find(k => k.startsWith('map_'))].getZoom()"
    page.evaluate("() => window[Object.keys(window).find(k => k.startsWith('map_'))].setZoom(12)")
    located.first.click()
    page.wait_for_selector("path.gg-picked")
    assert page.evaluate(zoom) >= 18
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "geocode.png"))
    located.first.click()  # picked again: unpicked
    assert not page.js_errors and not page.bad_responses and not page.dialogs
    assert all(u.startswith(base) or not u.startswith("http") for u in page.requests)
    # the placed row is stored: the download says manual with its owner
    job = page.url.rsplit("/", 1)[-1]
    out = pd.read_csv(
        io.BytesIO(geo_app.test_client().get(f"/geocode/{job}.csv").data),
        dtype=str,
        keep_default_na=False,
        encoding="utf-8-sig",
    )
    assert out.loc[5, "quality"] == "manual" and out.loc[5, "confidence"] == "1.0"
    assert out.loc[5, "owner_name"] == body["owner_name"]


def test_review_list_gives_the_true_count_and_says_it_is_cut(geo_app, monkeypatch):
    from gisgrid.geocode.route import needs_review, output_names
    from gisgrid.web import geocode as geocode_page

    monkeypatch.setattr(geocode_page, "MAX_SHOWN_ROWS", 2)  # as 2,000 of a 10,000-row upload
    client = geo_app.test_client()
    job = _job(_upload(client))
    out = _download(client, job)
    need = int(needs_review(out, output_names(["编号", "地址", "category"])).sum())
    assert need > 2
    page = client.get(f"/geocode/{job}?lang=en").get_data(as_text=True)
    assert f'<span id="gg-review-total">{need}</span>' in page and page.count("<li data-row=") == 2
    assert "The list shows the first 2 of them" in page
    assert "列表仅显示其中前 2 行" in client.get(f"/geocode/{job}?lang=zh_CN").get_data(as_text=True)


def test_a_csv_renamed_to_xlsx_gets_the_form_again_with_the_reason(geo_app):
    client = geo_app.test_client()
    res = client.post(
        "/geocode/?lang=en",
        data={"file": (io.BytesIO(_csv_bytes()), "hotline.xlsx"), "column": "地址"},
        content_type="multipart/form-data",
    )
    page = res.get_data(as_text=True)
    assert res.status_code == 400 and 'id="gg-upload-error"' in page and 'id="gg-file"' in page
    assert "not a readable XLSX workbook" in page


def _upload_error(client, data: bytes, name: str, column: str = "地址", sheet: str = "", **fields) -> str:
    res = _upload(client, data, name=name, column=column, sheet=sheet, **fields)
    assert res.status_code == 400
    return html.unescape(re.search(r'id="gg-upload-error">(.*?)</p>', res.get_data(as_text=True), re.S).group(1))


def _workbook_bytes() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    wb.active.append(["本表为巡查记录"])
    wb.create_sheet("7月").append(["编号", "地址"])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def test_upload_errors_name_the_users_file_in_the_pages_language(geo_app):
    client = geo_app.test_client()  # zh-CN, the default
    errors = {
        "column": _upload_error(client, _csv_bytes(), "热线.csv", column="address"),
        "column on the first sheet": _upload_error(client, _workbook_bytes(), "七月热线.xlsx", column="地点"),
        "sheet": _upload_error(client, _workbook_bytes(), "七月热线.xlsx", sheet="8月"),
        "sheet of a CSV": _upload_error(client, _csv_bytes(), "热线.csv", sheet="7月"),
        "no workbook": _upload_error(client, _csv_bytes(), "热线.xlsx"),
        "empty": _upload_error(client, b" ", "热线.csv"),
    }
    assert errors == {
        "column": "热线.csv 中找不到列“address”；现有的列：编号, 地址, category。",
        "column on the first sheet": "七月热线.xlsx 的工作表“说明”中找不到列“地点”；现有的列：本表为巡查记录。"
        " 该工作簿有以下工作表：说明, 7月，请在“工作表”一栏填写其中之一。",
        "sheet": "七月热线.xlsx 中没有工作表“8月”；现有的工作表：说明, 7月。",
        "sheet of a CSV": "热线.csv 是 CSV 文件，没有工作表：请将工作表留空。",
        "no workbook": "热线.xlsx 不是可读取的 XLSX 工作簿。",
        "empty": "热线.csv 是空文件。",
    }
    english = client.post(
        "/geocode/?lang=en",
        data={"file": (io.BytesIO(_workbook_bytes()), "七月热线.xlsx"), "column": "地址", "sheet": "8月"},
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    assert "七月热线.xlsx has no sheet “8月”; its sheets are: 说明, 7月." in html.unescape(english)


def test_upload_routes_by_category_and_date_columns_as_the_cli_does(geo_app, db_url, tmp_path):
    import datetime as dt

    from click.testing import CliRunner

    from gisgrid.cli import main

    frame = pd.DataFrame(ROWS, columns=["编号", "地址", "category"]).assign(上报日期=dt.date.today().isoformat())
    frame.loc[1, "上报日期"] = "2000-01-01"  # before any owner was appointed
    data = frame.to_csv(index=False).encode()
    client = geo_app.test_client()
    plain = _download(client, _job(_upload(client, data)))
    job = _job(_upload(client, data, category="category", date="上报日期"))
    routed = _download(client, job)
    # R3's category 0102 (道路不洁) goes to the sanitation department, whatever the location
    assert plain.loc[2, "target_type"] != "department" and routed.loc[2, "target_type"] == "department"
    # its chain is the department (not the chain of the segment the point happens to lie on, nor empty)
    assert plain.loc[2, "chain"] and routed.loc[2, "chain"] == routed.loc[2, "owner_name"] != plain.loc[2, "chain"]
    assert plain.loc[1, "owner_name"] and not routed.loc[1, "owner_name"]
    src = tmp_path / "hotline.csv"
    src.write_bytes(data)
    res = CliRunner().invoke(
        main,
        [
            "geocode",
            str(src),
            "--column",
            "地址",
            "--category",
            "category",
            "--date",
            "上报日期",
            "-o",
            str(tmp_path / "cli.csv"),
            "--quiet",
        ],
        env={"GISGRID_DATABASE_URL": db_url},
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    cli = pd.read_csv(tmp_path / "cli.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert cli.equals(routed)
    # placing a row on the map routes it with the same columns
    placed = client.post(
        f"/geocode/{job}/place", json={"row": 2, "lon": float(routed.loc[2, "lon"]), "lat": float(routed.loc[2, "lat"])}
    )
    assert (placed.json["target"], placed.json["rule"]) == (routed.loc[2, "target"], routed.loc[2, "rule"])
    assert (
        _upload_error(client, data, "热线.csv", category="类别")
        == "热线.csv 中找不到列“类别”；现有的列：编号, 地址, category, 上报日期。"
    )


def _reused_csv() -> pd.DataFrame:
    """A downloaded result uploaded again: its own lon/lat (a point in Shenzhen), quality, owner …"""
    frame = pd.DataFrame(ROWS, columns=["编号", "地址", "category"]).assign(
        lon="114.1", lat="22.6", quality="好", confidence="0.99", owner_name="张三", geocode_note="旧"
    )
    frame.loc[0, "lon"] = "东经114度"
    return frame


def test_an_uploaded_result_keeps_its_columns_and_the_page_reads_the_added_ones(geo_app):
    import openpyxl

    client = geo_app.test_client()
    reused = _reused_csv()
    job = _job(_upload(client, reused.to_csv(index=False).encode()))
    page = client.get(f"/geocode/{job}?lang=en").get_data(as_text=True)
    summary = re.search(r'id="gg-summary">(.*?)</span>', page, re.S).group(1)
    assert "好" not in summary and "address_point" in summary and "failed" in summary
    out = _download(client, job)
    assert f"{(out['owner_name_geocoded'] != '').sum()} with an owner" in summary
    assert 'id="gg-review-4"' in page and 'id="gg-review-5"' in page  # failed rows, whatever the input's quality
    assert re.search(r"circleMarker\(\s*\[60\.1", page) and not re.search(r"circleMarker\(\s*\[22\.6", page)

    placed = client.post(f"/geocode/{job}/place", json={"row": 5, "lon": 24.9414, "lat": 60.1713})
    assert placed.status_code == 200 and placed.json["quality"] == "manual" and placed.json["owner_name"]
    out = _download(client, job)
    assert out[list(reused.columns)].equals(reused)
    assert out.loc[5, ["lon_geocoded", "quality_geocoded"]].tolist() == ["24.9414000", "manual"]
    assert out.loc[5, "owner_name_geocoded"] == placed.json["owner_name"]
    sheet = openpyxl.load_workbook(io.BytesIO(client.get(f"/geocode/{job}.xlsx?lang=en").data)).active
    header, *rows = sheet.iter_rows(values_only=True)  # the added columns' headers in the page's language
    lon, lon_added = header.index("lon"), header.index("Longitude (geocoded)")
    assert [r[lon] for r in rows] == reused["lon"].tolist()  # text stays text
    assert isinstance(rows[5][lon_added], float)


def test_placing_a_row_of_an_uploaded_result_updates_the_added_cells(geo_app, page, live_server):
    from gisgrid.geocode.route import ADDED_COLUMNS, output_names

    _upload_in_browser(page, live_server(geo_app), _reused_csv().to_csv(index=False).encode())
    added = list(output_names(_reused_csv().columns).values())
    header = page.locator("#gg-results thead th").all_inner_texts()
    cols = [page.locator("#gg-results thead th").nth(i).get_attribute("data-col") for i in range(1, len(header))]
    assert cols[: 1 + len(ADDED_COLUMNS)] == ["地址", *added]  # the new values first, the input's after
    assert cols[1 + len(ADDED_COLUMNS) :] == [c for c in _reused_csv().columns if c != "地址"]
    # gisgrid's columns headed in the page's language, told apart from the input's own lon, quality …
    assert (
        header[2:4] == ["经度（匹配结果）", "纬度（匹配结果）"]
        and header[-len(_reused_csv().columns) + 1 :] == cols[-len(_reused_csv().columns) + 1 :]
    )
    before = int(page.locator("#gg-review-total").inner_text())
    body = _place_garbage_row(page)
    row = page.locator('#gg-results tr[data-row="5"]')
    assert row.locator('td[data-col="quality_geocoded"]').inner_text() == "manual"
    assert row.locator('td[data-col="owner_name_geocoded"]').inner_text() == body["owner_name"]
    assert row.locator('td[data-col="quality"]').inner_text() == "好"
    assert row.locator('td[data-col="lon"]').inner_text() == "114.1"
    job = page.url.rsplit("/", 1)[-1]
    stored = _download(geo_app.test_client(), job).loc[5, added]
    shown = [row.locator(f'td[data-col="{c}"]').inner_text() for c in added]
    # the file keeps the geocoder's note as written (English); the page says it in its language
    from babel.support import Translations

    from gisgrid.config import TRANSLATIONS_DIR
    from gisgrid.geocode.notes import say_note

    zh = Translations.load(str(TRANSLATIONS_DIR), ["zh_CN"], "messages").gettext
    note = output_names(_reused_csv().columns)["geocode_note"]
    said = [say_note(v, zh) if c == note else v for c, v in zip(added, stored.tolist())]
    assert shown == said and stored["route_note"] == "" and stored["target_type"]
    assert stored[note] == "placed on the map by a clerk" and "由办事员在地图上放置" in shown
    assert page.locator("#gg-review-total").inner_text() == str(before - 1) == str(body["review_total"])
    assert "gg-needs-review" not in row.get_attribute("class")
    assert not page.js_errors and not page.bad_responses


def test_a_located_row_without_an_owner_needs_review_on_the_page_and_in_the_cli(geo_app, db_url, tmp_path):
    from click.testing import CliRunner

    from gisgrid.cli import main

    data = "地址,类别,日期\n源禾路10号,0101,昨天\n源禾路11号,9999,2026-13-45\n".encode()
    client = geo_app.test_client()
    job = _job(_upload(client, data, category="类别", date="日期"))
    out = _download(client, job)
    assert out["quality"].tolist() == ["address_point"] * 2 and out["owner_name"].tolist() == ["", ""]
    page = html.unescape(client.get(f"/geocode/{job}").get_data(as_text=True))
    assert '<span id="gg-review-total">2</span>' in page
    for row in (0, 1):
        entry = re.search(rf'id="gg-review-{row}"[^>]*>(.*?)</li>', page, re.S).group(1)
        assert out.loc[row, "route_note"] in entry
    assert "date '昨天' cannot be read" in page and "unknown category '9999'" in page
    src = tmp_path / "no_owner.csv"
    src.write_bytes(data)
    res = CliRunner().invoke(
        main,
        [
            "geocode",
            str(src),
            "--column",
            "地址",
            "--category",
            "类别",
            "--date",
            "日期",
            "-o",
            str(tmp_path / "out.csv"),
            "--quiet",
        ],
        env={"GISGRID_DATABASE_URL": db_url},
        catch_exceptions=False,
    )
    assert res.exit_code == 0 and re.search(r"needs review:\s+2\b", res.output), res.output


def test_an_xlsx_upload_keeps_its_dates_and_numbers(geo_app, tmp_path):
    import openpyxl

    from tests.geocode.test_geocode_batch import _typed_workbook

    _typed_workbook(tmp_path / "typed.xlsx")
    client = geo_app.test_client()
    job = _job(_upload(client, (tmp_path / "typed.xlsx").read_bytes(), name="typed.xlsx"))
    page = client.get(f"/geocode/{job}").get_data(as_text=True)
    assert 'data-col="日期" title="2026-07-01">2026-07-01<' in page and "T00:00:00" not in page
    header, *rows = openpyxl.load_workbook(io.BytesIO(client.get(f"/geocode/{job}.xlsx").data)).active.iter_rows(
        values_only=True
    )
    got = [dict(zip(header, row)) for row in rows]
    assert [r["编号"] for r in got] == [1, 2.5] and got[0]["lon"] == 24.9414  # the input's own lon
    assert [r["电话"] for r in got] == ["13800138000", "13900139000"] and got[0]["代码"] == "007"
    assert got[1]["日期"] == "2026-07-02" and got[0]["时间"] == "2026-07-01 08:30:00"


def test_the_chinese_page_names_the_quality_codes_and_the_files_keep_them(geo_app):
    client = geo_app.test_client()
    job = _job(_upload(client))
    page = client.get(f"/geocode/{job}?lang=zh_CN").get_data(as_text=True)
    summary = re.search(r'id="gg-summary">(.*?)</span>', page, re.S).group(1)
    assert re.search(r"地址点 3,.*失败 3,.*道路 1", summary, re.S) and "address_point" not in summary
    shown = re.findall(r'<span class="gg-q">(.*?)</span>', page)
    assert shown and set(shown) <= {"失败", "道路"}
    assert "<br>地址点 · " in html.unescape(page)  # the map's tooltips
    assert 'class="gg-swatch" style="background: #1a7f37"' in summary  # the summary is the map's legend
    assert set(_download(client, job)["quality"]) == {"address_point", "failed", "street"}
    english = client.get(f"/geocode/{job}?lang=en").get_data(as_text=True)
    assert "address_point 3" in re.search(r'id="gg-summary">(.*?)</span>', english, re.S).group(1)


def test_a_row_placed_where_nobody_is_responsible_says_so(geo_app):
    """Placed 2 km east of the demo streets of Helsinki, outside every segment and grid cell: unassigned, with the reason, and
    still to review."""
    client = geo_app.test_client()
    job = _job(_upload(client))
    placed = client.post(f"/geocode/{job}/place", json={"row": 5, "lon": 24.99, "lat": 60.17})
    assert placed.status_code == 200 and placed.json["rule"] == "unassigned" and not placed.json["owner_name"]
    assert "未分派" in placed.json["note"] and placed.json["review"]  # said in the page's language (Chinese)
    page = client.get(f"/geocode/{job}?lang=en").get_data(as_text=True)
    assert 'id="gg-review-5"' in page and "outside every street segment and grid cell" in page
    zh = client.get(f"/geocode/{job}?lang=zh_CN").get_data(as_text=True)
    assert "不在任何路段和网格内" in zh and "outside every street segment" not in zh


def test_the_geocoders_notes_are_in_the_pages_language(geo_app):
    # the matcher writes its notes in English (the CSV keeps them so); a page says them in its language
    client = geo_app.test_client()
    job = _job(_upload(client))
    kept = _download(client, job)["geocode_note"]
    assert "empty address" in kept.tolist()
    zh = html.unescape(client.get(f"/geocode/{job}?lang=zh_CN").get_data(as_text=True))
    assert "地址为空" in zh and "empty address" not in zh
    en = html.unescape(client.get(f"/geocode/{job}?lang=en").get_data(as_text=True))
    assert "empty address" in en and "地址为空" not in en
