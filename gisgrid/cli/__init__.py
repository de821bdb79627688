"""The ``gisgrid`` command: thin click wrappers over the domain modules.

The Flask CLI commands (``run``, ``routes``, ``shell``) live in the same group.
"""

from __future__ import annotations

import functools
import logging
import sys

import click
from flask.cli import FlaskGroup

from gisgrid.config import load_settings
from gisgrid.errors import GisgridError

LOGGER = logging.getLogger(__name__)


def _app_factory():
    from gisgrid.web import create_app

    return create_app()


def handle_errors(fn):
    """Print a :class:`GisgridError` as one line and exit non-zero."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GisgridError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


@click.group(cls=FlaskGroup, create_app=_app_factory, add_default_commands=True, add_version_option=False)
@click.option("-v", "--verbose", is_flag=True, help="Log progress at INFO level.")
def main(verbose: bool) -> None:
    """gisgrid: street-chief grid management (街长制 / 网格化管理)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


# --- database -------------------------------------------------------------------
@main.group()
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
        import sqlalchemy as sa

        from gisgrid.db import database_url, get_engine

        try:
            with get_engine(settings).connect() as conn:
                conn.execute(sa.text("SELECT 1"))
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
    from gisgrid.db import database_url, migrate

    migrate(database_url(), revision)
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


# --- sample data ----------------------------------------------------------------------
@main.group()
def demo() -> None:
    """The sample towns (real OpenStreetMap streets, demo owners and reports)."""


@demo.command("load")
@click.option("--reports", "reports_per_town", default=600, show_default=True, help="Demo reports per town.")
@click.option("--replace", is_flag=True, help="Empty the database first (default: skip when data exists).")
@handle_errors
def demo_load(reports_per_town: int, replace: bool) -> None:
    """Load the sample towns into the database (idempotent: does nothing when already loaded)."""
    import sqlalchemy as sa

    from gisgrid.db import ensure_database, get_engine
    from gisgrid.demo import load_demo

    settings = load_settings()
    url = ensure_database(settings)
    engine = get_engine(url=url)
    with engine.begin() as conn:
        existing = conn.execute(sa.text("SELECT count(*) FROM jurisdiction")).scalar()
        if existing and not replace:
            click.echo(f"sample data already loaded ({existing} jurisdictions); use --replace to reload")
            return
        if existing:
            conn.execute(
                sa.text(
                    "TRUNCATE report, owner_assignment, category, person, department, grid_cell, "
                    "segment, street, jurisdiction, plan_version RESTART IDENTITY CASCADE"
                )
            )
        counts = load_demo(conn, settings, reports_per_town=reports_per_town, grid=True)
    click.echo("loaded: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


# --- segments -------------------------------------------------------------------------
@main.group()
def segments() -> None:
    """Street segments (段) and their frontage areas."""


@segments.command("build")
@click.option("--jurisdiction", "code", help="Town or county division code (default: every town).")
@click.option("--max-length", "max_length_m", type=float, help="Longest segment in metres (default from settings).")
@click.option(
    "--replace",
    is_flag=True,
    help="Rebuild even where segments have owners: their assignments end today (history kept).",
)
@handle_errors
def segments_build(code: str | None, max_length_m: float | None, replace: bool) -> None:
    """Split streets into segments at intersections and at a maximum length; build non-overlapping areas."""
    from gisgrid.db import ensure_database, get_engine
    from gisgrid.network.store import rebuild_segments

    settings = load_settings()
    if max_length_m is not None:
        settings.segment_max_length_m = max_length_m
    engine = get_engine(url=ensure_database(settings))
    with engine.begin() as conn:
        summary = rebuild_segments(conn, settings, jurisdiction_code=code, replace=replace)
    for line in summary:
        click.echo(line)


# --- export ---------------------------------------------------------------------------
@main.command("export")
@click.argument("layer_name", metavar="LAYER")
@click.argument("path", type=click.Path(dir_okay=False))
@handle_errors
def export_cmd(layer_name: str, path: str) -> None:
    """Write LAYER to PATH (.geojson, .gpkg, .csv or .xlsx, chosen by extension).

    Layers: jurisdictions, streets, segments, centerlines, cells, owners, categories, departments, reports.
    """
    from gisgrid.db import ensure_database, get_engine, layers
    from gisgrid.io import write_layer

    engine = get_engine(url=ensure_database())
    with engine.connect() as conn:
        frame = layers.fetch_layer(conn, layer_name)
    write_layer(frame, path)
    click.echo(f"wrote {len(frame)} {layer_name} to {path}")


# --- import ---------------------------------------------------------------------------
def _parse_mapping(values: tuple[str, ...]) -> dict:
    mapping = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: use FIELD=COLUMN, e.g. name=路名", param_hint="--map")
        k, v = item.split("=", 1)
        mapping[k.strip()] = v.strip()
    return mapping


@main.command("import")
@click.argument(
    "layer_name",
    metavar="LAYER",
    type=click.Choice(["jurisdictions", "streets", "segments", "cells", "owners", "reports"]),
)
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--crs",
    "crs_name",
    help="CRS of the coordinates: EPSG:4326, EPSG:4490, gcj02, bd09 or an EPSG code. Required for CSV and XLSX.",
)
@click.option("--map", "mapping", multiple=True, metavar="FIELD=COLUMN", help="Read FIELD from COLUMN (repeatable).")
@click.option("--sheet", help="XLSX sheet name (default: the first sheet).")
@click.option("--x", "x", help="Longitude / easting column (CSV, XLSX).")
@click.option("--y", "y", help="Latitude / northing column (CSV, XLSX).")
@click.option("--wkt", help="WKT geometry column (CSV, XLSX).")
@click.option("--jurisdiction", "code", help="Division code the rows belong to (also used for an extent check).")
@click.option("--strict", is_flag=True, help="Load nothing when any row is bad.")
@handle_errors
def import_cmd(layer_name, path, crs_name, mapping, sheet, x, y, wkt, code, strict) -> None:
    """Import LAYER from PATH (GeoJSON, GeoPackage, zipped Shapefile, CSV or XLSX) in one transaction.

    Bad rows are skipped and listed with their row numbers (1 = first data row).
    """
    from gisgrid.db import ensure_database, get_engine
    from gisgrid.db.imports import import_file

    engine = get_engine(url=ensure_database())
    with engine.begin() as conn:
        summary = import_file(
            conn,
            layer_name,
            path,
            crs_name=crs_name,
            mapping=_parse_mapping(mapping),
            sheet=sheet,
            jurisdiction_code=code,
            strict=strict,
            x=x,
            y=y,
            wkt=wkt,
        )
    for line in summary.lines():
        click.echo(line)
    if summary.rejected:
        sys.exit(1)


