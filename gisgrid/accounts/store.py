"""Accounts, role grants and the audit log in PostgreSQL.  Every write here records who did it.

Functions take a connection and work in the caller's transaction.  The
visibility rule itself is :mod:`gisgrid.accounts.scope`; :func:`visible_ids`
and :func:`is_visible` apply it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable

import pandas as pd
import sqlalchemy as sa

from gisgrid.accounts import scope as _scope
from gisgrid.accounts.keys import API_ROLE, check_key_name, new_key, parse_key, secret_matches
from gisgrid.accounts.roles import check_role
from gisgrid.accounts.users import (
    Actor,
    Grant,
    LoginRefused,
    User,
    after_failure,
    check_password,
    check_person_name,
    dummy_hash,
    generate_password,
    hash_password,
    is_locked,
    needs_rehash,
    normalise_username,
    verify_password,
)
from gisgrid.db.sql import no_jit
from gisgrid.errors import InputError, NotFound

LOGGER = logging.getLogger(__name__)

_USER_SQL = """
SELECT u.id, u.username, u.person_id, p.name, u.active, u.session_version, u.must_change_password,
       u.password_hash, u.failed_logins, u.locked_until
FROM user_account u JOIN person p ON p.id = u.person_id
"""


def _now(conn: sa.Connection) -> dt.datetime:
    return conn.execute(sa.text("SELECT now()")).scalar()


def _grants(conn: sa.Connection, user_ids: list[int]) -> dict[int, tuple[Grant, ...]]:
    rows = conn.execute(
        sa.text("""
        SELECT g.user_id, g.role, g.jurisdiction_id, j.code AS jcode, g.department_id, d.code AS dcode
        FROM role_grant g LEFT JOIN jurisdiction j ON j.id = g.jurisdiction_id
        LEFT JOIN department d ON d.id = g.department_id
        WHERE g.user_id = ANY(:ids) ORDER BY g.user_id, g.role, j.code NULLS FIRST, d.code"""),
        {"ids": user_ids},
    )
    out: dict[int, list[Grant]] = {}
    for r in rows:
        out.setdefault(r.user_id, []).append(Grant(r.role, r.jurisdiction_id, r.jcode, r.department_id, r.dcode))
    return {k: tuple(v) for k, v in out.items()}


def _user(conn: sa.Connection, row) -> User:
    return User(
        id=row.id,
        username=row.username,
        person_id=row.person_id,
        name=row.name,
        active=row.active,
        session_version=row.session_version,
        must_change_password=row.must_change_password,
        grants=_grants(conn, [row.id]).get(row.id, ()),
    )


def get_user(conn: sa.Connection, user_id: int) -> User | None:
    row = conn.execute(sa.text(_USER_SQL + " WHERE u.id = :id"), {"id": user_id}).first()
    return _user(conn, row) if row else None


def find_user(conn: sa.Connection, username: str) -> User:
    """The account named ``username``; :class:`NotFound` otherwise."""
    name = normalise_username(username)
    row = conn.execute(sa.text(_USER_SQL + " WHERE u.username = :n"), {"n": name}).first()
    if row is None:
        raise NotFound(f"no user {name!r}")
    return _user(conn, row)


def session_user(conn: sa.Connection, user_id: int, session_version: int) -> User | None:
    """The user of a session, if the account is still active and the session not ended by a password change."""
    user = get_user(conn, user_id)
    if user is None or not user.active or user.session_version != session_version:
        return None
    return user


def count_users(conn: sa.Connection) -> int:
    return conn.execute(sa.text("SELECT count(*) FROM user_account")).scalar()


def list_users(conn: sa.Connection) -> pd.DataFrame:
    """One row per account: id, username, person (id and name), active, roles, locked until, last login."""
    frame = pd.read_sql_query(
        sa.text("""
        SELECT u.id, u.username, u.person_id, p.name, u.active, u.locked_until, u.last_login_at
        FROM user_account u JOIN person p ON p.id = u.person_id ORDER BY u.username"""),
        conn,
    )
    grants = _grants(conn, frame["id"].tolist())
    frame["roles"] = [", ".join(g.describe() for g in grants.get(i, ())) for i in frame["id"]]
    return frame


# --- the audit log -----------------------------------------------------------------------
def _json(value) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=str)


def record_action(
    conn: sa.Connection,
    actor: Actor,
    action: str,
    *,
    target_type: str | None = None,
    target_id: object = None,
    before: object = None,
    after: object = None,
    detail: object = None,
) -> int:
    """Append one row to the audit log: ``actor`` did ``action`` to the target; returns its id.

    ``before`` and ``after`` hold the ids (and the few values) the write changed,
    e.g. ``{"unit_ids": [3]}`` → ``{"unit_ids": [7, 8]}``.
    """
    return conn.execute(
        sa.text("""
        INSERT INTO audit_log (actor_user_id, actor_person_id, actor_name, action, target_type, target_id,
                               before, after, detail, address)
        VALUES (:uid, :pid, :name, :action, :tt, :tid, CAST(:before AS jsonb), CAST(:after AS jsonb),
                CAST(:detail AS jsonb), :addr) RETURNING id"""),
        {
            "uid": actor.user_id,
            "pid": actor.person_id,
            "name": actor.name,
            "action": action,
            "tt": target_type,
            "tid": None if target_id is None else str(target_id),
            "before": _json(before),
            "after": _json(after),
            "detail": _json(detail),
            "addr": (actor.address or None) and actor.address[:64],
        },
    ).scalar()


def search_audit_log(
    conn: sa.Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    limit: int = 200,
) -> pd.DataFrame:
    """Audit rows, newest first.  ``actor`` matches a user name, a person's name or a user id;
    ``action`` a prefix (``plan`` finds ``plan.save``); ``until`` is inclusive."""
    where, params = ["true"], {"limit": max(1, min(int(limit), 5000))}
    if actor:
        where.append(
            "(l.actor_name ILIKE :actor OR u.username = lower(:actor_exact) OR CAST(l.actor_user_id AS text) = :actor_exact)"
        )
        params.update(actor="%" + actor.replace("%", r"\%").replace("_", r"\_") + "%", actor_exact=actor.strip())
    if action:
        where.append("l.action LIKE :action")
        params["action"] = action.replace("%", r"\%").replace("_", r"\_") + "%"
    if target_type:
        where.append("l.target_type = :tt")
        params["tt"] = target_type
    if target_id:
        where.append("l.target_id = :tid")
        params["tid"] = str(target_id)
    if since:
        where.append("l.at >= :since")
        params["since"] = since
    if until:
        where.append("l.at < CAST(:until AS date) + 1")
        params["until"] = until
    return pd.read_sql_query(
        sa.text(f"""
        SELECT l.id, l.at, l.actor_user_id, u.username AS actor_username, l.actor_name, l.action, l.target_type,
               l.target_id, CAST(l.before AS text) AS before, CAST(l.after AS text) AS after,
               CAST(l.detail AS text) AS detail, l.address
        FROM audit_log l LEFT JOIN user_account u ON u.id = l.actor_user_id
        WHERE {" AND ".join(where)} ORDER BY l.id DESC LIMIT :limit"""),
        conn,
        params=params,
    )


# --- accounts ------------------------------------------------------------------------------
def _person(conn: sa.Connection, person_id: int | None, name: str | None, phone: str | None) -> int:
    if person_id is not None:
        found = conn.execute(sa.text("SELECT id FROM person WHERE id = :i"), {"i": int(person_id)}).scalar()
        if found is None:
            raise NotFound(f"no person with id {person_id}")
        return found
    name = check_person_name(name)
    return conn.execute(
        sa.text("INSERT INTO person (name, phone, title) VALUES (:n, :p, NULL) RETURNING id"),
        {"n": name, "p": phone or None},
    ).scalar()


def create_user(
    conn: sa.Connection,
    actor: Actor,
    *,
    username: str,
    password: str,
    min_password_length: int,
    person_id: int | None = None,
    name: str | None = None,
    phone: str | None = None,
    grants: Iterable[tuple[str, str | None]] = (),
    must_change_password: bool = False,
) -> User:
    """A new account for the person ``person_id`` (an owner that exists), or for a new person named ``name``.

    ``grants`` are (role, place) pairs as :func:`grant_role` takes them.
    """
    username = normalise_username(username)
    check_password(password, min_length=min_password_length, username=username)
    if conn.execute(sa.text("SELECT 1 FROM user_account WHERE username = :u"), {"u": username}).first():
        raise InputError(f"user {username!r} exists already")
    pid = _person(conn, person_id, name, phone)
    uid = conn.execute(
        sa.text("""
        INSERT INTO user_account (username, person_id, password_hash, must_change_password)
        VALUES (:u, :p, :h, :m) RETURNING id"""),
        {"u": username, "p": pid, "h": hash_password(password), "m": must_change_password},
    ).scalar()
    record_action(
        conn,
        actor,
        "user.add",
        target_type="user",
        target_id=uid,
        after={"username": username, "person_id": pid, "created_person": person_id is None},
    )
    for role, place in grants:
        grant_role(conn, actor, uid, role, place)
    LOGGER.info("user %s added (person %s) by %s", username, pid, actor.name)
    return get_user(conn, uid)


def _place(conn: sa.Connection, role: str, place: str | None) -> tuple[int | None, int | None]:
    """(jurisdiction id, department id) of a grant's place: a division code, or a department code."""
    if role == "department":
        if not place:
            raise InputError("the department role needs a department code (role@CODE)")
        did = conn.execute(sa.text("SELECT id FROM department WHERE code = :c"), {"c": place}).scalar()
        if did is None:
            raise NotFound(f"no department with code {place!r}")
        return None, did
    if not place:
        return None, None
    jid = conn.execute(sa.text("SELECT id FROM jurisdiction WHERE code = :c"), {"c": place}).scalar()
    if jid is None:
        raise NotFound(f"no jurisdiction with code {place!r}")
    return jid, None


