"""Demo inspection rounds: one 督查 and one 暗访 a month over the last two quarters, their findings as cases.

Called by :func:`gisgrid.demo.demo_inspections` (``gisgrid demo load``,
``make demo``).  Past rounds are ended and scored; this month's stay open, so
the phone page offers them to the demo inspector.  Each finding's case
follows the usual routing; some were fixed in time, some late, some not yet,
so the scores differ between units.  A few "patrolled here" check-ins fill
this month's coverage layer.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import sqlalchemy as sa

from gisgrid import timeutil
from gisgrid.accounts.scope import Scope
from gisgrid.accounts.store import find_user
from gisgrid.accounts.users import Actor
from gisgrid.cases.intake import CaseInput
from gisgrid.config import Settings
from gisgrid.errors import NotFound
from gisgrid.supervision import inspections as store

LOGGER = logging.getLogger(__name__)

SEED = 20261207
#: Months back (0 = this month) and findings per round (announced, unannounced).
MONTHS = 6
FINDINGS = (6, 4)
_NOTES = {
    "0101": "巷口暴露垃圾未清运（督查发现）",
    "0201": "沿街乱张贴小广告（督查发现）",
    "0501": "商户出店经营占道（督查发现）",
    "0301": "人行道违规停车（督查发现）",
}


def _months(today: dt.date, n: int) -> list[tuple[dt.date, dt.date]]:
    out = []
    start = today.replace(day=1)
    for _ in range(n):
        end = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        out.append((start, end))
        start = (start - dt.timedelta(days=1)).replace(day=1)
    return out[::-1]


def load_demo_rounds(conn: sa.Connection, settings: Settings, *, deployment, today: dt.date | None = None) -> dict:
    """Rounds, findings (cases), scores and check-ins on the first sample town; nothing when there are rounds already.

    Needs the demo accounts (``manager``, ``inspector``; ``wanggeyuan`` when the
    town has a grid worker).  Returns counts.
    """
    if conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM inspection_round)")).scalar():
        return {"rounds": 0, "findings": 0}
    try:
        manager = find_user(conn, "manager")
        inspector = find_user(conn, "inspector")
    except NotFound:
        LOGGER.warning("demo inspections need the demo accounts (gisgrid demo load makes them)")
        return {"rounds": 0, "findings": 0}
    try:
        patrol = find_user(conn, "wanggeyuan")
    except NotFound:
        patrol = None
    store.ensure_checklist(conn)
    town = conn.execute(sa.text("SELECT id, name FROM jurisdiction WHERE level = 'town' ORDER BY code LIMIT 1")).one()
    tz = settings.timezone
    today = today or timeutil.local_today(tz)
    rng = np.random.default_rng(SEED)
    items = {i["category"]: i["id"] for i in store.checklist(conn, active_only=True)}
    codes = [c for c in _NOTES if c in items]
    scope = Scope(manager.id, today)
    inspectors = [inspector.id] + ([patrol.id] if patrol else [])
    counts = {"rounds": 0, "findings": 0, "ended": 0, "checkins": 0}
    has_cells = conn.execute(
        sa.text("""SELECT EXISTS (SELECT 1 FROM grid_cell c JOIN jurisdiction j ON j.id = c.jurisdiction_id
                   WHERE j.id = :t OR j.parent_id = :t)"""),
        {"t": town.id},
    ).scalar()
    for k, (start, end) in enumerate(_months(today, MONTHS)):
        for kind, n_find in zip(("announced", "unannounced"), FINDINGS):
            label = "督查" if kind == "announced" else "暗访"
            sample = ("segment", 25) if kind == "announced" or not has_cells else ("cell", 15)
            raw = {
                "kind": kind,
                "name": f"{start:%Y年%m月}{label}（演示）",
                "period_start": str(start),
                "period_end": str(end),
                "scope_kind": "town",
                "scope_ids": [town.id],
                "inspector_ids": inspectors,
                "sample_kind": sample[0],
                "sample_size": sample[1],
                "seed": SEED + 10 * k + (kind == "unannounced"),
                "note": "演示数据" if kind == "announced" else "演示数据：暗访结束前被检查单位看不到",
            }
            actor = manager.actor("demo")
            rid = store.plan_round(conn, actor, scope, raw)
            counts["rounds"] += 1
            rnd = store.get_round(conn, scope, rid)
            points = _points(conn, rid, n_find, rng)
            last = min(end, today)
            for j, (lon, lat) in enumerate(points):
                day = start + dt.timedelta(days=int(rng.integers(0, max((last - start).days, 0) + 1)))
                at = timeutil.day_start(day, tz) + dt.timedelta(hours=9 + int(rng.integers(0, 8)))
                now = conn.execute(sa.text("SELECT now()")).scalar()
                at = min(at, now - dt.timedelta(minutes=30))
                code = codes[int(rng.integers(0, len(codes)))]
                data = CaseInput(lon=lon, lat=lat, crs="EPSG:4326", category=code, description=_NOTES[code],
                                 address=None, client_id=f"demo-inspection-{rid}-{j}", reported_at=at)  # fmt: skip
                made = store.store_finding(conn, inspector.actor("demo"), deployment, settings, rnd, items[code], data,
                                           inspector_user_id=inspector.id, now=at)  # fmt: skip
                _outcome(conn, made.id, rng, now)
                counts["findings"] += 1
            if end < today:
                end_at = timeutil.day_start(end + dt.timedelta(days=1), tz) - dt.timedelta(minutes=1)
                store.end_round(conn, Actor.system("demo loader"), Scope.everything(today), rid, now=end_at)
                counts["ended"] += 1
    conn.execute(sa.text("UPDATE report SET is_demo = true WHERE inspection_round_id IS NOT NULL"))
    conn.execute(
        sa.text("""UPDATE case_event e SET at = r.reported_at FROM report r
                   WHERE r.id = e.report_id AND r.inspection_round_id IS NOT NULL AND e.action = 'report'""")
    )
    if patrol is not None:
        counts["checkins"] = _checkins(conn, patrol, today, tz, rng)
    LOGGER.info("demo inspections: %s", counts)
    return counts


def _points(conn: sa.Connection, round_id: int, n: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """``n`` points inside the round's units (the first drawn ones, so the sample shows on the map)."""
    rows = conn.execute(
        sa.text("""
        SELECT ST_X(p), ST_Y(p) FROM (
            SELECT ST_PointOnSurface(COALESCE(g.area, c.geom)) AS p, t.rank FROM inspection_target t
            LEFT JOIN segment g ON t.unit_kind = 'segment' AND g.id = t.unit_id
            LEFT JOIN grid_cell c ON t.unit_kind = 'cell' AND c.id = t.unit_id
            WHERE t.round_id = :r) x WHERE p IS NOT NULL ORDER BY rank LIMIT :n"""),
        {"r": round_id, "n": n},
    ).all()
    return [(float(x) + rng.normal(0, 1e-5), float(y) + rng.normal(0, 1e-5)) for x, y in rows]


