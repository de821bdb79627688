"""Manager map data and page: filters validated, counts consistent, text escaped, exports."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
import sqlalchemy as sa

from gisgrid.analytics import store as manager
from gisgrid.errors import InputError
from gisgrid.maps.assets import remote_urls
from gisgrid.web import create_app
from gisgrid.web.manager import bp

TOWN = "110108001"
XSS = "<script>alert('gg')</script>"


@pytest.fixture(scope="module")
def mgr_client(db_url, town, settings):
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": settings})
    if "manager" not in app.blueprints:
        app.register_blueprint(bp)
    return app.test_client()


@pytest.fixture()
def conn(engine, town):
    with engine.connect() as c:
        yield c


def test_unknown_values_refused_with_message(conn):
    with pytest.raises(InputError, match=r"unknown category '9999'; valid: 0101"):
        manager.count_reports(conn, manager.ReportFilters(categories=("9999",)))
    with pytest.raises(InputError, match=r"unknown jurisdiction 'nowhere'.*110108001"):
        manager.count_reports(conn, manager.ReportFilters(jurisdiction="nowhere"))
    with pytest.raises(InputError, match=r"unknown status 'lost'; valid: open, reported"):
        manager.report_filter(conn, manager.ReportFilters(statuses=("lost",)))


def test_filter_is_parameterised(conn):
    evil = "0101'; DROP TABLE report; --"
    with pytest.raises(InputError):
        manager.report_filter(conn, manager.ReportFilters(categories=(evil,)))
    where, params = manager.report_filter(conn, manager.ReportFilters(categories=("0101",), jurisdiction=TOWN))
    assert "0101" not in where and params["f_cats"] == ["0101"]


def test_date_filter_changes_counts_and_empty_range(conn):
    everything = manager.count_reports(conn, manager.ReportFilters(jurisdiction=TOWN))
    mid = (
        conn.execute(sa.text("SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY reported_at) FROM report"))
        .scalar()
        .date()
    )
    later = manager.count_reports(conn, manager.ReportFilters(jurisdiction=TOWN, date_from=mid))
    assert 0 < later < everything
    empty = manager.ReportFilters(jurisdiction=TOWN, date_from=dt.date(2090, 1, 1))
    assert manager.count_reports(conn, empty) == 0
    assert manager.density_bins(conn, empty).empty
    assert manager.points(conn, empty).empty
    assert manager.hotspots(conn, empty).empty


def test_density_bins_sum_to_matched_count(conn):
    for flt in (
        manager.ReportFilters(jurisdiction=TOWN),
        manager.ReportFilters(),
        manager.ReportFilters(categories=("0101", "0502"), statuses=("open", "closed")),
    ):
        bins = manager.density_bins(conn, flt, size_m=100)
        assert int(bins["count"].sum()) == manager.count_reports(conn, flt)
        assert bins.crs.to_epsg() == 4326 and bins["hex_id"].is_unique


def test_hotspot_ids_match_hex_bins(conn):
    hot = manager.hotspots(conn, manager.ReportFilters(jurisdiction=TOWN), permutations=999)
    assert set(hot["hotspot"]) <= {"hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99"}
    assert int(hot["count"].sum()) == manager.count_reports(conn, manager.ReportFilters(jurisdiction=TOWN))


def test_summaries(conn):
    tables = manager.summaries(conn, manager.ReportFilters(jurisdiction=TOWN))
    owner, jur = tables["owner"], tables["jurisdiction"]
    assert owner["reports"].sum() == manager.count_reports(conn, manager.ReportFilters(jurisdiction=TOWN))
    assert {"per_km", "per_cell", "share_open"} <= set(owner.columns)
    assert TOWN in set(jur["code"]) and (jur["share_open"].dropna().between(0, 1)).all()


def test_page_escapes_report_text(mgr_client, engine):
    with engine.begin() as c:
        rid = c.execute(
            sa.text(
                "INSERT INTO report (geom, category_id, reported_at, status, description, address, is_demo) "
                "SELECT ST_PointOnSurface(j.geom), (SELECT min(id) FROM category), now(), 'reported', :d, :d, true "
                "FROM jurisdiction j WHERE j.code = :t RETURNING id"
            ),
            {"d": XSS, "t": TOWN},
        ).scalar()
    try:
        r = mgr_client.get(f"/map?jurisdiction={TOWN}")
        assert r.status_code == 200
        html = r.get_data(as_text=True)
        assert XSS not in html and "alert('gg')" not in html
        shown = "&lt;script&gt;alert(&#x27;gg&#x27;)&lt;/script&gt;"  # the popup text, HTML-escaped
        as_json = shown.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
        assert shown in html or as_json in html
    finally:
        with engine.begin() as c:
            c.execute(sa.text("DELETE FROM report WHERE id = :i"), {"i": rid})


def test_page_counts_empty_and_bad_filter(mgr_client, conn):
    n = manager.count_reports(conn, manager.ReportFilters(jurisdiction=TOWN))
    r = mgr_client.get(f"/map?jurisdiction={TOWN}")
    assert f'<strong id="gg-count">{n}</strong>' in r.get_data(as_text=True)
    r = mgr_client.get(f"/map?jurisdiction={TOWN}&from=2090-01-01")
    assert r.status_code == 200 and 'id="gg-count">0<' in r.get_data(as_text=True)
    assert 'id="gg-empty"' in r.get_data(as_text=True)
    r = mgr_client.get(f"/map?jurisdiction={TOWN}&category=nope")
    assert r.status_code == 400 and "unknown category" in r.get_data(as_text=True)
    assert mgr_client.get("/map?from=yesterday").status_code == 400


def test_exports(mgr_client):
    r = mgr_client.get(f"/map/export.html?jurisdiction={TOWN}")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "/static/vendor" not in html and "L.map(" in html
    assert remote_urls(html) == []
    r = mgr_client.get(f"/map/summary.xlsx?jurisdiction={TOWN}&lang=en")
    wb = openpyxl.load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames == ["owners", "jurisdictions"]
    assert wb["owners"]["A1"].value == "owner"
    # in Chinese, sheet and column names are Chinese (issue 21)
    r = mgr_client.get(f"/map/summary.xlsx?jurisdiction={TOWN}&lang=zh_CN")
    wb = openpyxl.load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames == ["责任人", "辖区"]
    headers = [c.value for c in wb["责任人"][1]]
    assert headers[:2] == ["责任人", "上报数"] and "每公里上报数" in headers and "未结案比例" in headers


def test_aggregate_one_pass_matches_separate_counts(conn):
    now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    for flt in (
        manager.ReportFilters(jurisdiction=TOWN),
        manager.ReportFilters(),
        manager.ReportFilters(jurisdiction=TOWN, statuses=("open",)),
    ):
        agg = manager.aggregate(conn, flt, size_m=100, now=now)
        assert agg.n == manager.count_reports(conn, flt)
        assert agg.overdue == manager.count_overdue(conn, flt, now=now)
        assert int(agg.counts["count"].sum()) == int(manager.density_bins(conn, flt, size_m=100)["count"].sum())


def test_choropleth_counts_sum_to_matched_reports_in_town(conn):
    for flt in (manager.ReportFilters(jurisdiction=TOWN), manager.ReportFilters(jurisdiction=TOWN, statuses=("open",))):
        kids = manager.choropleth(conn, flt)
        assert set(kids["level"]) == {"community"} and len(kids) >= 2
        assert kids["code"].str.startswith(TOWN).all()
        assert int(kids["reports"].sum()) == manager.count_reports(conn, flt)
        with_km = kids[kids["street_km"] > 0]
        assert (with_km["per_km"] - with_km["reports"] / with_km["street_km"]).abs().max() < 0.01
    county = manager.choropleth(conn, manager.ReportFilters(jurisdiction=TOWN[:6]))
    assert TOWN in set(county["code"])


def test_choropleth_layer_on_page_escaped(mgr_client):
    html = mgr_client.get(f"/map?jurisdiction={TOWN}").get_data(as_text=True)
    assert "gg-choropleth" in html and 'id="gg-choropleth-legend"' in html
