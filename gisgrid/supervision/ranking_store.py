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
import io
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
from gisgrid.cases.store import working_time
from gisgrid.config import Settings
from gisgrid.db import sql
from gisgrid.errors import InputError, NotFound
from gisgrid.supervision import indicators as ind
from gisgrid.supervision.ranking import Rules, compare, rank_units

LOGGER = logging.getLogger(__name__)

#: Where inspection scores come from: (connection, period, unit kind) → rows of unit_id, round_id, score[, weight].
InspectionProvider = Callable[[sa.Connection, ind.Period, str], pd.DataFrame]


def round_scores_provider(conn: sa.Connection, period: ind.Period, unit_kind: str) -> pd.DataFrame:
    """The inspection rounds' scores of units in ``period`` (``gisgrid.supervision.inspections``), when
    inspection rounds exist in this deployment; none otherwise."""
    try:
        from gisgrid.supervision import inspections  # issue 20 part 1: inspection rounds
    except ImportError:
        return ind.no_inspections(period, unit_kind)
    fn = getattr(inspections, "round_scores", None)
    if fn is None:
        return ind.no_inspections(period, unit_kind)
    return fn(conn, first_day=period.first_day, last_day=period.last_day, unit_kind=unit_kind)


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


# --- case facts ------------------------------------------------------------------------------
_FACT_COLUMNS = (
    "id",
    "reported",
    "closed_at_s",
    "due",
    "status",
    "rework_count",
    "recurrence",
    "person_id",
    "department_id",
    "street",
    "jurisdiction_id",
)


def _fetch_facts(conn: sa.Connection, start: dt.datetime, end: dt.datetime, jids: list[int] | None) -> pd.DataFrame:
    """Raw case rows reported in [start, end), as CSV through COPY (a million rows in about a second)."""
    where_j = "AND r.jurisdiction_id = ANY(%(jids)s)" if jids is not None else ""
    query = f"""
        SELECT r.id, extract(epoch FROM r.reported_at), extract(epoch FROM r.closed_at), extract(epoch FROM r.due_at),
               r.status, r.rework_count,
               (p.closed_at IS NOT NULL AND r.reported_at > p.closed_at
                AND r.reported_at <= p.closed_at + make_interval(days => {ind.RECURRENCE_DAYS}))::int,
               r.assignee_person_id, r.assignee_department_id, g.street_id, r.jurisdiction_id
        FROM report r
        LEFT JOIN segment g ON g.id = r.assigned_segment_id
        LEFT JOIN report p ON p.id = r.recurrence_of_id
        WHERE r.reported_at >= %(start)s AND r.reported_at < %(end)s AND r.status NOT IN ('rejected', 'merged')
          {where_j}"""
    raw = conn.connection.driver_connection
    buf = io.BytesIO()
    with raw.cursor() as cur:
        with cur.copy(
            f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", {"start": start, "end": end, "jids": jids}
        ) as copy:
            for chunk in copy:
                buf.write(chunk)
    buf.seek(0)
    if not buf.getbuffer().nbytes:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in _FACT_COLUMNS}).astype({"status": object})
    return pd.read_csv(
        buf,
        header=None,
        names=list(_FACT_COLUMNS),
        dtype={"id": np.int64, "status": object, "rework_count": np.int64, "recurrence": np.int8},
    )


def case_facts(
    conn: sa.Connection,
    settings: Settings,
    period: ind.Period,
    *,
    jurisdiction_id: int | None = None,
    tree: pd.DataFrame | None = None,
    calendar: wf.WorkingTime | None = None,
) -> pd.DataFrame:
    """The facts of the cases filed in ``period`` (see :mod:`gisgrid.supervision.indicators`), one row each,
    with the unit columns ``owner``, ``street``, ``community`` and ``town``."""
    tree = tree if tree is not None else jurisdiction_tree(conn)
    jids = subtree(tree, jurisdiction_id) if jurisdiction_id is not None else None
    raw = _fetch_facts(conn, period.start, period.end, jids)
    return _facts_for(raw, period, tree, calendar or working_time(conn, settings))


