"""Backups: the database (``pg_dump`` custom format) and the data folder in one dated archive.

An archive ``gisgrid-YYYYMMDD-HHMMSS.tar`` holds

* ``manifest.json``: when, the schema revision, the gisgrid version, the row count of every table;
* ``database.dump``: ``pg_dump --format=custom`` of the gisgrid database (already compressed);
* ``data/…``: the data folder (``GISGRID_VAR_DIR``) without the cluster itself: case photos, job files,
  geocoding uploads, bulk appointment sheets and the secret key (so sessions survive a restore).

:func:`restore_archive` brings an archive back onto an empty database (the managed cluster's or an external
server's), upgrades an older schema to head, puts the data folder back and checks the row counts against
the manifest.  :func:`prune_backups` keeps the newest N archives; :class:`NightlyBackup` is the thread
``gisgrid serve`` runs (or use the systemd timer of ``gisgrid service install``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from gisgrid.config import Settings
from gisgrid.errors import ConfigError, DatabaseError

LOGGER = logging.getLogger(__name__)

#: Entries of the data folder that are not data: the cluster (in the dump instead), where it lives, the backups.
_NOT_DATA = {"pg", "pg.location", "backups"}
ARCHIVE_PREFIX = "gisgrid-"
ARCHIVE_SUFFIX = ".tar"
MANIFEST = "manifest.json"
DUMP = "database.dump"


class BackupError(DatabaseError):
    """A backup or restore could not be made; the message says why and what to do."""


@dataclass
class RestoreResult:
    """What a restore did: tables and rows restored, the revision of the archive and the one now."""

    tables: int
    rows: int
    archive_revision: str | None
    revision: str | None
    files: int
    mismatched: dict = field(default_factory=dict)  # table -> (rows in manifest, rows restored)


def backup_dir(settings: Settings) -> Path:
    """Where archives go: ``settings.backup_dir`` or ``<var_dir>/backups``."""
    return Path(settings.backup_dir or Path(settings.var_dir) / "backups")


def _tool(name: str) -> str:
    """``pg_dump`` / ``pg_restore`` of the newest installed server (a newer one reads older servers' data)."""
    from gisgrid.db.cluster import find_server

    try:
        return find_server(os.environ.get("GISGRID_PG_BINDIR")).bin(name)
    except ConfigError:
        found = shutil.which(name)
        if not found:
            raise BackupError(f"{name} is not installed: apt-get install postgresql-client") from None
        return found


def libpq_target(url: str) -> tuple[str, dict]:
    """A SQLAlchemy URL as a libpq connection URI without its password, and the environment carrying it.

    The password goes in ``PGPASSWORD`` (not on the command line, where ``ps`` would show it); query options
    such as ``sslmode`` pass through in the URI.
    """
    u = sa.engine.make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    plain = u.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def table_counts(conn: sa.Connection) -> dict[str, int]:
    """Rows of every gisgrid table (schema ``public``, PostGIS's own ``spatial_ref_sys`` left out)."""
    names = conn.execute(
        sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'spatial_ref_sys' ORDER BY tablename"
        )
    ).scalars()
    return {n: conn.execute(sa.text(f'SELECT count(*) FROM public."{n}"')).scalar_one() for n in list(names)}


def _revision(conn: sa.Connection) -> str | None:
    try:
        with conn.begin_nested():
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except sa.exc.ProgrammingError:
        return None


def _data_entries(var_dir: Path) -> list[Path]:
    if not var_dir.is_dir():
        return []
    return sorted(p for p in var_dir.iterdir() if p.name not in _NOT_DATA and not p.name.startswith("."))


def archive_name(when: dt.datetime) -> str:
    return f"{ARCHIVE_PREFIX}{when:%Y%m%d-%H%M%S}{ARCHIVE_SUFFIX}"


