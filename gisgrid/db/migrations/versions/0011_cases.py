"""Cases (问题清单): the workflow of a report from intake to closure, with its trail, photos and inbox.

A case is a ``report`` row, extended — not a table of its own.  The report
already carries the workflow's status (reported … closed), the deadline
``due_at`` and the routing history (``report_assignment``), and every reader
(the hotspot and overdue layers of ``/map``, the coverage audit, the layer
exports) reads them: a second table would either hold the status a second
time or move every reader.  Merging duplicates links reports instead: a
report merged into another gets ``merged_into_id`` and the status ``merged``;
the case it joined carries the workflow for all of them.

New on ``report``:

* ``version``: optimistic concurrency — every step bumps it, and a step
  taken on a stale version is refused (409), so the second of two people
  acting at once loses nothing.
* ``client_id``: the idempotency key of the device or client that sent it
  (unique): sending twice creates one case.
* ``jurisdiction_id``: where the case belongs (``case_jurisdiction()``
  below), what a dispatcher's or manager's area grant is matched against —
  an unassigned case too.
* ``assigned_type``/``assigned_id``/``assigned_segment_id`` and
  ``assignee_person_id``/``assignee_department_id``: who must act now (the
  routed owner at intake, the dispatcher's choice at dispatch).  Re-running
  the routing writes history only (``report_assignment``) and never moves a
  case away from the person it was dispatched to.
* ``reporter_user_id``, ``escalation_level`` (0 段长 … 3 总街长) with
  ``escalated_person_id``/``escalated_at``, ``rework_count`` (返工),
  ``recurrence_of_id`` (复发: the earlier case at the place), ``merged_into_id``,
  ``suspended_at`` and ``resume_status`` (缓办), ``updated_at``.
* status adds ``rejected`` (不予立案), ``returned`` (退回, "not ours"),
  ``suspended`` (缓办) and ``merged``.

New tables: ``case_event`` (every step: who, when, from → to, note, reason,
details), ``case_photo`` (files under the data folder, not in the database),
``notification`` (the in-app inbox) and ``work_calendar_day`` /
``work_calendar_year`` (a year's official holidays and make-up days entered
by an admin, overriding the calendar package).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from gisgrid.db.dataloss import refuse_data_loss

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

#: Columns of a case whose values a downgrade would lose (those with a default, such as version, always hold one).
CASE_COLUMNS = (
    "resume_status",
    "suspended_at",
    "merged_into_id",
    "recurrence_of_id",
    "escalated_at",
    "escalated_person_id",
    "reporter_user_id",
    "assignee_department_id",
    "assignee_person_id",
    "client_id",
)
OLD_STATUSES = "'reported','accepted','dispatched','handled','verified','closed'"
STATUSES = "'reported','accepted','rejected','dispatched','returned','handled','verified','suspended','closed','merged'"
#: states in which the case waits on its assignee (the chief's list); copied in gisgrid.cases.workflow
ASSIGNEE_STATES = "'dispatched','handled','suspended'"
#: states in which the case waits on the dispatcher (the queue)
QUEUE_STATES = "'reported','accepted','returned'"

# Where a case belongs: its routed unit's jurisdiction (a segment's street's, a cell's, the jurisdiction
# itself), else the most specific jurisdiction holding the point.  One home: intake, the routing
# adoption and this migration's backfill call it.
CASE_JURISDICTION = """
CREATE FUNCTION case_jurisdiction(target_type text, target_id integer, pt geometry) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(
        CASE target_type
            WHEN 'segment' THEN (SELECT s.jurisdiction_id FROM segment g JOIN street s ON s.id = g.street_id
                                 WHERE g.id = target_id)
            WHEN 'cell' THEN (SELECT c.jurisdiction_id FROM grid_cell c WHERE c.id = target_id)
            WHEN 'jurisdiction' THEN target_id
        END,
        (SELECT j.id FROM jurisdiction j WHERE pt IS NOT NULL AND j.geom && pt AND ST_Intersects(j.geom, pt)
         ORDER BY CASE j.level WHEN 'community' THEN 0 WHEN 'town' THEN 1 ELSE 2 END, j.id LIMIT 1))
