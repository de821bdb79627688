"""Backups: load the demo into a cluster of its own, back up, destroy the cluster, restore, compare."""

from __future__ import annotations

import hashlib
import shutil
import socket
import tarfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gisgrid.cli import main
from gisgrid.config import load_settings
from gisgrid.db import migrate
from gisgrid.db.backup import BackupError, backup_database, prune_backups, restore_archive
from gisgrid.db.cluster import Cluster
from tests.conftest import scratch_database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def table_checksums(url: str) -> dict[str, tuple]:
    """Rows and an md5 of every row's text, per table; the last value of every sequence."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        tables = conn.execute(
            sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        ).scalars()
        sums = {
            t: tuple(
                conn.execute(
                    sa.text(
                        f"SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM \"{t}\" x"
                    )
                ).one()
            )
            for t in list(tables)
        }
        for seq in list(
            conn.execute(sa.text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")).scalars()
        ):
            sums["seq:" + seq] = (conn.execute(sa.text(f'SELECT last_value FROM "{seq}"')).scalar(),)
    engine.dispose()
    return sums


def file_digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture()
def own_cluster(tmp_path, monkeypatch):
    """A managed cluster in a data folder and on a port of its own (the suite's cluster is left alone)."""
    port = free_port()
    env = {
        "GISGRID_VAR_DIR": str(tmp_path / "var"),
        "GISGRID_PG_PORT": str(port),
        "GISGRID_PG_DURABLE": "0",
        "GISGRID_DATABASE_URL": "",
        "GISGRID_BACKUP_DIR": "",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    cluster = Cluster(settings)
    cluster.start()
    cluster.create_database()
    migrate(cluster.url())
    yield cluster, settings
    cluster.stop()


def test_backup_destroy_restore_brings_back_every_row_and_photo(own_cluster, tmp_path):
    from gisgrid.demo import TOWNS, create_demo_users, demo_cases, load_demo

    cluster, settings = own_cluster
    engine = sa.create_engine(cluster.url())
    with engine.begin() as conn:
        load_demo(conn, settings, towns=[t for t in TOWNS if t.key == "shatin"], reports_per_town=40)
        create_demo_users(conn, settings)
        assert demo_cases(conn, settings) > 0
    engine.dispose()
    before = table_checksums(cluster.url())
    photos_before = file_digests(Path(settings.var_dir) / "photos")
    assert before["report"][0] > 0 and before["case_photo"][0] > 0
    assert photos_before, "the demo cases store photos"

    runner = CliRunner()
    out = runner.invoke(main, ["db", "backup", str(tmp_path / "backups")], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    archive = next((tmp_path / "backups").glob("gisgrid-*.tar"))
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert {"manifest.json", "database.dump"} <= set(names)
    assert any(n.startswith("data/photos/") for n in names)
    assert not any(n.startswith("data/pg") for n in names)

    cluster.destroy()
    shutil.rmtree(Path(settings.var_dir) / "photos")
    assert not cluster.initialized()

    out = runner.invoke(main, ["db", "restore", str(archive)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "row counts match the backup" in out.output
    assert table_checksums(cluster.url()) == before
    assert file_digests(Path(settings.var_dir) / "photos") == photos_before

    # a second restore onto the now full database is refused, naming the way out; nothing changes
    out = runner.invoke(main, ["db", "restore", str(archive)])
    assert out.exit_code == 2
    assert "not empty" in out.output and "--replace" in out.output
    assert table_checksums(cluster.url()) == before


def test_restore_upgrades_an_older_schema_to_head(server_url, settings, tmp_path):
    """An archive of a database at revision 0010 comes back at head with its rows."""
    with scratch_database(server_url, "old") as old_url:
        migrate(old_url, "0010")
        engine = sa.create_engine(old_url)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO jurisdiction (code, name, level, geom) VALUES ('110101', '东城区', 'county', "
                    "ST_Multi(ST_MakeEnvelope(116.40, 39.90, 116.42, 39.92, 4326)))"
                )
            )
        engine.dispose()
        own = load_settings(var_dir=str(tmp_path / "var"), backup_dir=str(tmp_path / "bk"))
        archive = backup_database(old_url, own)
    with scratch_database(server_url, "new") as new_url:
        result = restore_archive(archive, new_url, own)
        assert result.archive_revision == "0010"
        assert result.revision is not None and result.revision != "0010"
        assert not result.mismatched
        engine = sa.create_engine(new_url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM jurisdiction WHERE code = '110101'")).scalar() == "东城区"
            from alembic.script import ScriptDirectory

            from gisgrid.db import alembic_config

            head = ScriptDirectory.from_config(alembic_config(new_url)).get_current_head()
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head
        engine.dispose()


def test_restore_refuses_a_file_that_is_not_an_archive(scratch_url, tmp_path):
    bogus = tmp_path / "notes.tar"
    bogus.write_bytes(b"not a tar file")
    with pytest.raises(BackupError, match="not a gisgrid backup archive"):
        restore_archive(bogus, scratch_url, load_settings(var_dir=str(tmp_path / "var")))


def test_prune_keeps_the_newest_archives(tmp_path):
    own = load_settings(var_dir=str(tmp_path / "var"), backup_dir=str(tmp_path / "bk"), backup_keep=2)
    (tmp_path / "bk").mkdir()
    names = [f"gisgrid-2026120{d}-023000.tar" for d in range(1, 6)]
    for name in names:
        (tmp_path / "bk" / name).write_bytes(b"x")
    (tmp_path / "bk" / "notes.txt").write_text("kept")
    deleted = prune_backups(own)
    assert sorted(p.name for p in deleted) == names[:3]
    assert sorted(p.name for p in (tmp_path / "bk").iterdir()) == [*names[3:], "notes.txt"]


def test_next_run_is_the_coming_time_of_day():
    import datetime as dt

    from gisgrid.db.backup import next_run
    from gisgrid.errors import ConfigError

    now = dt.datetime(2026, 12, 7, 13, 0)
    assert next_run("02:30", now) == dt.datetime(2026, 12, 8, 2, 30)
    assert next_run("23:15", now) == dt.datetime(2026, 12, 7, 23, 15)
    with pytest.raises(ConfigError, match="HH:MM"):
        next_run("half past two", now)


def test_the_nightly_thread_writes_an_archive_and_keeps_the_newest(server_url, tmp_path):
    """The thread `gisgrid serve` starts: due in two seconds, it writes an archive and prunes to backup_keep."""
    import datetime as dt
    import time
    from zoneinfo import ZoneInfo

    from gisgrid.db.backup import NightlyBackup, list_backups

    (tmp_path / "bk").mkdir()
    for day in (1, 2):
        (tmp_path / "bk" / f"gisgrid-2026010{day}-023000.tar").write_bytes(b"old")
    with scratch_database(server_url, "nightly", migrated=True) as url:
        tz = "Asia/Shanghai"
        due = (dt.datetime.now(ZoneInfo(tz)) + dt.timedelta(seconds=2)).strftime("%H:%M:%S")
        own = load_settings(
            var_dir=str(tmp_path / "var"), backup_dir=str(tmp_path / "bk"), backup_keep=2, backup_at=due, timezone=tz
        )
        nightly = NightlyBackup(url, own).start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                names = [p.name for p in list_backups(own)]
                if names and not names[-1].startswith("gisgrid-202601") and len(names) == 2:
                    break
                time.sleep(0.5)
        finally:
            nightly.stop()
    names = [p.name for p in list_backups(own)]
    assert len(names) == 2 and names[0] == "gisgrid-20260102-023000.tar", names
    assert not names[-1].startswith("gisgrid-202601")
