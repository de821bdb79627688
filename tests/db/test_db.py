"""The managed cluster and the migrations, against a real PostgreSQL + PostGIS."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from gisgrid.db import downgrade, migrate
from gisgrid.db.cluster import Cluster, ServerMissing, find_server

TABLES = {
    "jurisdiction",
    "street",
    "segment",
    "grid_cell",
    "person",
    "department",
    "owner_assignment",
    "category",
    "report",
}


def _tables(url):
    eng = sa.create_engine(url)
    try:
        return set(sa.inspect(eng).get_table_names()) - {"spatial_ref_sys", "alembic_version"}
    finally:
        eng.dispose()


def test_upgrade_head_then_downgrade_base(scratch_url):
    migrate(scratch_url)
    assert TABLES <= _tables(scratch_url)
    eng = sa.create_engine(scratch_url)
    with eng.connect() as conn:
        gist = conn.execute(
            sa.text("SELECT count(*) FROM pg_indexes WHERE indexdef ILIKE '%USING gist%' AND schemaname='public'")
        ).scalar()
        srid = conn.execute(sa.text("SELECT Find_SRID('public','segment','area')")).scalar()
    eng.dispose()
    # jurisdiction, street, segment (line, area), grid_cell, report (all, open ones), address_point,
    # frontage_unit (location, frontage), building
    assert gist == 11
    assert srid == 4326
    downgrade(scratch_url, "base")
    assert _tables(scratch_url) == set()
    migrate(scratch_url)  # and back up again
    assert TABLES <= _tables(scratch_url)


def test_models_match_migrations(scratch_url):
    """Alembic finds nothing to autogenerate: models.py and migrations/ describe one schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import gisgrid.geocode  # noqa: F401 - registers address_point (gisgrid/geocode/models.py)
    from gisgrid.db.schema import Base

    migrate(scratch_url)
    eng = sa.create_engine(scratch_url)
    with eng.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": lambda o, n, t, r, c: not (t == "table" and n == "spatial_ref_sys")}
        )
        diff = compare_metadata(ctx, Base.metadata)
    eng.dispose()
    assert diff == []


def test_owner_assignment_needs_exactly_one_owner(engine):
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO owner_assignment (target_type, target_id, role, valid_from) "
                "VALUES ('segment', 1, '段长', '2026-01-01')"
            )
        )


def test_second_start_says_already_running(settings, server_url):
    cluster = Cluster(settings)
    assert cluster.running()
    assert cluster.start() is False
    out = subprocess.run(
        [str(Path(os.sys.executable).parent / "gisgrid"), "db", "start"],
        capture_output=True,
        text=True,
        env={**os.environ, "GISGRID_DATABASE_URL": ""},
    )
    if os.environ.get("GISGRID_TEST_DATABASE_URL"):
        pytest.skip("tests run against an external server")
    assert out.returncode == 0, out.stderr
    assert "already running" in out.stdout


def test_stale_pid_file_is_recovered(tmp_path, settings):
    """A cluster that crashed leaves postmaster.pid behind; the next start still works."""
    from gisgrid.config import load_settings

    own = load_settings(var_dir=str(tmp_path / "var"), pg_port=54391, pg_durable=False)
    cluster = Cluster(own)
    try:
        assert cluster.start() is True
        pid = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 9)  # crash: the pid file stays
        import time

        for _ in range(100):
            try:
                os.kill(pid, 0)
                time.sleep(0.05)
            except ProcessLookupError:
                break
        # the children die with the postmaster; wait until the port is free
        time.sleep(1.0)
        assert (cluster.datadir / "postmaster.pid").exists()
        assert cluster.start() is True
        assert cluster.running()
        cluster.create_database("x")
    finally:
        cluster.destroy()


def test_missing_postgis_names_debian_packages(tmp_path):
    real = find_server()
    fake = tmp_path / "bin"
    fake.mkdir()
    for exe in ("initdb", "pg_ctl", "postgres"):
        (fake / exe).symlink_to(real.bindir / exe)
    share = tmp_path / "share"
    (share / "extension").mkdir(parents=True)
    pg_config = fake / "pg_config"
    pg_config.write_text(f"#!/bin/sh\necho {share}\n")
    pg_config.chmod(pg_config.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(ServerMissing, match=rf"postgresql-{real.version}-postgis-3"):
        find_server(fake)


def test_missing_postgresql_names_debian_packages(tmp_path):
    with pytest.raises(ServerMissing, match="apt-get install postgresql"):
        find_server(tmp_path)


def test_port_taken_by_another_program_is_a_clear_error(tmp_path):
    import socket

    from gisgrid.config import load_settings
    from gisgrid.errors import DatabaseError

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cluster = Cluster(load_settings(var_dir=str(tmp_path / "var"), pg_port=port, pg_durable=False))
        try:
            with pytest.raises(DatabaseError, match=f"port {port}.*GISGRID_PG_PORT"):
                cluster.start()
        finally:
            cluster.destroy()
