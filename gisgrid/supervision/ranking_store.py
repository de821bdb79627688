"""Rankings from the database: the case facts of a period, rankings, trends, published snapshots.

The rules live elsewhere, each once: open/closed in :mod:`gisgrid.db.sql`
and :mod:`gisgrid.cases.workflow` (their in-memory twin), working time in
:mod:`gisgrid.cases.workflow`, the indicators in
:mod:`gisgrid.supervision.indicators`, the score, grades and order in
:mod:`gisgrid.supervision.ranking`; what a user may see in
:mod:`gisgrid.accounts.scope`.  This module only reads and writes.

Which unit a case counts for
    ``owner``: the person or department it is assigned to (``report.assignee_*``,
    ``person:N`` / ``department:N``); ``street``: the street of its routed
    segment; ``community`` and ``town``: its jurisdiction (``report.jurisdiction_id``)
    and the town above it.  A ranking covers the cases of one jurisdiction's
    subtree.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa

from gisgrid.accounts.scope import Scope
from gisgrid.accounts.users import Actor
from gisgrid.cases import workflow as wf
from gisgrid.cases.calendar import working_time
from gisgrid.config import Settings
from gisgrid.db import sql
from gisgrid.errors import InputError, NotFound
from gisgrid.supervision import indicators as ind
from gisgrid.supervision.ranking import Rules, compare, rank_units

LOGGER = logging.getLogger(__name__)

#: Where inspection scores come from: (connection, period, unit kind) → rows of unit_id, round_id, score[, weight].
InspectionProvider = Callable[[sa.Connection, ind.Period, str], pd.DataFrame]


def round_scores_provider(conn: sa.Connection, period: ind.Period, unit_kind: str) -> pd.DataFrame:
    """The scores of the inspection rounds (督查 / 暗访) ended within ``period``, per unit of ``unit_kind``
    (:func:`gisgrid.supervision.inspections.round_scores`): ``unit_id``, ``round_id``, ``score`` and
    ``order`` (1 for the round ending first in the period, …), which ordered weights such as 40 / 60
    read."""
    from gisgrid.supervision.inspections import round_scores

    kinds = ("person", "department") if unit_kind == "owner" else (unit_kind,)
    rows = []
    for kind in kinds:
        for r in round_scores(conn, period.first_day, period.last_day, kind):
            uid = f"{kind}:{int(r['unit_id'])}" if unit_kind == "owner" else int(r["unit_id"])
            rows.append({"unit_id": uid, "round_id": int(r["round_id"]), "score": float(r["score"]),
                         "period_end": r["period_end"]})  # fmt: skip
    frame = pd.DataFrame(rows, columns=["unit_id", "round_id", "score", "period_end"])
    if len(frame):
        ends = frame.drop_duplicates("round_id").sort_values(["period_end", "round_id"])["round_id"]
        frame["order"] = frame["round_id"].map({rid: i + 1 for i, rid in enumerate(ends)})
    return frame.drop(columns="period_end")


# --- jurisdictions ---------------------------------------------------------------------------
def jurisdiction_tree(conn: sa.Connection) -> pd.DataFrame:
    """Every jurisdiction: ``id``, ``code``, ``name``, ``level``, ``parent_id``, with its ``town_id`` and
    ``community_id`` (itself or the one above it; missing above that level)."""
    j = pd.read_sql_query(
        sa.text("SELECT id, code, name, level, parent_id FROM jurisdiction ORDER BY id"), conn
    ).set_index("id", drop=False)
    parent = j["parent_id"].to_dict()
    level = j["level"].to_dict()

    def up(i, want):
        seen = 0
        while i is not None and not pd.isna(i) and seen < 20:
            if level.get(int(i)) == want:
                return int(i)
            i = parent.get(int(i))
            seen += 1
        return None

    j["town_id"] = [up(i, "town") for i in j.index]
    j["community_id"] = [up(i, "community") for i in j.index]
    return j


def subtree(tree: pd.DataFrame, root_id: int | None) -> list[int]:
    """Ids of ``root_id`` and every jurisdiction below it (all when None)."""
    if root_id is None:
        return [int(i) for i in tree.index]
    children: dict[int, list[int]] = {}
    for i, p in zip(tree.index, tree["parent_id"]):
        if not pd.isna(p):
            children.setdefault(int(p), []).append(int(i))
    out, todo = [], [int(root_id)]
    while todo:
        i = todo.pop()
        out.append(i)
        todo.extend(children.get(i, ()))
    return sorted(out)


def find_jurisdiction(conn: sa.Connection, scope: Scope | None, code: str | None) -> dict:
    """The jurisdiction with ``code`` (default: the highest the user sees); NotFound outside the user's sight."""
    scope = scope or Scope.everything()
    where, params = scope.sql("jurisdiction", "j"), scope.params()
    if code:
        row = conn.execute(
            sa.text(f"SELECT j.id, j.code, j.name, j.level FROM jurisdiction j WHERE j.code = :code AND {where}"),
            {**params, "code": str(code)},
        ).first()
        if row is None:
            raise NotFound(f"no jurisdiction {code}")
        return dict(row._mapping)
    row = conn.execute(
        sa.text(f"""
        SELECT j.id, j.code, j.name, j.level FROM jurisdiction j WHERE {where}
        ORDER BY CASE j.level WHEN 'county' THEN 0 WHEN 'town' THEN 1 WHEN 'community' THEN 2 ELSE 3 END, j.code
        LIMIT 1"""),
        params,
    ).first()
    if row is None:
        raise NotFound("no jurisdiction in sight")
    return dict(row._mapping)


