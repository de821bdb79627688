"""The managed PostgreSQL + PostGIS cluster under ``var/`` (the embedded default).

``gisgrid db start`` runs ``initdb`` on first use, starts a private server on
its own port bound to 127.0.0.1 with its socket directory under ``var/``,
creates the database, enables PostGIS and migrates to head.  As root the
server runs as the ``postgres`` system user, because ``initdb`` refuses root.
With ``GISGRID_DATABASE_URL`` set none of this is used.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import pwd
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gisgrid.config import Settings
from gisgrid.errors import ConfigError, DatabaseError

LOGGER = logging.getLogger(__name__)

DEBIAN_PACKAGES = "postgresql postgresql-{ver}-postgis-3"
SERVER_USER = "postgres"


class ServerMissing(ConfigError):
    """PostgreSQL or PostGIS is not installed; the message names the Debian packages."""


@dataclass(frozen=True)
class Server:
    bindir: Path
    version: str
    extension_dir: Path

    def bin(self, name: str) -> str:
        return str(self.bindir / name)


def _pg_version_of(bindir: Path) -> str:
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False)
    m = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    return m.group(1) if m else ""


def find_server(bindir: str | os.PathLike | None = None) -> Server:
    """Locate the PostgreSQL server binaries and check that PostGIS is installed.

    Parameters
    ----------
    bindir : path, optional
        Directory holding ``initdb``, ``pg_ctl`` and ``postgres``; by default the
        newest ``/usr/lib/postgresql/*/bin`` or the one on ``PATH``.

    Raises
    ------
    ServerMissing
        With the Debian packages to install in the message.
    """
    candidates: list[Path] = []
    if bindir:
        candidates.append(Path(bindir))
    else:
        found = sorted(
            glob.glob("/usr/lib/postgresql/*/bin"),
            key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
            reverse=True,
        )
        candidates.extend(Path(p) for p in found)
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(Path(os.path.realpath(on_path)).parent)
    for cand in candidates:
        if all((cand / exe).exists() for exe in ("initdb", "pg_ctl", "postgres")):
            version = _pg_version_of(cand)
            sharedir = None
            if (cand / "pg_config").exists():
                out = subprocess.run(
                    [str(cand / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False
                )
                sharedir = out.stdout.strip() or None
            ext = Path(sharedir or f"/usr/share/postgresql/{version}") / "extension"
            if not (ext / "postgis.control").exists():
                raise ServerMissing(
                    f"PostGIS is not installed for PostgreSQL {version} (no postgis.control in {ext}). "
                    f"Install the Debian package: apt-get install {DEBIAN_PACKAGES.format(ver=version or 'XX')}"
                )
            return Server(cand, version, ext)
    raise ServerMissing(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found. "
        "Install the Debian packages: apt-get install "
        + DEBIAN_PACKAGES.format(ver="15")
        + " (or set GISGRID_DATABASE_URL to use an existing server)"
    )


class Cluster:
    """A private cluster rooted at ``settings.var_dir``/pg."""

    def __init__(self, settings: Settings, server: Server | None = None):
        self.settings = settings
        self._server = server
        self.port = int(settings.pg_port)
        self.root = self._choose_root(Path(settings.var_dir))

    def _choose_root(self, var_dir: Path) -> Path:
        """``var/pg`` unless the server user cannot reach it (a checkout under a private home
        folder, say): then a folder under /var/lib/gisgrid, remembered in ``var/pg.location``."""
        preferred = var_dir / "pg"
        if not self._as_server_user() or (preferred / "data" / "PG_VERSION").exists():
            return preferred
        pointer = var_dir / "pg.location"
        if pointer.exists():
            return Path(pointer.read_text(encoding="utf-8").strip())
        existing = preferred
        while not existing.exists():
            existing = existing.parent
        reachable = (
            subprocess.run(["runuser", "-u", SERVER_USER, "--", "test", "-x", str(existing)], check=False).returncode
            == 0
        )
        if reachable:
            return preferred
        fallback = Path("/var/lib/gisgrid") / hashlib.sha1(str(preferred).encode()).hexdigest()[:12]
        LOGGER.warning("the %s user cannot reach %s; keeping the cluster in %s", SERVER_USER, preferred, fallback)
        var_dir.mkdir(parents=True, exist_ok=True)
        pointer.write_text(str(fallback), encoding="utf-8")
        return fallback

    # -- paths -------------------------------------------------------------
    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = find_server(os.environ.get("GISGRID_PG_BINDIR"))
        return self._server

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "postgresql.log"

    @property
    def sockdir(self) -> Path:
        sock = self.root / "run"
        # A Unix socket path is limited to ~107 bytes; fall back to /tmp for deep checkouts.
        if len(str(sock / f".s.PGSQL.{self.port}")) > 100:
            digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:10]
            sock = Path("/tmp") / f"gisgrid-{digest}"
        return sock

    def url(self, database: str | None = None) -> str:
        db = database or self.settings.pg_database
        return f"postgresql+psycopg://{SERVER_USER}@127.0.0.1:{self.port}/{db}"

    # -- running as the server user ---------------------------------------
    def _as_server_user(self) -> bool:
        return os.geteuid() == 0

    def _run(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
        if self._as_server_user():
            args = ["runuser", "-u", SERVER_USER, "--", *args]
        LOGGER.debug("running %s", args)
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise DatabaseError(
                f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
            )
        return proc

    def _prepare_dirs(self) -> None:
        for d in (self.root, self.sockdir):
            d.mkdir(parents=True, exist_ok=True)
        if self._as_server_user():
            for parent in self.root.parents:  # /var/lib/gisgrid must be traversable
                if str(parent).startswith("/var/lib/gisgrid"):
                    parent.chmod(0o755)
            uid = pwd.getpwnam(SERVER_USER).pw_uid
            gid = pwd.getpwnam(SERVER_USER).pw_gid
            for d in (self.root, self.sockdir):
                os.chown(d, uid, gid)
            probe = subprocess.run(["runuser", "-u", SERVER_USER, "--", "test", "-w", str(self.root)], check=False)
            if probe.returncode != 0:
                raise DatabaseError(
                    f"the {SERVER_USER} user cannot write {self.root}; make the project folder's parents "
                    f"traversable (chmod o+x) or set GISGRID_VAR_DIR to a folder it can use"
                )

    # -- lifecycle ---------------------------------------------------------
    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def running(self) -> bool:
        if not self.initialized():
            return False
        proc = self._run([self.server.bin("pg_ctl"), "-D", str(self.datadir), "status"], check=False)
        return proc.returncode == 0

    def init(self) -> None:
        self._prepare_dirs()
        self._run(
            [
                self.server.bin("initdb"),
                "-D",
                str(self.datadir),
                "-U",
                SERVER_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ]
        )
        LOGGER.info("initialised cluster in %s", self.datadir)

    def _clear_stale_pid(self) -> bool:
        pidfile = self.datadir / "postmaster.pid"
        if pidfile.exists() and not self.running():
            LOGGER.warning("removing stale %s left by a crashed server", pidfile)
            pidfile.unlink()
            return True
        return False

    def start(self) -> bool:
        """Start the cluster; return False when it was already running."""
        if self.running():
            return False
        if not self.initialized():
            self.init()
        self._prepare_dirs()
        self._clear_stale_pid()
        self._check_port_free()
        opts = f"-p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1"
        if not self.settings.pg_durable:
            # throw-away clusters (tests, benchmarks): trade crash safety for speed
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        if self._as_server_user():
            # the log file must be writable by the server user
            self.logfile.touch(exist_ok=True)
            os.chown(self.logfile, pwd.getpwnam(SERVER_USER).pw_uid, pwd.getpwnam(SERVER_USER).pw_gid)
        self._run(
            [
                self.server.bin("pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.logfile),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        return True

    def _check_port_free(self) -> None:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", self.port))
            except OSError:
                raise DatabaseError(
                    f"port {self.port} on 127.0.0.1 is taken by another program (another gisgrid checkout's "
                    f"cluster?); stop it or choose a free port with GISGRID_PG_PORT"
                ) from None

    def stop(self) -> bool:
        """Stop the cluster; return False when it was not running."""
        if not self.running():
            return False
        self._run([self.server.bin("pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"])
        return True

    def create_database(self, name: str | None = None, *, drop: bool = False) -> None:
        """Create ``name`` (default: the configured database) with PostGIS, if missing."""
        import psycopg

        name = name or self.settings.pg_database
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg.connect(
                    host="127.0.0.1", port=self.port, user=SERVER_USER, dbname="postgres", autocommit=True
                )
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        with conn:
            if drop:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(host="127.0.0.1", port=self.port, user=SERVER_USER, dbname=name, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    def status(self) -> str:
        if not self.initialized():
            return "not initialised"
        return f"running on 127.0.0.1:{self.port}" if self.running() else "stopped"

    def destroy(self) -> None:
        """Stop the server and remove its data directory."""
        self.stop()
        if self.root.exists():
            shutil.rmtree(self.root)
        (Path(self.settings.var_dir) / "pg.location").unlink(missing_ok=True)
