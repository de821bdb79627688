"""User accounts: names, passwords (argon2id), lockout after repeated failures, and who acts.

Pure: no database, no Flask.  :mod:`gisgrid.accounts.store` reads and writes
the accounts; the web layer wraps :class:`User` for Flask-Login.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gisgrid.accounts.roles import AREA_ROLES, Permission, may, permissions_of
from gisgrid.errors import InputError

#: A user name: lower-case letters, digits and ``. _ @ -``, starting with a letter or digit.
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
#: Longest password accepted: hashing a megabyte of text on every login attempt is a denial of service.
MAX_PASSWORD_LENGTH = 256
#: Longest person name accepted.
MAX_NAME_LENGTH = 100


class LoginRefused(InputError):
    """Wrong name or password, a disabled account, or one locked after repeated failures.

    The message never says which of these, so that a guesser learns nothing;
    ``reason`` ('bad', 'locked', 'disabled') is for the log and the audit only.
    """

    http_status_code = 401
    default_msg = "wrong user name or password"

    def __init__(self, reason: str = "bad", *, locked_until: dt.datetime | None = None):
        super().__init__(self.default_msg)
        self.reason = reason
        self.locked_until = locked_until


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    # argon2-cffi's defaults (RFC 9106 low-memory profile: t=3, m=64 MiB, p=4), argon2id
    return PasswordHasher(type=Type.ID)


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (salted; PHC string format)."""
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; False for a mismatch or a malformed hash."""
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    try:
        return _hasher().check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash checked when the user name is unknown, so that both answers take as long."""
    return hash_password(secrets.token_urlsafe(16))


def normalise_username(raw: object) -> str:
    """The stored form of a user name: NFKC, trimmed, lower case; :class:`InputError` when not allowed."""
    text = unicodedata.normalize("NFKC", str(raw or "")).strip().lower()
    if not USERNAME_RE.fullmatch(text):
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise InputError(
            f"user name {shown!r} is not allowed: 1–64 lower-case letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    return text


def password_problems(password: object, *, min_length: int, username: str = "") -> list[str]:
    """Why ``password`` cannot be used (empty when it can)."""
    if not isinstance(password, str):
        return ["the password must be text"]
    problems = []
    if len(password) < min_length:
        problems.append(f"the password needs at least {min_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"the password may have at most {MAX_PASSWORD_LENGTH} characters")
    if username and password.strip().lower() == username.lower():
        problems.append("the password must not be the user name")
    if password and len(set(password)) < 4:
        problems.append("the password needs at least 4 different characters")
    return problems


def check_password(password: object, *, min_length: int, username: str = "") -> str:
    """``password`` when it may be used, else :class:`InputError` with every problem."""
    problems = password_problems(password, min_length=min_length, username=username)
    if problems:
        raise InputError("; ".join(problems))
    return password  # type: ignore[return-value]


def generate_password(n_bytes: int = 12) -> str:
    """A random password (16 URL-safe characters for 12 bytes), never starting with ``-``: a spreadsheet
    would read such a cell as a formula, and the formula-safe writer would prefix it with a quote."""
    while True:
        password = secrets.token_urlsafe(n_bytes)
        if not password.startswith("-"):
            return password


def check_person_name(raw: object) -> str:
    name = " ".join(str(raw or "").split())
    if not name:
        raise InputError("the person's name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InputError(f"the person's name may have at most {MAX_NAME_LENGTH} characters")
    return name


# --- lockout -----------------------------------------------------------------------
def after_failure(
    failed_logins: int, now: dt.datetime, *, limit: int, lock_minutes: float
) -> tuple[int, dt.datetime | None]:
    """(failures, locked until) after one more failed login.

    The ``limit``-th failure in a row locks the account for ``lock_minutes``;
    the count starts again after the lock.
    """
    failed = failed_logins + 1
    if failed >= limit:
        return 0, now + dt.timedelta(minutes=lock_minutes)
    return failed, None


def is_locked(locked_until: dt.datetime | None, now: dt.datetime) -> bool:
    return locked_until is not None and now < locked_until


# --- who is signed in, who acts ---------------------------------------------------
@dataclass(frozen=True)
class Grant:
    """A role in a jurisdiction subtree (``jurisdiction_id`` None: everywhere) or for a department."""

    role: str
    jurisdiction_id: int | None = None
    jurisdiction_code: str | None = None
    department_id: int | None = None
    department_code: str | None = None

    def describe(self) -> str:
        where = self.jurisdiction_code or self.department_code
        return f"{self.role}@{where}" if where else self.role


@dataclass(frozen=True)
class User:
    """A signed-in account with its person and role grants."""

    id: int
    username: str
    person_id: int
    name: str
    active: bool = True
    session_version: int = 1
    must_change_password: bool = False
    grants: tuple[Grant, ...] = field(default_factory=tuple)

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(g.role for g in self.grants)

    @property
    def permissions(self) -> frozenset[Permission]:
        return permissions_of(self.roles)

    def may(self, permission: Permission | str) -> bool:
        return may(self.roles, permission)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def sees_everything(self) -> bool:
        """An area role granted with no jurisdiction: the whole deployment (:mod:`gisgrid.accounts.scope`)."""
        return any(g.role in AREA_ROLES and g.jurisdiction_id is None for g in self.grants)

    def actor(self, address: str | None = None) -> Actor:
        return Actor(user_id=self.id, person_id=self.person_id, name=self.name, username=self.username, address=address)


@dataclass(frozen=True)
class Actor:
    """Who does a write: a signed-in user, or a named system process (the CLI, the demo loader)."""

    name: str
    user_id: int | None = None
    person_id: int | None = None
    username: str | None = None
    address: str | None = None

    @classmethod
    def system(cls, what: str) -> Actor:
        return cls(name=what)