def _facts_for(raw: pd.DataFrame, period: ind.Period, tree: pd.DataFrame, calendar: wf.WorkingTime) -> pd.DataFrame:
    """The facts of ``period`` from raw case rows (cases reported in it)."""
    start, end = pd.Timestamp(period.start).value / 1e9, pd.Timestamp(period.end).value / 1e9
    rep = raw["reported"].to_numpy(dtype=float)
    raw = raw[(rep >= start) & (rep < end)]
    f = pd.DataFrame({"id": raw["id"].to_numpy()})
    f["reported_at"] = pd.to_datetime(raw["reported"].to_numpy(), unit="s", utc=True)
    f["closed_at"] = pd.to_datetime(raw["closed_at_s"].to_numpy(), unit="s", utc=True)
    f["due_at"] = pd.to_datetime(raw["due"].to_numpy(), unit="s", utc=True)
    f["status"] = raw["status"].to_numpy()
    f["rework_count"] = raw["rework_count"].to_numpy()
    f["recurrence"] = raw["recurrence"].to_numpy().astype(bool)
    closed_at = raw["closed_at_s"].to_numpy(dtype=float)
    # closed by the end of the period: no longer open (the one rule), closed, and not stamped after the end
    f["closed"] = (
        ~wf.open_mask(f["status"]) & (f["status"].to_numpy() == wf.CLOSED) & ~(closed_at >= end)
    )  # NaN closing time: the status is the record
    f["handling_hours"] = np.nan
    timed = f["closed"].to_numpy() & ~np.isnan(closed_at)
    if timed.any():
        f.loc[timed, "handling_hours"] = wf.working_hours_between(
            f.loc[timed, "reported_at"], f.loc[timed, "closed_at"], calendar=calendar, tz=period.tz
        )
    person = raw["person_id"].to_numpy(dtype=float)
    dept = raw["department_id"].to_numpy(dtype=float)
    owner = np.where(~np.isnan(person), person, np.where(~np.isnan(dept), -dept, np.nan))
    f["owner"] = owner  # person id, or minus the department id (named by _owner_keys)
    f["street"] = raw["street"].to_numpy(dtype=float)
    jur = raw["jurisdiction_id"].to_numpy(dtype=float)
    town = tree["town_id"].astype(float).to_dict()
    community = tree["community_id"].astype(float).to_dict()
    f["town"] = pd.Series(jur).map(town).to_numpy(dtype=float)
    f["community"] = pd.Series(jur).map(community).to_numpy(dtype=float)
    return f


def _owner_key(code: float) -> str:
    return f"person:{int(code)}" if code > 0 else f"department:{int(-code)}"


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
    """A computed ranking: the rows (:func:`gisgrid.supervision.ranking.rank_units`), the facts it came from."""

    period: ind.Period
    unit_kind: str
    jurisdiction: dict | None
    rules: Rules
    rows: pd.DataFrame
    facts: pd.DataFrame = field(repr=False)
    inputs: dict = field(default_factory=dict)

    @property
    def case_ids(self) -> list[int]:
        return sorted(int(i) for i in self.facts["id"])


def _unit_column(kind: str) -> str:
    if kind not in ind.UNIT_KINDS:
        raise InputError(f"unit kind {kind!r}: one of {', '.join(ind.UNIT_KINDS)}")
    return kind


def rank_from_facts(
    conn: sa.Connection,
    facts: pd.DataFrame,
    period: ind.Period,
    kind: str,
    rules: Rules,
    *,
    inspections: pd.DataFrame | None = None,
    names: dict | None = None,
    km: pd.Series | None = None,
) -> pd.DataFrame:
    """The ranking rows of ``facts`` by ``kind`` (unit ids as stored: ints, or ``person:N`` for owners)."""
    by = _unit_column(kind)
    f = facts[facts[by].notna()].copy()
    if kind == "owner":
        f[by] = [_owner_key(v) for v in f[by].to_numpy()]
    else:
        f[by] = f[by].astype(np.int64)
    units = sorted(f[by].unique().tolist())
    if km is None:
        km = street_km(conn, kind, units, period.last_day)
    table = ind.indicator_table(
        f, by, period, street_km=km, inspections=inspections, inspection_weights=rules.inspection_weights
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
) -> Ranking:
    """Rank the units of ``kind`` in ``jurisdiction``'s subtree (all when None) for ``period``."""
    rules = rules or Rules()
    _unit_column(kind)
    tree = jurisdiction_tree(conn)
    facts = case_facts(conn, settings, period, jurisdiction_id=(jurisdiction or {}).get("id"), tree=tree)
    scores = inspections(conn, period, kind) if inspections is not None else None
    rows = rank_from_facts(conn, facts, period, kind, rules, inspections=scores)
    inputs = {
        "unit_counts": _inputs(facts, kind, period),
        "inspections": [] if scores is None else json.loads(scores.to_json(orient="records")),
    }
    return Ranking(period, kind, jurisdiction, rules, rows, facts, inputs)


