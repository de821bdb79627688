"""The schema as geoalchemy2 models.  Alembic revisions in ``migrations/`` mirror it.

Every geometry is stored in geographic coordinates, ``STORAGE_SRID``
(EPSG:4326; CGCS2000 EPSG:4490 input is accepted and treated as identical at
street scale), with a GiST index.  Metric work goes through :mod:`gisgrid.crs`.
"""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from gisgrid.crs import STORAGE_SRID


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def _geometry(kind: str) -> Geometry:
    # Indexes are declared explicitly (GiST) so that models and migrations agree.
    return Geometry(kind, srid=STORAGE_SRID, spatial_index=False)


def gist(table: str, column: str = "geom") -> sa.Index:
    return sa.Index(f"ix_{table}_{column}_gist", column, postgresql_using="gist")


class JurisdictionLevel(str, enum.Enum):
    county = "county"  # 县/区, 6-digit division code
    town = "town"  # 乡镇/街道, 9 digits
    community = "community"  # 社区/村, 12 digits


class TargetType(str, enum.Enum):
    jurisdiction = "jurisdiction"
    street = "street"
    segment = "segment"
    cell = "cell"
    department = "department"


class Role(str, enum.Enum):
    general_chief = "总街长"
    first_chief = "一级街长"
    second_chief = "二级街长"
    segment_chief = "段长"
    grid_worker = "网格员"
    frontage_unit = "门前三包"


ROLE_ORDER = [Role.segment_chief, Role.second_chief, Role.first_chief, Role.general_chief]


class Jurisdiction(Base):
    """A county (县/区), town (乡镇/街道) or community (社区/村) with its division code."""

    __tablename__ = "jurisdiction"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(20), unique=True)
    level: Mapped[str] = mapped_column(sa.String(12))
    name: Mapped[str] = mapped_column(sa.Text)
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jurisdiction.id", ondelete="SET NULL"))
    metric_epsg: Mapped[int | None] = mapped_column(sa.Integer)
    #: IANA time zone of the local day here; NULL: the parent's, else the ``timezone`` setting.
    timezone: Mapped[str | None] = mapped_column(sa.Text)
    geom = mapped_column(_geometry("MULTIPOLYGON"), nullable=False)
    parent = relationship("Jurisdiction", remote_side=[id])
    __table_args__ = (
        sa.CheckConstraint("level IN ('county','town','community')", name="level"),
        gist("jurisdiction"),
    )


class Department(Base):
    """A body that can own targets or receive routed categories (e.g. 城管执法局)."""

    __tablename__ = "department"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.Text)
    phone: Mapped[str | None] = mapped_column(sa.String(40))


class Person(Base):
    __tablename__ = "person"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    phone: Mapped[str | None] = mapped_column(sa.String(40))
    title: Mapped[str | None] = mapped_column(sa.Text)
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id", ondelete="SET NULL"))


class Street(Base):
    __tablename__ = "street"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    aliases: Mapped[list[str]] = mapped_column(ARRAY(sa.Text), server_default="{}")
    road_class: Mapped[str | None] = mapped_column(sa.String(40))
    jurisdiction_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jurisdiction.id", ondelete="SET NULL"))
    source_id: Mapped[str | None] = mapped_column(sa.String(60))
    #: a shopping street: the audit expects frontage units to answer for its frontage
    commercial: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    geom = mapped_column(_geometry("MULTILINESTRING"), nullable=False)
    __table_args__ = (gist("street"), sa.Index("ix_street_name", "name"))


class Building(Base):
    """A building footprint, drawn on gisgrid's own basemap at street zooms (``gisgrid import buildings``)."""

    __tablename__ = "building"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.Text)
    kind: Mapped[str | None] = mapped_column(sa.String(40))  # the survey's type, e.g. OSM's building=*
    source_id: Mapped[str | None] = mapped_column(sa.String(60))
    jurisdiction_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jurisdiction.id", ondelete="SET NULL"))
    geom = mapped_column(_geometry("MULTIPOLYGON"), nullable=False)
    __table_args__ = (gist("building"),)