# --- assignment -----------------------------------------------------------------------
class _AssignGroup(click.Group):
    """``gisgrid assign FILE`` and ``gisgrid assign --rerun`` beside ``gisgrid assign point``."""

    def parse_args(self, ctx, args):
        if args and args[0] in ("--rerun", "--since", "--unassigned"):
            args = ["stored", *args]
        elif args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["file", *args]
        return super().parse_args(ctx, args)


def _deployment():
    from gisgrid.db import ensure_database, get_engine
    from gisgrid.routing.store import load_deployment

    settings = load_settings()
    engine = get_engine(url=ensure_database(settings))
    with engine.connect() as conn:
        return load_deployment(conn, settings), engine, settings


@main.group(cls=_AssignGroup)
def assign() -> None:
    """Route reports to exactly one owner: a point, a file, or the stored reports.

    \b
    gisgrid assign point --lon 114.2 --lat 22.38 --crs gcj02 --category 0101
    gisgrid assign reports.csv --crs EPSG:4326 -o routed.csv
    gisgrid assign --rerun --since 2026-07-01
    """


@assign.command("point")
@click.option("--lon", type=float, required=True, help="Longitude or easting.")
@click.option("--lat", type=float, required=True, help="Latitude or northing.")
@click.option(
    "--crs",
    "crs_name",
    default="EPSG:4326",
    show_default=True,
    help="EPSG:4326, EPSG:4490, gcj02, bd09 or a projected EPSG code.",
)
@click.option("--category", help="Category code, e.g. 0101.")
@click.option("--date", "day", help="Report date YYYY-MM-DD (owners valid on that day; default today).")
@handle_errors
def assign_point(lon, lat, crs_name, category, day) -> None:
    """Route one point and explain the decision."""
    from gisgrid.routing.store import explain_point

    deployment, _, _ = _deployment()
    result = explain_point(deployment, lon=lon, lat=lat, crs=crs_name, category=category, day=day)
    for key, value in result.items():
        click.echo(f"{key:>16}: {value}")
    if result.get("error"):
        sys.exit(2)


@assign.command("file")
@click.argument("src", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    "dst",
    type=click.Path(dir_okay=False),
    help="Output file (default: SRC with .assigned before the extension).",
)
@click.option("--crs", "crs_name", required=True, help="CRS of the coordinates (EPSG:4326, gcj02, bd09, EPSG:n).")
@click.option("--lon", help="Longitude/easting column (default: detected).")
@click.option("--lat", help="Latitude/northing column (default: detected).")
@click.option("--category", help="Category column (default: detected).")
@click.option("--date", "date_col", help="Report date column (default: detected).")
@click.option("--chunk-rows", default=200_000, show_default=True)
@handle_errors
def assign_file_cmd(src, dst, crs_name, lon, lat, category, date_col, chunk_rows) -> None:
    """Route every row of SRC (CSV, XLSX, GeoJSON, GeoPackage); rows in = rows out."""
    from pathlib import Path

    deployment, _, _ = _deployment()
    src_path = Path(src)
    dst_path = Path(dst) if dst else src_path.with_name(src_path.stem + ".assigned" + src_path.suffix)
    summary = deployment.assign_file(
        src_path, dst_path, crs=crs_name, lon=lon, lat=lat, category=category, date=date_col, chunk_rows=chunk_rows
    )
    click.echo(str(summary))
    click.echo(f"wrote {dst_path}")