def jurisdiction_choices(conn: sa.Connection, scope: Scope) -> list[dict]:
    """Counties and towns the user sees (the rankings page's choice of area)."""
    return [
        dict(r._mapping)
        for r in conn.execute(
            sa.text(f"""
            SELECT j.code, j.name, j.level FROM jurisdiction j
            WHERE j.level IN ('county', 'town') AND {scope.sql("jurisdiction", "j")}
            ORDER BY CASE j.level WHEN 'county' THEN 0 ELSE 1 END, j.code"""),
            scope.params(),
        )
    ]


# --- counting in SQL -------------------------------------------------------------------------
def _filter_sql(jids: list[int] | None, unit: tuple[str, object] | None) -> tuple[str, dict]:
    """WHERE fragments (after the period) limiting the cases to a jurisdiction subtree and/or one unit."""
    parts, params = [], {}
    if jids is not None:
        parts.append("r.jurisdiction_id = ANY(:jids)")
        params["jids"] = jids
    if unit is not None:
        kind, uid = unit
        if kind == "owner":
            who, _, num = str(uid).partition(":")
            col = "r.assignee_person_id" if who == "person" else "r.assignee_department_id"
            parts.append(f"{col} = :unit_id")
            params["unit_id"] = int(num)
        elif kind == "street":
            parts.append("g.street_id = :unit_id")
            params["unit_id"] = int(uid)
        else:
            parts.append("r.jurisdiction_id = ANY(:unit_jids)")
            params["unit_jids"] = unit[1]  # the unit's subtree, resolved by the caller
    return "".join(f" AND {p}" for p in parts), params


#: The cases filed in a period (on ``report r``): reported in it, not rejected (不予立案) nor merged.
_FILED = "r.reported_at >= :start AND r.reported_at < :end AND r.status NOT IN ('rejected', 'merged')"
_CASES_SQL = """
    SELECT {keys}, r.id, r.status, r.rework_count, r.reported_at, r.closed_at, r.due_at,
           (NOT {is_open} AND r.status = 'closed' AND (r.closed_at IS NULL OR r.closed_at < {end})) AS closed,
           {recurrence} AS recurrence{period_columns}
    FROM report r{join}
    WHERE {filed}{where}"""
#: Several consecutive periods counted in one pass: each case's period (``pd.i``, 1-based) and its end.
_PERIODS_JOIN = """
    JOIN unnest(CAST(:p_start AS timestamptz[]), CAST(:p_end AS timestamptz[])) WITH ORDINALITY AS pd(start, stop, i)
      ON r.reported_at >= pd.start AND r.reported_at < pd.stop"""
#: A recurrence: the case reopens an earlier case (recurrence_of_id) closed within RECURRENCE_DAYS before it.
_RECURRENCE = """(r.recurrence_of_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM report p WHERE p.id = r.recurrence_of_id AND r.reported_at > p.closed_at
    AND r.reported_at <= p.closed_at + make_interval(days => {days})))"""

_KEYS = {
    "owner": "r.assignee_person_id AS k1, r.assignee_department_id AS k2",
    "street": "g.street_id AS k1, CAST(NULL AS integer) AS k2",
    "community": "r.jurisdiction_id AS k1, CAST(NULL AS integer) AS k2",
    "town": "r.jurisdiction_id AS k1, CAST(NULL AS integer) AS k2",
}


