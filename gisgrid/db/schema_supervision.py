"""The schema's supervision and frontage tables (inspection rounds, scores, patrol check-ins, published
rankings; frontage units, agreements, signboards, red and black lists), on the one metadata of
:mod:`gisgrid.db.schema`, which imports this module so that every table is always registered."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gisgrid.db.schema import Base, _geometry, gist


# --- supervision: inspection rounds (migration 0014_inspections) ---------------------------------
class InspectionChecklistItem(Base):
    """What a finding costs: per problem found, more when not fixed by its deadline, more when reported before."""

    __tablename__ = "inspection_checklist_item"
    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("category.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.Text)
    name_en: Mapped[str | None] = mapped_column(sa.Text)
    found = mapped_column(sa.Numeric(6, 2), server_default="0.2", nullable=False)
    overdue = mapped_column(sa.Numeric(6, 2), server_default="0.5", nullable=False)
    repeat = mapped_column(sa.Numeric(6, 2), server_default="1.0", nullable=False)
    active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    __table_args__ = (
        sa.CheckConstraint(
            "found >= 0 AND overdue >= 0 AND repeat >= 0 AND found <= 100 AND overdue <= 100 AND repeat <= 100",
            name="deductions",
        ),
        sa.Index("ix_inspection_checklist_item_category_id", "category_id"),
    )


class InspectionRound(Base):
    """A planned inspection round: 督查 (announced) or 暗访 (unannounced), its period, scope and sample."""

    __tablename__ = "inspection_round"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(12))
    name: Mapped[str] = mapped_column(sa.Text)
    period_start: Mapped[dt.date] = mapped_column(sa.Date)
    period_end: Mapped[dt.date] = mapped_column(sa.Date)
    scope_kind: Mapped[str] = mapped_column(sa.String(8))
    scope_ids: Mapped[list[int]] = mapped_column(ARRAY(sa.Integer))
    jurisdiction_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jurisdiction.id", ondelete="SET NULL"))
    sample_kind: Mapped[str | None] = mapped_column(sa.String(8))
    sample_size: Mapped[int | None] = mapped_column(sa.Integer)
    seed: Mapped[int | None] = mapped_column(sa.BigInteger)
    note: Mapped[str | None] = mapped_column(sa.Text)
    created_by_user_id: Mapped[int | None] = mapped_column(sa.Integer)
    created_by: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    ended_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    ended_by: Mapped[str | None] = mapped_column(sa.Text)
    rule: Mapped[dict | None] = mapped_column(JSONB)
    __table_args__ = (
        sa.CheckConstraint("kind IN ('announced','unannounced')", name="kind"),
        sa.CheckConstraint("period_end >= period_start", name="period"),
        sa.CheckConstraint("scope_kind IN ('town','street','cell')", name="scope_kind"),
        sa.CheckConstraint(
            "(sample_kind IS NULL AND sample_size IS NULL AND seed IS NULL) OR "
            "(sample_kind IN ('segment','cell') AND sample_size > 0 AND seed IS NOT NULL)",
            name="sample",
        ),
        sa.Index("ix_inspection_round_period", "period_end", "period_start"),
    )


class InspectionInspector(Base):
    __tablename__ = "inspection_inspector"
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("inspection_round.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    __table_args__ = (sa.Index("ix_inspection_inspector_user_id", "user_id"),)


class InspectionTarget(Base):
    """A unit a round covers: the whole scope, or the units drawn for its sample (``rank`` in the draw)."""

    __tablename__ = "inspection_target"
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("inspection_round.id", ondelete="CASCADE"), primary_key=True)
    unit_kind: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    rank: Mapped[int | None] = mapped_column(sa.Integer)
    __table_args__ = (sa.CheckConstraint("unit_kind IN ('segment','cell')", name="unit_kind"),)


class InspectionFinding(Base):
    """A finding: the case it became, its checklist item, and the units it counts against (frozen at recording)."""

    __tablename__ = "inspection_finding"
    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("inspection_round.id", ondelete="CASCADE"))
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("report.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("inspection_checklist_item.id", ondelete="RESTRICT"))
    inspector_user_id: Mapped[int | None] = mapped_column(sa.Integer)
    found_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    repeat_of_id: Mapped[int | None] = mapped_column(sa.Integer)
    segment_id: Mapped[int | None] = mapped_column(sa.Integer)
    street_id: Mapped[int | None] = mapped_column(sa.Integer)
    cell_id: Mapped[int | None] = mapped_column(sa.Integer)
    person_id: Mapped[int | None] = mapped_column(sa.Integer)
    department_id: Mapped[int | None] = mapped_column(sa.Integer)
    community_id: Mapped[int | None] = mapped_column(sa.Integer)
    town_id: Mapped[int | None] = mapped_column(sa.Integer)
    __table_args__ = (
        sa.Index("ix_inspection_finding_round_id", "round_id"),
        sa.Index("uq_inspection_finding_report_id", "report_id", unique=True),
    )


class InspectionScore(Base):
    """A round's score of one unit: 100 minus the deductions, never below 0 (written when the round ends)."""

    __tablename__ = "inspection_score"
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("inspection_round.id", ondelete="CASCADE"), primary_key=True)
    unit_kind: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    unit_name: Mapped[str | None] = mapped_column(sa.Text)
    score = mapped_column(sa.Numeric(6, 2), nullable=False)
    deductions = mapped_column(sa.Numeric(8, 2), nullable=False)
    found_deductions = mapped_column(sa.Numeric(8, 2), nullable=False)
    overdue_deductions = mapped_column(sa.Numeric(8, 2), nullable=False)
    repeat_deductions = mapped_column(sa.Numeric(8, 2), nullable=False)
    findings: Mapped[int] = mapped_column(sa.Integer)
    overdue: Mapped[int] = mapped_column(sa.Integer)
    repeats: Mapped[int] = mapped_column(sa.Integer)
    __table_args__ = (
        sa.CheckConstraint(
            "unit_kind IN ('person','department','segment','street','cell','community','town','frontage')",
            name="unit_kind",
        ),
        sa.CheckConstraint("score >= 0 AND score <= 100", name="score"),
        sa.Index("ix_inspection_score_unit", "unit_kind", "unit_id"),
    )


