"""``gisgrid service``: run gisgrid as systemd services (docs/operations.md)."""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from gisgrid.cli._common import handle_errors
from gisgrid.config import load_settings


@click.group()
def service() -> None:
    """Run gisgrid as systemd services: the managed cluster, the web server, the worker, the nightly backup."""


@service.command("install")
@click.option("--print", "print_only", is_flag=True, help="Print the unit files instead of writing them.")
@click.option(
    "--dir",
    "unit_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to write the units (default /etc/systemd/system).",
)
@click.option("--user", default=None, help="The system user the services run as (default: you).")
@click.option("--group", default="", help="Its group (default: the user's).")
@click.option("--worker-threads", type=int, default=None, help="Threads of gisgrid worker (default: job_workers).")
@click.option("--backup-at", default=None, help="Time of the nightly backup, HH:MM (default: backup_at, 02:30).")
@click.option("--executable", default=None, help="The gisgrid command the units run (default: this one).")
@handle_errors
def service_install(
    print_only: bool,
    unit_dir: str | None,
    user: str | None,
    group: str,
    worker_threads: int | None,
    backup_at: str | None,
    executable: str | None,
) -> None:
    """Write systemd units for the managed cluster (none with GISGRID_DATABASE_URL), the web server, the job
    worker and the nightly backup timer, with this shell's settings (data folder, port).

    Secrets (GISGRID_SECRET_KEY, GISGRID_DATABASE_URL) go in /etc/gisgrid/gisgrid.env, which every unit
    reads; the units do not hold them.
    """
    from gisgrid.db.backup import next_run
    from gisgrid.service import UNIT_DIR, UnitOptions, default_executable, enable_commands, systemd_units

    settings = load_settings()
    if backup_at:
        import datetime as dt

        next_run(backup_at, dt.datetime.now())  # a bad time is refused here, not by systemd at night
    options = UnitOptions(
        executable=executable or default_executable(),
        user=user or getpass.getuser(),
        group=group,
        worker_threads=worker_threads or max(1, int(settings.job_workers)),
    )
    units = systemd_units(settings, options, backup_at=backup_at)
    if print_only:
        for name, text in units.items():
            click.echo(f"# {name}\n{text}")
        return
    folder = Path(unit_dir or UNIT_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in units.items():
        (folder / name).write_text(text, encoding="utf-8")
        click.echo(f"wrote {folder / name}")
    click.echo("then, as root:")
    for command in enable_commands(units):
        click.echo(f"  {command}")