def filed_selection(period: ind.Period, jids: list[int] | None = None) -> tuple[str, str, dict]:
    """The cases a ranking counts: filed in ``period`` in the subtree ``jids`` (all when None).

    Returns the whole condition on ``report r``, the part of it to append to :func:`cases_sql`, and their
    SQLAlchemy parameters (:mod:`gisgrid.supervision.distributed` cuts the cases into id ranges by the
    first and reads each range's facts with the second).
    """
    where, params = _filter_sql(jids, None)
    return _FILED + where, where, {**params, "start": period.start, "end": period.end}


def cases_sql(kind: str, where: str) -> str:
    """The filed cases of a period with their facts, one row each: unit keys ``k1``, ``k2``, ``id``,
    ``status``, ``rework_count``, ``reported_at``, ``closed_at``, ``due_at``, ``closed``, ``recurrence``
    (:func:`case_facts` reads it; ``where`` is appended to the filed-case condition; parameters ``start``
    and ``end``)."""
    return _cases_sql(kind, where)


def _cases_sql(kind: str, where: str, *, recurrence: bool = True, periods: bool = False) -> str:
    """The filed cases of a period, one row each: raw unit keys ``k1``, ``k2`` and the case's facts.

    ``recurrence=False`` leaves the recurrence out (false): its correlated look-up keeps PostgreSQL from
    scanning in parallel, so the rankings count recurrences in a query of their own.  ``periods=True``
    counts several consecutive periods (``:p_start``, ``:p_end``; ``:start``/``:end`` their whole span) in
    one pass: each case gets its period's number ``p_i`` and end ``p_end``, and "closed" means closed
    before its own period's end.
    """
    join = " LEFT JOIN segment g ON g.id = r.assigned_segment_id" if kind == "street" or "g." in where else ""
    rec = _RECURRENCE.format(days=ind.RECURRENCE_DAYS) if recurrence else "false"
    return _CASES_SQL.format(
        keys=_KEYS[kind],
        is_open=sql.report_is_open("r"),
        recurrence=rec,
        filed=_FILED,
        where=where,
        join=join + (_PERIODS_JOIN if periods else ""),
        end="pd.stop" if periods else ":end",
        period_columns=", pd.i AS p_i, pd.stop AS p_end"
        if periods
        else ", 1 AS p_i, CAST(:end AS timestamptz) AS p_end",
    )


def _unit_keys(frame: pd.DataFrame, kind: str, tree: pd.DataFrame) -> pd.Series:
    """The unit of each row from its raw keys (k1, k2): ``person:N``/``department:N``, a street id, the
    community or town of the case's jurisdiction; None where the case counts for no such unit."""
    k1 = pd.to_numeric(frame["k1"], errors="coerce")
    if kind == "owner":
        k2 = pd.to_numeric(frame["k2"], errors="coerce")
        keys = [
            f"person:{int(a)}" if a == a else (f"department:{int(b)}" if b == b else None)
            for a, b in zip(k1.to_numpy(), k2.to_numpy())
        ]
        return pd.Series(keys, index=frame.index, dtype=object)
    if kind == "street":
        return k1.astype("Int64")
    return k1.map(tree[f"{kind}_id"].astype(float).to_dict()).astype("Int64")


def unit_counts(
    conn: sa.Connection,
    period: ind.Period,
    kind: str,
    *,
    tree: pd.DataFrame,
    calendar: wf.WorkingTime,
    jids: list[int] | None = None,
) -> pd.DataFrame:
    """The :data:`~gisgrid.supervision.indicators.COUNT_COLUMNS` of every unit of ``kind`` in ``period``,
    counted in PostgreSQL (one pass over the period's cases, grouped): the SQL form of
    :func:`gisgrid.supervision.indicators.unit_counts`.

    Working hours add up a layout of the period's working days computed by the one rule
    (:func:`gisgrid.cases.workflow.working_layout`, :func:`gisgrid.db.sql.working_position`).
    """
    return periods_unit_counts(conn, [period], kind, tree=tree, calendar=calendar, jids=jids)[0]


