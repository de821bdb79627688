"""``gisgrid geocode``: written addresses to points and owners, file in, file out."""

from __future__ import annotations

import click

from gisgrid.cli._common import deployment_engine_settings, handle_errors


@click.command("geocode")
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
    deployment, engine, settings = deployment_engine_settings()
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
        limits=settings.text_limits,
    )
    for line in result.lines():
        click.echo(line)
    click.echo(f"wrote {dst_path}")