class Segment(Base):
    """A piece of a street with its own 段长, e.g. 人民路东段; ``area`` is its frontage polygon."""

    __tablename__ = "segment"
    id: Mapped[int] = mapped_column(primary_key=True)
    street_id: Mapped[int] = mapped_column(sa.ForeignKey("street.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    name: Mapped[str] = mapped_column(sa.Text)
    from_name: Mapped[str | None] = mapped_column(sa.Text)
    to_name: Mapped[str | None] = mapped_column(sa.Text)
    road_class: Mapped[str | None] = mapped_column(sa.String(40))
    length_m: Mapped[float | None] = mapped_column(sa.Float)
    geom = mapped_column(_geometry("LINESTRING"), nullable=False)  # centerline
    area = mapped_column(_geometry("MULTIPOLYGON"))
    revision: Mapped[int] = mapped_column(sa.Integer, server_default="1")  # bumped by each /plan save
    __table_args__ = (gist("segment"), gist("segment", "area"), sa.Index("ix_segment_street_id", "street_id"))


class GridCell(Base):
    """A unit grid cell (单元网格), code = division code + sequence."""

    __tablename__ = "grid_cell"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    jurisdiction_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jurisdiction.id", ondelete="SET NULL"))
    geom = mapped_column(_geometry("MULTIPOLYGON"), nullable=False)
    revision: Mapped[int] = mapped_column(sa.Integer, server_default="1")  # bumped by each /plan save
    __table_args__ = (gist("grid_cell"),)


class PlanVersion(Base):
    """One unit (cell or segment area) after one save in the /plan editor.

    ``geom`` is NULL when the save removed the unit (merged into another, or
    deleted).  ``edit_id`` groups the rows of one save (a split writes one row
    per piece); ``revision`` is the unit's revision after the save.
    """

    __tablename__ = "plan_version"
    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    edit_id: Mapped[int] = mapped_column(sa.BigInteger)
    layer: Mapped[str] = mapped_column(sa.String(8))
    unit_id: Mapped[int] = mapped_column(sa.Integer)
    unit_code: Mapped[str | None] = mapped_column(sa.Text)
    revision: Mapped[int] = mapped_column(sa.Integer)
    action: Mapped[str] = mapped_column(sa.String(12))
    jurisdiction_id: Mapped[int | None] = mapped_column(sa.Integer)
    saved_by: Mapped[str | None] = mapped_column(sa.Text)
    saved_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    reason: Mapped[str | None] = mapped_column(sa.Text)
    geom = mapped_column(_geometry("MULTIPOLYGON"))
    __table_args__ = (
        sa.CheckConstraint("layer IN ('cell','segment')", name="layer"),
        sa.Index("ix_plan_version_unit", "layer", "unit_id", "revision"),
    )


class OwnerAssignment(Base):
    """Who (person or department) owns which target in which role, between two dates.

    ``valid_to`` is exclusive and NULL while current, so the owner on any past
    date is ``valid_from <= d AND (valid_to IS NULL OR d < valid_to)``: SQL
    function ``owner_on(d)`` (:mod:`gisgrid.db.sql`), in memory
    :mod:`gisgrid.ownership.history`.
    """

    __tablename__ = "owner_assignment"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int | None] = mapped_column(sa.ForeignKey("person.id", ondelete="CASCADE"))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id", ondelete="CASCADE"))
    target_type: Mapped[str] = mapped_column(sa.String(16))
    target_id: Mapped[int] = mapped_column(sa.Integer)
    role: Mapped[str] = mapped_column(sa.String(16))
    valid_from: Mapped[dt.date] = mapped_column(sa.Date)
    valid_to: Mapped[dt.date | None] = mapped_column(sa.Date)
    __table_args__ = (
        sa.CheckConstraint("(person_id IS NULL) <> (department_id IS NULL)", name="one_owner"),
        sa.CheckConstraint("target_type IN ('jurisdiction','street','segment','cell')", name="target_type"),
        sa.CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="dates"),
        sa.Index("ix_owner_assignment_target", "target_type", "target_id", "valid_from"),
    )


