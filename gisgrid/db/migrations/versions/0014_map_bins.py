"""Where each report lies, worked out once when it is written: its place and its map hexagon.

The manager map counts reports per jurisdiction and per 100 m hexagon.  Done
per request, that is a point-in-polygon test and a map projection for every
report (3.5 s at 1,000,000 reports, issue 21).  Here each report keeps

* ``place_id``: the most specific jurisdiction whose polygon holds its point
  (a community, else a town, else a county; on a shared border the first by
  code), so a filter on a jurisdiction is ``place_id`` in its subtree;
* ``hex_epsg``, ``hex_q``, ``hex_r``: the axial coordinates of its 100 m
  hexagon (:func:`gisgrid.analytics.hotspots.hex_bins`' lattice) in the metric
  CRS of its place (the nearest ``metric_epsg`` up the tree).

A row trigger sets them on every insert and on every change of ``geom`` (COPY
included); a statement trigger on ``jurisdiction`` recomputes them for every
report when polygons, parents or metric CRSs change (rare: an import).  The
same lattice arithmetic is the SQL function ``gisgrid_hex_axial``, used for
any other hexagon size or CRS.  ``ix_report_open_due`` serves the overdue list
(open reports by deadline); ``ix_report_place`` covers what the map's counts
read, so they come from the index alone once autovacuum has marked the pages.

Revision ID: 0014_map_bins
Revises: 0014_open311
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_map_bins"
down_revision = "0014_open311"
branch_labels = None
depends_on = None

HEX_SIZE_M = 100.0

_HEX_AXIAL = """
CREATE FUNCTION gisgrid_hex_axial(g geometry, epsg integer, size_m double precision) RETURNS integer[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    -- pointy-top hexagons of edge size_m anchored at the CRS origin, cube rounding (as hotspots._axial_round)
    WITH t AS (SELECT ST_Transform(g, epsg) AS m),
    f AS (SELECT (sqrt(3.0) / 3.0 * ST_X(m) - ST_Y(m) / 3.0) / size_m AS qf, (2.0 / 3.0 * ST_Y(m)) / size_m AS rf
          FROM t),
    c AS (SELECT qf, rf, round(qf) AS q0, round(rf) AS r0, round(-qf - rf) AS s0 FROM f)
    SELECT ARRAY[
        (CASE WHEN abs(q0 - qf) > abs(r0 - rf) AND abs(q0 - qf) > abs(s0 + qf + rf) THEN -r0 - s0 ELSE q0 END)::integer,
        (CASE WHEN NOT (abs(q0 - qf) > abs(r0 - rf) AND abs(q0 - qf) > abs(s0 + qf + rf))
                   AND abs(r0 - rf) > abs(s0 + qf + rf) THEN -q0 - s0 ELSE r0 END)::integer]
    FROM c
$$
"""

_REPORT_BIN = f"""
CREATE FUNCTION gisgrid_report_bin() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pid integer;
    epsg integer;
    axial integer[];
BEGIN
    NEW.place_id := NULL; NEW.hex_epsg := NULL; NEW.hex_q := NULL; NEW.hex_r := NULL;
    IF NEW.geom IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT j.id INTO pid FROM jurisdiction j
     WHERE j.geom && NEW.geom AND ST_Intersects(j.geom, NEW.geom)
     ORDER BY CASE j.level WHEN 'community' THEN 0 WHEN 'town' THEN 1 ELSE 2 END, j.code LIMIT 1;
    IF pid IS NULL THEN
        RETURN NEW;
    END IF;
    NEW.place_id := pid;
    WITH RECURSIVE up(id, parent_id, metric_epsg, depth) AS (
        SELECT id, parent_id, metric_epsg, 0 FROM jurisdiction WHERE id = pid
        UNION ALL
        SELECT j.id, j.parent_id, j.metric_epsg, up.depth + 1 FROM jurisdiction j JOIN up ON j.id = up.parent_id
        WHERE up.depth < 10)
    SELECT up.metric_epsg INTO epsg FROM up WHERE up.metric_epsg IS NOT NULL ORDER BY up.depth LIMIT 1;
    IF epsg IS NOT NULL THEN
        axial := gisgrid_hex_axial(NEW.geom, epsg, {HEX_SIZE_M});
        NEW.hex_epsg := epsg; NEW.hex_q := axial[1]; NEW.hex_r := axial[2];
    END IF;
    RETURN NEW;
END $$
"""

_REBIN_ALL = """
CREATE FUNCTION gisgrid_rebin_reports() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE report SET geom = geom WHERE geom IS NOT NULL;  -- the row trigger recomputes place and hexagon
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.add_column("report", sa.Column("place_id", sa.Integer))
    op.add_column("report", sa.Column("hex_epsg", sa.Integer))
    op.add_column("report", sa.Column("hex_q", sa.Integer))
    op.add_column("report", sa.Column("hex_r", sa.Integer))
    op.execute(_HEX_AXIAL)
    op.execute(_REPORT_BIN)
    op.execute(_REBIN_ALL)
    op.execute(
        "CREATE TRIGGER report_bin BEFORE INSERT OR UPDATE OF geom ON report "
        "FOR EACH ROW EXECUTE FUNCTION gisgrid_report_bin()"
    )
    op.execute(
        "CREATE TRIGGER rebin_reports AFTER INSERT OR DELETE OR UPDATE OF geom, parent_id, metric_epsg, level, code "
        "ON jurisdiction FOR EACH STATEMENT EXECUTE FUNCTION gisgrid_rebin_reports()"
    )
    op.execute("UPDATE report SET geom = geom WHERE geom IS NOT NULL")
    # covering: the map's counts read only the index (status and due_at for "overdue")
    op.create_index(
        "ix_report_place",
        "report",
        ["place_id", "reported_at"],
        postgresql_include=["category_id", "status", "due_at", "hex_epsg", "hex_q", "hex_r"],
    )
    op.create_index(
        "ix_report_open_due",
        "report",
        ["due_at"],
        postgresql_where=sa.text("status NOT IN ('closed', 'rejected', 'merged')"),
    )


def downgrade() -> None:
    op.drop_index("ix_report_open_due", table_name="report")
    op.drop_index("ix_report_place", table_name="report")
    op.execute("DROP TRIGGER IF EXISTS rebin_reports ON jurisdiction")
    op.execute("DROP TRIGGER IF EXISTS report_bin ON report")
    op.execute("DROP FUNCTION IF EXISTS gisgrid_rebin_reports()")
    op.execute("DROP FUNCTION IF EXISTS gisgrid_report_bin()")
    op.execute("DROP FUNCTION IF EXISTS gisgrid_hex_axial(geometry, integer, double precision)")
    for column in ("hex_r", "hex_q", "hex_epsg", "place_id"):
        op.drop_column("report", column)