def parse_grant(text: str) -> tuple[str, str | None]:
    """``'manager@110108001'`` → ``('manager', '110108001')``; ``'admin'`` → ``('admin', None)``."""
    role, _, place = str(text).strip().partition("@")
    return check_role(role.strip()), (place.strip() or None)


def grant_role(conn: sa.Connection, actor: Actor, user_id: int, role: str, place: str | None = None) -> bool:
    """Grant ``role`` in the jurisdiction (division code) or department (code) ``place``; None: everywhere.

    Returns False when the user held that grant already.
    """
    check_role(role)
    jid, did = _place(conn, role, place)
    _lock_user(conn, user_id)
    exists = conn.execute(
        sa.text("""
        SELECT 1 FROM role_grant WHERE user_id = :u AND role = :r
          AND jurisdiction_id IS NOT DISTINCT FROM CAST(:j AS integer)
          AND department_id IS NOT DISTINCT FROM CAST(:d AS integer)"""),
        {"u": user_id, "r": role, "j": jid, "d": did},
    ).first()
    if exists:
        return False
    gid = conn.execute(
        sa.text(
            "INSERT INTO role_grant (user_id, role, jurisdiction_id, department_id) VALUES (:u, :r, :j, :d) RETURNING id"
        ),
        {"u": user_id, "r": role, "j": jid, "d": did},
    ).scalar()
    record_action(
        conn,
        actor,
        "user.grant",
        target_type="user",
        target_id=user_id,
        after={"grant_id": gid, "role": role, "place": place},
    )
    return True