def backup_database(url: str, settings: Settings, dest: str | os.PathLike | None = None, *, now=None) -> Path:
    """Write one archive of the database at ``url`` and of the data folder.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the gisgrid database.
    settings : Settings
        ``var_dir`` (the data folder) and ``backup_dir`` (the default destination).
    dest : path, optional
        A file, or a folder to put the dated archive in; default :func:`backup_dir`.

    Returns
    -------
    Path
        The archive written (first to a temporary name beside it, then renamed: a crash leaves no
        half archive under an archive's name).
    """
    now = now or dt.datetime.now()
    target = Path(dest) if dest else backup_dir(settings)
    if target.is_dir() or not target.suffix:
        target = target / archive_name(now)
    target.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            manifest = {
                "created": now.isoformat(timespec="seconds"),
                "gisgrid": _version(),
                "schema_revision": _revision(conn),
                "postgresql": conn.execute(sa.text("SHOW server_version")).scalar(),
                "tables": table_counts(conn),
            }
    finally:
        engine.dispose()
    var_dir = Path(settings.var_dir)
    with tempfile.TemporaryDirectory(prefix="gisgrid-backup-", dir=target.parent) as tmp:
        dump = Path(tmp) / DUMP
        conninfo, env = libpq_target(url)
        proc = subprocess.run(
            [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={dump}", conninfo],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise BackupError(f"pg_dump failed: {proc.stderr.strip()}")
        (Path(tmp) / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        partial = target.with_name(target.name + ".partial")
        with tarfile.open(partial, "w") as tar:
            tar.add(Path(tmp) / MANIFEST, arcname=MANIFEST)
            tar.add(dump, arcname=DUMP)
            for entry in _data_entries(var_dir):
                tar.add(entry, arcname=f"data/{entry.name}")
        partial.replace(target)
    LOGGER.info("backup written to %s (%d tables)", target, len(manifest["tables"]))
    return target


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gisgrid")
    except PackageNotFoundError:
        return "unknown"


def read_manifest(archive: str | os.PathLike) -> dict:
    """The manifest of an archive; a file that is not one is a :class:`BackupError` naming it."""
    try:
        with tarfile.open(archive, "r") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise KeyError(MANIFEST)
            return json.loads(member.read().decode("utf-8"))
    except (tarfile.TarError, KeyError, OSError, ValueError) as exc:
        raise BackupError(f"{archive} is not a gisgrid backup archive ({exc})") from None


def database_is_empty(conn: sa.Connection) -> list[str]:
    """The tables of schema ``public`` besides PostGIS's (empty list: the database is empty)."""
    return list(
        conn.execute(
            sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'spatial_ref_sys' ORDER BY tablename"
            )
        ).scalars()
    )


def restore_archive(archive: str | os.PathLike, url: str, settings: Settings, *, upgrade: bool = True) -> RestoreResult:
    """Restore an archive onto the empty database at ``url`` and its data folder into ``settings.var_dir``.

    The database must hold no gisgrid table (PostGIS enabled or not): a restore never mixes two
    deployments.  The dump's extension entries are skipped (the extension is created here first, so a
    role that is not a superuser can restore onto a database where the DBA enabled PostGIS); then the
    schema is upgraded to head when the archive is older, and the row counts are checked against the
    manifest.

    Raises
    ------
    BackupError
        Not an archive, a database that is not empty, PostGIS missing, or pg_restore failing.
    """
    manifest = read_manifest(archive)
    from gisgrid.db import migrate

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            present = database_is_empty(conn)
            if present:
                shown = ", ".join(present[:5]) + (" …" if len(present) > 5 else "")
                raise BackupError(
                    f"the database is not empty ({len(present)} tables: {shown}); restore onto an empty "
                    "database (managed cluster: gisgrid db restore --replace drops this one first)"
                )
            _ensure_postgis(conn)
    finally:
        engine.dispose()
    with tempfile.TemporaryDirectory(prefix="gisgrid-restore-") as tmp:
        with tarfile.open(archive, "r") as tar:
            tar.extractall(tmp, filter="data")
        dump = Path(tmp) / DUMP
        if not dump.is_file():
            raise BackupError(f"{archive} holds no {DUMP}")
        _pg_restore(dump, url, Path(tmp))
        files = _restore_data(Path(tmp) / "data", Path(settings.var_dir))
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            counts = table_counts(conn)  # as restored, before an upgrade may reshape the data
        if upgrade:
            migrate(url)
        with engine.connect() as conn:
            revision = _revision(conn)
            tables = len(table_counts(conn))
    finally:
        engine.dispose()
    expected = manifest.get("tables", {})
    mismatched = {t: (n, counts.get(t)) for t, n in expected.items() if counts.get(t) != n}
    return RestoreResult(
        tables=tables,
        rows=sum(counts.values()),
        archive_revision=manifest.get("schema_revision"),
        revision=revision,
        files=files,
        mismatched=mismatched,
    )


def _ensure_postgis(conn: sa.Connection) -> None:
    if conn.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).scalar():
        return
    try:
        conn.execute(sa.text("CREATE EXTENSION postgis"))
    except sa.exc.DBAPIError:
        name = conn.execute(sa.text("SELECT current_database()")).scalar()
        raise BackupError(
            f"PostGIS is not enabled in database {name} and this role may not enable it; ask the database "
            f"administrator to run, connected to {name}: CREATE EXTENSION postgis;"
        ) from None


def _pg_restore(dump: Path, url: str, tmp: Path) -> None:
    conninfo, env = libpq_target(url)
    listing = subprocess.run([_tool("pg_restore"), "--list", str(dump)], capture_output=True, text=True, check=False)
    if listing.returncode != 0:
        raise BackupError(f"pg_restore cannot read the dump: {listing.stderr.strip()}")
    # the extension (and its comment) exists already, and PostGIS's own table of reference systems is the
    # extension's (gisgrid uses only its standard EPSG entries): restoring them needs a superuser
    keep = [
        line
        for line in listing.stdout.splitlines()
        if " EXTENSION " not in line and " TABLE DATA public spatial_ref_sys " not in line
    ]
    (tmp / "restore.list").write_text("\n".join(keep) + "\n", encoding="utf-8")
    proc = subprocess.run(
        [
            _tool("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--use-list={tmp / 'restore.list'}",
            f"--dbname={conninfo}",
            str(dump),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise BackupError(f"pg_restore failed, nothing was restored: {proc.stderr.strip()}")


def _restore_data(source: Path, var_dir: Path) -> int:
    """Copy the archive's data folder into ``var_dir`` (files already there with the same name are replaced)."""
    if not source.is_dir():
        return 0
    files = 0
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        dest = var_dir / rel
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
            files += 1
    return files


def list_backups(settings: Settings) -> list[Path]:
    """The archives in :func:`backup_dir`, oldest first (their names sort by date)."""
    folder = backup_dir(settings)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"{ARCHIVE_PREFIX}*{ARCHIVE_SUFFIX}") if p.is_file())


def prune_backups(settings: Settings, keep: int | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` archives (default ``settings.backup_keep``); return those deleted."""
    keep = int(settings.backup_keep if keep is None else keep)
    archives = list_backups(settings)
    doomed = archives[: max(0, len(archives) - max(1, keep))]
    for path in doomed:
        path.unlink(missing_ok=True)
        LOGGER.info("old backup %s deleted (keeping %d)", path, keep)
    return doomed


def last_backup_age_s(settings: Settings, now: float | None = None) -> float | None:
    """Seconds since the newest archive was written, or None when there is none."""
    archives = list_backups(settings)
    if not archives:
        return None
    return max(0.0, (now or time.time()) - archives[-1].stat().st_mtime)


def next_run(at: str, now: dt.datetime) -> dt.datetime:
    """The next time of day ``at`` ("HH:MM" or "HH:MM:SS", in ``now``'s time zone) after ``now``."""
    try:
        parts = [int(x) for x in at.split(":")]
        if len(parts) not in (2, 3):
            raise ValueError(at)
        hour, minute, second = (parts + [0])[:3]
        when = now.replace(hour=hour, minute=minute, second=second, microsecond=0)
    except ValueError:
        raise ConfigError(f"backup_at must be HH:MM (e.g. 02:30), not {at!r}") from None
    return when if when > now else when + dt.timedelta(days=1)


class NightlyBackup:
    """A daemon thread writing an archive every day at ``settings.backup_at`` (local time of
    ``settings.timezone``) and keeping the newest ``settings.backup_keep``."""

    def __init__(self, url: str, settings: Settings):
        self.url = url
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gisgrid-backup", daemon=True)

    def start(self) -> NightlyBackup:
        next_run(self.settings.backup_at, dt.datetime.now())  # a bad setting fails at start, not at night
        self._thread.start()
        return self

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(self.settings.timezone)
        while not self._stop.is_set():
            now = dt.datetime.now(tz)
            wait = (next_run(self.settings.backup_at, now) - now).total_seconds()
            if self._stop.wait(wait):
                return
            try:
                backup_database(self.url, self.settings, now=dt.datetime.now(tz).replace(tzinfo=None))
                prune_backups(self.settings)
            except Exception:  # noqa: BLE001 - a failed night is logged (and seen in /metrics), the next one runs
                LOGGER.exception("nightly backup failed")
