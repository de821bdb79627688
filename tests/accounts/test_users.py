"""Accounts without a database: names, passwords, lockout, what each role may do."""

from __future__ import annotations

import datetime as dt

import pytest

from gisgrid.accounts import roles, users
from gisgrid.errors import InputError


def test_password_hash_is_argon2id_and_salted():
    a, b = users.hash_password("correct horse battery"), users.hash_password("correct horse battery")
    assert a.startswith("$argon2id$") and a != b
    assert users.verify_password(a, "correct horse battery")
    assert not users.verify_password(a, "correct horse batterY")
    assert not users.verify_password("not a hash", "correct horse battery")


@pytest.mark.parametrize(
    "raw, stored",
    [(" Zhang.San ", "zhang.san"), ("ＡＢＣ", "abc"), ("li_si@town", "li_si@town")],
)
def test_user_names_are_normalised(raw, stored):
    assert users.normalise_username(raw) == stored


@pytest.mark.parametrize(
    "raw", ["", " ", "-dash", "a b", "x" * 65, "<script>", "'; DROP TABLE user_account; --", "张三", None]
)
def test_hostile_or_odd_user_names_are_refused_by_name(raw):
    with pytest.raises(InputError, match="not allowed"):
        users.normalise_username(raw)


def test_password_policy_lists_every_problem():
    problems = users.password_problems("aaaa", min_length=10, username="aaaa")
    assert len(problems) == 3  # too short, the user name, too few different characters
    assert users.password_problems("x" * 300 + "abcd", min_length=10) == [
        f"the password may have at most {users.MAX_PASSWORD_LENGTH} characters"
    ]
    assert users.password_problems("long enough pass", min_length=10) == []


def test_tenth_failure_locks_for_the_set_time():
    now = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.timezone.utc)
    failed = 0
    for _ in range(9):
        failed, locked = users.after_failure(failed, now, limit=10, lock_minutes=15)
        assert locked is None
    failed, locked = users.after_failure(failed, now, limit=10, lock_minutes=15)
    assert failed == 0 and locked == now + dt.timedelta(minutes=15)
    assert users.is_locked(locked, now + dt.timedelta(minutes=14))
    assert not users.is_locked(locked, now + dt.timedelta(minutes=15))


def test_what_each_role_may_do():
    P = roles.Permission
    assert roles.may(["admin"], P.manage_users)
    assert not roles.may(["manager"], P.manage_users) and roles.may(["manager"], P.manage_owners)
    assert roles.may(["planner"], P.edit_plan) and not roles.may(["chief"], P.edit_plan)
    assert roles.may(["clerk"], P.geocode) and not roles.may(["planner"], P.geocode)
    assert roles.may([], P.view_own), "an account without grants still sees what its person owns"
    assert not roles.may(["api_client"], P.view_own)
    assert roles.may(["chief", "planner"], P.edit_plan), "a person may hold several roles"
    with pytest.raises(ValueError, match="roles: admin, manager"):
        roles.check_role("superuser")


def test_a_generated_password_never_starts_like_a_formula():
    from gisgrid.accounts.users import generate_password

    assert not any(generate_password().startswith("-") for _ in range(5_000))
