"""A small raster tile package (MBTiles) made here, for the basemap tests."""

from __future__ import annotations

import dataclasses
import io
import math
import sqlite3
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from gisgrid.basemap import mbtiles

#: The tiles' colour: a screenshot shows the package under the units.
TILE_RGB = (206, 232, 206)


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    """XYZ tile (counted from the north) holding lon/lat at zoom z."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def png(rgb, text: str = "") -> bytes:
    image = Image.new("RGB", (256, 256), rgb)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, 255, 255], outline=(150, 180, 150))
    if text:
        draw.text((8, 8), text, fill=(60, 90, 60))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def make_mbtiles(path: Path, bounds, zooms=(13, 14, 15, 16), *, fmt: str = "png") -> Path:
    """An MBTiles 1.3 file covering ``bounds`` (w, s, e, n) at ``zooms``; tile_row counted from the south."""
    west, south, east, north = bounds
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE metadata (name text, value text);"
        "CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);"
    )
    meta = {
        "name": "test basemap",
        "format": fmt,
        "minzoom": str(min(zooms)),
        "maxzoom": str(max(zooms)),
        "bounds": f"{west},{south},{east},{north}",
        "attribution": "Test tiles",
    }
    conn.executemany("INSERT INTO metadata VALUES (?, ?)", meta.items())
    for z in zooms:
        x0, y0 = tile_xy(west, north, z)
        x1, y1 = tile_xy(east, south, z)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                conn.execute(
                    "INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, 2**z - 1 - y, png(TILE_RGB, f"{z}/{x}/{y}"))
                )
    conn.commit()
    conn.close()
    return path


@pytest.fixture(scope="session")
def town_bounds(engine):
    import sqlalchemy as sa

    with engine.connect() as conn:
        code, w, s, e, n = conn.execute(
            sa.text("""
            SELECT j.code, ST_XMin(j.geom), ST_YMin(j.geom), ST_XMax(j.geom), ST_YMax(j.geom)
            FROM jurisdiction j WHERE j.level = 'town'
              AND EXISTS (SELECT 1 FROM street s JOIN segment g ON g.street_id = s.id WHERE s.jurisdiction_id = j.id)
            ORDER BY j.code LIMIT 1""")
        ).one()
    return code, (w, s, e, n)


@pytest.fixture()
def tiles_app(tmp_path, db_url, settings, town_bounds):
    from gisgrid.web import create_app

    var = tmp_path / "var"
    mbtiles.install(make_mbtiles(tmp_path / "town.mbtiles", town_bounds[1]), var)
    own = dataclasses.replace(settings, var_dir=str(var), basemap_url="")
    return create_app({"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": own})
