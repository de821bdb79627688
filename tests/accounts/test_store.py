"""Accounts in PostgreSQL: adding, granting, logging in, lockout, and the append-only audit log."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gisgrid.accounts import store
from gisgrid.accounts.users import Actor, LoginRefused
from gisgrid.errors import InputError, NotFound

ACTOR = Actor.system("test")


@pytest.fixture()
def conn(scratch_engine):
    with scratch_engine.begin() as c:
        c.execute(
            sa.text("""INSERT INTO jurisdiction (code, level, name, geom)
                       VALUES ('110108', 'county', '海淀区', ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 0)))', 4326))""")
        )
        c.execute(sa.text("INSERT INTO department (code, name) VALUES ('enforcement', '城市管理综合执法局')"))
        yield c


def _add(conn, username="zhangsan", **kw):
    kw.setdefault("name", "张三")
    return store.create_user(conn, ACTOR, username=username, password="a good password", min_password_length=10, **kw)


def test_every_account_belongs_to_a_person(conn):
    user = _add(conn, grants=[("manager", "110108")])
    assert user.name == "张三" and user.person_id
    assert [g.describe() for g in user.grants] == ["manager@110108"]
    same = _add(conn, "zhangsan2", person_id=user.person_id)
    assert same.person_id == user.person_id
    with pytest.raises(NotFound, match="no person with id 999"):
        _add(conn, "ghost", person_id=999, name=None)
    with pytest.raises(InputError, match="exists already"):
        _add(conn, "ZhangSan")


def test_two_people_with_one_name_stay_two(conn):
    a, b = _add(conn, "wang1", name="王伟"), _add(conn, "wang2", name="王伟")
    assert a.person_id != b.person_id


def test_grant_and_revoke_are_idempotent_and_checked(conn):
    user = _add(conn)
    assert store.grant_role(conn, ACTOR, user.id, "planner", "110108")
    assert not store.grant_role(conn, ACTOR, user.id, "planner", "110108")
    assert store.grant_role(conn, ACTOR, user.id, "department", "enforcement")
    with pytest.raises(NotFound, match="no jurisdiction with code '999'"):
        store.grant_role(conn, ACTOR, user.id, "planner", "999")
    with pytest.raises(InputError, match="department code"):
        store.grant_role(conn, ACTOR, user.id, "department", None)
    with pytest.raises(ValueError, match="unknown role"):
        store.grant_role(conn, ACTOR, user.id, "root")
    assert store.revoke_role(conn, ACTOR, user.id, "planner", "110108") == 1
    assert store.revoke_role(conn, ACTOR, user.id, "planner", "110108") == 0
    assert store.get_user(conn, user.id).roles == {"department"}


def _login(conn, username, password, **kw):
    return store.authenticate(
        conn, username, password, max_failures=kw.get("n", 10), lock_minutes=15, address="10.0.0.1"
    )


def test_login_lockout_after_ten_failures(conn):
    user = _add(conn)
    assert _login(conn, "zhangsan", "a good password").id == user.id
    for _ in range(9):
        assert _login(conn, "zhangsan", "wrong").reason == "bad"
    refused = _login(conn, "zhangsan", "wrong")
    assert isinstance(refused, LoginRefused) and refused.reason == "locked"
    # locked: even the right password is refused, with the same message
    right = _login(conn, "zhangsan", "a good password")
    assert right.reason == "locked" and str(right) == str(refused) == "wrong user name or password"
    # an admin's reset lifts the lock and ends the sessions
    store.set_password(conn, ACTOR, user.id, "another good one", min_password_length=10)
    again = _login(conn, "zhangsan", "another good one")
    assert again.id == user.id and again.session_version == user.session_version + 1
    assert store.session_user(conn, user.id, user.session_version) is None


@pytest.mark.parametrize(
    "username, password",
    [
        ("x" * 10_000, "p"),
        ("' OR 1=1 --", "' OR 1=1 --"),
        ("<img src=x onerror=alert(1)>", "x"),
        (None, None),
        ("a", 5),
    ],
)
def test_hostile_login_input_is_refused_cleanly(conn, username, password):
    _add(conn)
    refused = _login(conn, username, password)
    assert isinstance(refused, LoginRefused) and refused.reason == "bad"


def test_disabled_account_cannot_log_in(conn):
    user = _add(conn)
    store.set_active(conn, ACTOR, user.id, False)
    assert _login(conn, "zhangsan", "a good password").reason == "disabled"
    assert store.session_user(conn, user.id, user.session_version) is None


def test_own_password_change_needs_the_old_one(conn):
    user = _add(conn)
    me = user.actor()
    with pytest.raises(InputError, match="current password is wrong"):
        store.change_own_password(conn, me, user.id, "nope", "brand new secret", min_password_length=10)
    changed = store.change_own_password(
        conn, me, user.id, "a good password", "brand new secret", min_password_length=10
    )
    assert changed.session_version == user.session_version + 1
    log = store.search_audit_log(conn, actor="zhangsan", action="user.password")
    assert log["action"].tolist() == ["user.password_change"] and log["actor_name"].tolist() == ["张三"]


def test_audit_log_is_append_only(conn):
    user = _add(conn)
    rows = store.search_audit_log(conn, target_type="user", target_id=str(user.id))
    assert rows["action"].tolist() == ["user.add"] and rows["actor_name"].tolist() == ["test"]
    for sql in ("UPDATE audit_log SET actor_name = 'someone else'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), conn.begin_nested():
            conn.execute(sa.text(sql))


def test_import_users_from_a_table_is_all_or_nothing(conn):
    import pandas as pd

    good = pd.DataFrame(
        {
            "用户名": ["li", "wang"],
            "姓名": ["李四", "王五"],
            "角色": ["manager@110108; planner@110108", ""],
            "密码": ["", "a good password"],
        }
    )
    created = store.import_users(conn, ACTOR, good, min_password_length=10)
    assert [c["username"] for c in created] == ["li", "wang"]
    assert created[0]["password"] and created[1]["password"] is None  # generated only when not given
    assert store.find_user(conn, "li").roles == {"manager", "planner"}
    assert store.find_user(conn, "li").must_change_password
    bad = pd.DataFrame({"用户名": ["zhao", "li", "x y"], "姓名": ["赵六", "李四", "某"], "角色": ["", "", "boss"]})
    with pytest.raises(InputError, match=r"2 bad row\(s\), nothing imported: row 2: user 'li' exists already; row 3"):
        store.import_users(conn, ACTOR, bad, min_password_length=10)
    with pytest.raises(NotFound):
        store.find_user(conn, "zhao")


def test_the_audit_log_page_shows_a_command_line_entry_without_nan(client, engine):
    """An entry made from the command line has no user account: the page leaves the account out (it showed
    "(nan)": pandas marks a missing text as NaN)."""
    with engine.begin() as c:
        uid, username = c.execute(sa.text("SELECT id, username FROM user_account ORDER BY id LIMIT 1")).one()
        store.record_action(c, Actor(name="测试", user_id=uid, username=username), "import.addresses",
                            target_type="layer", target_id="x0")  # fmt: skip
        store.record_action(c, Actor.system("cli:root"), "import.addresses", target_type="layer", target_id="x1")
    page = client.get("/audit-log/?action=import.addresses").get_data(as_text=True)
    assert "cli:root" in page and "nan" not in page.lower().replace("nanjing", "")