def periods_unit_counts(
    conn: sa.Connection,
    periods: list[ind.Period],
    kind: str,
    *,
    tree: pd.DataFrame,
    calendar: wf.WorkingTime,
    jids: list[int] | None = None,
) -> list[pd.DataFrame]:
    """:func:`unit_counts` of each of several consecutive ``periods`` (e.g. the twelve months of a trend),
    counted in one pass over their cases: one frame per period, in order (empty where a period has none).

    A case counts in the period it was filed in, with that period's end as its "due" and "closed" cut-off;
    working positions come from one layout over the whole span, and a difference of two positions does
    not depend on where the layout starts, so the hours equal those counted period by period.
    """
    check_unit_kind(kind)
    where, params = _filter_sql(jids, None)
    layout = wf.working_layout(periods[0].first_day, periods[-1].last_day, calendar, tz=periods[0].tz)
    params.update(sql.working_layout_params(layout))
    whole = params["wt_whole"]
    rep, clo = "EXTRACT(EPOCH FROM c.reported_at)", "EXTRACT(EPOCH FROM c.closed_at)"
    pos_a = sql.working_position("w1", rep, layout["periods"])
    pos_b = sql.working_position("w2", clo, layout["periods"])
    many = len(periods) > 1
    query = f"""
        SELECT c.p_i, c.k1, c.k2, count(*) AS filed, count(*) FILTER (WHERE c.due) AS due,
               count(*) FILTER (WHERE c.closed) AS closed, count(*) FILTER (WHERE c.on_time) AS on_time,
               count(*) FILTER (WHERE c.due AND c.status = 'suspended') AS suspended,
               COALESCE(sum(c.rework_count), 0) AS rework,
               count(*) FILTER (WHERE c.status IN ('handled', 'verified', 'closed')) AS handled,
               0 AS recurrences,
               COALESCE(sum(GREATEST({pos_b} - {pos_a}, 0)) FILTER (WHERE c.timed), 0) AS hours_sum,
               count(*) FILTER (WHERE c.timed AND w1.i IS NOT NULL AND w2.i IS NOT NULL) AS hours_n
        FROM (
            SELECT x.*, (x.due_at IS NULL OR x.due_at < x.p_end OR x.closed) AS due,
                   (x.closed AND (x.due_at IS NULL OR x.closed_at IS NULL OR x.closed_at <= x.due_at)) AS on_time,
                   (x.closed AND x.closed_at IS NOT NULL) AS timed
            FROM ({_cases_sql(kind, where, recurrence=False, periods=many)}) x
        ) c
        {sql.working_day_join("w1", rep, whole_days=whole)}
        {sql.working_day_join("w2", clo, whole_days=whole)}
        GROUP BY c.p_i, c.k1, c.k2"""
    # the few reopened cases (partial index ix_report_recurrence_of_id), counted apart
    recurrences = f"""
        SELECT x.p_i, x.k1, x.k2, count(*) AS recurrences
        FROM ({_cases_sql(kind, where, periods=many)} AND r.recurrence_of_id IS NOT NULL) x
        WHERE x.recurrence GROUP BY x.p_i, x.k1, x.k2"""
    params.update(start=periods[0].start, end=periods[-1].end)
    if many:
        params.update(p_start=[p.start for p in periods], p_end=[p.end for p in periods])
    with sql.no_jit(conn):
        raw = pd.read_sql_query(sa.text(query), conn, params=params)
        rec = pd.read_sql_query(sa.text(recurrences), conn, params=params)
    raw["unit"] = _unit_keys(raw, kind, tree)
    raw = raw[raw["unit"].notna()]
    if len(rec):
        rec["unit"] = _unit_keys(rec, kind, tree)
        rec = rec[rec["unit"].notna()]
    out = []
    for i in range(1, len(periods) + 1):
        counts = raw[raw["p_i"] == i].groupby("unit", sort=True)[list(ind.COUNT_COLUMNS)].sum()
        mine = rec[rec["p_i"] == i] if len(rec) else rec
        if len(mine):
            per_unit = mine.groupby("unit")["recurrences"].sum()
            counts["recurrences"] = per_unit.reindex(counts.index, fill_value=0).astype(np.int64)
        counts.index.name = "unit_id"
        if kind != "owner":
            counts.index = counts.index.astype(np.int64)
        out.append(counts)
    return out


def case_ids(conn: sa.Connection, period: ind.Period, *, jids: list[int] | None = None) -> list[int]:
    """Ids of the cases filed in ``period`` (in the subtree ``jids``): the cases behind a ranking."""
    where, params = _filter_sql(jids, None)
    return [
        int(i)
        for i in conn.execute(
            sa.text(f"SELECT c.id FROM ({_cases_sql('street', where)}) c ORDER BY c.id"),
            {**params, "start": period.start, "end": period.end},
        ).scalars()
    ]


