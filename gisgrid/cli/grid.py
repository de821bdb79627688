"""``gisgrid grid build`` and ``gisgrid audit``: thin click wrappers over :mod:`gisgrid.grid.store` and :mod:`gisgrid.audit.store`."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from gisgrid.cli._common import engine_and_settings, handle_errors
from gisgrid.grid.build import LAYOUTS

LOGGER = logging.getLogger(__name__)


@click.group()
def grid() -> None:
    """Unit-grid cells (单元网格): build and code them."""


@grid.command("build")
@click.option("--jurisdiction", "code", required=True, help="Town code, or a county code (each of its towns).")
@click.option(
    "--target-area", "target_area_m2", type=float, default=10_000.0, show_default=True, help="Intended cell area, m²."
)
@click.option(
    "--layout",
    type=click.Choice(LAYOUTS),
    default="blocks",
    show_default=True,
    help="blocks: street blocks split and merged toward the target; square / hex: regular lattice.",
)
@handle_errors
def grid_build(code: str, target_area_m2: float, layout: str) -> None:
    """Cut a town into coded cells that tile it and replace its stored cells.

    Cells whose code is unchanged keep their id and owners; retired cells'
    owner assignments end today.
    """
    from gisgrid.grid.store import build_and_store_grid, format_build_summary

    engine, settings = engine_and_settings()
    with engine.begin() as conn:
        summary = build_and_store_grid(conn, settings, code, target_area_m2=target_area_m2, layout=layout)
    for line in format_build_summary(summary):
        click.echo(line)


@click.command("audit")
@click.option("--jurisdiction", "code", help="Jurisdiction code (default: every town).")
@click.option(
    "--days", type=click.IntRange(min=0), default=30, show_default=True, help="Check the reports of the last DAYS days."
)
@click.option(
    "--geojson",
    "geojson_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the problem layers to this GeoJSON file (property 'problem').",
)
@click.option(
    "--xlsx",
    "xlsx_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the problem tables to this XLSX file (one sheet per problem type).",
)
@handle_errors
def audit_cmd(code: str | None, days: int, geojson_path: Path | None, xlsx_path: Path | None) -> None:
    """Coverage audit: gaps (没人管), overlaps (多头管), slivers and owner problems."""
    from gisgrid.audit.store import (
        audit_geojson_bytes,
        audit_store,
        audit_summary_lines,
        audit_xlsx_bytes,
        frontage_audit,
    )

    engine, settings = engine_and_settings()
    with engine.connect() as conn:
        result = audit_store(conn, settings, code, days=days)
        frontage = frontage_audit(conn, settings, code)
    for line in audit_summary_lines(result) + frontage.summary_lines():
        click.echo(line)
    if geojson_path:
        geojson_path.write_bytes(audit_geojson_bytes(result))
        click.echo(f"wrote {geojson_path}")
    if xlsx_path:
        xlsx_path.write_bytes(audit_xlsx_bytes(result, extra=frontage.to_tables()))
        click.echo(f"wrote {xlsx_path}")
