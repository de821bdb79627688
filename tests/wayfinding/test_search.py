"""The search box of every map: what it finds, and that it finds only what the user sees."""

from __future__ import annotations

import pytest
import sqlalchemy as sa


def _search(client, q: str) -> list[dict]:
    resp = client.get("/api/search", query_string={"q": q})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["results"]


def _kinds(results, kind):
    return [r for r in results if r["kind"] == kind]


def test_a_street_and_a_segment_are_found_with_their_place(app, users, engine):
    with engine.connect() as conn:
        street, segment = conn.execute(
            sa.text("SELECT s.name, g.name FROM segment g JOIN street s ON s.id = g.street_id ORDER BY g.id LIMIT 1")
        ).one()
    admin = app.test_client(user="admin")
    streets = _kinds(_search(admin, street), "street")
    assert streets and streets[0]["label"] == street  # the exact name first
    w, s, e, n = streets[0]["bbox"]
    assert w < e and s < n and streets[0]["geometry"]["type"] in ("LineString", "MultiLineString")
    segments = _kinds(_search(admin, segment), "segment")
    assert any(segment in r["label"] for r in segments)
    assert all(r["geometry"]["type"] in ("Polygon", "MultiPolygon") for r in segments)


def test_a_person_is_found_only_by_a_user_who_sees_their_units(app, users, engine):
    with engine.connect() as conn:
        me = conn.execute(sa.text("SELECT person_id FROM user_account WHERE username = 'duanzhang'")).scalar()
        # an owner of a segment the 段长 (who sees their one segment) does not see
        person_id, name = conn.execute(
            sa.text("""
            SELECT p.id, p.name FROM owner_assignment a JOIN person p ON p.id = a.person_id
            WHERE a.target_type = 'segment' AND a.valid_to IS NULL AND a.person_id <> :me
              AND NOT EXISTS (SELECT 1 FROM person q WHERE q.name = p.name AND q.id = :me)
            ORDER BY a.id LIMIT 1"""),
            {"me": me},
        ).one()
    found = _kinds(_search(app.test_client(user="admin"), name), "person")
    mine = [r for r in found if r["id"] == person_id]
    assert mine and mine[0]["count"] >= 1 and mine[0]["label"] == f"{name} · {person_id}"
    assert mine[0]["geometry"]["type"] == "GeometryCollection" or mine[0]["geometry"]["coordinates"]
    hidden = _search(app.test_client(user="duanzhang"), name)
    assert not any(r["kind"] == "person" and r["id"] == person_id for r in hidden), "a person outside the scope leaked"
    # the 段长 finds themself: they see their own segment
    own = _search(app.test_client(user="duanzhang"), duanzhang_name(engine, me))
    assert any(r["kind"] == "person" and r["id"] == me for r in own)


def duanzhang_name(engine, person_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT name FROM person WHERE id = :p"), {"p": person_id}).scalar()


def test_a_case_is_found_by_number_within_sight(app, users, engine):
    with engine.connect() as conn:
        case_id = conn.execute(sa.text("SELECT min(id) FROM report WHERE geom IS NOT NULL")).scalar()
        seen_by_duanzhang = conn.execute(
            sa.text("""
            SELECT count(*) FROM report r JOIN owner_assignment a ON a.target_type = 'segment'
              AND a.target_id = r.assigned_segment_id
              AND a.person_id = (SELECT person_id FROM user_account WHERE username = 'duanzhang')
            WHERE r.id = :id"""),
            {"id": case_id},
        ).scalar()
    admin = app.test_client(user="admin")
    for typed in (str(case_id), f"#{case_id}"):
        cases = _kinds(_search(admin, typed), "case")
        assert [r["id"] for r in cases] == [case_id]
        assert cases[0]["geometry"]["type"] == "Point"
    if not seen_by_duanzhang:
        assert not _kinds(_search(app.test_client(user="duanzhang"), str(case_id)), "case")


def test_a_written_address_is_found_through_the_geocoder(app, users, engine):
    with engine.connect() as conn:
        street, number, lon, lat = conn.execute(
            sa.text("""
            SELECT a.street, a.housenumber, ST_X(a.geom), ST_Y(a.geom) FROM address_point a
            WHERE a.housenumber ~ '^[0-9]+$' ORDER BY a.id LIMIT 1""")
        ).one()
    results = _search(app.test_client(user="admin"), f"{street}{number}号")
    addresses = _kinds(results, "address")
    assert addresses, results
    found_lon, found_lat = addresses[0]["geometry"]["coordinates"]
    assert abs(found_lon - lon) < 0.001 and abs(found_lat - lat) < 0.001


def test_search_input_that_is_odd_is_answered_not_crashed(app, users):
    admin = app.test_client(user="admin")
    for q in ("%", "_", "\\", "'; DROP TABLE street; --", "路" * 500, "   "):
        _search(admin, q)
    assert app.test_client(user=None).get("/api/search?q=x").status_code == 401


@pytest.fixture(scope="module")
def shatin_app(shatin_url, settings, users):
    from gisgrid.web import create_app

    return create_app({"TESTING": True, "DATABASE_URL": shatin_url, "GISGRID_SETTINGS": settings})


def test_a_grid_cell_is_found_by_its_code(shatin_app, shatin_url):
    engine = sa.create_engine(shatin_url)
    with engine.connect() as conn:
        code = conn.execute(sa.text("SELECT code FROM grid_cell ORDER BY code LIMIT 1")).scalar()
    engine.dispose()
    assert code
    cells = _kinds(_search(shatin_app.test_client(), code), "cell")
    assert cells[0]["label"] == code and cells[0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert len(_kinds(_search(shatin_app.test_client(), code[:-3]), "cell")) > 1  # the start of a code
