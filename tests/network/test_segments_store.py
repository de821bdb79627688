"""Stored segments: the sample town's areas never overlap; ``gisgrid segments build`` rebuilds them."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from gisgrid.network.store import rebuild_segments

OVERLAP_SQL = """
    SELECT COALESCE(sum(ST_Area(ST_Transform(ST_Intersection(a.area, b.area), j.metric_epsg))), 0)
    FROM segment a JOIN segment b ON a.id < b.id AND a.area && b.area AND ST_Intersects(a.area, b.area)
    JOIN street s ON s.id = a.street_id JOIN jurisdiction j ON j.id = s.jurisdiction_id
"""


def test_sample_town_segment_areas_do_not_overlap(engine, town):
    with engine.connect() as conn:
        overlap = conn.execute(sa.text(OVERLAP_SQL)).scalar()
        invalid = conn.execute(sa.text("SELECT count(*) FROM segment WHERE NOT ST_IsValid(area)")).scalar()
        longest = conn.execute(sa.text("SELECT max(length_m) FROM segment")).scalar()
    assert overlap <= 0.01
    assert invalid == 0
    assert longest <= 500.01


def test_rebuild_keeps_owner_history_and_needs_replace(scratch_engine, settings):
    """Rebuilding a town whose segments have owners ends those assignments today instead of losing them."""
    from gisgrid.demo import TOWNS, load_demo

    beijing = [t for t in TOWNS if t.key == "beijing_haidian"]
    with scratch_engine.begin() as conn:
        load_demo(conn, settings, towns=beijing, reports_per_town=10)
    with scratch_engine.begin() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM segment")).scalar()
        skipped = rebuild_segments(conn, settings)
    assert "skipped" in skipped[0]
    settings_200 = type(settings)(**{**settings.__dict__, "segment_max_length_m": 200.0})
    with scratch_engine.begin() as conn:
        lines = rebuild_segments(conn, settings_200, jurisdiction_code="110108", replace=True)
        after = conn.execute(sa.text("SELECT count(*), max(length_m) FROM segment")).one()
        ended = conn.execute(
            sa.text("SELECT count(*) FROM owner_assignment WHERE role = '段长' AND valid_to = :d"),
            {"d": dt.date.today()},
        ).scalar()
        overlap = conn.execute(sa.text(OVERLAP_SQL)).scalar()
    assert "segments from" in lines[0]
    assert after[0] > before and after[1] <= 200.01
    assert ended > 0
    assert overlap <= 0.01


def test_rebuild_names_the_short_segments_it_could_not_join(scratch_engine, settings):
    """A planner is told which segments stay under the minimum length: streets with no other run to join."""
    from gisgrid.demo import TOWNS, load_demo

    helsinki = [t for t in TOWNS if t.key == "helsinki"]
    with scratch_engine.begin() as conn:
        load_demo(conn, settings, towns=helsinki, reports_per_town=10)
        (line,) = rebuild_segments(conn, settings, replace=True)
        short = conn.execute(
            sa.text("SELECT name, length_m FROM segment WHERE length_m < :m ORDER BY length_m"),
            {"m": settings.segment_min_length_m},
        ).all()
    assert short, "Helsinki's extract has streets shorter than the minimum with no other run"
    assert f"{len(short)} shorter than {settings.segment_min_length_m:g} m" in line
    for name, length in short[:5]:
        assert f"{name} ({length:.1f} m)" in line
