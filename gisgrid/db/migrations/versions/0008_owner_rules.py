"""One home in SQL for the owner rules, the local day and the deadline of a report.

* ``owner_on(day)``: the owner assignments valid on ``day`` (``valid_from <= day
  < valid_to``, NULL ``valid_to`` open-ended) with the owner's name, phone,
  kind and key.  Every query asking "who owned this on that day" reads it.
* ``owner_chain_on(day, segment_ids)``: per segment and chain role
  (段长 → 二级街长 → 一级街长 → 总街长) the owner from the most specific level
  that has one (segment, street, the street's jurisdiction, its parent, its
  grandparent); ties: the latest start, then the highest assignment id.
* ``unit_has_owner(target_type, target_id, day)``: "has no owner" (无人负责) —
  a segment needs a 段长, a cell a 网格员 or 网格长, assigned to the unit itself.
* ``jurisdiction.timezone`` (nullable: inherited from the parent, else the
  deployment's ``timezone`` setting) and ``timezone_of_jurisdiction(id)``,
  ``timezone_at_point(geom)`` (NULL: use the setting).
* ``report.due_at``: the deadline (处置时限) computed once, in Python, by
  :func:`gisgrid.cases.workflow.deadlines` (working time on the official
  calendar where the category says so) when a report is stored; existing
  reports are backfilled here by the same function.

The Python forms of these rules are in :mod:`gisgrid.ownership.history`,
:mod:`gisgrid.timeutil` and :mod:`gisgrid.cases.workflow`; tests cross-check both.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from gisgrid.db.dataloss import refuse_data_loss

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# A single-SELECT SQL function declared STABLE is inlined by the planner, so filters on its result
# (target_type, target_id, segment_id) reach the indexes of owner_assignment as if written out.
OWNER_ON = """
CREATE FUNCTION owner_on(day date)
RETURNS TABLE (id integer, person_id integer, department_id integer, target_type varchar, target_id integer,
               role varchar, valid_from date, valid_to date, owner_name text, owner_phone varchar,
               owner_kind text, owner_key text)
LANGUAGE sql STABLE AS $$
    SELECT a.id, a.person_id, a.department_id, a.target_type, a.target_id, a.role, a.valid_from, a.valid_to,
           COALESCE(p.name, d.name), COALESCE(p.phone, d.phone),
           CASE WHEN a.person_id IS NOT NULL THEN 'person' ELSE 'department' END,
           CASE WHEN a.person_id IS NOT NULL THEN 'person:' || a.person_id ELSE 'department:' || a.department_id END
    FROM owner_assignment a
    LEFT JOIN person p ON p.id = a.person_id
    LEFT JOIN department d ON d.id = a.department_id
    WHERE a.valid_from <= day AND (a.valid_to IS NULL OR day < a.valid_to)
$$"""

OWNER_CHAIN_ON = """
CREATE FUNCTION owner_chain_on(day date, segment_ids integer[] DEFAULT NULL)
RETURNS TABLE (segment_id integer, role varchar, level_rank integer, id integer, person_id integer,
               department_id integer, target_type varchar, target_id integer, valid_from date, valid_to date,
               owner_name text, owner_phone varchar, owner_kind text, owner_key text)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT ON (t.segment_id, v.role)
           t.segment_id, v.role, t.rank, v.id, v.person_id, v.department_id, v.target_type, v.target_id,
           v.valid_from, v.valid_to, v.owner_name, v.owner_phone, v.owner_kind, v.owner_key
    FROM (
        SELECT g.id AS segment_id, lv.target_type, lv.target_id, lv.rank
        FROM segment g
        JOIN street s ON s.id = g.street_id
        LEFT JOIN jurisdiction j1 ON j1.id = s.jurisdiction_id
        LEFT JOIN jurisdiction j2 ON j2.id = j1.parent_id
        CROSS JOIN LATERAL (VALUES ('segment', g.id, 1), ('street', s.id, 2), ('jurisdiction', j1.id, 3),
                                   ('jurisdiction', j2.id, 4), ('jurisdiction', j2.parent_id, 5))
             AS lv(target_type, target_id, rank)
        WHERE lv.target_id IS NOT NULL AND (segment_ids IS NULL OR g.id = ANY(segment_ids))
    ) t
    JOIN owner_on(day) v ON v.target_type = t.target_type AND v.target_id = t.target_id
    WHERE v.role IN ('段长', '二级街长', '一级街长', '总街长')
    ORDER BY t.segment_id, v.role, t.rank, v.valid_from DESC, v.id DESC
$$"""

UNIT_HAS_OWNER = """
CREATE FUNCTION unit_has_owner(unit_type text, unit_id integer, day date) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM owner_on(day) a
        WHERE a.target_type = unit_type AND a.target_id = unit_id
          AND a.role = ANY(CASE unit_type WHEN 'segment' THEN ARRAY['段长']
                                          WHEN 'cell' THEN ARRAY['网格员', '网格长']
                                          ELSE ARRAY[]::text[] END))
$$"""

TIMEZONE_OF_JURISDICTION = """
CREATE FUNCTION timezone_of_jurisdiction(jid integer) RETURNS text
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE up(id, parent_id, timezone, depth) AS (
        SELECT id, parent_id, timezone, 0 FROM jurisdiction WHERE id = jid
        UNION ALL
        SELECT j.id, j.parent_id, j.timezone, up.depth + 1 FROM jurisdiction j JOIN up ON j.id = up.parent_id
        WHERE up.timezone IS NULL AND up.depth < 10)
    SELECT timezone FROM up WHERE timezone IS NOT NULL ORDER BY depth LIMIT 1
$$"""

# the most specific jurisdiction holding the point (community, then town, then county)
TIMEZONE_AT_POINT = """
CREATE FUNCTION timezone_at_point(pt geometry) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT timezone_of_jurisdiction(j.id) FROM jurisdiction j
    WHERE j.geom && pt AND ST_Intersects(j.geom, pt)
    ORDER BY CASE j.level WHEN 'community' THEN 0 WHEN 'town' THEN 1 ELSE 2 END, j.id LIMIT 1
$$"""


def upgrade() -> None:
    op.add_column("jurisdiction", sa.Column("timezone", sa.Text))
    op.add_column("report", sa.Column("due_at", sa.DateTime(timezone=True)))
    for sql in (OWNER_ON, OWNER_CHAIN_ON, UNIT_HAS_OWNER, TIMEZONE_OF_JURISDICTION, TIMEZONE_AT_POINT):
        op.execute(sql)
    # existing reports get their deadline from the one Python rule (a fresh database has none); in the
    # working time of the settings: the days an admin enters (work_calendar_day) come with 0011
    from gisgrid.cases.calendar import fill_due_at
    from gisgrid.cases.workflow import WorkingTime
    from gisgrid.config import load_settings

    settings = load_settings()
    fill_due_at(op.get_bind(), settings, calendar=WorkingTime.from_settings(settings))


def downgrade() -> None:
    refuse_data_loss(revision, columns=(("report", "due_at"), ("jurisdiction", "timezone")))
    op.execute("DROP FUNCTION timezone_at_point(geometry)")
    op.execute("DROP FUNCTION timezone_of_jurisdiction(integer)")
    op.execute("DROP FUNCTION unit_has_owner(text, integer, date)")
    op.execute("DROP FUNCTION owner_chain_on(date, integer[])")
    op.execute("DROP FUNCTION owner_on(date)")
    op.drop_column("report", "due_at")
    op.drop_column("jurisdiction", "timezone")