@assign.command("stored")
@click.option("--rerun", is_flag=True, help="Re-assign reports that already have an assignment (history kept).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="Only reports made on or after this date.")
@click.option("--unassigned", "only_unassigned", is_flag=True, help="Only reports never assigned.")
@handle_errors
def assign_stored(rerun, since, only_unassigned) -> None:
    """Assign stored reports in bulk (earlier assignments stay in the history)."""
    from gisgrid.routing.store import assign_stored_reports

    deployment, engine, _ = _deployment()
    if not rerun and not only_unassigned:
        only_unassigned = True
    with engine.begin() as conn:
        out = assign_stored_reports(
            conn, deployment, since=since.date() if since else None, only_unassigned=only_unassigned
        )
    rate = out["reports"] / out["seconds"] if out["seconds"] else 0
    click.echo(
        f"assigned {out['reports']} reports in {out['seconds']:.2f} s ({rate:,.0f}/s), "
        f"rule set {out.get('ruleset_version', '-')}"
    )
    for rule, n in sorted(out["by_rule"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  {rule:>22}: {n}")


@main.command("serve")
@click.option("--host", default=None, help="Address to listen on (default from settings: 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default from settings: 5000).")
@click.option("--threads", type=int, default=8, show_default=True)
@handle_errors
def serve(host: str | None, port: int | None, threads: int) -> None:
    """Serve the web app with waitress, a production WSGI server (``gisgrid run`` is Flask's development server)."""
    from waitress import serve as waitress_serve

    from gisgrid.db import ensure_database
    from gisgrid.web import create_app

    settings = load_settings()
    ensure_database(settings)
    host = host or settings.host
    port = port or settings.port
    click.echo(f"gisgrid serving on http://{host}:{port}/")
    waitress_serve(create_app(), host=host, port=port, threads=threads, ident="gisgrid")


# --- geocoding ------------------------------------------------------------------------
# `gisgrid import addresses FILE`: the importer lives in gisgrid.db.imports; the layer is added to the choices here
for _param in import_cmd.params:
    if _param.name == "layer_name" and "addresses" not in _param.type.choices:
        _param.type = click.Choice([*_param.type.choices, "addresses"])


@main.command("geocode")
@click.argument("src", type=click.Path(dir_okay=False))
@click.option("--column", required=True, help="Column holding the written addresses (地址).")
@click.option(
    "-o",
    "--output",
    "dst",
    type=click.Path(dir_okay=False),
    help="Output .csv or .xlsx (default: SRC with .geocoded before the extension).",
)
@click.option("--sheet", help="XLSX sheet name (default: the first sheet).")
@click.option("--category", help="Category-code column, for routing by category.")
@click.option("--date", "date_col", help="Report-date column (owners valid on that date; default today).")
@click.option("--jurisdiction", "code", help="Only this jurisdiction's streets and address points.")
@click.option("--no-resume", is_flag=True, help="Start over instead of resuming an interrupted run.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def geocode_cmd(src, column, dst, sheet, category, date_col, code, no_resume, quiet) -> None:
    """Geocode the written addresses of SRC (CSV in UTF-8 or GBK, or XLSX) and route each row to its owner.

    Every input row and column is kept; added: lon, lat (EPSG:4326), quality, confidence, matched_name,
    geocode_note, then target_type, target_id, target, rule, owner_name, chain, route_note.
    An interrupted run resumes where it stopped.

    \b
    gisgrid geocode hotline.xlsx --column 地址 --sheet 7月 -o hotline.routed.xlsx
    """
    from pathlib import Path

    from gisgrid.geocode.route import geocode_route_file
    from gisgrid.geocode.store import load_gazetteer

    src_path = Path(src)
    if not src_path.exists():
        raise click.BadParameter(f"file not found: {src}", param_hint="SRC")
    suffix = src_path.suffix.lower() if src_path.suffix.lower() in {".csv", ".xlsx"} else ".csv"
    dst_path = Path(dst) if dst else src_path.with_name(src_path.stem + ".geocoded" + suffix)
    deployment, engine, _ = _deployment()
    with engine.connect() as conn:
        gazetteers = load_gazetteer(conn, jurisdiction_code=code)
    result = geocode_route_file(
        src_path,
        dst_path,
        column,
        gazetteers,
        deployment,
        sheet=sheet,
        category=category,
        date=date_col,
        progress=not quiet,
        resume=not no_resume,
    )
    for line in result.lines():
        click.echo(line)
    click.echo(f"wrote {dst_path}")


# --- grids and coverage audit (gisgrid/commands_grid.py) --------------------------------
from gisgrid.cli.grid import audit_cmd, grid  # noqa: E402

main.add_command(grid)
main.add_command(audit_cmd)
