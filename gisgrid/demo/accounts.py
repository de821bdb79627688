"""The demo accounts: one per role on the first sample town, chiefs and the grid worker being its owners."""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa

from gisgrid.accounts.users import Actor
from gisgrid.config import Settings, load_settings

LOGGER = logging.getLogger(__name__)


#: The password of every demo account.  FOR THE DEMO ONLY: `gisgrid demo load` prints it.
DEMO_PASSWORD = "gisgrid-demo"

#: (user name, role, what the account shows), in the order they are printed.
DEMO_USERS = (
    ("admin", "admin", "系统管理员: everything, users and roles"),
    ("manager", "manager", "整治办 manager of the county: maps, audit, appoint owners"),
    ("planner", "planner", "规划员 of the town: the /plan editor"),
    ("dispatcher", "dispatcher", "派遣员 of the town: geocode and route reports"),
    ("clerk", "clerk", "受理员 of the town: geocode reports"),
    ("zongjiezhang", "chief", "总街长: owns the county, sees all of it"),
    ("yijijiezhang", "chief", "一级街长 of some streets: sees those streets and their segments"),
    ("erjijiezhang", "chief", "二级街长 of one street"),
    ("duanzhang", "chief", "段长 of one segment"),
    ("wanggeyuan", "grid_worker", "网格员: their cells (or their community)"),
    ("inspector", "inspector", "督查员 of the town"),
    ("department", "department", "部门 (城市管理综合执法局): the segments it owns"),
    ("api", "api_client", "machine access (/api/assign)"),
)


def _demo_people(conn: sa.Connection, town_code: str, today: dt.date) -> dict[str, int | None]:
    """The existing owners the chief and grid-worker demo accounts belong to (None: a new person)."""
    county = town_code[:6]

    def owner(sql: str) -> int | None:
        return conn.execute(sa.text(sql), {"town": town_code, "county": county, "d": today}).scalar()

    valid = "a.valid_from <= :d AND (a.valid_to IS NULL OR :d < a.valid_to) AND a.person_id IS NOT NULL"
    streets_of_town = "SELECT s.id FROM street s JOIN jurisdiction j ON j.id = s.jurisdiction_id WHERE j.code = :town"
    return {
        "zongjiezhang": owner(
            f"SELECT a.person_id FROM owner_assignment a JOIN jurisdiction j ON j.id = a.target_id "
            f"WHERE a.target_type = 'jurisdiction' AND j.code = :county AND a.role = '总街长' AND {valid} LIMIT 1"
        ),
        # a 一级街长 of streets who does not also lead the whole town
        "yijijiezhang": owner(
            f"SELECT a.person_id FROM owner_assignment a WHERE a.target_type = 'street' AND a.role = '一级街长' "
            f"AND a.target_id IN ({streets_of_town}) AND {valid} AND a.person_id NOT IN "
            "(SELECT b.person_id FROM owner_assignment b JOIN jurisdiction j ON j.id = b.target_id "
            "WHERE b.target_type = 'jurisdiction' AND b.person_id IS NOT NULL) "
            "GROUP BY a.person_id ORDER BY count(*), a.person_id LIMIT 1"
        ),
        "erjijiezhang": owner(
            f"SELECT a.person_id FROM owner_assignment a WHERE a.target_type = 'street' AND a.role = '二级街长' "
            f"AND a.target_id IN ({streets_of_town}) AND {valid} ORDER BY a.target_id LIMIT 1"
        ),
        # the 段长 of the first segment that has reports (the account then has cases to see)
        "duanzhang": owner(
            f"SELECT a.person_id FROM owner_assignment a JOIN segment g ON g.id = a.target_id "
            f"WHERE a.target_type = 'segment' AND a.role = '段长' AND g.street_id IN ({streets_of_town}) "
            f"AND {valid} AND a.valid_to IS NULL ORDER BY NOT EXISTS (SELECT 1 FROM report r WHERE "
            "r.assigned_type = 'segment' AND r.assigned_id = g.id), g.street_id, g.seq, g.id LIMIT 1"
        ),
        "wanggeyuan": owner(
            f"SELECT a.person_id FROM owner_assignment a LEFT JOIN grid_cell c ON a.target_type = 'cell' "
            f"AND c.id = a.target_id LEFT JOIN jurisdiction cj ON cj.id = c.jurisdiction_id "
            f"LEFT JOIN jurisdiction j ON a.target_type = 'jurisdiction' AND j.id = a.target_id "
            f"WHERE a.role = '网格员' AND {valid} AND (cj.code LIKE :town || '%' OR j.code LIKE :town || '%') "
            "ORDER BY (a.target_type = 'cell') DESC, a.id LIMIT 1"
        ),
    }


def create_demo_users(
    conn: sa.Connection, settings: Settings | None = None, *, today: dt.date | None = None
) -> list[dict]:
    """One account per role on the first sample town (by code), password :data:`DEMO_PASSWORD`.

    Chiefs and the grid worker are existing owners of that town, so what they
    see follows their ownership.  Accounts that exist already are left as
    they are.  Returns one dict per account: ``username``, ``password``,
    ``role``, ``name``, ``about``, ``id``, ``created``.
    """
    from gisgrid.accounts.store import count_users, create_user, find_user
    from gisgrid.errors import NotFound

    settings = settings or load_settings()
    today = today or dt.date.today()
    town_code = conn.execute(sa.text("SELECT min(code) FROM jurisdiction WHERE level = 'town'")).scalar()
    if town_code is None:
        return []
    county = town_code[:6]
    people = _demo_people(conn, town_code, today)
    places = {
        "admin": None,
        "manager": county,
        "planner": town_code,
        "dispatcher": town_code,
        "clerk": town_code,
        "inspector": town_code,
        "department": "enforcement",
        "api_client": None,
    }
    names = {
        "admin": "系统管理员（演示）",
        "manager": "整治办主任（演示）",
        "planner": "规划员（演示）",
        "dispatcher": "派遣员（演示）",
        "clerk": "受理员（演示）",
        "inspector": "督查员（演示）",
        "department": "执法局联络员（演示）",
        "api": "接口客户端（演示）",
    }
    actor = Actor.system("demo loader")
    out = []
    first = count_users(conn) == 0
    for username, role, about in DEMO_USERS:
        created = False
        try:
            user = find_user(conn, username)
        except NotFound:
            pid = people.get(username)
            if username in people and pid is None:
                continue  # this town has no such owner (e.g. no grid worker)
            grants = [] if role in ("chief", "grid_worker") else [(role, places[role])]
            grants = grants or [(role, None)]
            user = create_user(
                conn,
                actor,
                username=username,
                password=DEMO_PASSWORD,
                min_password_length=min(settings.password_min_length, len(DEMO_PASSWORD)),
                person_id=pid,
                name=None if pid else names[username],
                grants=grants,
            )
            created = True
        out.append(
            {
                "id": user.id,
                "username": username,
                "password": DEMO_PASSWORD,
                "role": role,
                "name": user.name,
                "about": about,
                "created": created,
            }
        )
    LOGGER.info("demo accounts on %s: %d (%s)", town_code, len(out), "new" if first else "some existed")
    return out