class Category(Base):
    """A problem category (CJ/T 214 style code) with its routing department and deadline (处置时限)."""

    __tablename__ = "category"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    name: Mapped[str] = mapped_column(sa.Text)
    name_en: Mapped[str | None] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.String(10))  # event | facility
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id", ondelete="SET NULL"))
    deadline_hours: Mapped[float] = mapped_column(sa.Float)
    working_time: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    routing: Mapped[dict] = mapped_column(JSONB, server_default=sa.text("'{}'::jsonb"))
    #: 门前三包: a report of this category in a unit's frontage goes to the unit (migration 0014_frontage)
    frontage_duty: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    #: Open311 (migration 0014): the service's group and keywords, and its definition's attributes.
    service_group: Mapped[str | None] = mapped_column(sa.Text)
    keywords: Mapped[str | None] = mapped_column(sa.Text)
    attributes: Mapped[list] = mapped_column(JSONB, server_default=sa.text("'[]'::jsonb"))
    __table_args__ = (sa.CheckConstraint("kind IN ('event','facility')", name="kind"),)


REPORT_STATUSES = (
    "reported",
    "accepted",
    "rejected",
    "dispatched",
    "returned",
    "handled",
    "verified",
    "suspended",
    "closed",
    "merged",
)
#: Case states in which the assignee holds the case (the chief's list); as migration 0011.
ASSIGNEE_STATES = ("dispatched", "handled", "suspended")
#: Case states in which the dispatcher holds the case (the queue).
QUEUE_STATES = ("reported", "accepted", "returned")


def _in(values) -> str:
    return "status IN (" + ",".join(f"'{v}'" for v in values) + ")"


