"""Each report's place and 100 m hexagon are kept at write time (migration 0014_map_bins) and agree
with the point-in-polygon test and the Python lattice they replace on the manager map."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from gisgrid.analytics import hotspots as hs
from gisgrid.analytics import store as manager
from gisgrid.crs import transformer


def test_stored_hexagons_and_places_agree_with_the_live_rules(engine, town):
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT r.id, ST_X(r.geom), ST_Y(r.geom), r.hex_epsg, r.hex_q, r.hex_r, r.place_id FROM report r "
                "WHERE r.geom IS NOT NULL ORDER BY r.id"
            )
        ).all()
        assert len(rows) > 500
        for epsg in {r[3] for r in rows if r[3] is not None}:
            mine = [r for r in rows if r[3] == epsg]
            x, y = transformer(4326, epsg).transform([r[1] for r in mine], [r[2] for r in mine])
            q, r = hs._xy_to_axial(np.asarray(x), np.asarray(y), manager.HEX_SIZE_M)
            assert (q == [m[4] for m in mine]).all() and (r == [m[5] for m in mine]).all()
        # the place is the most specific jurisdiction whose polygon holds the point
        live = dict(
            conn.execute(
                sa.text(
                    "SELECT r.id, (SELECT j.id FROM jurisdiction j WHERE ST_Intersects(j.geom, r.geom) "
                    "ORDER BY CASE j.level WHEN 'community' THEN 0 WHEN 'town' THEN 1 ELSE 2 END, j.code LIMIT 1) "
                    "FROM report r WHERE r.geom IS NOT NULL"
                )
            ).all()
        )
        assert {r[0]: r[6] for r in rows} == live
        # a jurisdiction filter counts what the polygon holds
        for code in conn.execute(sa.text("SELECT code FROM jurisdiction WHERE level = 'town'")).scalars():
            inside = conn.execute(
                sa.text(
                    "SELECT count(*) FROM report r JOIN jurisdiction j ON ST_Intersects(j.geom, r.geom) "
                    "WHERE j.code = :c"
                ),
                {"c": code},
            ).scalar()
            assert manager.count_reports(conn, manager.ReportFilters(jurisdiction=code)) == inside


def test_place_and_hexagon_follow_the_report_and_the_polygons(shatin_url):
    eng = sa.create_engine(shatin_url)
    try:
        with eng.begin() as conn:
            town_id, epsg, lon, lat = conn.execute(
                sa.text(
                    "SELECT id, metric_epsg, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                    "FROM jurisdiction WHERE level = 'town' ORDER BY code LIMIT 1"
                )
            ).one()
            rid = conn.execute(
                sa.text(
                    "INSERT INTO report (geom, reported_at, status, description) "
                    "VALUES (ST_SetSRID(ST_MakePoint(:x, :y), 4326), now(), 'reported', 'bins') RETURNING id"
                ),
                {"x": lon, "y": lat},
            ).scalar()

            def stored():
                return conn.execute(
                    sa.text("SELECT place_id, hex_epsg, hex_q, hex_r FROM report WHERE id = :i"), {"i": rid}
                ).one()

            place, hex_epsg, q, r = stored()
            assert place is not None and hex_epsg == epsg
            x, y = transformer(4326, epsg).transform(lon, lat)
            assert (q, r) == tuple(int(v[0]) for v in hs._xy_to_axial(np.array([x]), np.array([y]), 100.0))
            # moved 500 m east: another hexagon
            conn.execute(sa.text("UPDATE report SET geom = ST_Translate(geom, 0.005, 0) WHERE id = :i"), {"i": rid})
            assert stored()[2] != q
            # moved out of every jurisdiction: no place, no hexagon (and the town filter no longer counts it)
            conn.execute(
                sa.text("UPDATE report SET geom = ST_SetSRID(ST_MakePoint(0, 0), 4326) WHERE id = :i"), {"i": rid}
            )
            assert stored() == (None, None, None, None)
            # back, then the polygons change: every report's place is worked out again
            conn.execute(
                sa.text("UPDATE report SET geom = ST_SetSRID(ST_MakePoint(:x, :y), 4326) WHERE id = :i"),
                {"i": rid, "x": lon, "y": lat},
            )
            assert stored()[0] == place
            conn.execute(sa.text("UPDATE jurisdiction SET geom = ST_Translate(geom, 1, 0) WHERE id = :p"), {"p": place})
            assert stored()[0] != place
            assert stored()[0] == (None if place == town_id else town_id)
    finally:
        eng.dispose()