class PatrolCheckin(Base):
    """ "Patrolled here": a patrol member's or inspector's check-in from the phone page (patrol coverage)."""

    __tablename__ = "patrol_checkin"
    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(sa.Integer)
    person_id: Mapped[int | None] = mapped_column(sa.Integer)
    actor_name: Mapped[str] = mapped_column(sa.Text)
    at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    geom = mapped_column(_geometry("POINT"), nullable=False)
    segment_id: Mapped[int | None] = mapped_column(sa.Integer)
    cell_id: Mapped[int | None] = mapped_column(sa.Integer)
    client_id: Mapped[str | None] = mapped_column(sa.String(64))
    __table_args__ = (
        sa.Index("ix_patrol_checkin_at", "at"),
        sa.Index(
            "uq_patrol_checkin_client_id", "client_id", unique=True, postgresql_where=sa.text("client_id IS NOT NULL")
        ),
    )


class RankingSnapshot(Base):
    """A published ranking (:mod:`gisgrid.supervision.ranking_store`): never updated nor deleted (a trigger)."""

    __tablename__ = "ranking_snapshot"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.Text)
    period: Mapped[str] = mapped_column(sa.String(10))
    first_day: Mapped[dt.date] = mapped_column(sa.Date)
    last_day: Mapped[dt.date] = mapped_column(sa.Date)
    timezone: Mapped[str] = mapped_column(sa.Text)
    unit_kind: Mapped[str] = mapped_column(sa.String(12))
    jurisdiction_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jurisdiction.id", ondelete="RESTRICT"))
    rules: Mapped[dict] = mapped_column(JSONB)
    rules_version: Mapped[str] = mapped_column(sa.Text)
    inputs: Mapped[dict] = mapped_column(JSONB)
    case_ids: Mapped[list[int]] = mapped_column(ARRAY(sa.Integer))
    figures: Mapped[dict] = mapped_column(JSONB)
    published_by_user_id: Mapped[int | None] = mapped_column(sa.Integer)
    published_by: Mapped[str] = mapped_column(sa.Text)
    published_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    __table_args__ = (
        sa.CheckConstraint("unit_kind IN ('town','community','street','owner')", name="unit_kind"),
        sa.Index("ix_ranking_snapshot_period", "period", "unit_kind"),
    )