class Report(Base):
    """A reported problem with its location, and the case (问题) it is: its workflow state, assignee,
    deadline and trail (:mod:`gisgrid.cases`; migration 0011 says why a case is a report row).

    Its routing history is in :class:`ReportAssignment` (the latest row: database view
    ``report_current``); who must act now is ``assignee_*``.  A report merged into another
    case has ``merged_into_id`` and the status ``merged``."""

    __tablename__ = "report"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(sa.String(64))
    geom = mapped_column(_geometry("POINT"))
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("category.id", ondelete="SET NULL"))
    reported_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    #: The deadline (处置时限), set when the report is stored by :func:`gisgrid.cases.workflow.deadlines`.
    due_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    source: Mapped[str | None] = mapped_column(sa.String(40))
    address: Mapped[str | None] = mapped_column(sa.Text)
    description: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(12), server_default="reported")
    is_demo: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    # --- the case (migration 0011) ---
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    client_id: Mapped[str | None] = mapped_column(sa.String(64))
    jurisdiction_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jurisdiction.id", ondelete="SET NULL"))
    assigned_type: Mapped[str | None] = mapped_column(sa.String(16))
    assigned_id: Mapped[int | None] = mapped_column(sa.Integer)
    assigned_segment_id: Mapped[int | None] = mapped_column(sa.Integer)
    assignee_person_id: Mapped[int | None] = mapped_column(sa.ForeignKey("person.id", ondelete="SET NULL"))
    assignee_department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id", ondelete="SET NULL"))
    assigned_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    reporter_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    escalation_level: Mapped[int] = mapped_column(sa.SmallInteger, server_default="0")
    escalated_person_id: Mapped[int | None] = mapped_column(sa.ForeignKey("person.id", ondelete="SET NULL"))
    escalated_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    rework_count: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    recurrence_of_id: Mapped[int | None] = mapped_column(sa.ForeignKey("report.id", ondelete="SET NULL"))
    merged_into_id: Mapped[int | None] = mapped_column(sa.ForeignKey("report.id", ondelete="SET NULL"))
    suspended_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    resume_status: Mapped[str | None] = mapped_column(sa.String(12))
    updated_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    #: The inspection round a finding's case came from (migration 0014_inspections).
    inspection_round_id: Mapped[int | None] = mapped_column(sa.ForeignKey("inspection_round.id", ondelete="SET NULL"))
    # --- frontage duty and the public channel (migration 0014_frontage) ---
    frontage_unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("frontage_unit.id", ondelete="SET NULL"))
    public_token: Mapped[str | None] = mapped_column(sa.String(48))
    #: What an Open311 client sent with the request (migration 0014).
    media_url: Mapped[str | None] = mapped_column(sa.Text)
    attributes: Mapped[dict | None] = mapped_column(JSONB)
    # --- where it lies, set by the trigger report_bin (migration 0014_map_bins) ---
    place_id: Mapped[int | None] = mapped_column(sa.Integer)  # the most specific jurisdiction holding the point
    hex_epsg: Mapped[int | None] = mapped_column(sa.Integer)  # metric CRS of the 100 m hexagon below
    hex_q: Mapped[int | None] = mapped_column(sa.Integer)
    hex_r: Mapped[int | None] = mapped_column(sa.Integer)
    __table_args__ = (
        sa.CheckConstraint(_in(REPORT_STATUSES), name="status"),
        sa.CheckConstraint("escalation_level BETWEEN 0 AND 4", name="escalation_level"),
        sa.CheckConstraint(
            "(status = 'merged') = (merged_into_id IS NOT NULL) AND merged_into_id <> id", name="merged"
        ),
        gist("report"),
        # the duplicate search of intake (every new case, an Open311 POST too) looks at open cases only:
        # a tenth of a running deployment's (migration 0014_open_cases_index)
        sa.Index(
            "ix_report_open_geom",
            "geom",
            postgresql_using="gist",
            postgresql_where=sa.text("status NOT IN ('closed', 'rejected', 'merged')"),
        ),
        sa.Index("ix_report_reported_at", "reported_at"),
        sa.Index("uq_report_client_id", "client_id", unique=True, postgresql_where=sa.text("client_id IS NOT NULL")),
        sa.Index("ix_report_jurisdiction_id", "jurisdiction_id"),
        sa.Index(
            "ix_report_assignee_open", "assignee_person_id", "due_at", postgresql_where=sa.text(_in(ASSIGNEE_STATES))
        ),
        sa.Index(
            "ix_report_assignee_department_open",
            "assignee_department_id",
            "due_at",
            postgresql_where=sa.text(_in(ASSIGNEE_STATES)),
        ),
        sa.Index(
            "ix_report_escalated_open",
            "escalated_person_id",
            "due_at",
            postgresql_where=sa.text(_in(ASSIGNEE_STATES) + " AND escalated_person_id IS NOT NULL"),
        ),
        sa.Index("ix_report_queue", "jurisdiction_id", "reported_at", postgresql_where=sa.text(_in(QUEUE_STATES))),
        sa.Index("ix_report_due_dispatched", "due_at", postgresql_where=sa.text("status = 'dispatched'")),
        sa.Index("ix_report_merged_into_id", "merged_into_id", postgresql_where=sa.text("merged_into_id IS NOT NULL")),
        sa.Index(
            "ix_report_recurrence_of_id", "recurrence_of_id", postgresql_where=sa.text("recurrence_of_id IS NOT NULL")
        ),
        # an import finds a report again by its id and source (migration 0013; not unique, see there)
        sa.Index("ix_report_external_id", "external_id", "source", postgresql_where=sa.text("external_id IS NOT NULL")),
        sa.Index(
            "ix_report_inspection_round_id",
            "inspection_round_id",
            postgresql_where=sa.text("inspection_round_id IS NOT NULL"),
        ),
        sa.Index(
            "ix_report_frontage_unit_id", "frontage_unit_id", postgresql_where=sa.text("frontage_unit_id IS NOT NULL")
        ),
        sa.Index(
            "ix_report_place",
            "place_id",
            "reported_at",
            postgresql_include=["category_id", "status", "due_at", "hex_epsg", "hex_q", "hex_r"],
        ),
        sa.Index(
            "ix_report_open_due", "due_at", postgresql_where=sa.text("status NOT IN ('closed', 'rejected', 'merged')")
        ),
    )