# --- case facts ------------------------------------------------------------------------------
def case_facts(
    conn: sa.Connection,
    period: ind.Period,
    kind: str,
    unit_id,
    *,
    tree: pd.DataFrame,
    calendar: wf.WorkingTime,
    jids: list[int] | None = None,
) -> pd.DataFrame:
    """The facts of one unit's cases filed in ``period`` (see :mod:`gisgrid.supervision.indicators`), one
    row each, with the unit in column ``kind``."""
    unit = (kind, subtree(tree, int(unit_id))) if kind in ("town", "community") else (kind, unit_id)
    where, params = _filter_sql(jids, unit)
    frame = pd.read_sql_query(
        sa.text(_cases_sql(kind, where)), conn, params={**params, "start": period.start, "end": period.end}
    )
    return facts_of_rows(frame, kind, tree=tree, calendar=calendar, period=period)


def facts_of_rows(
    frame: pd.DataFrame, kind: str, *, tree: pd.DataFrame, calendar: wf.WorkingTime, period: ind.Period
) -> pd.DataFrame:
    """The per-case facts (:mod:`gisgrid.supervision.indicators`) of rows of :func:`cases_sql`, with the
    unit of each case in column ``kind``: working hours by the one rule, closure by the in-memory twin of
    the SQL one."""
    f = pd.DataFrame({"id": frame["id"].astype(np.int64)})
    for col in ("reported_at", "closed_at", "due_at"):
        f[col] = pd.to_datetime(frame[col], utc=True)
    f["status"] = frame["status"].astype(object)
    f["rework_count"] = frame["rework_count"].astype(np.int64)
    f["recurrence"] = frame["recurrence"].astype(bool)
    f["closed"] = frame["closed"].astype(bool) & ~wf.open_mask(f["status"])  # the one rule, in memory too
    f["handling_hours"] = np.nan
    timed = f["closed"].to_numpy() & f["closed_at"].notna().to_numpy()
    if timed.any():
        f.loc[timed, "handling_hours"] = wf.working_hours_between(
            f.loc[timed, "reported_at"], f.loc[timed, "closed_at"], calendar=calendar, tz=period.tz
        )
    f[kind] = _unit_keys(frame, kind, tree).to_numpy()
    return f


# --- names and lengths of units --------------------------------------------------------------
def unit_names(conn: sa.Connection, kind: str, ids) -> dict:
    """Display names of units (owner ids as ``person:N`` / ``department:N``)."""
    ids = list(ids)
    if not ids:
        return {}
    if kind in ("town", "community"):
        q = "SELECT id, name FROM jurisdiction WHERE id = ANY(:ids)"
    elif kind == "street":
        q = """SELECT s.id, s.name || COALESCE('（' || j.name || '）', '') FROM street s
               LEFT JOIN jurisdiction j ON j.id = s.jurisdiction_id WHERE s.id = ANY(:ids)"""
    else:
        people = [int(k.split(":")[1]) for k in ids if k.startswith("person:")]
        depts = [int(k.split(":")[1]) for k in ids if k.startswith("department:")]
        out = {
            f"person:{i}": n
            for i, n in conn.execute(sa.text("SELECT id, name FROM person WHERE id = ANY(:i)"), {"i": people})
        }
        out.update(
            {
                f"department:{i}": n
                for i, n in conn.execute(sa.text("SELECT id, name FROM department WHERE id = ANY(:i)"), {"i": depts})
            }
        )
        return out
    return {int(i): n for i, n in conn.execute(sa.text(q), {"ids": [int(i) for i in ids]})}


