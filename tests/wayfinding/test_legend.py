"""Owner colours and the legend: touching units never share a colour; a shared name is told apart."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from shapely.geometry import box

from gisgrid.maps import ownership
from gisgrid.ownership.store import segments_with_owners


def _first_town(conn) -> str:
    return conn.execute(
        sa.text("""
        SELECT j.code FROM jurisdiction j JOIN street s ON s.jurisdiction_id = j.id
        JOIN segment g ON g.street_id = s.id WHERE j.level = 'town' GROUP BY j.code ORDER BY count(*) DESC LIMIT 1""")
    ).scalar()


def test_no_two_touching_segments_of_different_owners_share_a_colour(engine, town):
    """Touching as PostGIS sees it (areas within half a metre), over the busiest sample town."""
    with engine.connect() as conn:
        code = _first_town(conn)
        segs = segments_with_owners(conn, dt.date.today(), jurisdiction_code=code)
        pairs = conn.execute(
            sa.text("""
            SELECT a.id, b.id FROM segment a JOIN segment b ON a.id < b.id
              AND a.area && ST_Expand(b.area, 0.0001) AND ST_DWithin(a.area::geography, b.area::geography, 0.5)
            WHERE a.id = ANY(:ids) AND b.id = ANY(:ids)"""),
            {"ids": segs["id"].tolist()},
        ).all()
    keys = ownership._owner_keys(segs, segs["owner_name"].fillna("").tolist(), segs["owner_phone"].fillna("").tolist())
    colours = ownership.owner_colours(keys, segs.geometry.values)
    owner_of = dict(zip(segs["id"], keys))
    touching = [(a, b) for a, b in pairs if owner_of[a] and owner_of[b] and owner_of[a] != owner_of[b]]
    assert len(touching) > 50  # the town is dense enough for the test to mean something
    clashes = [(a, b) for a, b in touching if colours[owner_of[a]] == colours[owner_of[b]]]
    assert clashes == [], f"{len(clashes)} touching pairs share a colour"
    assert len({colours[k] for k in keys if k}) <= len(ownership.OWNER_PALETTE)


def test_colouring_is_the_same_on_every_run_and_any_row_order():
    cells = [box(i, 0, i + 1, 1) for i in range(30)]  # a row of touching squares, one owner each
    keys = [f"person:{i}" for i in range(30)]
    first = ownership.owner_colours(keys, cells)
    assert first == ownership.owner_colours(list(reversed(keys)), list(reversed(cells)))
    assert all(first[keys[i]] != first[keys[i + 1]] for i in range(29))


def test_a_shared_name_shows_the_place_and_the_id_in_the_legend(engine, town):
    with engine.connect() as conn:
        segs = segments_with_owners(conn, dt.date.today(), jurisdiction_code=_first_town(conn)).head(6).copy()
    segs["owner_name"] = ["冯桂", "冯桂", "张三", "张三", "李四", None]
    segs["owner_id"] = ["person:11", "person:12", "person:13", "person:13", "person:14", None]
    m = ownership.ownership_map(segs, attribution="test", lang="zh_CN")
    html = next(c.html for c in m._children.values() if "gg-legend" in getattr(c, "css_class", ""))
    place = segs["owner_place"].iloc[0]
    assert f"{place} · #11" in html and f"{place} · #12" in html
    assert "#13" not in html  # one person with two segments is not a repeated name