def revoke_role(conn: sa.Connection, actor: Actor, user_id: int, role: str, place: str | None = None) -> int:
    """Remove the grant of ``role`` at ``place`` (None: the grant with no place); returns how many went."""
    check_role(role)
    jid, did = _place(conn, role, place)
    _lock_user(conn, user_id)
    ids = [
        r[0]
        for r in conn.execute(
            sa.text("""
            DELETE FROM role_grant WHERE user_id = :u AND role = :r
              AND jurisdiction_id IS NOT DISTINCT FROM CAST(:j AS integer)
              AND department_id IS NOT DISTINCT FROM CAST(:d AS integer) RETURNING id"""),
            {"u": user_id, "r": role, "j": jid, "d": did},
        )
    ]
    if ids:
        record_action(
            conn,
            actor,
            "user.revoke",
            target_type="user",
            target_id=user_id,
            before={"grant_ids": ids, "role": role, "place": place},
        )
    return len(ids)


def _lock_user(conn: sa.Connection, user_id: int) -> None:
    if conn.execute(sa.text("SELECT id FROM user_account WHERE id = :u FOR UPDATE"), {"u": user_id}).first() is None:
        raise NotFound(f"no user with id {user_id}")


def set_active(conn: sa.Connection, actor: Actor, user_id: int, active: bool) -> None:
    """Enable or disable an account; disabling ends its open sessions."""
    _lock_user(conn, user_id)
    conn.execute(
        sa.text("""
        UPDATE user_account SET active = :a, failed_logins = 0, locked_until = NULL,
               session_version = session_version + CASE WHEN :a THEN 0 ELSE 1 END
        WHERE id = :u"""),
        {"a": active, "u": user_id},
    )
    record_action(conn, actor, "user.enable" if active else "user.disable", target_type="user", target_id=user_id)


