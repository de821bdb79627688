"""Raster tile packages (MBTiles 1.3): check, install and read tiles, with the standard library's sqlite3.

An MBTiles file is a SQLite database with a ``metadata`` table (name/value) and a ``tiles`` table
(``zoom_level``, ``tile_column``, ``tile_row``, ``tile_data``) whose rows count from the south (TMS), while
Leaflet asks for XYZ tiles counted from the north: :func:`read_tile` flips the row.

Only raster packages (``png``, ``jpg``, ``webp``) are served; a vector package (``pbf``) is refused with a
reason, since the pages draw raster tiles.  The installed package is one file under the data folder
(:func:`installed_path`); ``gisgrid basemap add`` copies a checked package there, and every map page then
draws it.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from gisgrid.errors import InputError

LOGGER = logging.getLogger(__name__)

#: Tile formats served, with their media types.
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}
#: The installed package, under the data folder (``Settings.var_dir``).
INSTALLED_NAME = "basemap/basemap.mbtiles"
#: A fully transparent 1×1 PNG: the answer for a tile the package does not hold (outside its area or zooms).
EMPTY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000005000155a3c7d90000000049454e44ae426082"
)


@dataclass(frozen=True)
class TilePackage:
    """What a checked package holds: its format, zooms and extent (EPSG:4326 degrees, when it says)."""

    path: Path
    name: str
    format: str
    min_zoom: int
    max_zoom: int
    bounds: tuple[float, float, float, float] | None
    attribution: str
    tiles: int

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


def installed_path(var_dir: str | Path) -> Path:
    """Where the installed package lives under the data folder ``var_dir``."""
    return Path(var_dir) / INSTALLED_NAME


def _connect(path: Path) -> sqlite3.Connection:
    # read-only: a tile request never writes, and a package on a read-only disk still serves
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def inspect(path: str | Path) -> TilePackage:
    """Check that ``path`` is a raster MBTiles package; describe it.

    Raises
    ------
    InputError
        Not a file, not SQLite, no ``tiles`` table, no tiles, a vector (``pbf``) or unknown tile format.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        with contextlib.closing(_connect(path)) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
            if "tiles" not in tables:
                raise InputError(f"{path.name} is not an MBTiles package: it has no 'tiles' table")
            meta = dict(conn.execute("SELECT name, value FROM metadata")) if "metadata" in tables else {}
            count, min_zoom, max_zoom = conn.execute(
                "SELECT count(*), min(zoom_level), max(zoom_level) FROM tiles"
            ).fetchone()
            first = conn.execute("SELECT tile_data FROM tiles LIMIT 1").fetchone()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path.name} is not an MBTiles package (SQLite says: {exc})") from None
    if not count:
        raise InputError(f"{path.name} holds no tiles")
    fmt = str(meta.get("format") or "").lower() or _sniff(bytes(first[0])) or ""
    if fmt == "pbf":
        raise InputError(f"{path.name} holds vector tiles (pbf): gisgrid serves raster packages (png, jpg, webp)")
    if fmt not in MEDIA_TYPES:
        raise InputError(f"{path.name} holds tiles of format {fmt!r}: gisgrid serves png, jpg or webp")
    bounds = None
    if meta.get("bounds"):
        try:
            west, south, east, north = (float(v) for v in str(meta["bounds"]).split(","))
            bounds = (west, south, east, north)
        except ValueError:
            LOGGER.warning("%s: unreadable bounds %r ignored", path.name, meta["bounds"])
    return TilePackage(
        path=path,
        name=str(meta.get("name") or path.stem),
        format="jpg" if fmt == "jpeg" else fmt,
        min_zoom=int(meta.get("minzoom") or min_zoom),
        max_zoom=int(meta.get("maxzoom") or max_zoom),
        bounds=bounds,
        attribution=str(meta.get("attribution") or ""),
        tiles=int(count),
    )


def install(source: str | Path, var_dir: str | Path) -> TilePackage:
    """Check ``source`` and copy it to the installed place (replacing the package installed before)."""
    package = inspect(source)
    target = installed_path(var_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    shutil.copyfile(package.path, partial)
    partial.replace(target)  # atomic: a tile request never reads half a file
    LOGGER.info(
        "basemap %s installed (%d tiles, zoom %d-%d)", package.name, package.tiles, package.min_zoom, package.max_zoom
    )
    return inspect(target)


def installed(var_dir: str | Path) -> TilePackage | None:
    """The installed package, or None."""
    path = installed_path(var_dir)
    return inspect(path) if path.is_file() else None


def remove(var_dir: str | Path) -> bool:
    """Remove the installed package; True if there was one."""
    path = installed_path(var_dir)
    if path.is_file():
        path.unlink()
        return True
    return False


def read_tile(path: str | Path, z: int, x: int, y: int) -> bytes | None:
    """The tile at XYZ ``z/x/y`` (counted from the north, as Leaflet asks), or None when the package lacks it."""
    if z < 0 or z > 30 or not (0 <= x < 2**z) or not (0 <= y < 2**z):
        return None
    with contextlib.closing(_connect(Path(path))) as conn:
        row = conn.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            (z, x, (2**z - 1) - y),
        ).fetchone()
    return bytes(row[0]) if row else None
