"""``gisgrid assign``: route reports to exactly one owner (a point, a file, or the stored reports)."""

from __future__ import annotations

import sys

import click

from gisgrid.cli._common import deployment_engine_settings, handle_errors


class _AssignGroup(click.Group):
    """``gisgrid assign FILE`` and ``gisgrid assign --rerun`` beside ``gisgrid assign point``."""

    def parse_args(self, ctx, args):
        if args and args[0] in ("--rerun", "--since", "--unassigned", "--workers", "--scheduler"):
            args = ["stored", *args]
        elif args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["file", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_AssignGroup)
def assign() -> None:
    """Route reports to exactly one owner: a point, a file, or the stored reports.

    \b
    gisgrid assign point --lon 114.2 --lat 22.38 --crs gcj02 --category 0101
    gisgrid assign reports.csv --crs EPSG:4326 -o routed.csv
    gisgrid assign reports.csv --crs EPSG:4326 --address-street 街道
    gisgrid assign --rerun --since 2026-07-01
    gisgrid assign --rerun --workers 4                       # on a local dask cluster of 4 processes
    gisgrid assign --rerun --scheduler tcp://10.0.0.5:8786   # on a dask.distributed cluster
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

    deployment, _, _ = deployment_engine_settings()
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
@click.option(
    "--crs",
    "crs_name",
    help="CRS of the coordinates (EPSG:4326, EPSG:4490, gcj02, bd09, EPSG:n). Required for CSV and XLSX; "
    "a GeoJSON, GeoPackage or Shapefile states its own.",
)
@click.option("--lon", help="Longitude/easting column (default: detected).")
@click.option("--lat", help="Latitude/northing column (default: detected).")
@click.option("--category", help="Category column (default: detected).")
@click.option("--date", "date_col", help="Report date column (default: detected).")
@click.option("--sheet", help="XLSX sheet name (default: the first sheet).")
@click.option("--layer", help="GeoPackage layer or zipped Shapefile name (when there are several).")
@click.option(
    "--address-street",
    "address_street",
    metavar="COLUMN",
    help="Column naming the street of each row's written address: a row that names one goes to the nearest "
    "segment of that street within address_street_tolerance_m (rule address_street), even inside another "
    "street's frontage area; blank cells are routed by their point.",
)
@click.option(
    "--cross-street",
    "cross_street",
    metavar="COLUMN",
    help="With --address-street: the second street of a written crossing (A与B交叉口); "
    "address_intersection_rule chooses between the two.",
)
@click.option("--chunk-rows", default=200_000, show_default=True)
@handle_errors
def assign_file_cmd(
    src, dst, crs_name, lon, lat, category, date_col, sheet, layer, address_street, cross_street, chunk_rows
) -> None:
    """Route every row of SRC (CSV, XLSX, GeoJSON, GeoPackage, Shapefile); rows in = rows out."""
    from pathlib import Path

    deployment, _, settings = deployment_engine_settings()
    src_path = Path(src)
    dst_path = Path(dst) if dst else src_path.with_name(src_path.stem + ".assigned" + src_path.suffix)
    if dst is None and src_path.suffix.lower() in {".shp", ".zip"}:
        dst_path = src_path.with_name(src_path.stem + ".assigned.gpkg")
    summary = deployment.assign_file(
        src_path,
        dst_path,
        crs=crs_name,
        lon=lon,
        lat=lat,
        category=category,
        date=date_col,
        sheet=sheet,
        layer=layer,
        chunk_rows=chunk_rows,
        address_street=address_street,
        cross_street=cross_street,
        max_text_chars=settings.max_text_chars,
    )
    click.echo(str(summary))
    click.echo(f"wrote {dst_path}")


@assign.command("stored")
@click.option("--rerun", is_flag=True, help="Re-assign reports that already have an assignment (history kept).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="Only reports made on or after this date.")
@click.option("--unassigned", "only_unassigned", is_flag=True, help="Only reports never assigned.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Run on a local dask.distributed cluster of this many processes (docs/operations.md).",
)
@click.option("--scheduler", default=None, help="Run on the dask.distributed cluster at tcp://HOST:PORT.")
@click.option(
    "--partition-rows",
    type=click.IntRange(min=1000),
    default=250_000,
    show_default=True,
    help="Reports per partition on the cluster (a worker's memory: the snapshot and one partition).",
)
@handle_errors
def assign_stored(rerun, since, only_unassigned, workers, scheduler, partition_rows) -> None:
    """Assign stored reports in bulk (earlier assignments stay in the history)."""
    from gisgrid.routing.store import assign_stored_reports

    deployment, engine, _ = deployment_engine_settings()
    if not rerun and not only_unassigned:
        only_unassigned = True
    day = since.date() if since else None
    if workers or scheduler:
        from gisgrid.routing.distributed import assign_stored_distributed

        out = assign_stored_distributed(
            engine.url.render_as_string(hide_password=False),
            deployment,
            scheduler=scheduler,
            workers=workers,
            since=day,
            only_unassigned=only_unassigned,
            partition_rows=partition_rows,
        )
    else:
        with engine.begin() as conn:
            out = assign_stored_reports(conn, deployment, since=day, only_unassigned=only_unassigned)
    rate = out["reports"] / out["seconds"] if out["seconds"] else 0
    click.echo(
        f"assigned {out['reports']} reports in {out['seconds']:.2f} s ({rate:,.0f}/s), "
        f"rule set {out.get('ruleset_version', '-')}"
    )
    if out.get("partitions"):
        peaks = ", ".join(f"{v / 2**20:.0f}" for v in out["peak_rss_per_worker"].values())
        click.echo(f"  on {out['workers']} dask workers, {out['partitions']} partitions; peak MiB per worker: {peaks}")
    for rule, n in sorted(out["by_rule"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  {rule:>22}: {n}")