def set_password(
    conn: sa.Connection,
    actor: Actor,
    user_id: int,
    password: str,
    *,
    min_password_length: int,
    must_change: bool = False,
) -> None:
    """Set a new password (an admin's reset, or the user's own change); ends every open session of the user
    and lifts a lock."""
    user = get_user(conn, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    check_password(password, min_length=min_password_length, username=user.username)
    conn.execute(
        sa.text("""
        UPDATE user_account SET password_hash = :h, session_version = session_version + 1, failed_logins = 0,
               locked_until = NULL, must_change_password = :m, password_changed_at = now()
        WHERE id = :u"""),
        {"h": hash_password(password), "u": user_id, "m": must_change},
    )
    own = actor.user_id == user_id
    record_action(
        conn, actor, "user.password_change" if own else "user.password_reset", target_type="user", target_id=user_id
    )


def change_own_password(
    conn: sa.Connection, actor: Actor, user_id: int, old: str, new: str, *, min_password_length: int
) -> User:
    """The user's own change: the old password must match.  Returns the user with the new session version."""
    row = conn.execute(sa.text("SELECT password_hash FROM user_account WHERE id = :u"), {"u": user_id}).first()
    if row is None or not isinstance(old, str) or not verify_password(row.password_hash, old):
        raise InputError("the current password is wrong")
    if old == new:
        raise InputError("the new password must differ from the current one")
    set_password(conn, actor, user_id, new, min_password_length=min_password_length)
    return get_user(conn, user_id)


def authenticate(
    conn: sa.Connection,
    username: object,
    password: object,
    *,
    max_failures: int,
    lock_minutes: float,
    address: str | None = None,
) -> User | LoginRefused:
    """Check a login.  Returns the user, or (not raises) a :class:`LoginRefused`, so that the caller commits
    the failure count before answering.

    Every refusal costs one password check, whether the name exists or not.
    The ``max_failures``-th failure in a row locks the account for
    ``lock_minutes``; a locked account is refused even with the right password.
    """
    try:
        name = normalise_username(username)
    except InputError:
        name = None
    if not isinstance(password, str) or len(password) > 1024:
        password = ""
    row = (
        conn.execute(sa.text(_USER_SQL + " WHERE u.username = :n FOR UPDATE OF u"), {"n": name}).first()
        if name
        else None
    )
    if row is None:
        verify_password(dummy_hash(), password or "x")
        return LoginRefused("bad")
    now = _now(conn)
    who = Actor(name=row.name, user_id=row.id, person_id=row.person_id, username=row.username, address=address)
    if is_locked(row.locked_until, now):
        verify_password(dummy_hash(), password or "x")
        return LoginRefused("locked", locked_until=row.locked_until)
    ok = bool(password) and verify_password(row.password_hash, password)
    if ok and row.active:
        params = {"u": row.id}
        rehash = ""
        if needs_rehash(row.password_hash):
            rehash, params["h"] = ", password_hash = :h", hash_password(password)
        conn.execute(
            sa.text(
                f"UPDATE user_account SET failed_logins = 0, locked_until = NULL, last_login_at = now(){rehash} "
                "WHERE id = :u"
            ),
            params,
        )
        record_action(conn, who, "login", target_type="user", target_id=row.id)
        return _user(conn, row)
    if ok:  # right password, disabled account
        record_action(conn, who, "login.refused", target_type="user", target_id=row.id, detail={"reason": "disabled"})
        return LoginRefused("disabled")
    failed, locked_until = after_failure(row.failed_logins, now, limit=max_failures, lock_minutes=lock_minutes)
    conn.execute(
        sa.text("UPDATE user_account SET failed_logins = :f, locked_until = :l WHERE id = :u"),
        {"f": failed, "l": locked_until, "u": row.id},
    )
    if locked_until is not None:
        record_action(
            conn,
            who,
            "login.locked",
            target_type="user",
            target_id=row.id,
            detail={"failures": max_failures, "locked_until": locked_until.isoformat()},
        )
        LOGGER.warning("user %s locked until %s after %d failed logins", row.username, locked_until, max_failures)
        return LoginRefused("locked", locked_until=locked_until)
    return LoginRefused("bad")


# --- import from a table -------------------------------------------------------------------
USER_COLUMNS = {
    "username": ("username", "user", "login", "用户名", "账号"),
    "name": ("name", "姓名", "person", "人员"),
    "person_id": ("person_id", "人员编号", "人员id"),
    "phone": ("phone", "电话", "手机"),
    "roles": ("roles", "role", "角色"),
    "password": ("password", "密码"),
}


def _column(frame: pd.DataFrame, field: str) -> str | None:
    lowered = {str(c).strip().lower(): c for c in frame.columns}
    for name in USER_COLUMNS[field]:
        if name in lowered:
            return lowered[name]
    return None


def import_users(conn: sa.Connection, actor: Actor, frame: pd.DataFrame, *, min_password_length: int) -> list[dict]:
    """Create the accounts of a table (one transaction: any bad row and nothing is created).

    Columns (English or Chinese headers): ``username`` (用户名), ``name`` (姓名)
    or ``person_id`` (人员编号), ``phone`` (电话), ``roles`` (角色: ``role@code``
    separated by ``;`` or ``,``), ``password`` (密码; generated when empty).
    Returns one dict per created user: ``row``, ``username``, ``password``
    (the generated one, else None), ``roles``.

    Raises
    ------
    InputError
        Listing every bad row (1-based data row numbers).
    """
    cols = {f: _column(frame, f) for f in USER_COLUMNS}
    if cols["username"] is None:
        raise InputError(f"no user name column; expected one of {', '.join(USER_COLUMNS['username'])}")
    if cols["name"] is None and cols["person_id"] is None:
        raise InputError("no 姓名 (name) or person_id column: every account belongs to a person")
    problems, out = [], []
    rows = frame["row"] if "row" in frame.columns else pd.Series(range(1, len(frame) + 1), index=frame.index)
    seen: set[str] = set()
    everything = conn.begin_nested()  # any bad row: nothing stays
    try:
        for idx, rec in frame.iterrows():
            row = int(rows[idx])
            try:
                out.append(_import_row(conn, actor, rec, cols, seen, min_password_length) | {"row": row})
            except (InputError, NotFound, ValueError) as exc:
                problems.append(f"row {row}: {exc}")
        if problems:
            raise InputError(f"{len(problems)} bad row(s), nothing imported: " + "; ".join(problems))
    except BaseException:
        everything.rollback()
        raise
    everything.commit()
    record_action(conn, actor, "user.import", target_type="user", detail={"created": [u["username"] for u in out]})
    return out


def _import_row(conn, actor: Actor, rec, cols: dict, seen: set[str], min_password_length: int) -> dict:
    def cell(field):
        col = cols[field]
        value = rec[col] if col is not None else None
        return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value).strip()

    username = normalise_username(cell("username"))
    if username in seen:
        raise InputError(f"user {username!r} appears twice")
    seen.add(username)
    grants = [parse_grant(g) for g in (cell("roles") or "").replace(";", ",").split(",") if g.strip()]
    given = cell("password")
    password = given or generate_password()
    pid = cell("person_id")
    with conn.begin_nested():
        create_user(
            conn,
            actor,
            username=username,
            password=password,
            min_password_length=min_password_length,
            person_id=int(pid) if pid else None,
            name=cell("name"),
            phone=cell("phone"),
            grants=grants,
            must_change_password=not given,
        )
    return {
        "username": username,
        "password": None if given else password,
        "roles": ", ".join(f"{r}@{p}" if p else r for r, p in grants),
    }