def street_km(conn: sa.Connection, kind: str, ids, day: dt.date) -> pd.Series:
    """Kilometres of street each unit answers for (see :func:`gisgrid.supervision.indicators.cases_per_km`)."""
    ids = list(ids)
    if not ids:
        return pd.Series(dtype=float)
    if kind == "street":
        rows = conn.execute(
            sa.text("SELECT street_id, sum(length_m) / 1000 FROM segment WHERE street_id = ANY(:ids) GROUP BY 1"),
            {"ids": [int(i) for i in ids]},
        ).all()
    elif kind in ("town", "community"):
        rows = conn.execute(
            sa.text("""
            SELECT j.id, sum(g.length_m) / 1000 FROM jurisdiction j
            JOIN segment g ON g.geom && j.geom AND ST_Intersects(j.geom, ST_LineInterpolatePoint(g.geom, 0.5))
            WHERE j.id = ANY(:ids) GROUP BY 1"""),
            {"ids": [int(i) for i in ids]},
        ).all()
    else:
        people = [int(k.split(":")[1]) for k in ids if k.startswith("person:")]
        rows = conn.execute(
            sa.text(f"""
            SELECT 'person:' || a.person_id, sum(g.length_m) / 1000 FROM {sql.owner_on(":day")} a
            JOIN segment g ON (a.target_type = 'segment' AND g.id = a.target_id)
                           OR (a.target_type = 'street' AND g.street_id = a.target_id)
            WHERE a.person_id = ANY(:people) GROUP BY 1"""),
            {"day": day, "people": people},
        ).all()
    return pd.Series({k: float(v) for k, v in rows if v is not None}, dtype=float)


# --- rankings --------------------------------------------------------------------------------
@dataclass
class Ranking:
    """A computed ranking: the rows (:func:`gisgrid.supervision.ranking.rank_units`) and their counts."""

    period: ind.Period
    unit_kind: str
    jurisdiction: dict | None
    rules: Rules
    rows: pd.DataFrame
    counts: pd.DataFrame = field(repr=False)
    inputs: dict = field(default_factory=dict)
    jids: list[int] | None = None


def check_unit_kind(kind: str) -> str:
    """``kind`` when it is one of :data:`~gisgrid.supervision.indicators.UNIT_KINDS`; InputError otherwise."""
    if kind not in ind.UNIT_KINDS:
        raise InputError(f"unit kind {kind!r}: one of {', '.join(ind.UNIT_KINDS)}")
    return kind


def rank_counts(
    conn: sa.Connection,
    counts: pd.DataFrame,
    period: ind.Period,
    kind: str,
    rules: Rules,
    *,
    inspections: pd.DataFrame | None = None,
    names: dict | None = None,
    km: pd.Series | None = None,
) -> pd.DataFrame:
    """The ranking rows of the units in ``counts`` (unit ids: ints, or ``person:N`` for owners)."""
    units = list(counts.index)
    if km is None:
        km = street_km(conn, kind, units, period.last_day)
    table = ind.indicator_table(
        counts,
        street_km=km,
        inspections=inspections,
        inspection_weights=rules.inspection_weights,
        inspection_order_weights=rules.inspection_order_weights,
    )
    names = names if names is not None else unit_names(conn, kind, units)
    table["unit_name"] = [names.get(u, str(u)) for u in table.index]
    return rank_units(table, rules)


def compute_ranking(
    conn: sa.Connection,
    settings: Settings,
    period: ind.Period,
    kind: str,
    *,
    jurisdiction: dict | None = None,
    rules: Rules | None = None,
    inspections: InspectionProvider | None = round_scores_provider,
    counts: pd.DataFrame | None = None,
) -> Ranking:
    """Rank the units of ``kind`` in ``jurisdiction``'s subtree (all when None) for ``period``.

    ``counts``: the units' :data:`~gisgrid.supervision.indicators.COUNT_COLUMNS` when they were counted
    elsewhere (summed over the partitions of a dask.distributed cluster,
    :mod:`gisgrid.supervision.distributed`); by default :func:`unit_counts` counts them in PostgreSQL.
    """
    rules = rules or Rules()
    check_unit_kind(kind)
    tree = jurisdiction_tree(conn)
    jids = subtree(tree, jurisdiction["id"]) if jurisdiction else None
    if counts is None:
        counts = unit_counts(conn, period, kind, tree=tree, calendar=working_time(conn, settings), jids=jids)
    scores = inspections(conn, period, kind) if inspections is not None else None
    rows = rank_counts(conn, counts, period, kind, rules, inspections=scores)
    inputs = {
        "unit_counts": json.loads(counts.assign(hours_sum=counts["hours_sum"].round(4)).to_json(orient="index")),
        "inspections": [] if scores is None else json.loads(scores.to_json(orient="records")),
    }
    return Ranking(period, kind, jurisdiction, rules, rows, counts, inputs, jids)


