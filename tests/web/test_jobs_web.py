"""Heavy work as background jobs seen from the web: the PNG export and large geocoding uploads.

The request answers at once with a progress page; a real worker thread runs the
job (headless Chromium for the PNG) and the page then links to the result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import io
import re
import struct
import time
from pathlib import Path

import pandas as pd
import pytest

from gisgrid import jobs
from tests.web.test_geocode_web import ROWS, _csv_bytes, _download, _job, _upload

TOWN = "110108001"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture()
def job_app(db_url, town, settings, tmp_path):
    """The app with its files under a temporary var_dir; every geocoding upload becomes a job."""
    from gisgrid.web import create_app

    own = dataclasses.replace(settings, var_dir=str(tmp_path / "var"), geocode_inline_max_bytes=0, job_poll_s=0.2)
    return create_app({"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": own})


@pytest.fixture()
def geo_app(db_url, town, settings, tmp_path):
    """The app with the default setting: small uploads are geocoded in the request."""
    from gisgrid.web import create_app

    own = dataclasses.replace(settings, var_dir=str(tmp_path / "inline"))
    return create_app({"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": own})


@contextlib.contextmanager
def _worker(app):
    """A real worker thread as `gisgrid serve` starts it: the app's engine, settings and snapshots."""
    worker = jobs.Worker(
        app.extensions["gisgrid.engine"],
        app.config["GISGRID_SETTINGS"],
        snapshots=app.extensions["gisgrid.snapshots"],
        kinds=[jobs.MAP_PNG, jobs.GEOCODE_UPLOAD],
    ).start()
    try:
        yield worker
    finally:
        worker.stop()


def _status(client, job: str, *, until_finished: bool = True, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        res = client.get(f"/jobs/{job}.json")
        assert res.status_code == 200
        state = res.get_json()
        if not until_finished or state["status"] in ("done", "failed") or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_png_export_returns_at_once_and_a_worker_renders_a_real_png(job_app):
    client = job_app.test_client()
    res = client.get(f"/map/export.png?jurisdiction={TOWN}&lang=en")
    assert res.status_code == 303
    job = re.fullmatch(r".*/jobs/([0-9a-f]{32})", res.headers["Location"]).group(1)
    # no worker runs yet: the request came back before the work was done
    assert _status(client, job, until_finished=False)["status"] == "queued"
    page = client.get(f"/jobs/{job}").get_data(as_text=True)
    assert 'id="gg-job-progress"' in page and "Waiting for a worker" in page
    assert client.get(f"/jobs/{job}/{jobs.MAP_PNG_FILE}").status_code == 404  # nothing to download yet

    with _worker(job_app):
        state = _status(client, job)
    assert state["status"] == "done" and state["progress"] == 100, state
    assert state["result_url"] == f"/jobs/{job}/{jobs.MAP_PNG_FILE}"
    png = client.get(state["result_url"])
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert _png_size(png.data) == (1400, 1000)
    (ARTIFACTS / "manager-export.png").write_bytes(png.data)
    assert len(png.data) > 20_000  # a drawn map, not a blank page
    page = client.get(f"/jobs/{job}").get_data(as_text=True)
    assert f'href="{state["result_url"]}"' in page and 'id="gg-job-image"' in page
    assert client.get(f"/jobs/{job}/other.png").status_code == 404


def test_unknown_jobs_are_404(job_app):
    client = job_app.test_client()
    for bad in ("0" * 32, "ABC", "..%2f..%2fetc"):
        assert client.get(f"/jobs/{bad}").status_code == 404
        assert client.get(f"/jobs/{bad}.json").status_code == 404


def test_a_job_is_its_users_others_get_404_and_admins_see_it(job_app, users):
    manager = job_app.test_client(user="manager")
    res = manager.get(f"/map/export.png?jurisdiction={TOWN}")
    assert res.status_code == 303
    job = re.fullmatch(r".*/jobs/([0-9a-f]{32})", res.headers["Location"]).group(1)
    urls = (f"/jobs/{job}", f"/jobs/{job}.json", f"/jobs/{job}/{jobs.MAP_PNG_FILE}")
    assert [manager.get(u).status_code for u in urls] == [200, 200, 404]  # no PNG yet
    other = job_app.test_client(user="planner")  # may export maps too, but this one is not theirs
    assert [other.get(u).status_code for u in urls] == [404, 404, 404]
    assert other.get(f"/jobs/{job}.json").get_json()["error"] == "not_found"
    admin = job_app.test_client(user="admin")
    assert [admin.get(u).status_code for u in urls[:2]] == [200, 200]
    # a job the system queued (no user): admins only
    with job_app.extensions["gisgrid.engine"].begin() as conn:
        system = jobs.enqueue(conn, jobs.MAP_PNG, {"html": "map.html"})
    assert manager.get(f"/jobs/{system}").status_code == 404
    assert admin.get(f"/jobs/{system}").status_code == 200
    with job_app.extensions["gisgrid.engine"].begin() as conn:  # nobody is to run these two
        conn.exec_driver_sql("DELETE FROM job WHERE id IN (%s, %s)", (job, system))


def test_a_large_geocoding_upload_returns_at_once_and_its_page_shows_progress_then_results(job_app, geo_app):
    client = job_app.test_client()
    res = _upload(client)
    job = _job(res)  # a redirect to the job's page, as for an upload geocoded in the request
    state = _status(client, job, until_finished=False)
    assert state["status"] == "queued" and state["kind"] == jobs.GEOCODE_UPLOAD
    waiting = client.get(f"/geocode/{job}")
    assert waiting.status_code == 200 and 'id="gg-job-progress"' in waiting.get_data(as_text=True)
    assert client.get(f"/geocode/{job}.csv").status_code == 404  # no result yet

    with _worker(job_app):
        state = _status(client, job)
    assert state["status"] == "done", state
    assert state["result_url"] == f"/geocode/{job}"
    assert state["result"]["rows"] == len(ROWS)
    page = client.get(f"/geocode/{job}").get_data(as_text=True)
    assert 'id="gg-review-4"' in page and 'id="gg-job-progress"' not in page  # the results page itself
    # the same result as an upload geocoded inside the request
    inline = geo_app.test_client()
    expected = _download(inline, _job(_upload(inline)))
    pd.testing.assert_frame_equal(_download(client, job), expected)


def test_a_failed_upload_job_says_why_in_the_pages_language_without_a_traceback(job_app):
    client = job_app.test_client()
    job = _job(_upload(client, name="热线.csv", column="address"))
    with _worker(job_app):
        state = _status(client, job)
    assert state["status"] == "failed"
    page = client.get(f"/geocode/{job}").get_data(as_text=True)  # zh-CN, the default
    reason = html.unescape(re.search(r'id="gg-job-error">(.*?)</p>', page, re.S).group(1))
    assert "热线.csv 中找不到列“address”；现有的列：编号, 地址, category。" in reason
    assert "Traceback" not in page and 'href="/geocode/"' in page
    english = client.get(f"/geocode/{job}?lang=en").get_data(as_text=True)
    assert "Column “address” not found in 热线.csv" in html.unescape(english)


def test_small_uploads_are_still_geocoded_in_the_request(geo_app):
    """Below the setting geocode_inline_max_bytes the clerk gets the results page at once, no job."""
    client = geo_app.test_client()
    assert len(_csv_bytes()) <= geo_app.config["GISGRID_SETTINGS"].geocode_inline_max_bytes
    job = _job(_upload(client))
    assert client.get(f"/jobs/{job}.json").status_code == 404
    assert 'id="gg-review-4"' in client.get(f"/geocode/{job}").get_data(as_text=True)


def test_the_xlsx_download_of_a_job_keeps_numbers(job_app):
    """number_columns are written by the job too (job.json), as in the request."""
    frame = pd.DataFrame({"编号": [1, 2], "地址": ["Kaivokatu 1", "Mannerheimintie 5"]})
    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False)
    client = job_app.test_client()
    job = _job(_upload(client, buffer.getvalue(), name="t.xlsx"))
    with _worker(job_app):
        assert _status(client, job)["status"] == "done"
    out = pd.read_excel(io.BytesIO(client.get(f"/geocode/{job}.xlsx").data))
    assert out["编号"].tolist() == [1, 2]