def _inputs(facts: pd.DataFrame, kind: str, period: ind.Period) -> dict:
    """Per unit, the counts the rates came from (for the snapshot)."""
    by = kind
    f = facts[facts[by].notna()].copy()
    f[by] = [_owner_key(v) for v in f[by]] if kind == "owner" else f[by].astype(np.int64)
    if f.empty:
        return {}
    due = ind.due_to_close(f, by, period)
    g = f.groupby(by)
    counts = pd.DataFrame(
        {
            "filed": g.size(),
            "due": due,
            "closed": g["closed"].sum(),
            "suspended": f[f["status"] == "suspended"].groupby(by).size(),
            "rework": g["rework_count"].sum(),
            "recurrences": g["recurrence"].sum(),
        }
    ).fillna(0)
    return {str(k): {c: int(v) for c, v in row.items()} for k, row in counts.iterrows()}


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
    ``{"months": [labels], "units": {unit_id: [score or None, ...]}}``."""
    rules = rules or Rules()
    span = period.previous_months(months)
    tree = jurisdiction_tree(conn)
    jids = subtree(tree, (jurisdiction or {}).get("id")) if jurisdiction else None
    raw = _fetch_facts(conn, span[0].start, span[-1].end, jids)
    calendar = working_time(conn, settings)
    out: dict = {}
    names: dict = {}
    for i, month in enumerate(span):
        facts = _facts_for(raw, month, tree, calendar)
        if facts.empty:
            continue
        rows = rank_from_facts(conn, facts, month, kind, rules, names=names or None, km=pd.Series(dtype=float))
        for uid, score in rows["composite"].items():
            out.setdefault(uid, [None] * len(span))[i] = float(score)
    return {"months": [m.label for m in span], "units": out}


def cases_behind(conn: sa.Connection, settings: Settings, ranking: Ranking, unit_id) -> dict[str, list[int]]:
    """The cases behind each figure of one unit: filed, due, closed, closed on time, late or open, suspended,
    reworked, recurrences (case ids, ascending)."""
    by = ranking.unit_kind
    f = ranking.facts[ranking.facts[by].notna()].copy()
    f[by] = [_owner_key(v) for v in f[by]] if by == "owner" else f[by].astype(np.int64)
    f = f[f[by] == unit_id]
    if f.empty:
        raise NotFound(f"no cases of {by} {unit_id} in {ranking.period.label}")
    end = pd.Timestamp(ranking.period.end)
    due = (f["due_at"].isna() | (f["due_at"] < end) | f["closed"]).to_numpy()
    on_time = f["closed"].to_numpy() & (f["due_at"].isna() | f["closed_at"].isna() | (f["closed_at"] <= f["due_at"]))
    ids = f["id"].to_numpy()

    def pick(mask) -> list[int]:
        return sorted(int(i) for i in ids[np.asarray(mask, dtype=bool)])

    return {
        "filed": pick(np.ones(len(f), dtype=bool)),
        "due": pick(due),
        "closed": pick(f["closed"]),
        "on_time": pick(on_time),
        "not_on_time": pick(due & ~on_time.to_numpy() & (f["status"] != "suspended").to_numpy()),
        "suspended": pick(due & (f["status"] == "suspended").to_numpy()),
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
            "case_ids": ranking.case_ids,
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