def trends(
    conn: sa.Connection,
    settings: Settings,
    period: ind.Period,
    kind: str,
    *,
    jurisdiction: dict | None = None,
    rules: Rules | None = None,
    months: int = 12,
) -> dict:
    """Each unit's composite score in each of the ``months`` months up to ``period``'s end:
    ``{"months": [labels], "units": {unit_id: [score or None, ...]}}``.  (Without inspection scores and
    cases per km, which the composite does not weigh by default.)"""
    rules = rules or Rules()
    span = period.previous_months(months)
    tree = jurisdiction_tree(conn)
    jids = subtree(tree, jurisdiction["id"]) if jurisdiction else None
    per_month = periods_unit_counts(conn, span, kind, tree=tree, calendar=working_time(conn, settings), jids=jids)
    out: dict = {}
    for i, (month, counts) in enumerate(zip(span, per_month)):
        if counts.empty:
            continue
        names = {u: str(u) for u in counts.index}  # names play no part in a score
        rows = rank_counts(conn, counts, month, kind, rules, names=names, km=pd.Series(dtype=float))
        for uid, score in rows["composite"].items():
            out.setdefault(uid, [None] * len(span))[i] = float(score)
    return {"months": [m.label for m in span], "units": out}


def cases_behind(conn: sa.Connection, settings: Settings, ranking: Ranking, unit_id) -> dict[str, list[int]]:
    """The cases behind each figure of one unit: filed, due, closed, closed on time, late or open, suspended,
    reworked, recurrences (case ids, ascending)."""
    by = ranking.unit_kind
    if unit_id not in ranking.counts.index:
        raise NotFound(f"no cases of {by} {unit_id} in {ranking.period.label}")
    f = case_facts(conn, ranking.period, by, unit_id, tree=jurisdiction_tree(conn),
                   calendar=working_time(conn, settings), jids=ranking.jids)  # fmt: skip
    due = ind.due_mask(f, ranking.period)
    on_time = ind.on_time_mask(f)
    suspended = f["status"].to_numpy() == "suspended"
    ids = f["id"].to_numpy()

    def pick(mask) -> list[int]:
        return sorted(int(i) for i in ids[np.asarray(mask, dtype=bool)])

    return {
        "filed": pick(np.ones(len(f), dtype=bool)),
        "due": pick(due),
        "closed": pick(f["closed"]),
        "on_time": pick(on_time),
        "not_on_time": pick(due & ~on_time & ~suspended),
        "suspended": pick(due & suspended),
        "reworked": pick(f["rework_count"] > 0),
        "recurrences": pick(f["recurrence"]),
    }


# --- published snapshots ---------------------------------------------------------------------
def _figures(rows: pd.DataFrame) -> list[dict]:
    out = rows.reset_index().rename(columns={"index": "unit_id"})
    return json.loads(out.to_json(orient="records", double_precision=6))


def rows_of(figures: list[dict]) -> pd.DataFrame:
    """A snapshot's figures as a ranking frame indexed by unit id."""
    frame = pd.DataFrame(figures)
    if frame.empty:
        return pd.DataFrame(columns=["unit_id", "composite", "rank", "grade"]).set_index("unit_id")
    return frame.set_index("unit_id")


def publish(conn: sa.Connection, actor: Actor, ranking: Ranking, *, title: str) -> int:
    """Store ``ranking`` as a published snapshot (inputs, figures, rule version) and log it; its id."""
    title = (title or "").strip()
    if not title:
        raise InputError("a published ranking needs a title")
    sid = conn.execute(
        sa.text("""
        INSERT INTO ranking_snapshot (title, period, first_day, last_day, timezone, unit_kind, jurisdiction_id,
                                      rules, rules_version, inputs, case_ids, figures, published_by_user_id,
                                      published_by)
        VALUES (:title, :period, :first, :last, :tz, :kind, :jid, CAST(:rules AS jsonb), :version,
                CAST(:inputs AS jsonb), :case_ids, CAST(:figures AS jsonb), :uid, :by)
        RETURNING id"""),
        {
            "title": title[:200],
            "period": ranking.period.label,
            "first": ranking.period.first_day,
            "last": ranking.period.last_day,
            "tz": ranking.period.tz,
            "kind": ranking.unit_kind,
            "jid": (ranking.jurisdiction or {}).get("id"),
            "rules": json.dumps(ranking.rules.as_dict()),
            "version": ranking.rules.version,
            "inputs": json.dumps(ranking.inputs),
            "case_ids": case_ids(conn, ranking.period, jids=ranking.jids),
            "figures": json.dumps(_figures(ranking.rows)),
            "uid": actor.user_id,
            "by": actor.name,
        },
    ).scalar_one()
    from gisgrid.accounts.store import record_action

    record_action(
        conn,
        actor,
        "ranking.publish",
        target_type="ranking_snapshot",
        target_id=sid,
        after={"period": ranking.period.label, "unit_kind": ranking.unit_kind, "units": len(ranking.rows)},
    )
    return int(sid)