class ReportAssignment(Base):
    """Every assignment ever made for a report (the report row holds the current one)."""

    __tablename__ = "report_assignment"
    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    report_id: Mapped[int] = mapped_column(sa.Integer)  # no FK: see migration 0004 (a trigger cascades deletes)
    assigned_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    ruleset_version: Mapped[str] = mapped_column(sa.String(24))
    rule: Mapped[str] = mapped_column(sa.String(24))
    target_type: Mapped[str | None] = mapped_column(sa.String(16))
    target_id: Mapped[int | None] = mapped_column(sa.Integer)
    segment_id: Mapped[int | None] = mapped_column(sa.Integer)
    distance_m: Mapped[float | None] = mapped_column(sa.Float)
    owner_person_id: Mapped[int | None] = mapped_column(sa.Integer)
    owner_department_id: Mapped[int | None] = mapped_column(sa.Integer)
    owner_name: Mapped[str | None] = mapped_column(sa.Text)
    chain: Mapped[str | None] = mapped_column(sa.Text)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    __table_args__ = (sa.Index("ix_report_assignment_report_id", "report_id", "id"),)


class DataVersion(Base):
    """Bumped by triggers whenever routing data changes; caches of the assignment index compare it."""

    __tablename__ = "data_version"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")


class ImportLog(Base):
    """A file ``gisgrid import`` stored: recognised by its SHA-256 ``checksum`` when it comes again."""

    __tablename__ = "import_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    layer: Mapped[str] = mapped_column(sa.String(16))
    checksum: Mapped[str] = mapped_column(sa.String(64))
    file_name: Mapped[str] = mapped_column(sa.Text)
    rows: Mapped[int] = mapped_column(sa.Integer)
    inserted: Mapped[int] = mapped_column(sa.Integer)
    updated: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    rejected: Mapped[int] = mapped_column(sa.Integer)
    imported_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    __table_args__ = (sa.Index("ix_import_log_checksum", "layer", "checksum"),)


JOB_STATUSES = ("queued", "running", "done", "failed")