def test_the_progress_page_follows_the_job_to_its_result_in_a_browser(job_app, page, live_server):
    """The clerk uploads, sees the progress page, and without reloading by hand lands on the results."""
    base = live_server(job_app)
    page.goto(f"{base}/geocode/")
    page.set_input_files("#gg-file", files=[{"name": "hotline.csv", "mimeType": "text/csv", "buffer": _csv_bytes()}])
    page.fill("#gg-column", "地址")
    page.click("#gg-submit")
    page.wait_for_selector("#gg-job-progress")  # no worker yet: the job waits
    assert "等待" in page.inner_text("#gg-job-state")
    with _worker(job_app):
        page.wait_for_selector("path.gg-geocoded", timeout=60_000)
    assert page.locator("#gg-review-4").count() == 1
    assert not page.js_errors and not page.bad_responses


def test_the_progress_message_is_shown_in_the_pages_language(job_app):
    import threading

    gate = threading.Event()

    @jobs.job_kind("test_web_gate")
    def _gate(ctx):
        ctx.progress(40, "%(done)s of %(total)s rows geocoded", force=True, done=200, total=500)
        gate.wait(30)
        return {}

    with job_app.extensions["gisgrid.engine"].begin() as conn:
        job = jobs.enqueue(conn, "test_web_gate")
    worker = jobs.Worker(
        job_app.extensions["gisgrid.engine"], job_app.config["GISGRID_SETTINGS"], kinds=["test_web_gate"]
    ).start()
    try:
        client = job_app.test_client()
        deadline = time.monotonic() + 30
        while client.get(f"/jobs/{job}.json").get_json()["progress"] != 40 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get(f"/jobs/{job}.json?lang=zh_CN").get_json()["message"] == "已匹配 200 / 500 行"
        assert client.get(f"/jobs/{job}.json?lang=en").get_json()["message"] == "200 of 500 rows geocoded"
        page = client.get(f"/jobs/{job}?lang=zh_CN").get_data(as_text=True)
        assert "已匹配 200 / 500 行" in page and "运行中" in page
    finally:
        gate.set()
        worker.stop()
    assert _status(job_app.test_client(), job)["status"] == "done"
