"""Demo cases in every state of the workflow, taken through it by the demo accounts, and demo inspection rounds."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import sqlalchemy as sa

from gisgrid.accounts.users import Actor
from gisgrid.config import Settings, load_settings
from gisgrid.demo.towns import (
    DESCRIPTIONS,
)

LOGGER = logging.getLogger(__name__)


# --- demo cases ---------------------------------------------------------------------------------
#: What each demo case goes through: (category, hours ago, steps), a step being (account, action, fields).
#: Every state of the workflow appears, with overdue, escalated, reworked, merged and recurring cases.
_DEMO_CASE_PLANS = (
    ("0101", 0.5, ()),  # new
    ("0201", 3, ()),  # new, with a duplicate below (merged into it)
    ("0501", 2, (("dispatcher", "accept", {}),)),
    ("0502", 20, (("dispatcher", "reject", {"reason": "车辆已驶离，现场无问题（演示）"}),)),
    ("0101", 1, (("dispatcher", "accept", {}), ("dispatcher", "dispatch", {}))),  # on time
    ("0101", 3.3, (("dispatcher", "accept", {}), ("dispatcher", "dispatch", {}))),  # deadline near (yellow)
    ("0101", 6, (("dispatcher", "accept", {}), ("dispatcher", "dispatch", {}))),  # overdue → 二级街长
    ("0101", 13, (("dispatcher", "accept", {}), ("dispatcher", "dispatch", {}))),  # overdue → 总街长
    (
        "0201",
        30,
        (
            ("dispatcher", "accept", {}),
            ("dispatcher", "dispatch", {}),
            ("owner", "return", {"reason": "该处属河道管理范围，非本路段职责（演示）"}),
        ),
    ),  # fmt: skip
    (
        "0101",
        2,
        (
            ("dispatcher", "accept", {}),
            ("dispatcher", "dispatch", {}),
            ("owner", "handle", {"note": "已清理完毕（演示）", "photo": "after"}),
        ),
    ),  # fmt: skip
    (
        "0101",
        5,
        (
            ("dispatcher", "accept", {}),
            ("dispatcher", "dispatch", {}),
            ("owner", "handle", {"note": "已清理（演示）", "photo": "after"}),
            ("inspector", "verify_fail", {"reason": "转角处仍有垃圾，返工（演示）"}),
        ),
    ),  # fmt: skip
    (
        "0101",
        26,
        (
            ("dispatcher", "accept", {}),
            ("dispatcher", "dispatch", {}),
            ("owner", "handle", {"note": "垃圾已清运（演示）", "photo": "after"}),
            ("inspector", "verify_pass", {}),
        ),
    ),  # fmt: skip
    (
        "0501",
        50,
        (
            ("dispatcher", "accept", {}),
            ("dispatcher", "dispatch", {}),
            ("owner", "handle", {"note": "已劝离商户（演示）", "photo": "after"}),
            ("inspector", "verify_pass", {}),
            ("clerk", "reopen", {"reason": "商户又出店经营（演示）"}),
        ),
    ),  # fmt: skip
    (
        "0401",
        8,
        (
            ("dispatcher", "accept", {}),
            ("dispatcher", "dispatch", {}),
            ("manager", "suspend", {"reason": "待规划部门认定（演示）"}),
        ),
    ),  # fmt: skip
)


def _demo_photo(settings: Settings, colour: tuple[int, int, int], seed: int):
    """A small generated picture standing in for a phone photo (stored like any upload)."""
    import io

    from PIL import Image, ImageDraw

    from gisgrid.cases.photos import store_photo

    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (640, 480), colour)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 300, 640, 480), fill=(120, 120, 120))  # the road
    for _ in range(6):
        x, y = int(rng.integers(40, 600)), int(rng.integers(250, 420))
        draw.ellipse((x - 25, y - 18, x + 25, y + 18), fill=tuple(int(v) for v in rng.integers(40, 200, 3)))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=80)
    return store_photo(buf.getvalue(), settings.var_dir, max_bytes=settings.photo_max_bytes,
                       max_pixels=settings.photo_max_pixels, thumb_px=settings.photo_thumb_px)  # fmt: skip


def _assignee_user(conn: sa.Connection, case_id: int):
    """The case's assignee as a user: their demo account if they have one, else the person (or a member of
    the department) acting without an account."""
    from gisgrid.accounts.store import get_user
    from gisgrid.accounts.users import Grant, User

    row = conn.execute(
        sa.text("""
        SELECT r.assignee_person_id AS pid, r.assignee_department_id AS did, COALESCE(p.name, d.name) AS name,
               COALESCE((SELECT u.id FROM user_account u WHERE u.person_id = p.id LIMIT 1),
                        (SELECT g.user_id FROM role_grant g WHERE g.role = 'department' AND g.department_id = d.id
                         LIMIT 1)) AS uid
        FROM report r LEFT JOIN person p ON p.id = r.assignee_person_id
        LEFT JOIN department d ON d.id = r.assignee_department_id WHERE r.id = :i"""),
        {"i": case_id},
    ).one()
    if row.uid is not None:
        return get_user(conn, row.uid)
    grants = (Grant("department", department_id=row.did),) if row.did is not None else ()
    return User(id=0, username="owner", person_id=row.pid or 0, name=row.name or "owner", grants=grants)


def demo_cases(conn: sa.Connection, settings: Settings | None = None, *, deployment=None) -> int:
    """Cases in every state on the first sample town, taken through the workflow by the demo accounts.

    New, accepted, rejected, dispatched (on time, deadline near, overdue and
    escalated), returned ("not ours"), handled, reworked, closed (with before
    and after photos), merged, suspended and reopened (a recurrence).  Needs
    the demo accounts (:func:`create_demo_users`); does nothing when the town
    has demo cases already.  Returns how many cases were made.
    """
    from gisgrid.accounts.store import find_user
    from gisgrid.cases import escalation as case_escalation
    from gisgrid.cases import store as cases
    from gisgrid.cases import trail as case_trail
    from gisgrid.cases.intake import CaseInput
    from gisgrid.errors import NotFound
    from gisgrid.routing.store import load_deployment

    settings = settings or load_settings()
    if conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM report WHERE external_id LIKE 'DEMO-CASE-%')")).scalar():
        return 0
    try:
        people = {n: find_user(conn, n) for n in ("clerk", "dispatcher", "duanzhang", "inspector", "manager")}
    except NotFound:
        LOGGER.warning("demo cases need the demo accounts (gisgrid demo load makes them)")
        return 0
    deployment = deployment or load_deployment(conn, settings)
    owner = people["duanzhang"]  # most demo cases are on this 段长's segments: their list fills up
    # points along the 段长's segments (their list fills up), else any segment of the town
    points = conn.execute(
        sa.text("""
        SELECT ST_X(p), ST_Y(p), name FROM (
            SELECT ST_LineInterpolatePoint(g.geom, f) AS p, s.name || ' ' || g.name AS name, a.person_id = :p AS mine
            FROM segment g JOIN street s ON s.id = g.street_id
            JOIN owner_assignment a ON a.target_type = 'segment' AND a.target_id = g.id AND a.role = '段长'
                 AND a.valid_to IS NULL
            CROSS JOIN (VALUES (0.2), (0.5), (0.8)) AS v(f)
            WHERE g.area IS NOT NULL) x
        ORDER BY mine DESC, name LIMIT 40"""),
        {"p": owner.person_id},
    ).all()
    if not points:
        return 0
    now = case_trail.now(conn)
    made = 0
    ids = []
    for i, (category, hours_ago, steps) in enumerate(_DEMO_CASE_PLANS):
        lon, lat, name = points[i % len(points)]
        data = CaseInput(lon=lon, lat=lat, crs="EPSG:4326", category=category, address=f"{name}（演示）",
                         description=DESCRIPTIONS[category] + "（演示案件）", source="web",
                         reported_at=now - dt.timedelta(hours=hours_ago))  # fmt: skip
        new = cases.create_case(conn, people["clerk"].actor("demo"), deployment, settings, data, now=now)
        cases.add_photos(conn, people["clerk"].actor("demo"), new.id, [_demo_photo(settings, (150, 170, 120), i)],
                         kind="before")  # fmt: skip
        ids.append(new.id)
        made += 1
        for who, action, fields in steps:
            fields = dict(fields)
            photo = fields.pop("photo", None)
            user = _assignee_user(conn, new.id) if who == "owner" else people[who]
            version = conn.execute(sa.text("SELECT version FROM report WHERE id = :i"), {"i": new.id}).scalar()
            actor = user.actor("demo") if user.id else Actor(name=user.name, person_id=user.person_id)
            cases.take_step(
                conn, actor, user, cases.Scope.everything(), settings, new.id, action,
                cases.StepInput(version=version, **fields),
                photos=[_demo_photo(settings, (200, 210, 200), 100 + i)] if photo else (), deployment=deployment,
            )  # fmt: skip
            if action == "reopen":
                made += 1
    # a duplicate of the second case, merged into it by the dispatcher
    lon, lat, name = points[1 % len(points)]
    dup = cases.create_case(
        conn, people["clerk"].actor("demo"), deployment, settings,
        CaseInput(lon=lon + 0.00005, lat=lat, crs="EPSG:4326", category="0201", address=f"{name}（演示）",
                  description="同一处小广告，市民再次上报（演示）", source="phone",
                  reported_at=now - dt.timedelta(hours=2)),
        now=now,
    )  # fmt: skip
    made += 1
    version = conn.execute(sa.text("SELECT version FROM report WHERE id = :i"), {"i": dup.id}).scalar()
    dispatcher = people["dispatcher"]
    cases.take_step(conn, dispatcher.actor("demo"), dispatcher, cases.Scope.everything(), settings, dup.id, "merge",
                    cases.StepInput(version=version, into=ids[1]))  # fmt: skip
    # one case far outside every owner's area: unassigned, in the dispatch queue
    town = conn.execute(sa.text("SELECT id, ST_XMax(geom) AS x, ST_YMax(geom) AS y FROM jurisdiction "
                                "WHERE level = 'town' ORDER BY code LIMIT 1")).one()  # fmt: skip
    cases.create_case(
        conn, people["clerk"].actor("demo"), deployment, settings,
        CaseInput(lon=town.x + 0.03, lat=town.y + 0.02, crs="EPSG:4326", category="0101",
                  description="辖区外的上报：无人负责，待派遣员处理（演示）", source="phone"),
        fallback_jurisdiction_id=town.id, now=now,
    )  # fmt: skip
    made += 1
    # the timeline of each demo case spreads between its report and now; then the overdue ones escalate
    conn.execute(
        sa.text("""
        UPDATE case_event e SET at = r.reported_at + (now() - r.reported_at) * (o.k - 1) / GREATEST(o.n, 1)
        FROM (SELECT id, report_id, row_number() OVER (PARTITION BY report_id ORDER BY id) AS k,
                     count(*) OVER (PARTITION BY report_id) AS n FROM case_event) o, report r
        WHERE e.id = o.id AND r.id = o.report_id AND r.id >= :first AND r.source <> 'reopen'"""),
        {"first": min(ids)},
    )
    conn.execute(
        sa.text("UPDATE report SET external_id = 'DEMO-CASE-' || id, is_demo = true WHERE id >= :first"),
        {"first": min(ids)},
    )
    case_escalation.escalate_overdue(conn, settings)
    case_escalation.warn_deadlines(conn, settings)
    LOGGER.info("demo cases: %d", made)
    return made


# --- demo inspection rounds -------------------------------------------------------------------------
def demo_inspections(conn: sa.Connection, settings: Settings | None = None, *, deployment=None) -> dict:
    """One 督查 and one 暗访 a month over the last two quarters on the first sample town, with findings that
    became cases; past rounds ended and scored (:mod:`gisgrid.supervision.inspection_demo`)."""
    from gisgrid.routing.store import load_deployment
    from gisgrid.supervision.inspection_demo import load_demo_rounds

    settings = settings or load_settings()
    deployment = deployment or load_deployment(conn, settings)
    return load_demo_rounds(conn, settings, deployment=deployment)