# --- API keys -------------------------------------------------------------------------------
def create_api_key(conn: sa.Connection, actor: Actor, user_id: int, name: str) -> tuple[str, int]:
    """A new API key for the user ``user_id``, who must hold the ``api_client`` role; (key text, key id).

    The key text is shown once: only its digest is stored (:mod:`gisgrid.accounts.keys`).
    """
    try:
        name = check_key_name(name)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    user = get_user(conn, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    if API_ROLE not in user.roles:
        raise InputError(f"user {user.username!r} does not hold the {API_ROLE} role: grant it before making a key")
    key = new_key()
    key_id = conn.execute(
        sa.text("""
        INSERT INTO api_key (user_id, prefix, secret_sha256, name) VALUES (:u, :p, :h, :n) RETURNING id"""),
        {"u": user_id, "p": key.prefix, "h": key.secret_sha256, "n": name},
    ).scalar()
    record_action(
        conn,
        actor,
        "api_key.create",
        target_type="user",
        target_id=user_id,
        after={"key_id": key_id, "prefix": key.prefix, "name": name},
    )
    LOGGER.info("API key %s (%s) made for %s by %s", key.prefix, name, user.username, actor.name)
    return key.text, int(key_id)


def revoke_api_key(conn: sa.Connection, actor: Actor, key_id: int, *, user_id: int | None = None) -> None:
    """Revoke a key (it stops working at once; its row stays, for the audit log).

    ``user_id``: the key must be that user's (a page that lists one user's keys).
    """
    row = conn.execute(
        sa.text("SELECT user_id, prefix, revoked_at FROM api_key WHERE id = :k FOR UPDATE"), {"k": key_id}
    ).first()
    if row is None or (user_id is not None and row.user_id != user_id):
        raise NotFound(f"no API key {key_id}")
    if row.revoked_at is not None:
        raise InputError(f"API key {row.prefix} was revoked already")
    conn.execute(sa.text("UPDATE api_key SET revoked_at = now() WHERE id = :k"), {"k": key_id})
    record_action(
        conn,
        actor,
        "api_key.revoke",
        target_type="user",
        target_id=row.user_id,
        before={"key_id": key_id, "prefix": row.prefix},
    )


def list_api_keys(conn: sa.Connection, user_id: int | None = None) -> pd.DataFrame:
    """Keys (never their secrets): id, user id and name, prefix, name, created, last used, revoked; newest first."""
    return pd.read_sql_query(
        sa.text("""
        SELECT k.id, k.user_id, u.username, k.prefix, k.name, k.created_at, k.last_used_at, k.revoked_at
        FROM api_key k JOIN user_account u ON u.id = k.user_id
        WHERE CAST(:u AS integer) IS NULL OR k.user_id = :u ORDER BY k.id DESC"""),
        conn,
        params={"u": user_id},
    )


def find_api_key(conn: sa.Connection, ref: str) -> int:
    """The id of a key given by its id or its prefix (``gg_<prefix>_…`` as lists show it); :class:`NotFound` otherwise."""
    ref = str(ref).strip()
    if ref.startswith("gg_"):
        ref = ref[3:].split("_", 1)[0]
    row = conn.execute(
        sa.text("SELECT id FROM api_key WHERE prefix = :r OR CAST(id AS text) = :r ORDER BY id LIMIT 1"), {"r": ref}
    ).first()
    if row is None:
        raise NotFound(f"no API key {ref!r}")
    return int(row.id)


def authenticate_api_key(conn: sa.Connection, text: str | None) -> tuple[User, int] | None:
    """The user a key acts for and the key's id; None for a malformed, unknown, revoked or wrong key, and
    for a key whose user is disabled or no longer holds the ``api_client`` role.

    Marks the key used (at most once a minute: a busy client does not write on every call).
    """
    parsed = parse_key(text)
    if parsed is None:
        return None
    prefix, secret = parsed
    row = conn.execute(
        sa.text("SELECT id, user_id, secret_sha256 FROM api_key WHERE prefix = :p AND revoked_at IS NULL"),
        {"p": prefix},
    ).first()
    if row is None or not secret_matches(row.secret_sha256, secret):
        return None
    user = get_user(conn, row.user_id)
    if user is None or not user.active or API_ROLE not in user.roles:
        return None
    conn.execute(
        sa.text("""
        UPDATE api_key SET last_used_at = now()
        WHERE id = :k AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"""),
        {"k": row.id},
    )
    return user, int(row.id)


# --- what a user sees ---------------------------------------------------------------------
_TABLES = {
    "jurisdiction": "jurisdiction",
    "street": "street",
    "segment": "segment",
    "cell": "grid_cell",
    "report": "report",
}


def visible_ids(conn: sa.Connection, scope: _scope.Scope, kind: str) -> set[int]:
    """Ids of the ``kind`` units (or reports) ``scope`` sees (the predicate of :mod:`gisgrid.accounts.scope`)."""
    table = _TABLES[kind]
    with no_jit(conn):
        rows = conn.execute(sa.text(f"SELECT u.id FROM {table} u WHERE {scope.sql(kind, 'u')}"), scope.params()).all()
    return {r[0] for r in rows}


def is_visible(conn: sa.Connection, scope: _scope.Scope, kind: str, unit_id: int) -> bool:
    """Does ``scope`` see the ``kind`` unit ``unit_id``?  False too when it does not exist (a 404 either way)."""
    table = _TABLES[kind]
    with no_jit(conn):
        row = conn.execute(
            sa.text(f"SELECT 1 FROM {table} u WHERE u.id = :unit_id AND {scope.sql(kind, 'u')}"),
            {"unit_id": unit_id, **scope.params()},
        ).first()
    return row is not None


def load_world(conn: sa.Connection) -> _scope.World:
    """The facts the visibility rule reads, for :func:`gisgrid.accounts.scope.visible_units`."""
    q = lambda sql: conn.execute(sa.text(sql)).all()  # noqa: E731
    return _scope.World(
        jurisdiction_parent=dict(q("SELECT id, parent_id FROM jurisdiction")),
        street_jurisdiction=dict(q("SELECT id, jurisdiction_id FROM street")),
        segment_street=dict(q("SELECT id, street_id FROM segment")),
        cell_jurisdiction=dict(q("SELECT id, jurisdiction_id FROM grid_cell")),
        assignments=tuple(
            _scope.Assignment(*r)
            for r in q(
                "SELECT person_id, department_id, target_type, target_id, valid_from, valid_to FROM owner_assignment"
            )
        ),
        reports={r[0]: _scope.CaseFacts(*r[1:]) for r in q(f"SELECT id, {', '.join(_scope.CASE_COLUMNS)} FROM report")},
    )


def load_subject(conn: sa.Connection, user_id: int) -> _scope.Subject:
    row = conn.execute(sa.text("SELECT person_id, active FROM user_account WHERE id = :u"), {"u": user_id}).one()
    grants = conn.execute(
        sa.text("SELECT role, jurisdiction_id, department_id FROM role_grant WHERE user_id = :u"), {"u": user_id}
    ).all()
    return _scope.Subject(row.person_id, row.active, tuple(tuple(g) for g in grants))


def list_towns(conn: sa.Connection, scope: _scope.Scope, *, whole: bool = False) -> list[dict]:
    """The towns that hold something ``scope`` sees (``whole``: that it sees whole), by code.

    Keys: ``id``, ``code``, ``name``, ``segments`` (the visible ones).
    """
    rows = conn.execute(
        sa.text(f"""
        SELECT j.id, j.code, j.name,
               (SELECT count(*) FROM segment g JOIN street s ON s.id = g.street_id
                WHERE s.jurisdiction_id = j.id AND {scope.sql("segment", "g")}) AS segments
        FROM jurisdiction j WHERE j.level = 'town'
          AND {scope.sql("jurisdiction", "j") if whole else scope.towns_sql("j")} ORDER BY j.code"""),
        scope.params(),
    )
    return [dict(r._mapping) for r in rows]


def visible_jurisdiction(conn: sa.Connection, scope: _scope.Scope, code: str, *, partly: bool = False) -> dict:
    """The jurisdiction ``code`` if ``scope`` sees all of it; :class:`NotFound` otherwise (missing or not theirs).

    With ``partly`` a town that merely holds something the user sees (a 段长's
    segment, a 网格员's cell) is accepted too: pages that limit every row by
    the predicate use it as the frame of what they show.
    """
    sight = scope.sql("jurisdiction", "j")
    if partly:
        sight = f"({sight} OR (j.level = 'town' AND {scope.towns_sql('j')}))"
    row = conn.execute(
        sa.text(f"SELECT j.id, j.code, j.name, j.level FROM jurisdiction j WHERE j.code = :c AND {sight}"),
        {"c": code, **scope.params()},
    ).first()
    if row is None:
        raise NotFound(f"no town or other jurisdiction with code {code!r}")
    return dict(row._mapping)


def list_jurisdictions(conn: sa.Connection, scope: _scope.Scope) -> list[dict]:
    """Every jurisdiction ``scope`` sees whole: ``code``, ``name``, ``level``; towns first, then communities, counties."""
    rows = conn.execute(
        sa.text(f"""
        SELECT j.code, j.name, j.level FROM jurisdiction j WHERE {scope.sql("jurisdiction", "j")}
        ORDER BY CASE j.level WHEN 'town' THEN 0 WHEN 'community' THEN 1 ELSE 2 END, j.code"""),
        scope.params(),
    )
    return [dict(r._mapping) for r in rows]
