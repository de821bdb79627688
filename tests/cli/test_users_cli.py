"""``gisgrid users``: add, list, grant, revoke, disable, reset-password, import, log; and the demo accounts."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gisgrid.cli import main


@pytest.fixture()
def cli(scratch_engine, monkeypatch):
    url = scratch_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("GISGRID_DATABASE_URL", url)
    with scratch_engine.begin() as conn:
        conn.execute(
            sa.text("""INSERT INTO jurisdiction (code, level, name, geom) VALUES
                       ('110108', 'county', '海淀区', ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 0)))', 4326))""")
        )
        conn.execute(sa.text("INSERT INTO person (name) VALUES ('王伟')"))
    runner = CliRunner()

    def run(*args, input=None, ok=True):
        out = runner.invoke(main, list(args), input=input, catch_exceptions=False)
        if ok:
            assert out.exit_code == 0, out.output
        return out

    run.engine = scratch_engine
    return run


def test_users_lifecycle(cli):
    out = cli("users", "list")
    assert "gisgrid users add admin --name" in out.output  # no users yet: the command that makes the first admin
    out = cli(
        "users", "add", "Admin", "--name", "管理员", "--role", "admin", input="a strong password\na strong password\n"
    )
    assert "added admin" in out.output and "roles: admin" in out.output
    out = cli("users", "add", "wangwei", "--person", "1", "--role", "manager@110108", "--generate")
    assert "person 1 王伟" in out.output and "password: " in out.output
    assert "granted" in cli("users", "grant", "wangwei", "planner@110108").output
    assert "already" in cli("users", "grant", "wangwei", "planner@110108").output
    cli("users", "revoke", "wangwei", "manager@110108")
    out = cli("users", "list")
    assert "wangwei" in out.output and "planner@110108" in out.output and "manager@" not in out.output
    cli("users", "disable", "wangwei")
    assert "[disabled]" in cli("users", "list").output
    out = cli("users", "reset-password", "wangwei", "--password-stdin", input="another strong one\n")
    assert "reset" in out.output
    log = cli("users", "log", "--action", "user").output
    for action in ("user.add", "user.grant", "user.revoke", "user.disable", "user.password_reset"):
        assert action in log
    assert "cli:" in log


def test_users_errors_are_one_line(cli):
    out = cli("users", "add", "x", "--name", "某", "--password-stdin", input="short\n", ok=False)
    assert out.exit_code == 2 and "at least 10 characters" in out.output
    out = cli("users", "grant", "nobody", "admin", ok=False)
    assert out.exit_code == 2 and "no user 'nobody'" in out.output
    out = cli("users", "add", "y", ok=False)
    assert out.exit_code == 2 and "exactly one of --person" in out.output


def test_users_import_from_xlsx(cli, tmp_path):
    src = tmp_path / "users.xlsx"
    pd.DataFrame(
        {"用户名": ["li", "zhao"], "姓名": ["李四", "赵六"], "角色": ["clerk@110108", "dispatcher@110108;clerk@110108"]}
    ).to_excel(src, index=False)
    out_csv = tmp_path / "passwords.csv"
    out = cli("users", "import", str(src), "-o", str(out_csv))
    assert "imported 2 user(s)" in out.output
    written = pd.read_csv(out_csv, encoding="utf-8-sig")
    assert written["username"].tolist() == ["li", "zhao"] and written["password"].str.len().min() >= 16
    assert (
        "dispatcher@110108, clerk@110108" in cli("users", "list").output
        or "clerk@110108, dispatcher@110108" in cli("users", "list").output
    )


def test_demo_creates_one_account_per_role(scratch_engine, settings):
    from gisgrid.accounts.roles import ROLE_NAMES
    from gisgrid.accounts.store import authenticate
    from gisgrid.demo import DEMO_PASSWORD, TOWNS, create_demo_users, load_demo

    town = next(t for t in TOWNS if t.key == "shatin")
    with scratch_engine.begin() as conn:
        load_demo(conn, settings, towns=[town], reports_per_town=5)
        accounts = create_demo_users(conn, settings)
        again = create_demo_users(conn, settings)
        user = authenticate(conn, "duanzhang", DEMO_PASSWORD, max_failures=10, lock_minutes=1)
    assert {a["role"] for a in accounts} == set(ROLE_NAMES)
    assert not any(a["created"] for a in again), "a second load keeps the accounts"
    assert user.username == "duanzhang" and user.roles == {"chief"}


def test_api_keys_are_made_listed_and_revoked(cli):
    cli("users", "add", "hotline", "--person", "1", "--generate")
    out = cli("users", "api-key", "create", "hotline", "--name", "12345热线", ok=False)
    assert out.exit_code != 0 and "does not hold the api_client role" in out.output  # keys are for API clients
    cli("users", "grant", "hotline", "api_client")
    out = cli("users", "api-key", "create", "hotline", "--name", "12345热线")
    key = re.search(r"(gg_[0-9a-f]{12}_[A-Za-z0-9_-]{43})", out.output).group(1)
    with cli.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT prefix, secret_sha256 FROM api_key")).one()
    assert key.split("_")[1] == stored.prefix and key.split("_")[2] not in stored.secret_sha256  # a digest only
    listed = cli("users", "api-key", "list").output
    assert f"gg_{stored.prefix}_…" in listed and "12345热线" in listed and key not in listed
    cli("users", "api-key", "revoke", stored.prefix)
    assert "revoked" in cli("users", "api-key", "list", "hotline").output
    log = cli("users", "log", "--action", "api_key").output
    assert "api_key.create" in log and "api_key.revoke" in log
