"""``gisgrid basemap``: install the tile package (MBTiles, raster) every map page draws under its layers.

Without one (and without ``basemap_url`` in the settings) the pages draw a light basemap from gisgrid's own
layers: jurisdiction boundaries with their names, and streets named along their centerlines.
"""

from __future__ import annotations

import logging

import click

from gisgrid.cli._common import handle_errors

LOGGER = logging.getLogger(__name__)


@click.group()
def basemap() -> None:
    """The basemap under every map: a tile package served by gisgrid itself."""


def _describe(package) -> str:
    bounds = ", ".join(f"{v:.5f}" for v in package.bounds) if package.bounds else "not stated"
    return (
        f"{package.name}: {package.tiles} {package.format} tiles, zoom {package.min_zoom}–{package.max_zoom}, "
        f"bounds {bounds}"
    )


@basemap.command("add")
@click.argument("path", type=click.Path(dir_okay=False))
@handle_errors
def basemap_add(path: str) -> None:
    """Check the raster MBTiles package PATH and serve it under every map (replaces the one installed before)."""
    from gisgrid.basemap import mbtiles
    from gisgrid.config import load_settings

    settings = load_settings()
    package = mbtiles.install(path, settings.var_dir)
    click.echo(f"installed {_describe(package)}")
    if settings.basemap_url:
        click.echo("note: basemap_url is set in the settings, and a configured tile service comes first")


@basemap.command("show")
@handle_errors
def basemap_show() -> None:
    """Say which basemap the maps draw."""
    from gisgrid.basemap import mbtiles
    from gisgrid.config import load_settings

    settings = load_settings()
    package = mbtiles.installed(settings.var_dir)
    if settings.basemap_url:
        click.echo(f"tile service: {settings.basemap_url}")
    elif package is not None:
        click.echo(f"tile package: {_describe(package)}")
    else:
        click.echo("gisgrid's own layers (jurisdiction boundaries and streets)")


@basemap.command("remove")
@handle_errors
def basemap_remove() -> None:
    """Remove the installed tile package: the maps draw gisgrid's own layers again."""
    from gisgrid.basemap import mbtiles
    from gisgrid.config import load_settings

    click.echo("removed" if mbtiles.remove(load_settings().var_dir) else "no tile package was installed")
