"""``gisgrid segments``: street segments and their frontage areas."""

from __future__ import annotations

import click

from gisgrid.cli._common import engine_and_settings, handle_errors
from gisgrid.config import load_settings


@click.group()
def segments() -> None:
    """Street segments (段) and their frontage areas."""


@segments.command("build")
@click.option("--jurisdiction", "code", help="Town or county division code (default: every town).")
@click.option("--max-length", "max_length_m", type=float, help="Longest segment in metres (default from settings).")
@click.option(
    "--min-length",
    "min_length_m",
    type=float,
    help="Shorter runs join a neighbouring segment of the same street, metres (default from settings, 20).",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Rebuild even where segments have owners: their assignments end today (history kept).",
)
@handle_errors
def segments_build(code: str | None, max_length_m: float | None, min_length_m: float | None, replace: bool) -> None:
    """Split streets into segments at intersections and at a maximum length; build non-overlapping areas."""
    from gisgrid.network.store import rebuild_segments

    settings = load_settings()
    if max_length_m is not None:
        settings.segment_max_length_m = max_length_m
    if min_length_m is not None:
        settings.segment_min_length_m = min_length_m
    engine, settings = engine_and_settings(settings)
    with engine.begin() as conn:
        summary = rebuild_segments(conn, settings, jurisdiction_code=code, replace=replace)
    for line in summary:
        click.echo(line)
