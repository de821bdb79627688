"""GISGRID_DATABASE_URL against a PostgreSQL server the test starts itself (not the managed cluster),
reached over TCP with a password as a role that is not a superuser, with TLS."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gisgrid.cli import main
from gisgrid.db.cluster import find_server
from tests.ops.test_backup import free_port, table_checksums

ROLE, PASSWORD = "county_app", "Zs8-ext-pw"


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="module")
def external():
    """A second server: initdb in a temp folder, its own port, scram passwords over TCP, TLS on."""
    server = find_server(os.environ.get("GISGRID_PG_BINDIR"))
    root = Path(tempfile.mkdtemp(prefix="gisgrid-ext-", dir="/tmp"))
    data = root / "data"
    port = free_port()
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    subprocess.run(
        _as_postgres(
            [server.bin("initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
             "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"]
        ),
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        _as_postgres(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-keyout", str(data / "server.key"), "-out", str(data / "server.crt")]
        ),
        check=True, capture_output=True,
    )  # fmt: skip
    (data / "server.key").chmod(0o600)
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c ssl=on -c fsync=off"
    subprocess.run(
        _as_postgres([server.bin("pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", opts, "-w", "start"]),
        check=True, capture_output=True,
    )  # fmt: skip

    def dba(sql: str, database: str = "postgres") -> None:
        subprocess.run(
            _as_postgres([server.bin("psql"), "-h", str(root), "-p", str(port), "-U", "postgres", "-d", database,
                          "-v", "ON_ERROR_STOP=1", "-qc", sql]),
            check=True, capture_output=True,
        )  # fmt: skip

    dba(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}' NOSUPERUSER NOCREATEDB NOCREATEROLE")

    def url(database: str, query: str = "sslmode=require") -> str:
        return f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{port}/{database}" + (f"?{query}" if query else "")

    yield dba, url
    subprocess.run(_as_postgres([server.bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), check=False)
    shutil.rmtree(root, ignore_errors=True)


def _run(monkeypatch, url: str, *args: str, var_dir: str | None = None):
    monkeypatch.setenv("GISGRID_DATABASE_URL", url)
    if var_dir:
        monkeypatch.setenv("GISGRID_VAR_DIR", var_dir)
    return CliRunner().invoke(main, list(args))


def test_missing_postgis_tells_the_dba_the_statement(external, monkeypatch):
    dba, url = external
    dba(f"CREATE DATABASE nogis OWNER {ROLE}")
    out = _run(monkeypatch, url("nogis"), "db", "migrate")
    assert out.exit_code == 2, out.output
    assert "PostGIS is not enabled in database nogis" in out.output
    assert "CREATE EXTENSION postgis;" in out.output and "Traceback" not in out.output


def test_a_missing_right_is_named(external, monkeypatch):
    dba, url = external
    dba("CREATE DATABASE norights")
    dba("CREATE EXTENSION postgis", "norights")
    out = _run(monkeypatch, url("norights"), "db", "migrate")
    assert out.exit_code == 2, out.output
    assert f"role {ROLE} lacks the right to create tables in schema public of database norights" in out.output
    assert f"GRANT CREATE ON SCHEMA public TO {ROLE};" in out.output
    dba(f"GRANT CREATE ON SCHEMA public TO {ROLE}", "norights")  # what the message says: then it works
    assert _run(monkeypatch, url("norights"), "db", "migrate").exit_code == 0


def test_tls_options_pass_through_and_a_backup_round_trip_as_an_ordinary_role(external, monkeypatch, tmp_path):
    from gisgrid.db import get_engine
    from gisgrid.demo import TOWNS, load_demo

    dba, url = external
    for name in ("county", "county_restored"):
        dba(f"CREATE DATABASE {name} OWNER {ROLE}")
        dba("CREATE EXTENSION postgis", name)  # the DBA's part; the rest is the role's own
    out = _run(monkeypatch, url("county"), "db", "migrate")
    assert out.exit_code == 0, out.output
    engine = get_engine(url=url("county").replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar() is True
        assert conn.execute(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar() is False
    plain = sa.create_engine(url("county", "sslmode=disable").replace("postgresql://", "postgresql+psycopg://"))
    with plain.connect() as conn:
        assert conn.execute(sa.text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar() is False
    plain.dispose()
    from gisgrid.config import load_settings

    with engine.begin() as conn:
        load_demo(conn, load_settings(var_dir=str(tmp_path / "var")), towns=[t for t in TOWNS if t.key == "shatin"],
                  reports_per_town=10)  # fmt: skip
    engine.dispose()
    sa_url = url("county").replace("postgresql://", "postgresql+psycopg://")
    before = table_checksums(sa_url)
    out = _run(monkeypatch, url("county"), "db", "backup", str(tmp_path / "bk"), var_dir=str(tmp_path / "var"))
    assert out.exit_code == 0, out.output
    archive = next((tmp_path / "bk").glob("gisgrid-*.tar"))
    out = _run(monkeypatch, url("county_restored"), "db", "restore", str(archive), var_dir=str(tmp_path / "var2"))
    assert out.exit_code == 0, out.output
    assert table_checksums(url("county_restored").replace("postgresql://", "postgresql+psycopg://")) == before