def get_snapshot(conn: sa.Connection, scope: Scope | None, snapshot_id: int) -> dict:
    """A published ranking; NotFound when missing or its jurisdiction is out of the user's sight."""
    scope = scope or Scope.everything()
    where = scope.sql("jurisdiction", "j")
    params = {"id": int(snapshot_id), **scope.params()}
    row = conn.execute(
        sa.text(f"""
        SELECT s.*, j.code AS jurisdiction_code, j.name AS jurisdiction_name
        FROM ranking_snapshot s LEFT JOIN jurisdiction j ON j.id = s.jurisdiction_id
        WHERE s.id = :id AND {where}"""),
        params,
    ).first()
    if row is None:
        raise NotFound(f"no published ranking {snapshot_id}")
    snap = dict(row._mapping)
    snap["period_obj"] = ind.Period(snap["period"], "quarter" if "Q" in snap["period"] else "month",
                                    snap["first_day"], snap["last_day"], snap["timezone"])  # fmt: skip
    snap["rows"] = rows_of(snap["figures"])
    if snap["unit_kind"] != "owner" and len(snap["rows"]):
        snap["rows"].index = snap["rows"].index.astype(np.int64)
    return snap


def list_snapshots(conn: sa.Connection, scope: Scope, *, limit: int = 50) -> list[dict]:
    """Published rankings the user may see, newest first."""
    return [
        dict(r._mapping)
        for r in conn.execute(
            sa.text(f"""
            SELECT s.id, s.title, s.period, s.unit_kind, s.rules_version, s.published_by, s.published_at,
                   j.name AS jurisdiction_name, jsonb_array_length(s.figures) AS units
            FROM ranking_snapshot s LEFT JOIN jurisdiction j ON j.id = s.jurisdiction_id
            WHERE {scope.sql("jurisdiction", "j")}
            ORDER BY s.published_at DESC, s.id DESC LIMIT :limit"""),
            {**scope.params(), "limit": limit},
        )
    ]


def rerun(conn: sa.Connection, settings: Settings, snapshot: dict, **kw) -> tuple[Ranking, dict]:
    """The snapshot's ranking computed again from today's cases with its own rules, and how it differs."""
    rules = Rules.from_dict(snapshot["rules"])
    jur = {"id": snapshot["jurisdiction_id"]} if snapshot["jurisdiction_id"] is not None else None
    current = compute_ranking(conn, settings, snapshot["period_obj"], snapshot["unit_kind"], jurisdiction=jur,
                              rules=rules, **kw)  # fmt: skip
    diff = compare(snapshot["rows"], current.rows)
    return current, diff


def unit_geometries(conn: sa.Connection, kind: str, ids, day: dt.date) -> dict:
    """Shapes of units (EPSG:4326 shapely): a town's or community's area, a street's line, an owner's
    segments and streets held on ``day`` (one multi-line each)."""
    import shapely

    ids = list(ids)
    if not ids:
        return {}
    if kind in ("town", "community"):
        q, params = (
            "SELECT id, ST_AsBinary(geom) FROM jurisdiction WHERE id = ANY(:ids)",
            {"ids": [int(i) for i in ids]},
        )
    elif kind == "street":
        q, params = "SELECT id, ST_AsBinary(geom) FROM street WHERE id = ANY(:ids)", {"ids": [int(i) for i in ids]}
    else:
        people = [int(k.split(":")[1]) for k in ids if str(k).startswith("person:")]
        q = f"""
            SELECT 'person:' || a.person_id, ST_AsBinary(ST_Collect(g.geom)) FROM {sql.owner_on(":day")} a
            JOIN segment g ON (a.target_type = 'segment' AND g.id = a.target_id)
                           OR (a.target_type = 'street' AND g.street_id = a.target_id)
            WHERE a.person_id = ANY(:people) GROUP BY 1"""
        params = {"day": day, "people": people}
    return {k: shapely.from_wkb(bytes(w)) for k, w in conn.execute(sa.text(q), params) if w is not None}