class Job(Base):
    """A background job (:mod:`gisgrid.jobs`): queued → running → done | failed.

    ``progress`` is percent done (0–100) and ``message`` what the job does now, an
    English text with ``%(name)s`` fields filled from ``message_args`` (so that
    a page can translate it); ``result`` the kind's JSON answer;
    ``error`` a readable reason (never a traceback) and ``error_detail`` the
    error's fields, so that a page can word it in the user's language.
    ``attempts`` counts starts: a job interrupted by a crash is queued again
    while ``attempts < max_attempts``, else it fails saying so.
    """

    __tablename__ = "job"
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    params: Mapped[dict] = mapped_column(JSONB, server_default=sa.text("'{}'::jsonb"))
    status: Mapped[str] = mapped_column(sa.String(8), server_default="queued")
    progress: Mapped[float] = mapped_column(sa.Float, server_default="0")
    message: Mapped[str | None] = mapped_column(sa.Text)
    message_args: Mapped[dict | None] = mapped_column(JSONB)
    result: Mapped[dict | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(sa.Text)
    error_detail: Mapped[dict | None] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    max_attempts: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    worker: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    started_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    #: The user who queued the job: only they (and admins) see it.  None: queued by the system.
    user_id: Mapped[int | None] = mapped_column(sa.Integer)
    __table_args__ = (
        sa.CheckConstraint("status IN ('queued','running','done','failed')", name="status"),
        sa.CheckConstraint("progress >= 0 AND progress <= 100", name="progress"),
        sa.CheckConstraint("max_attempts >= 1", name="max_attempts"),
        sa.Index("ix_job_queued", "created_at", postgresql_where=sa.text("status IN ('queued','running')")),
        sa.Index("ix_job_user_id", "user_id"),
    )


#: Roles a user account can be granted (see :mod:`gisgrid.accounts.roles`); migration 0010 copies this list.
ACCOUNT_ROLES = (
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


class UserAccount(Base):
    """A login of a :class:`Person` (argon2id hash; locked for a while after repeated failures).

    ``session_version`` is part of every session's id: bumping it (password
    change, disable) ends the sessions already open.
    """

    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64))
    person_id: Mapped[int] = mapped_column(sa.ForeignKey("person.id", ondelete="RESTRICT"))
    password_hash: Mapped[str] = mapped_column(sa.Text)
    active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    must_change_password: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    session_version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    failed_logins: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    locked_until: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_login_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    password_changed_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    __table_args__ = (
        sa.CheckConstraint("username = lower(username) AND username ~ '^[a-z0-9][a-z0-9._@-]*$'", name="username"),
        sa.Index("uq_user_account_username", "username", unique=True),
        sa.Index("ix_user_account_person_id", "person_id"),
    )


class RoleGrant(Base):
    """A role held by a user in a jurisdiction subtree (NULL: everywhere) or for a department.

    What a chief (街长, 段长) or grid worker sees is not granted: it follows
    :class:`OwnerAssignment` on the day asked about.
    """

    __tablename__ = "role_grant"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(sa.String(16))
    jurisdiction_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jurisdiction.id", ondelete="CASCADE"))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id", ondelete="CASCADE"))
    granted_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    __table_args__ = (
        sa.CheckConstraint("role IN (" + ", ".join(f"'{r}'" for r in ACCOUNT_ROLES) + ")", name="role"),
        sa.CheckConstraint("role <> 'department' OR department_id IS NOT NULL", name="department"),
        sa.Index("ix_role_grant_user_id", "user_id"),
    )


class ApiKey(Base):
    """A key of a machine client, acting as its user (roles and sight included).

    Only the SHA-256 digest of the secret is kept; ``prefix`` (shown in lists)
    finds the row.  Revoking sets ``revoked_at`` and keeps the row.
    """

    __tablename__ = "api_key"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(sa.String(16))
    secret_sha256: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    __table_args__ = (
        sa.Index("uq_api_key_prefix", "prefix", unique=True),
        sa.Index("ix_api_key_user_id", "user_id"),
    )


