"""``gisgrid db``: the managed local PostGIS cluster, or the server in GISGRID_DATABASE_URL."""

from __future__ import annotations

import sys

import click

from gisgrid.cli._common import handle_errors
from gisgrid.config import load_settings


@click.group()
def db() -> None:
    """The database: the managed local PostGIS cluster, or GISGRID_DATABASE_URL."""


def _cluster():
    from gisgrid.db.cluster import Cluster

    settings = load_settings()
    if not settings.managed:
        raise click.UsageError(
            "GISGRID_DATABASE_URL is set: gisgrid manages no cluster; use `gisgrid db migrate` against that server"
        )
    return Cluster(settings), settings


@db.command("start")
@handle_errors
def db_start() -> None:
    """Start the managed cluster (initdb on first use), create the database, migrate to head."""
    from gisgrid.db import migrate

    cluster, settings = _cluster()
    started = cluster.start()
    if not started:
        click.echo(f"already running on 127.0.0.1:{cluster.port} ({cluster.datadir})")
    cluster.create_database()
    migrate(cluster.url())
    if started:
        click.echo(f"started on 127.0.0.1:{cluster.port}; database {settings.pg_database} at head")


@db.command("stop")
@handle_errors
def db_stop() -> None:
    """Stop the managed cluster."""
    cluster, _ = _cluster()
    click.echo("stopped" if cluster.stop() else "not running")


@db.command("status")
@handle_errors
def db_status() -> None:
    """Say whether the managed cluster runs (exit 1 when it does not)."""
    settings = load_settings()
    if not settings.managed:
        from gisgrid.db import database_url, ping

        try:
            ping(settings)
            click.echo(f"external server reachable: {database_url(settings)}")
            return
        except Exception as exc:  # noqa: BLE001 - any connection failure is reported
            click.echo(f"external server unreachable: {exc}")
            sys.exit(1)
    cluster, _ = _cluster()
    status = cluster.status()
    click.echo(status)
    if not status.startswith("running"):
        sys.exit(1)


@db.command("url")
def db_url() -> None:
    """Print the SQLAlchemy URL in use."""
    from gisgrid.db import database_url

    click.echo(database_url())


@db.command("migrate")
@click.argument("revision", default="head")
@handle_errors
def db_migrate(revision: str) -> None:
    """Upgrade the database to REVISION (default head)."""
    from gisgrid.db import check_external, database_url, migrate

    settings = load_settings()
    url = database_url(settings)
    if not settings.managed:
        check_external(url)  # PostGIS and the rights, named with the DBA's statement when missing
    migrate(url, revision)
    click.echo(f"migrated to {revision}")


@db.command("reset")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def db_reset(yes: bool) -> None:
    """Drop and recreate the database (all data is lost), migrated to head."""
    from gisgrid.db import migrate

    if not yes:
        click.confirm("Drop every table and all data of the gisgrid database?", abort=True)
    cluster, settings = _cluster()
    cluster.start()
    cluster.create_database(drop=True)
    migrate(cluster.url())
    click.echo(f"database {settings.pg_database} recreated at head")


@db.command("backup")
@click.argument("file", required=False, type=click.Path(dir_okay=True, writable=True))
@click.option(
    "--prune/--no-prune",
    default=False,
    help="Then delete all but the newest GISGRID_BACKUP_KEEP archives of the backup folder (the nightly timer does).",
)
@handle_errors
def db_backup(file: str | None, prune: bool) -> None:
    """Write the database (pg_dump custom format) and the data folder (photos, job files) into one dated archive.

    FILE is the archive, or a folder for gisgrid-YYYYMMDD-HHMMSS.tar; default: GISGRID_BACKUP_DIR
    (<data folder>/backups).  The managed cluster is started if it is not running.
    """
    from gisgrid.db import database_url
    from gisgrid.db.backup import backup_database, prune_backups

    settings = load_settings()
    if settings.managed:
        from gisgrid.db.cluster import Cluster

        Cluster(settings).start()
    path = backup_database(database_url(settings), settings, file)
    click.echo(f"backup written: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if prune:
        for old in prune_backups(settings):
            click.echo(f"deleted old backup {old}")


@db.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--replace", is_flag=True, help="Managed cluster only: drop the gisgrid database first (all its data is lost)."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation of --replace.")
@handle_errors
def db_restore(file: str, replace: bool, yes: bool) -> None:
    """Restore an archive of `gisgrid db backup` onto an empty database and upgrade it to head.

    The managed cluster is initialised and started when needed; with GISGRID_DATABASE_URL the database
    there must be empty.  The archive's data folder (photos, job files) is put back into GISGRID_VAR_DIR.
    """
    from gisgrid.db import database_url
    from gisgrid.db.backup import restore_archive

    settings = load_settings()
    if settings.managed:
        from gisgrid.db.cluster import Cluster

        if replace and not yes:
            click.confirm(f"Drop the database {settings.pg_database} and all its data before restoring?", abort=True)
        cluster = Cluster(settings)
        cluster.start()
        cluster.create_database(drop=replace)
    elif replace:
        raise click.UsageError("--replace works only on the managed cluster; give an empty database instead")
    result = restore_archive(file, database_url(settings), settings)
    click.echo(
        f"restored {result.tables} tables, {result.rows} rows, {result.files} files of the data folder; "
        f"schema {result.archive_revision} → {result.revision}"
    )
    if result.mismatched:
        for table, (want, got) in sorted(result.mismatched.items()):
            click.echo(f"warning: table {table}: {want} rows in the backup, {got} restored", err=True)
        sys.exit(1)
    click.echo("row counts match the backup")


@db.command("downgrade")
@click.argument("revision")
@click.option(
    "--allow-data-loss",
    is_flag=True,
    help="Go ahead when a migration would drop tables or columns holding data (back up first).",
)
@handle_errors
def db_downgrade(revision: str, allow_data_loss: bool) -> None:
    """Downgrade the database to REVISION (e.g. 0012, or base).

    A step that would delete data (a table with rows, a column with values) refuses and names them,
    unless --allow-data-loss is given; the whole downgrade is then rolled back.
    """
    from gisgrid.db import database_url, downgrade

    downgrade(database_url(), revision, allow_data_loss=allow_data_loss)
    click.echo(f"downgraded to {revision}")