$$"""


def _fk(column: str, table: str, ondelete: str = "SET NULL", source: str = "report"):
    return sa.ForeignKey(f"{table}.id", ondelete=ondelete, name=f"fk_{source}_{column}_{table}")


def upgrade() -> None:
    op.drop_constraint("ck_report_status", "report", type_="check")
    op.create_check_constraint("ck_report_status", "report", f"status IN ({STATUSES})")
    op.add_column("report", sa.Column("version", sa.Integer, server_default="1", nullable=False))
    op.add_column("report", sa.Column("client_id", sa.String(64)))
    op.add_column("report", sa.Column("jurisdiction_id", sa.Integer, _fk("jurisdiction_id", "jurisdiction")))
    op.add_column("report", sa.Column("assigned_type", sa.String(16)))
    op.add_column("report", sa.Column("assigned_id", sa.Integer))
    op.add_column("report", sa.Column("assigned_segment_id", sa.Integer))
    op.add_column("report", sa.Column("assignee_person_id", sa.Integer, _fk("assignee_person_id", "person")))
    op.add_column(
        "report", sa.Column("assignee_department_id", sa.Integer, _fk("assignee_department_id", "department"))
    )
    op.add_column("report", sa.Column("assigned_at", sa.DateTime(timezone=True)))
    op.add_column("report", sa.Column("reporter_user_id", sa.Integer, _fk("reporter_user_id", "user_account")))
    op.add_column("report", sa.Column("escalation_level", sa.SmallInteger, server_default="0", nullable=False))
    op.add_column("report", sa.Column("escalated_person_id", sa.Integer, _fk("escalated_person_id", "person")))
    op.add_column("report", sa.Column("escalated_at", sa.DateTime(timezone=True)))
    op.add_column("report", sa.Column("rework_count", sa.Integer, server_default="0", nullable=False))
    op.add_column("report", sa.Column("recurrence_of_id", sa.Integer, _fk("recurrence_of_id", "report")))
    op.add_column("report", sa.Column("merged_into_id", sa.Integer, _fk("merged_into_id", "report")))
    op.add_column("report", sa.Column("suspended_at", sa.DateTime(timezone=True)))
    op.add_column("report", sa.Column("resume_status", sa.String(12)))
    op.add_column("report", sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()))
    op.create_check_constraint("ck_report_escalation_level", "report", "escalation_level BETWEEN 0 AND 3")
    op.create_check_constraint(
        "ck_report_merged", "report", "(status = 'merged') = (merged_into_id IS NOT NULL) AND merged_into_id <> id"
    )
    op.create_index(
        "uq_report_client_id", "report", ["client_id"], unique=True, postgresql_where=sa.text("client_id IS NOT NULL")
    )
    op.create_index("ix_report_jurisdiction_id", "report", ["jurisdiction_id"])
    # the chief's list: open cases of an assignee by deadline; escalated ones of the chief above
    op.create_index(
        "ix_report_assignee_open",
        "report",
        ["assignee_person_id", "due_at"],
        postgresql_where=sa.text(f"status IN ({ASSIGNEE_STATES})"),
    )
    op.create_index(
        "ix_report_assignee_department_open",
        "report",
        ["assignee_department_id", "due_at"],
        postgresql_where=sa.text(f"status IN ({ASSIGNEE_STATES})"),
    )
    op.create_index(
        "ix_report_escalated_open",
        "report",
        ["escalated_person_id", "due_at"],
        postgresql_where=sa.text(f"status IN ({ASSIGNEE_STATES}) AND escalated_person_id IS NOT NULL"),
    )
    # the dispatcher's queue, and the escalation scan
    op.create_index(
        "ix_report_queue",
        "report",
        ["jurisdiction_id", "reported_at"],
        postgresql_where=sa.text(f"status IN ({QUEUE_STATES})"),
    )
    op.create_index("ix_report_due_dispatched", "report", ["due_at"], postgresql_where=sa.text("status = 'dispatched'"))
    op.create_index(
        "ix_report_merged_into_id", "report", ["merged_into_id"], postgresql_where=sa.text("merged_into_id IS NOT NULL")
    )
    op.create_index(
        "ix_report_recurrence_of_id",
        "report",
        ["recurrence_of_id"],
        postgresql_where=sa.text("recurrence_of_id IS NOT NULL"),
    )
    op.execute(CASE_JURISDICTION)
    # existing reports: the routed owner becomes the assignee, and the case gets its jurisdiction
    op.execute("""
        UPDATE report r SET assigned_type = c.target_type, assigned_id = c.target_id, assigned_segment_id = c.segment_id,
               assignee_person_id = (SELECT p.id FROM person p WHERE p.id = c.owner_person_id),
               assignee_department_id = (SELECT d.id FROM department d WHERE d.id = c.owner_department_id),
               assigned_at = c.assigned_at
        FROM report_current c WHERE c.report_id = r.id AND c.target_type IS NOT NULL""")
    op.execute("UPDATE report r SET jurisdiction_id = case_jurisdiction(r.assigned_type, r.assigned_id, r.geom)")

    op.create_table(
        "case_event",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("report_id", sa.Integer, _fk("report_id", "report", "CASCADE", "case_event"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor_user_id", sa.Integer),
        sa.Column("actor_person_id", sa.Integer),
        sa.Column("actor_name", sa.Text, nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("from_status", sa.String(12)),
        sa.Column("to_status", sa.String(12)),
        sa.Column("version", sa.Integer),
        sa.Column("note", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("detail", JSONB),
        sa.PrimaryKeyConstraint("id", name="pk_case_event"),
    )
    op.create_index("ix_case_event_report_id", "case_event", ["report_id", "id"])
    op.create_index("ix_case_event_actor_user_id", "case_event", ["actor_user_id", "at"])

    op.create_table(
        "case_photo",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("report_id", sa.Integer, _fk("report_id", "report", "CASCADE", "case_photo"), nullable=False),
        sa.Column("event_id", sa.BigInteger, _fk("event_id", "case_event", "SET NULL", "case_photo")),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("thumb_path", sa.Text, nullable=False),
        sa.Column("content_type", sa.String(16), nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("uploaded_by_user_id", sa.Integer),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_case_photo"),
        sa.CheckConstraint("kind IN ('before','after')", name="ck_case_photo_kind"),
    )
    op.create_index("ix_case_photo_report_id", "case_photo", ["report_id", "id"])

    op.create_table(
        "notification",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("person_id", sa.Integer, _fk("person_id", "person", "CASCADE", "notification")),
        sa.Column("department_id", sa.Integer, _fk("department_id", "department", "CASCADE", "notification")),
        sa.Column("report_id", sa.Integer, _fk("report_id", "report", "CASCADE", "notification"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("detail", JSONB),
        sa.Column("dedupe", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_notification"),
        sa.CheckConstraint("(person_id IS NULL) <> (department_id IS NULL)", name="ck_notification_one_recipient"),
        sa.CheckConstraint(
            "kind IN ('assigned','deadline_near','escalated','returned','extension')", name="ck_notification_kind"
        ),
    )
    op.create_index("ix_notification_person_id", "notification", ["person_id", "id"])
    op.create_index("ix_notification_department_id", "notification", ["department_id", "id"])
    op.create_index("uq_notification_dedupe", "notification", ["dedupe"], unique=True)

    op.create_table(
        "work_calendar_day",
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("workday", sa.Boolean, nullable=False),
        sa.Column("note", sa.Text),
        sa.PrimaryKeyConstraint("day", name="pk_work_calendar_day"),
    )
    op.create_table(
        "work_calendar_year",
        sa.Column("year", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("entered_by", sa.Text),
        sa.Column("entered_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("year", name="pk_work_calendar_year"),
    )


def downgrade() -> None:
    refuse_data_loss(
        revision,
        tables=("work_calendar_year", "work_calendar_day", "notification", "case_photo", "case_event"),
        columns=tuple(("report", c) for c in CASE_COLUMNS),
        rows=(
            (
                "report",
                "status IN ('rejected', 'merged', 'returned', 'suspended')",
                "reports in a state the old workflow lacks",
            ),
        ),
    )
    op.drop_table("work_calendar_year")
    op.drop_table("work_calendar_day")
    op.drop_table("notification")
    op.drop_table("case_photo")
    op.drop_table("case_event")
    op.execute("DROP FUNCTION case_jurisdiction(text, integer, geometry)")
    for name in (
        "ix_report_recurrence_of_id",
        "ix_report_merged_into_id",
        "ix_report_due_dispatched",
        "ix_report_queue",
        "ix_report_escalated_open",
        "ix_report_assignee_department_open",
        "ix_report_assignee_open",
        "ix_report_jurisdiction_id",
        "uq_report_client_id",
    ):
        op.drop_index(name, table_name="report")
    op.drop_constraint("ck_report_merged", "report", type_="check")
    op.drop_constraint("ck_report_escalation_level", "report", type_="check")
    for column in (
        "updated_at",
        "resume_status",
        "suspended_at",
        "merged_into_id",
        "recurrence_of_id",
        "rework_count",
        "escalated_at",
        "escalated_person_id",
        "escalation_level",
        "reporter_user_id",
        "assigned_at",
        "assignee_department_id",
        "assignee_person_id",
        "assigned_segment_id",
        "assigned_id",
        "assigned_type",
        "jurisdiction_id",
        "client_id",
        "version",
    ):
        op.drop_column("report", column)
    # the old statuses only: what the new workflow states meant, as near as they go
    op.execute("UPDATE report SET status = 'closed' WHERE status IN ('rejected', 'merged')")
    op.execute("UPDATE report SET status = 'accepted' WHERE status IN ('returned', 'suspended')")
    op.drop_constraint("ck_report_status", "report", type_="check")
    op.create_check_constraint("ck_report_status", "report", f"status IN ({OLD_STATUSES})")
