"""Vector files for the one table reader (:mod:`gisgrid.io.tables`): GeoJSON, GeoPackage, Shapefile, zipped Shapefile.

Read through pyogrio in batches; geometries are decoded per row, an unclosed
ring closed and noted, an unreadable one reported.
"""

from __future__ import annotations

import functools
import json
import os
import re
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
import shapely
from shapely.errors import GEOSException

from gisgrid.errors import FileFormatError, InputError
from gisgrid.io.cells import (
    TableChunk,
    row_index,
)

if TYPE_CHECKING:
    from gisgrid.io.tables import Table


_KIND_NAMES = {"geojson": "GeoJSON", "gpkg": "GeoPackage", "shp": "Shapefile", "zip": "zipped Shapefile"}
#: The parts a Shapefile cannot be read without, and what each holds.
_SHAPEFILE_PARTS = {".shx": "its index", ".dbf": "its attribute table"}


def _require_shapefile_parts(shp: str, *, archive_names: set[str], where: str) -> None:
    """Name the missing companion files of a Shapefile instead of GDAL's "not recognized"."""
    stem = shp[: -len(".shp")]
    missing = [
        f"{PurePosixPath(stem).name}{ext} ({what})"
        for ext, what in _SHAPEFILE_PARTS.items()
        if (stem + ext).lower() not in archive_names
    ]
    if missing:
        raise FileFormatError(
            f"{where}: the Shapefile {PurePosixPath(shp).name} comes without {' and '.join(missing)}; "
            "a Shapefile is several files: put the .shp, .shx, .dbf and .prj together"
        )


def _dataset(path: Path, kind: str, layer: str | None) -> tuple[str, str | None]:
    """The GDAL dataset name and layer to open (a zip's Shapefile through /vsizip/)."""
    if kind == "shp":
        siblings = {str(p).lower() for p in path.parent.iterdir()}
        _require_shapefile_parts(str(path), archive_names=siblings, where=path.name)
    if kind != "zip":
        return str(path), layer
    try:
        with zipfile.ZipFile(path) as archive:
            everything = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise FileFormatError(f"{path.name} is not a readable zip file: {exc}") from exc
    members = [n for n in everything if n.lower().endswith(".shp") and not n.startswith("__MACOSX/")]
    if not members:
        raise FileFormatError(f"{path.name} holds no Shapefile (.shp)")
    names = [PurePosixPath(m).stem for m in members]
    if layer is not None:
        if layer not in names:
            raise InputError(f"layer {layer!r} not found in {path.name}; layers: {', '.join(names)}")
        member = members[names.index(layer)]
    elif len(members) > 1:
        raise InputError(f"{path.name} holds several Shapefiles; choose one with --layer: {', '.join(names)}")
    else:
        member = members[0]
    _require_shapefile_parts(member, archive_names={n.lower() for n in everything}, where=path.name)
    return f"/vsizip/{path.resolve()}/{member}", None


def _gdal_reason(exc: Exception, kind: str) -> str:
    """GDAL's error as a reason a clerk can act on."""
    text = str(exc)
    if "not recognized as" in text or "not recognised as" in text or "Failed to read GeoJSON" in text:
        return f"its contents are not {_KIND_NAMES.get(kind, kind)} (is the file of another kind, or damaged?)"
    if "No such file" in text:
        return "the file does not exist"
    # keep GDAL's own words, without the dataset path it starts with
    return text.split(": ", 1)[-1] if text.startswith(("/", "/vsizip/")) else text


def _choose_layer(dataset: str, path: Path, layer: str | None) -> str:
    import pyogrio  # noqa: PLC0415

    layers = pyogrio.list_layers(dataset)
    names = [str(name) for name, _ in layers]
    if layer is not None:
        if layer not in names:
            raise InputError(f"layer {layer!r} not found in {path.name}; layers: {', '.join(names)}")
        return layer
    spatial = [str(name) for name, geometry_type in layers if geometry_type is not None]
    if len(names) == 1:
        return names[0]
    if len(spatial) == 1:
        return spatial[0]
    raise InputError(f"{path.name} holds several layers; choose one with --layer: {', '.join(names)}")


_CRS_MEMBER = re.compile(rb'"(?:crs|spatialReference)"\s*:\s*(?!null)')