class AuditLog(Base):
    """Who did what, when, with the ids before and after.  Append-only (a trigger refuses UPDATE,
    DELETE and TRUNCATE); no foreign keys, so history outlives the users and units it names."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    actor_user_id: Mapped[int | None] = mapped_column(sa.Integer)
    actor_person_id: Mapped[int | None] = mapped_column(sa.Integer)
    actor_name: Mapped[str] = mapped_column(sa.Text)
    action: Mapped[str] = mapped_column(sa.String(40))
    target_type: Mapped[str | None] = mapped_column(sa.String(24))
    target_id: Mapped[str | None] = mapped_column(sa.Text)
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)
    detail: Mapped[dict | None] = mapped_column(JSONB)
    address: Mapped[str | None] = mapped_column(sa.String(64))
    __table_args__ = (
        sa.Index("ix_audit_log_at", "at"),
        sa.Index("ix_audit_log_actor_user_id", "actor_user_id", "at"),
        sa.Index("ix_audit_log_target", "target_type", "target_id"),
    )


class CaseEvent(Base):
    """One step of a case (:mod:`gisgrid.cases`): who (from the session, never the request), when,
    from which state to which, the note, the reason and the step's details (override, hours, ids)."""

    __tablename__ = "case_event"
    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("report.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    actor_user_id: Mapped[int | None] = mapped_column(sa.Integer)
    actor_person_id: Mapped[int | None] = mapped_column(sa.Integer)
    actor_name: Mapped[str] = mapped_column(sa.Text)
    action: Mapped[str] = mapped_column(sa.String(24))
    from_status: Mapped[str | None] = mapped_column(sa.String(12))
    to_status: Mapped[str | None] = mapped_column(sa.String(12))
    version: Mapped[int | None] = mapped_column(sa.Integer)
    note: Mapped[str | None] = mapped_column(sa.Text)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    detail: Mapped[dict | None] = mapped_column(JSONB)
    __table_args__ = (
        sa.Index("ix_case_event_report_id", "report_id", "id"),
        sa.Index("ix_case_event_actor_user_id", "actor_user_id", "at"),
    )


class CasePhoto(Base):
    """A photo of a case: the file under ``<var_dir>/photos`` (EXIF stripped) and its thumbnail."""

    __tablename__ = "case_photo"
    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("report.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("case_event.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(sa.String(8))
    path: Mapped[str] = mapped_column(sa.Text)
    thumb_path: Mapped[str] = mapped_column(sa.Text)
    content_type: Mapped[str] = mapped_column(sa.String(16))
    bytes: Mapped[int] = mapped_column(sa.Integer)
    width: Mapped[int] = mapped_column(sa.Integer)
    height: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    uploaded_by_user_id: Mapped[int | None] = mapped_column(sa.Integer)
    uploaded_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    __table_args__ = (
        sa.CheckConstraint("kind IN ('before','after')", name="kind"),
        sa.Index("ix_case_photo_report_id", "report_id", "id"),
    )


class Notification(Base):
    """An inbox row for a person or a department: a case assigned, a deadline near, an escalation.

    ``dedupe`` (unique) keeps the periodic checks from telling the same thing twice."""

    __tablename__ = "notification"
    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    person_id: Mapped[int | None] = mapped_column(sa.ForeignKey("person.id", ondelete="CASCADE"))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id", ondelete="CASCADE"))
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("report.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    detail: Mapped[dict | None] = mapped_column(JSONB)
    dedupe: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    read_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    __table_args__ = (
        sa.CheckConstraint("(person_id IS NULL) <> (department_id IS NULL)", name="one_recipient"),
        sa.CheckConstraint("kind IN ('assigned','deadline_near','escalated','returned','extension')", name="kind"),
        sa.Index("ix_notification_person_id", "person_id", "id"),
        sa.Index("ix_notification_department_id", "department_id", "id"),
        sa.Index("uq_notification_dedupe", "dedupe", unique=True),
    )


class WorkCalendarDay(Base):
    """A day of an entered year that differs from Monday–Friday: a holiday, or a make-up working day (调休)."""

    __tablename__ = "work_calendar_day"
    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    workday: Mapped[bool] = mapped_column(sa.Boolean)
    note: Mapped[str | None] = mapped_column(sa.Text)


class WorkCalendarYear(Base):
    """A year whose official holidays and make-up days an admin entered (they override the calendar package)."""

    __tablename__ = "work_calendar_year"
    year: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    entered_by: Mapped[str | None] = mapped_column(sa.Text)
    entered_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class RateLimit(Base):
    """A rate-limit counter shared by every process (:mod:`gisgrid.db.ratelimits`): hits in the window that
    ends at ``expires_at``.  Unlogged: a counter lost in a crash only forgives one window."""

    __tablename__ = "rate_limit"
    key: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    hits: Mapped[int] = mapped_column(sa.Integer)
    expires_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    __table_args__ = ({"prefixes": ["UNLOGGED"]},)


# the supervision and frontage tables, on the same metadata (imported last: they build on the classes above)
from gisgrid.db import schema_supervision  # noqa: E402, F401
