"""The areas a deployment serves, as lon/lat boxes: where points are expected.

One box per top-level jurisdiction (a county, or a town loaded without its
county), so that areas far apart (Helsinki and Shenzhen) are not one box; a
deployment without jurisdictions serves the box of its streets and grid cells.
Every entry point checks points against these boxes with the one point rule
(:func:`gisgrid.io.points.check_points`): a point outside them that falls
inside one with x and y exchanged is ``swapped_lonlat``.
"""

from __future__ import annotations

import sqlalchemy as sa

Box = tuple[float, float, float, float]


def served_areas(conn: sa.Connection) -> list[Box]:
    """The lon/lat boxes (min lon, min lat, max lon, max lat) of the areas served; empty when nothing is loaded."""
    rows = conn.execute(
        sa.text("""
        SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)
        FROM (SELECT ST_Envelope(geom) AS b FROM jurisdiction WHERE parent_id IS NULL AND geom IS NOT NULL) t
        ORDER BY 1, 2""")
    ).all()
    if not rows:
        rows = conn.execute(
            sa.text("""
            SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
            FROM (SELECT ST_Extent(g)::geometry AS e FROM (
                SELECT geom AS g FROM street UNION ALL SELECT geom FROM grid_cell) u) t
            WHERE e IS NOT NULL""")
        ).all()
    return [tuple(float(v) for v in row) for row in rows]
