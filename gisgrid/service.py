"""systemd units of a deployment: the managed cluster, the web server, the job worker and the nightly backup.

:func:`systemd_units` returns the unit files as text (``gisgrid service install`` writes or prints them);
docs/operations.md explains them, with nginx and TLS in front.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from gisgrid.config import Settings

#: The file with the deployment's secrets (GISGRID_SECRET_KEY, GISGRID_DATABASE_URL with its password):
#: read by every unit, never written by gisgrid.
ENV_FILE = "/etc/gisgrid/gisgrid.env"
UNIT_DIR = "/etc/systemd/system"


@dataclass(frozen=True)
class UnitOptions:
    """What the units run: the ``gisgrid`` command, as which user, with which job-worker threads."""

    executable: str
    user: str
    group: str = ""
    worker_threads: int = 1
    env_file: str = ENV_FILE


def default_executable() -> str:
    """The ``gisgrid`` command of this installation (beside the running Python), absolute."""
    beside = Path(sys.executable).parent / "gisgrid"
    return str(beside if beside.exists() else Path(sys.argv[0]).resolve())


def _environment(settings: Settings) -> list[str]:
    env = [f"GISGRID_VAR_DIR={Path(settings.var_dir).resolve()}"]
    if settings.managed:
        env.append(f"GISGRID_PG_PORT={int(settings.pg_port)}")
    if os.environ.get("GISGRID_CONFIG"):
        env.append(f"GISGRID_CONFIG={Path(os.environ['GISGRID_CONFIG']).resolve()}")
    return env


def _service_lines(settings: Settings, options: UnitOptions, *, nightly_in_serve: bool = False) -> str:
    lines = [f"User={options.user}"]
    if options.group:
        lines.append(f"Group={options.group}")
    lines += [f'Environment="{e}"' for e in _environment(settings)]
    if not nightly_in_serve:
        lines.append('Environment="GISGRID_BACKUP_AT="')  # gisgrid-backup.timer makes the backups
    lines.append(f"EnvironmentFile=-{options.env_file}")
    lines.append(f"WorkingDirectory={Path(settings.var_dir).resolve().parent}")
    return "\n".join(lines)


def systemd_units(settings: Settings, options: UnitOptions, *, backup_at: str | None = None) -> dict[str, str]:
    """The unit files, by file name.

    Parameters
    ----------
    settings : Settings
        The deployment's settings: the data folder, the managed cluster's port (none with
        ``GISGRID_DATABASE_URL``: no cluster unit then), ``backup_at``.
    options : UnitOptions
        Command, user, worker threads.
    backup_at : str, optional
        Time of the daily backup ("HH:MM", the machine's local time); default ``settings.backup_at`` or 02:30.

    Returns
    -------
    dict
        ``gisgrid-db.service`` (managed cluster only), ``gisgrid-web.service``, ``gisgrid-worker.service``,
        ``gisgrid-backup.service`` and ``gisgrid-backup.timer``.
    """
    exe = shlex.quote(options.executable)
    common = _service_lines(settings, options)
    units: dict[str, str] = {}
    needs = ""
    if settings.managed:
        pidfile = Path(settings.var_dir).resolve() / "pg" / "data" / "postmaster.pid"
        units["gisgrid-db.service"] = f"""[Unit]
Description=gisgrid managed PostgreSQL + PostGIS cluster ({Path(settings.var_dir).resolve()}/pg, port {settings.pg_port})
After=network.target

[Service]
Type=forking
{common}
ExecStart={exe} db start
ExecStop={exe} db stop
PIDFile={pidfile}
TimeoutSec=120
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""
        needs = "Requires=gisgrid-db.service\nAfter=gisgrid-db.service\n"
    else:
        needs = "After=network-online.target\nWants=network-online.target\n"
    units["gisgrid-web.service"] = f"""[Unit]
Description=gisgrid web server (waitress; {settings.serve_threads} threads, listening on {settings.host}:{settings.port})
{needs}
[Service]
Type=simple
{common}
ExecStart={exe} serve --workers 0
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
"""
    units["gisgrid-worker.service"] = f"""[Unit]
Description=gisgrid background jobs (map PNG exports, geocoding uploads, case deadlines)
{needs}
[Service]
Type=simple
{common}
ExecStart={exe} worker --threads {int(options.worker_threads)}
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
"""
    units["gisgrid-backup.service"] = f"""[Unit]
Description=gisgrid backup: database and data folder into one archive, keeping the newest {settings.backup_keep}
{needs}
[Service]
Type=oneshot
{common}
ExecStart={exe} db backup --prune
"""
    at = backup_at or settings.backup_at or "02:30"
    at = at if at.count(":") == 2 else at + ":00"
    units["gisgrid-backup.timer"] = f"""[Unit]
Description=gisgrid nightly backup at {at[:5]}

[Timer]
OnCalendar=*-*-* {at}
Persistent=true
RandomizedDelaySec=60

[Install]
WantedBy=timers.target
"""
    return units


def enable_commands(units: dict[str, str]) -> list[str]:
    """The commands that start the units now and at every boot."""
    started = [n for n in units if n.endswith(".service") and n != "gisgrid-backup.service"]
    started.append("gisgrid-backup.timer")
    return ["systemctl daemon-reload", "systemctl enable --now " + " ".join(started)]


__all__ = ["ENV_FILE", "UNIT_DIR", "UnitOptions", "default_executable", "enable_commands", "systemd_units"]
