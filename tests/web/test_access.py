"""Who may open what: every route of the app × every role, from the app's URL map; and sight by ownership.

The expected answers are written here from the issue's table of roles, not
read from :data:`gisgrid.web.access.RULES`: a route added without a rule, or
with a rule that disagrees, fails.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from gisgrid.demo import DEMO_PASSWORD
from gisgrid.web.access import PUBLIC, RULES

ROLES = (
    "admin",
    "manager",
    "planner",
    "dispatcher",
    "clerk",
    "chief",
    "grid_worker",
    "inspector",
    "department",
    "api_client",
)
#: The demo account of each role (tests/conftest.py ``users``).
ACCOUNT = {
    "admin": "admin",
    "manager": "manager",
    "planner": "planner",
    "dispatcher": "dispatcher",
    "clerk": "clerk",
    "chief": "duanzhang",
    "grid_worker": "wanggeyuan",
    "inspector": "inspector",
    "department": "department",
    "api_client": "api",
}
EVERYONE = set(ROLES) - {"api_client"}
AREA = {"admin", "manager", "planner"}
GEOCODE = {"admin", "dispatcher", "clerk"}
PLAN = {"admin", "planner"}
#: Cases: who sees and works them, who takes them in (which steps each may take is the workflow table's).
CASES = EVERYONE - {"planner"}
REPORT = (EVERYONE | {"api_client"}) - {"planner", "department"}
#: endpoint -> (method, path, roles allowed, the answer an allowed role gets to this probe).
#: Probes are cheap requests (bad parameters, unknown ids) that pass the access check and then fail fast.
JOB = "0" * 32
PROBES = {
    "static": ("GET", "/static/gisgrid.css", None, 200),
    "api.healthz": ("GET", "/healthz", None, 200),
    "api.openapi": ("GET", "/api/openapi.json", None, 200),
    "ops.readyz": ("GET", "/readyz", None, 200),
    "ops.metrics": ("GET", "/metrics", None, 200),  # from 127.0.0.1, as the test client's requests come
    "auth.login": ("GET", "/auth/login", None, 200),
    "auth.logout": ("POST", "/auth/logout", set(ROLES), 302),
    "auth.password": ("GET", "/auth/password", set(ROLES), 200),
    "pages.home": ("GET", "/?date=yesterday", EVERYONE, 400),
    "api.api_assign": (
        "POST",
        "/api/assign",
        {"admin", "manager", "planner", "dispatcher", "clerk", "api_client"},
        400,
    ),
    "export.export_layer": ("GET", "/export/segments.kml", AREA, 404),
    "manager.manager_map": ("GET", "/map?from=nope", EVERYONE, 400),
    "manager.export_html": ("GET", "/map/export.html?from=nope", EVERYONE, 400),
    "manager.export_png": ("GET", "/map/export.png?from=nope", EVERYONE, 400),
    "manager.summary_xlsx": ("GET", "/map/summary.xlsx?from=nope", EVERYONE, 400),
    "audit.audit_page": ("GET", "/audit?days=x", AREA, 400),
    "audit.export_geojson": ("GET", "/audit/export.geojson?days=x", AREA, 400),
    "audit.export_xlsx": ("GET", "/audit/export.xlsx?days=x", AREA, 400),
    "geocode.upload_form": ("GET", "/geocode/", GEOCODE, 200),
    "geocode.upload": ("POST", "/geocode/", GEOCODE, 400),
    "geocode.show_job": ("GET", f"/geocode/{JOB}", GEOCODE, 404),
    "geocode.place": ("POST", f"/geocode/{JOB}/place", GEOCODE, 404),
    "geocode.download": ("GET", f"/geocode/{JOB}.csv", GEOCODE, 404),
    "plan.plan_page": ("GET", "/plan?layer=road", PLAN, 400),
    "plan.units": ("GET", "/api/plan/units", PLAN, 400),
    "plan.check": ("POST", "/api/plan/check", PLAN, 400),
    "plan.save": ("POST", "/api/plan/save", PLAN, 400),
    "plan.history": ("GET", "/api/plan/history?id=abc", PLAN, 400),
    "owners.unit": ("GET", "/units/segment/0", EVERYONE, 404),
    "owners.appoint": ("POST", "/units/segment/0/appoint", {"admin", "manager"}, 404),
    "owners.end": ("POST", "/owners/appointments/0/end", {"admin", "manager"}, 404),
    "owners.search": ("GET", "/owners/?q=%E7%8E%8B", {"admin", "manager"}, 200),
    "owners.bulk_form": ("GET", "/owners/bulk", {"admin", "manager"}, 200),
    "owners.bulk_upload": ("POST", "/owners/bulk", {"admin", "manager"}, 400),
    "owners.bulk_confirm": ("POST", f"/owners/bulk/{JOB}", {"admin", "manager"}, 404),
    "owners.people_json": ("GET", "/owners/people.json?q=x", AREA, 200),
    "users.index": ("GET", "/admin/users/?q=x", {"admin"}, 200),
    "users.new": ("POST", "/admin/users/new", {"admin"}, 400),
    "users.show": ("GET", "/admin/users/0", {"admin"}, 404),
    "users.set_active": ("POST", "/admin/users/0/active", {"admin"}, 404),
    "users.reset_password": ("POST", "/admin/users/0/password", {"admin"}, 404),
    "users.grant": ("POST", "/admin/users/0/grant", {"admin"}, 404),
    "users.revoke": ("POST", "/admin/users/0/revoke", {"admin"}, 404),
    "users.create_key": ("POST", "/admin/users/0/api-keys", {"admin"}, 404),
    "users.revoke_key": ("POST", "/admin/users/0/api-keys/0/revoke", {"admin"}, 404),
    "owners.audit_log": ("GET", "/audit-log/?action=login", {"admin"}, 200),
    "jobs.show": ("GET", f"/jobs/{JOB}", set(ROLES), 404),
    "jobs.status": ("GET", f"/jobs/{JOB}.json", set(ROLES), 404),
    "jobs.job_file": ("GET", f"/jobs/{JOB}/map.png", set(ROLES), 404),
    "cases.case_list": ("GET", "/cases?since=x", CASES, 400),
    "cases.owners_json": ("GET", "/cases/owners.json", CASES, 200),
    "cases.area_json": ("GET", "/cases/area.json", CASES, 200),
    "cases.case_page": ("GET", "/cases/0", CASES, 404),
    "cases.case_step": ("POST", "/cases/0/step", CASES, 404),
    "cases.photo": ("GET", "/cases/photos/0", CASES, 404),
    "cases.photo_thumb": ("GET", "/cases/photos/0/thumb", CASES, 404),
    "cases.intake": ("POST", "/cases/new", REPORT, 400),
    "cases.inbox": ("GET", "/cases/inbox", CASES, 200),
    "cases.inbox_read": ("POST", "/cases/inbox/read", CASES, 303),
    "cases.api_create": ("POST", "/api/cases", REPORT, 400),
    "cases.api_case": ("GET", "/api/cases/0", CASES, 404),
    "cases.api_step": ("POST", "/api/cases/0/accept", CASES, 400),
    "cases.api_geocode": ("GET", "/api/cases/geocode", REPORT, 400),
    "cases.export": ("GET", "/cases/export.kml", CASES, 404),
    "cases.calendar": ("POST", "/cases/calendar", {"admin"}, 400),
    "cases.phone": ("GET", "/cases/phone/", REPORT, 200),
    "cases.phone_worker": ("GET", "/cases/phone/sw.js", REPORT, 200),
    "cases.api_phone": ("POST", "/api/cases/phone", REPORT, 400),
    "cases.from_geocode": ("POST", f"/cases/from-geocode/{JOB}", REPORT, 404),
    # inspection rounds (督查 / 暗访): which round one sees is the round visibility rule (404 otherwise)
    "rankings.index": ("GET", "/rankings/?period=x", AREA, 400),
    "rankings.unit": ("GET", "/rankings/unit?period=x", AREA, 400),
    "rankings.publish": ("POST", "/rankings/publish", {"admin", "manager"}, 400),
    "rankings.snapshot": ("GET", "/rankings/0", AREA, 404),
    "rankings.bulletin_pdf": ("GET", "/rankings/0/bulletin.pdf", AREA, 404),
    "rankings.bulletin_xlsx": ("GET", "/rankings/0/bulletin.xlsx", AREA, 404),
    "inspections.index": ("GET", "/inspections/", EVERYONE, 200),
    "inspections.show": ("GET", "/inspections/0", EVERYONE, 404),
    "inspections.new": ("POST", "/inspections/new", {"admin", "manager"}, 400),
    "inspections.end": ("POST", "/inspections/0/end", {"admin", "manager"}, 404),
    "inspections.checklist": ("POST", "/inspections/checklist", {"admin", "manager"}, 303),
    "inspections.coverage": ("GET", "/inspections/coverage?month=x", EVERYONE, 400),
    "inspections.api_checkin": ("POST", "/api/inspections/checkin", {"admin", "grid_worker", "inspector"}, 400),
    "frontage.segment_page": ("GET", "/frontage/segment/0", EVERYONE, 404),
    "frontage.unit_page": ("GET", "/frontage/unit/0", EVERYONE, 404),
    "frontage.agreement_document": ("GET", "/frontage/agreement/0/document", EVERYONE, 404),
    "frontage.add_agreement": ("POST", "/frontage/unit/0/agreement", {"admin", "manager"}, 404),
    "frontage.import_units": ("POST", "/frontage/import", {"admin", "manager"}, 400),
    "frontage.redblack": ("GET", "/frontage/redblack?month=x", AREA, 400),
    "frontage.plan_frontages": ("GET", "/api/plan/frontages", PLAN, 400),
    "frontage.plan_save": ("POST", "/api/plan/frontage", PLAN, 400),
    "public.report_form": ("GET", "/public/report?segment=x", None, 404),
    "public.report_submit": ("POST", "/public/report", None, 400),
    "public.case_status": ("GET", "/public/case/0?t=x", None, 404),
    "public.segment": ("GET", "/public/segment/0", None, 404),
    # other systems (issue 23): Open311 reads within sight, OGC API - Features layers need view_own
    "api.openapi_doc": ("GET", "/api", None, 200),
    "open311.discovery": ("GET", "/open311/v2/discovery.json", None, 200),
    "open311.services": ("GET", "/open311/v2/services.json", None, 200),
    "open311.service_definition": ("GET", "/open311/v2/services/none.json", None, 404),
    "open311.list_requests": ("GET", "/open311/v2/requests.json?status=x", set(ROLES), 400),
    "open311.get_request": ("GET", "/open311/v2/requests/0.json", set(ROLES), 404),
    "open311.token": ("GET", "/open311/v2/tokens/x.json", set(ROLES), 404),
    "open311.create_request": ("POST", "/open311/v2/requests.json", REPORT, 400),
    "ogc.landing": ("GET", "/ogc/", None, 200),
    "ogc.conformance": ("GET", "/ogc/conformance", None, 200),
    "ogc.collections": ("GET", "/ogc/collections?colour=red", EVERYONE, 400),
    "ogc.collection": ("GET", "/ogc/collections/nope", EVERYONE, 404),
    "ogc.items": ("GET", "/ogc/collections/nope/items", EVERYONE, 404),
    "ogc.item": ("GET", "/ogc/collections/nope/items/1", EVERYONE, 404),
    # finding one's way: the basemap (no tile package installed here: 404), the search box, help
    "wayfinding.tile": ("GET", "/basemap/tiles/0/0/0", set(ROLES), 404),
    "wayfinding.context": ("GET", "/api/basemap/context?bbox=x&zoom=1", set(ROLES), 400),
    "wayfinding.search": ("GET", "/api/search?q=", set(ROLES), 200),
    "wayfinding.help_page": ("GET", "/help", None, 200),
}


def test_every_route_has_an_access_rule_and_a_probe(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - set(RULES) == set(), "routes without an access rule (gisgrid/web/access.py RULES)"
    assert endpoints - set(PROBES) == set(), "routes without an expected answer per role in this test"
    assert {e for e, r in RULES.items() if r == PUBLIC} == {e for e, p in PROBES.items() if p[2] is None}


@pytest.fixture(scope="module")
def clients(app, users):
    return {role: app.test_client(user=ACCOUNT[role]) for role in ROLES} | {None: app.test_client(user=None)}


def _expected(endpoint: str, role: str | None) -> int:
    method, path, allowed, ok = PROBES[endpoint]
    if allowed is None:
        return ok
    if role is None:
        if path.startswith("/open311/"):  # the specification's error list: 403 without a valid api_key
            return 403
        if path.startswith("/ogc/"):  # a machine client (no browser asking for HTML): the standard's 401
            return 401
        return 401 if path.startswith(("/api/", "/export/")) else 302
    return ok if role in allowed else 403


@pytest.mark.parametrize("endpoint", sorted(PROBES))
def test_access_matrix(app, clients, endpoint):
    method, path, _allowed, _ok = PROBES[endpoint]
    got, want = {}, {}
    for role in (None, *ROLES):
        client = clients[role]
        resp = client.open(path, method=method, json={} if method == "POST" and path.startswith("/api/") else None)
        got[role], want[role] = resp.status_code, _expected(endpoint, role)
        if endpoint == "auth.logout" and role is not None:  # signed out: sign in again for the next probes
            client.sign_in(user=ACCOUNT[role])
        if want[role] == 302 and resp.status_code == 302 and role is None:
            assert resp.headers["Location"].startswith("/auth/login?next=")
    assert got == want


def test_chief_of_one_street_gets_404_on_another_streets_segment(app, engine, users):
    chief = app.test_client(user="erjijiezhang")
    with engine.connect() as conn:
        mine, other = conn.execute(
            sa.text("""
            WITH s AS (SELECT a.target_id FROM owner_assignment a JOIN user_account u ON u.person_id = a.person_id
                       WHERE u.username = 'erjijiezhang' AND a.target_type = 'street' AND a.valid_to IS NULL LIMIT 1)
            SELECT (SELECT min(g.id) FROM segment g WHERE g.street_id = (SELECT target_id FROM s)),
                   (SELECT min(g.id) FROM segment g WHERE g.street_id <> (SELECT target_id FROM s))""")
        ).one()
    assert chief.get(f"/units/segment/{mine}").status_code == 200
    assert chief.get(f"/units/segment/{other}").status_code == 404
    assert chief.get("/units/segment/999999999").status_code == 404  # the same answer as for one that exists
    # the segment chief of one segment: not even the rest of the street
    seg_chief = app.test_client(user="duanzhang")
    assert seg_chief.get(f"/units/segment/{other}").status_code == 404


def test_home_map_shows_a_chief_only_their_towns_and_segments(app, users, engine):
    chief = app.test_client(user="duanzhang")
    html = chief.get("/").get_data(as_text=True)
    assert "1 个路段" in html or "1 segments" in html, "a 段长 of one segment sees one segment"
    with engine.connect() as conn:
        other_town = conn.execute(sa.text("SELECT max(code) FROM jurisdiction WHERE level = 'town'")).scalar()
    assert chief.get(f"/?town={other_town}").status_code == 404


def test_manager_sees_their_county_only(app, users, engine):
    manager = app.test_client(user="manager")
    with engine.connect() as conn:
        towns = [
            r[0] for r in conn.execute(sa.text("SELECT code FROM jurisdiction WHERE level = 'town' ORDER BY code"))
        ]
    assert manager.get(f"/audit?jurisdiction={towns[-1]}").status_code == 404
    assert manager.get(f"/map/summary.xlsx?jurisdiction={towns[-1]}").status_code == 404
    assert manager.get(f"/?town={towns[-1]}").status_code == 404
    exported = manager.get("/export/segments.geojson").get_json()["features"]
    admin = app.test_client(user="admin")
    assert 0 < len(exported) < len(admin.get("/export/segments.geojson").get_json()["features"])


def test_planner_cannot_edit_another_town(app, users, engine):
    planner = app.test_client(user="planner")
    with engine.connect() as conn:
        other = conn.execute(sa.text("SELECT max(code) FROM jurisdiction WHERE level = 'town'")).scalar()
    assert planner.get(f"/api/plan/units?town={other}&layer=segment").status_code == 404
    assert planner.get(f"/plan?town={other}").status_code == 404
    edit = {"layer": "cell", "action": "create", "town": other, "geometry": None}
    assert planner.post("/api/plan/check", json=edit).status_code == 404


def test_a_manager_appoints_and_ends_an_owner_and_the_log_names_them(app, users, engine):
    manager = app.test_client(user="manager")
    with engine.begin() as conn:
        seg = conn.execute(
            sa.text("""SELECT g.id FROM segment g JOIN street s ON s.id = g.street_id JOIN jurisdiction j
                       ON j.id = s.jurisdiction_id WHERE j.code LIKE '110108%' ORDER BY g.id DESC LIMIT 1""")
        ).scalar()
        twins = [
            conn.execute(
                sa.text("INSERT INTO person (name, phone) VALUES ('同名人', :p) RETURNING id"), {"p": p}
            ).scalar()
            for p in ("111", "222")
        ]
        before = conn.execute(
            sa.text("""SELECT id, valid_to FROM owner_assignment WHERE target_type = 'segment' AND target_id = :s"""),
            {"s": seg},
        ).all()
    try:
        _appoint_and_end(app, manager, engine, users, seg, twins)
    finally:  # the shared sample town as it was
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "DELETE FROM owner_assignment WHERE target_type = 'segment' AND target_id = :s AND id <> ALL(:ids)"
                ),
                {"s": seg, "ids": [r.id for r in before]},
            )
            for r in before:
                conn.execute(
                    sa.text("UPDATE owner_assignment SET valid_to = :t WHERE id = :i"), {"t": r.valid_to, "i": r.id}
                )


def _appoint_and_end(app, manager, engine, users, seg, twins):
    found = manager.get("/owners/people.json?q=同名人").get_json()["people"]
    assert sorted(p["key"] for p in found) == sorted(f"person:{i}" for i in twins), "two people, two entries"
    day = dt.date.today()
    resp = manager.post(
        f"/units/segment/{seg}/appoint",
        data={"owner": f"person:{twins[1]}", "role": "段长", "valid_from": day.isoformat()},
    )
    assert resp.status_code == 302
    page = manager.get(f"/units/segment/{seg}").get_data(as_text=True)
    assert "同名人" in page and "222" in page
    with engine.connect() as conn:
        aid = conn.execute(
            sa.text("SELECT id FROM owner_assignment WHERE person_id = :p AND target_id = :s"),
            {"p": twins[1], "s": seg},
        ).scalar()
        owner_now = conn.execute(
            sa.text("""SELECT person_id FROM owner_assignment WHERE target_type = 'segment' AND target_id = :s
                       AND role = '段长' AND valid_from <= :d AND (valid_to IS NULL OR :d < valid_to)"""),
            {"s": seg, "d": day},
        ).scalar()
    assert owner_now == twins[1], "the earlier 段长 handed over"
    assert manager.post(f"/owners/appointments/{aid}/end", data={"valid_to": day.isoformat()}).status_code == 302
    log = app.test_client(user="admin").get("/audit-log/?action=owner").get_data(as_text=True)
    assert "owner.appoint" in log and "owner.end" in log and users["manager"]["name"] in log
    # an unknown name on the map's owner filter is a message, not a bare 400
    page = manager.get("/map?owner=%E6%97%A0%E6%AD%A4%E4%BA%BA&from=2000-01-01&to=2000-01-02")
    assert page.status_code == 200 and "没有名叫 无此人 的责任人" in page.get_data(as_text=True)


def test_a_clerk_sees_only_their_own_geocoding_jobs(app, users):
    import io

    clerk = app.test_client(user="clerk")
    upload = clerk.post(
        "/geocode/",
        data={"file": (io.BytesIO("地址\n学院路1号\n".encode()), "a.csv"), "column": "地址"},
    )
    assert upload.status_code == 302, upload.get_data(as_text=True)[:500]
    job_url = upload.headers["Location"]
    assert clerk.get(job_url).status_code == 200
    assert app.test_client(user="dispatcher").get(job_url).status_code == 404
    assert app.test_client(user="admin").get(job_url).status_code == 200


def test_demo_password_works_for_each_account(app, users):
    client = app.test_client(user=None)
    for name in ("admin", "duanzhang", "api"):
        html = client.get("/auth/login").get_data(as_text=True)
        import re

        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
        resp = client.post("/auth/login", data={"username": name, "password": DEMO_PASSWORD, "csrf_token": token})
        assert resp.status_code == 302, name
        client.sign_out()


def _count(html: str) -> int:
    import re

    return int(re.search(r'id="gg-count">(\d+)<', html).group(1))


def test_the_manager_map_shows_each_user_the_reports_they_may_see_only(app, users, engine):
    """Sight is per report, not per jurisdiction: a chief sees on /map only what is routed to what they own."""
    from gisgrid.accounts import scope as sc
    from gisgrid.accounts.store import visible_ids

    with engine.connect() as conn:
        town, geom_ok = (
            "110108001",
            sa.text("SELECT r.id FROM report r JOIN jurisdiction j ON j.code = :t WHERE ST_Intersects(r.geom, j.geom)"),
        )
        in_town = {r[0] for r in conn.execute(geom_ok, {"t": town})}
        seen = {
            n: visible_ids(conn, sc.Scope(users[n]["id"], dt.date.today()), "report") & in_town
            for n in ("duanzhang", "yijijiezhang", "manager", "admin")
        }
    assert 0 < len(seen["duanzhang"]) < len(seen["yijijiezhang"]) < len(seen["manager"]) <= len(seen["admin"])
    for name in seen:
        page = app.test_client(user=name).get(f"/map?jurisdiction={town}")
        assert page.status_code == 200, name
        assert _count(page.get_data(as_text=True)) == len(seen[name]), name
    chief = app.test_client(user="duanzhang")
    assert _count(chief.get("/map").get_data(as_text=True)) == len(seen["duanzhang"])  # their town by default
    with engine.connect() as conn:
        other = conn.execute(sa.text("SELECT max(code) FROM jurisdiction WHERE level = 'town'")).scalar()
    assert chief.get(f"/map?jurisdiction={other}").status_code == 404  # a town with nothing of theirs
    # the meeting tables: only the owners of what they see
    import io

    import pandas as pd

    owners = pd.read_excel(
        io.BytesIO(chief.get(f"/map/summary.xlsx?jurisdiction={town}&lang=en").data), sheet_name="owners"
    )
    assert owners["reports"].sum() == len(seen["duanzhang"]) and len(owners) <= 2
