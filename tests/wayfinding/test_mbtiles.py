"""Tile packages: checked on the way in, served from gisgrid itself, the right tile for the right place."""

from __future__ import annotations

import io
import sqlite3

import pytest
from click.testing import CliRunner
from PIL import Image

from gisgrid.basemap import mbtiles
from gisgrid.cli import main
from gisgrid.errors import InputError
from tests.wayfinding.conftest import TILE_RGB, make_mbtiles, png


def _two_row_package(path):
    """Zoom 1, column 0: the northern tile (XYZ y=0, TMS row 1) red, the southern (y=1, row 0) blue."""
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE metadata (name text, value text);"
        "CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);"
    )
    conn.execute("INSERT INTO metadata VALUES ('format', 'png')")
    conn.execute("INSERT INTO tiles VALUES (1, 0, 1, ?)", (png((255, 0, 0)),))
    conn.execute("INSERT INTO tiles VALUES (1, 0, 0, ?)", (png((0, 0, 255)),))
    conn.commit()
    conn.close()
    return path


def _colour(data: bytes):
    return Image.open(io.BytesIO(data)).convert("RGB").getpixel((128, 128))


def test_tiles_are_read_counted_from_the_north_as_leaflet_asks(tmp_path):
    path = _two_row_package(tmp_path / "rows.mbtiles")
    assert _colour(mbtiles.read_tile(path, 1, 0, 0)) == (255, 0, 0)  # north
    assert _colour(mbtiles.read_tile(path, 1, 0, 1)) == (0, 0, 255)  # south
    assert mbtiles.read_tile(path, 1, 1, 0) is None  # not in the package
    assert mbtiles.read_tile(path, 1, 5, 0) is None  # not on the earth at that zoom


def test_bad_packages_are_refused_with_the_reason(tmp_path):
    text = tmp_path / "notes.mbtiles"
    text.write_text("not a database", encoding="utf-8")
    with pytest.raises(InputError, match="not an MBTiles package"):
        mbtiles.inspect(text)
    vector = make_mbtiles(tmp_path / "vector.mbtiles", (116.3, 39.99, 116.31, 40.0), zooms=(14,), fmt="pbf")
    with pytest.raises(InputError, match="vector tiles"):
        mbtiles.inspect(vector)
    empty = tmp_path / "empty.mbtiles"
    sqlite3.connect(empty).executescript("CREATE TABLE tiles (zoom_level, tile_column, tile_row, tile_data);")
    with pytest.raises(InputError, match="holds no tiles"):
        mbtiles.inspect(empty)
    with pytest.raises(InputError, match="no such file"):
        mbtiles.inspect(tmp_path / "missing.mbtiles")


def test_cli_installs_shows_and_removes_a_package(tmp_path, town_bounds):
    package = make_mbtiles(tmp_path / "town.mbtiles", town_bounds[1], zooms=(14, 15))
    env = {"GISGRID_VAR_DIR": str(tmp_path / "var"), "GISGRID_BASEMAP_URL": ""}
    runner = CliRunner()
    added = runner.invoke(main, ["basemap", "add", str(package)], env=env)
    assert added.exit_code == 0, added.output
    assert "installed test basemap" in added.output and "zoom 14–15" in added.output
    assert mbtiles.installed_path(tmp_path / "var").is_file()
    assert "tile package: test basemap" in runner.invoke(main, ["basemap", "show"], env=env).output
    bad = tmp_path / "bad.mbtiles"
    bad.write_bytes(b"\x00" * 100)
    refused = runner.invoke(main, ["basemap", "add", str(bad)], env=env)
    assert refused.exit_code != 0 and "not an MBTiles package" in refused.output
    assert mbtiles.installed(tmp_path / "var").name == "test basemap"  # the installed one stays
    assert runner.invoke(main, ["basemap", "remove"], env=env).output.strip() == "removed"
    assert "own layers" in runner.invoke(main, ["basemap", "show"], env=env).output


def test_tile_route_serves_the_package_and_a_blank_tile_outside_it(tiles_app, town_bounds):
    from tests.wayfinding.conftest import tile_xy

    client = tiles_app.test_client()
    w, s, e, n = town_bounds[1]
    x, y = tile_xy((w + e) / 2, (s + n) / 2, 15)
    inside = client.get(f"/basemap/tiles/15/{x}/{y}")
    assert inside.status_code == 200 and inside.mimetype == "image/png"
    assert _colour(inside.data) == TILE_RGB
    outside = client.get("/basemap/tiles/15/0/0")
    assert outside.status_code == 200 and Image.open(io.BytesIO(outside.data)).size == (1, 1)
    assert client.get("/basemap/tiles/99/0/0").status_code == 200  # no such zoom: blank, not an error
    assert tiles_app.test_client(user=None).get(f"/basemap/tiles/15/{x}/{y}").status_code == 302