FRONTAGE_UNIT_KINDS = ("shop", "institution", "residential")


class FrontageUnit(Base):
    """A unit under frontage duty (门前三包): a shop, institution or residential building.

    ``location`` is its point or footprint; ``frontage`` the stretch of its
    segment's frontage area in front of it (:mod:`gisgrid.frontage.derive`, or
    drawn in /plan: ``frontage_source = 'planner'``); ``person_id`` its contact."""

    __tablename__ = "frontage_unit"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.String(16))
    uscc: Mapped[str | None] = mapped_column(sa.String(18))
    contact_name: Mapped[str | None] = mapped_column(sa.Text)
    contact_phone: Mapped[str | None] = mapped_column(sa.String(40))
    address: Mapped[str | None] = mapped_column(sa.Text)
    segment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("segment.id", ondelete="SET NULL"))
    person_id: Mapped[int | None] = mapped_column(sa.ForeignKey("person.id", ondelete="SET NULL"))
    location = mapped_column(_geometry("GEOMETRY"), nullable=False)
    frontage = mapped_column(_geometry("MULTIPOLYGON"))
    frontage_source: Mapped[str] = mapped_column(sa.String(8), server_default="derived")
    revision: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    __table_args__ = (
        sa.CheckConstraint("kind IN ('shop','institution','residential')", name="kind"),
        sa.CheckConstraint("frontage_source IN ('derived','planner')", name="frontage_source"),
        sa.Index("ix_frontage_unit_segment_id", "segment_id"),
        gist("frontage_unit", "frontage"),
        gist("frontage_unit", "location"),
        sa.Index("uq_frontage_unit_uscc", "uscc", unique=True, postgresql_where=sa.text("uscc IS NOT NULL")),
    )


class FrontageAgreement(Base):
    """A signed frontage-duty agreement (责任书): valid from ``signed_on`` until ``expires_on`` (exclusive)."""

    __tablename__ = "frontage_agreement"
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("frontage_unit.id", ondelete="CASCADE"))
    signed_on: Mapped[dt.date] = mapped_column(sa.Date)
    expires_on: Mapped[dt.date] = mapped_column(sa.Date)
    duties: Mapped[list[str]] = mapped_column(ARRAY(sa.Text), server_default="{}")
    document_path: Mapped[str | None] = mapped_column(sa.Text)
    document_name: Mapped[str | None] = mapped_column(sa.Text)
    created_by: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    __table_args__ = (
        sa.CheckConstraint("expires_on > signed_on", name="dates"),
        sa.Index("ix_frontage_agreement_unit_id", "unit_id", "expires_on"),
    )


class SignboardPrint(Base):
    """What one printed signboard (街长公示牌) said: a board whose content changed since is printed again."""

    __tablename__ = "signboard_print"
    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(sa.ForeignKey("segment.id", ondelete="CASCADE"))
    content: Mapped[dict] = mapped_column(JSONB)
    digest: Mapped[str] = mapped_column(sa.String(64))
    printed_by: Mapped[str | None] = mapped_column(sa.Text)
    printed_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    __table_args__ = (sa.Index("ix_signboard_print_segment_id", "segment_id", "id"),)


class FrontageRanking(Base):
    """A published monthly red and black list (红黑榜) of frontage units, kept with its rules as published."""

    __tablename__ = "frontage_ranking"
    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(sa.String(7))
    jurisdiction_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jurisdiction.id", ondelete="SET NULL"))
    rules: Mapped[dict] = mapped_column(JSONB)
    rows: Mapped[list] = mapped_column(JSONB)
    published_by: Mapped[str | None] = mapped_column(sa.Text)
    published_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
