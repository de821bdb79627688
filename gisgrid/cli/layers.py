"""``gisgrid import`` and ``gisgrid export``: layers in and out of the database."""

from __future__ import annotations

import sys

import click

from gisgrid.cli._common import cli_actor, engine_and_settings, handle_errors


@click.command("export")
@click.argument("layer_name", metavar="LAYER")
@click.argument("path", type=click.Path(dir_okay=False))
@handle_errors
def export_cmd(layer_name: str, path: str) -> None:
    """Write LAYER to PATH (.geojson, .gpkg, .csv or .xlsx, chosen by extension).

    Layers: jurisdictions, streets, segments, centerlines, cells, owners, categories, departments, reports,
    buildings.
    """
    from gisgrid.db import layers
    from gisgrid.io import write_layer

    engine, _ = engine_and_settings()
    with engine.connect() as conn:
        frame = layers.fetch_layer(conn, layer_name)
    write_layer(frame, path)
    click.echo(f"wrote {len(frame)} {layer_name} to {path}")


def _parse_mapping(values: tuple[str, ...]) -> dict:
    mapping = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: use FIELD=COLUMN, e.g. name=路名", param_hint="--map")
        k, v = item.split("=", 1)
        mapping[k.strip()] = v.strip()
    return mapping


#: Layers ``gisgrid import`` reads (``addresses``: the address points the geocoder matches against;
#: ``buildings``: footprints drawn on gisgrid's own basemap).
IMPORT_LAYERS = ["jurisdictions", "streets", "segments", "cells", "owners", "reports", "addresses", "buildings"]


@click.command("import")
@click.argument("layer_name", metavar="LAYER", type=click.Choice(IMPORT_LAYERS))
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
@click.option("--jurisdiction", "code", help="Division code the rows belong to.")
@click.option("--strict", is_flag=True, help="Load nothing when any row is bad.")
@click.option("--again", is_flag=True, help="Import the file even if the same file was imported before.")
@handle_errors
def import_cmd(layer_name, path, crs_name, mapping, sheet, x, y, wkt, code, strict, again) -> None:
    """Import LAYER from PATH (GeoJSON, GeoPackage, zipped Shapefile, CSV or XLSX) in one transaction.

    Bad rows are skipped and listed with their row numbers (1 = first data row).  Columns named in
    Chinese or English (编号, 地点, 类别, 描述, 时间 …) are recognised; the columns not used are listed.
    A report with the source and id of a stored one updates it; a file imported before is recognised
    by its checksum and not imported again (unless --again).
    """
    from gisgrid.accounts.store import record_action
    from gisgrid.db.imports import import_file

    engine, _ = engine_and_settings()
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
            again=again,
        )
        # every write has a known author: the import is in the audit log, in the same transaction
        record_action(
            conn,
            cli_actor(),
            f"import.{layer_name}",
            target_type="layer",
            target_id=layer_name,
            detail={
                "file": str(path),
                "rows": summary.total,
                "imported": summary.inserted,
                "updated": summary.updated,
                "rejected": len(summary.rejected),
                "imported_before": summary.previous is not None,
                "strict": bool(strict),
            },
        )
    for line in summary.lines():
        click.echo(line)
    if summary.rejected:
        sys.exit(1)