def geojson_states_crs(path: Path) -> bool:
    """Whether a GeoJSON file has a (pre-RFC 7946) ``crs`` member; GDAL reports WGS84 either way.

    Top-level members sit before ``"features"`` or after the features' end, so
    the file's head (up to ``"features"``) and tail are read, not all of it.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
        handle.seek(max(0, size - (1 << 16)))
        tail = handle.read()
    before = head.split(b'"features"', 1)[0]
    after = tail.rsplit(b"]", 1)[-1] if size > len(head) else head.rsplit(b"]", 1)[-1]
    if _CRS_MEMBER.search(before) or _CRS_MEMBER.search(after):
        try:  # a small file: make sure it is the top-level member
            if size <= 1 << 24:
                document = json.loads(path.read_bytes())
                return isinstance(document, dict) and (
                    document.get("crs") is not None or document.get("spatialReference") is not None
                )
        except (ValueError, UnicodeDecodeError):
            return False
        return True
    return False


def _gdal_errors() -> tuple[type[Exception], ...]:
    import pyogrio.errors  # noqa: PLC0415

    return (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError)


@functools.cache
def _quiet_gdal() -> None:
    """Stop GDAL printing its own warnings to stderr (``Warning 1: Non closed ring detected…``).

    Where pyogrio listens (the calling thread) a GDAL warning becomes a Python warning, filtered in
    :func:`vector_chunks`; but the reader runs ahead in another thread (:mod:`gisgrid.routing.files`),
    where GDAL's default handler wrote straight to the terminal, between the progress bar's lines.
    Every row GDAL warns about is reported by gisgrid itself with its number and reason (a ring is not
    a point; an invalid geometry is repaired or rejected), so the default handler writes to the null
    device.  A ``CPL_LOG`` set in the environment (to debug GDAL) is left alone.
    """
    import pyogrio  # noqa: PLC0415

    if not os.environ.get("CPL_LOG"):
        pyogrio.set_gdal_config_options({"CPL_LOG": os.devnull})


def open_vector(table: Table, layer: str | None) -> None:
    import pyogrio  # noqa: PLC0415

    _quiet_gdal()

    path = table.path
    dataset, layer = _dataset(path, table.kind, layer)
    try:
        table._layer = _choose_layer(dataset, path, layer)
        info = pyogrio.read_info(dataset, layer=table._layer)
    except _gdal_errors() as exc:
        raise FileFormatError(f"cannot read {path.name}: {_gdal_reason(exc, table.kind)}") from exc
    table._dataset = dataset
    table._features = int(info.get("features") or 0)
    if table._features == 0:
        raise FileFormatError(f"file is empty: {path.name} has no features")
    table.columns = [str(c) for c in info.get("fields", [])]
    stated = info.get("crs")
    if stated is not None and table.kind == "geojson" and not geojson_states_crs(path):
        stated = None  # RFC 7946: WGS84 by default, not stated
    table.stated_crs = stated


def vector_chunks(table: Table, chunk_rows: int) -> Iterator[TableChunk]:
    import pyarrow as pa  # noqa: PLC0415
    import pyogrio  # noqa: PLC0415

    done = 0
    try:
        with warnings.catch_warnings():
            # GDAL warns about unclosed rings; they are reported per row
            warnings.filterwarnings("ignore", message="Non closed ring detected")
            with pyogrio.open_arrow(table._dataset, layer=table._layer, batch_size=chunk_rows, use_pyarrow=True) as (
                meta,
                reader,
            ):
                geometry = meta.get("geometry_name") or "wkb_geometry"
                for batch in reader:
                    arrow = pa.Table.from_batches([batch])
                    if geometry in arrow.column_names:
                        wkb = arrow.column(geometry).to_numpy(zero_copy_only=False)
                        arrow = arrow.drop_columns([geometry])
                    else:
                        wkb = np.full(arrow.num_rows, None, dtype=object)
                    frame = arrow.to_pandas()
                    rows = np.arange(done + 1, done + 1 + len(frame))
                    frame.index = row_index(rows)
                    done += len(frame)
                    rejected: dict[int, list[str]] = {}
                    repaired: dict[int, list[str]] = {}
                    geoms = decode_geometries(
                        np.asarray(wkb, dtype=object), shapely.from_wkb, "geometry", rejected, repaired
                    )
                    yield TableChunk(
                        frame,
                        geoms=geoms,
                        rejected={int(rows[p]): r for p, r in rejected.items()},
                        repaired={int(rows[p]): r for p, r in repaired.items()},
                    )
    except _gdal_errors() as exc:
        raise FileFormatError(f"cannot read {table.path.name}: {_gdal_reason(exc, table.kind)}") from exc


def decode_geometries(
    values: np.ndarray, decode, what: str, rejected: dict[int, list[str]], repaired: dict[int, list[str]]
) -> np.ndarray:
    """Geometries from WKT or WKB values (``decode`` is :func:`shapely.from_wkt` or ``from_wkb``).

    A ring that was not closed is closed and noted in ``repaired``; anything
    else unreadable, and a missing value, is noted in ``rejected`` (by
    position), the reason naming ``what`` was read ("WKT in 'wkt'", "geometry").
    """
    geoms = decode(values, on_invalid="ignore")
    failed = np.flatnonzero(np.equal(geoms, None) & np.not_equal(values, None))
    if failed.size:
        # "fix" closes rings that were not closed; anything else stays unreadable
        fixed = decode(values[failed], on_invalid="fix")
        for pos, geom in zip(failed, fixed, strict=True):
            if geom is not None:
                geoms[pos] = geom
                repaired[pos] = [f"ring in {what} was not closed; closed it"]
            else:
                rejected[pos] = [f"unreadable {what}: {_decode_error(decode, values[pos])}"]
    for pos in np.flatnonzero(np.equal(values, None)):
        rejected[pos] = [f"missing {what}"]
    return geoms


def _decode_error(decode, value) -> str:
    try:
        decode(value)
    except GEOSException as exc:
        return str(exc)
    return "not a geometry"