def _outcome(conn: sa.Connection, case_id: int, rng: np.random.Generator, now: dt.datetime) -> None:
    """Close the demo case in time (half), late (a quarter), or leave it open (the rest), with its trail."""
    roll = rng.random()
    if roll >= 0.75:
        return
    row = conn.execute(sa.text("SELECT reported_at, due_at, status FROM report WHERE id = :i"), {"i": case_id}).one()
    if row.due_at is None:
        return
    span = row.due_at - row.reported_at
    closed = row.reported_at + span * (0.5 if roll < 0.5 else 1.8)
    if closed >= now:
        return
    conn.execute(
        sa.text("""UPDATE report SET status = 'closed', closed_at = :c, version = version + 1, updated_at = :c
                   WHERE id = :i"""),
        {"c": closed, "i": case_id},
    )
    conn.execute(
        sa.text("""INSERT INTO case_event (report_id, at, actor_name, action, from_status, to_status, version, note)
                   VALUES (:i, :c, 'demo loader', 'close', :s, 'closed', 2, '整改完毕（演示）')"""),
        {"i": case_id, "c": closed, "s": row.status},
    )


def _checkins(conn: sa.Connection, patrol, today: dt.date, tz: str, rng: np.random.Generator) -> int:
    """A patrol member's "patrolled here" at a dozen of the town's cells this month."""
    cells = conn.execute(
        sa.text("""SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grid_cell
                   ORDER BY md5(CAST(id AS text)) LIMIT 12""")
    ).all()
    start = timeutil.day_start(today.replace(day=1), tz)
    now = conn.execute(sa.text("SELECT now()")).scalar()
    n = 0
    for k, (lon, lat) in enumerate(cells):
        out = store.record_checkin(conn, patrol.actor("demo"), lon=lon, lat=lat, client_id=f"demo-checkin-{k:04d}")
        at = start + (now - start) * float(rng.random())
        conn.execute(sa.text("UPDATE patrol_checkin SET at = :a WHERE id = :i"), {"a": at, "i": out["id"]})
        n += 1
    return n
