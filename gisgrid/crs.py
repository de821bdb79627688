"""The only place that knows coordinate reference systems.

* parses the CRS an input declares: EPSG:4326 / EPSG:4490 (CGCS2000), any
  projected EPSG code, or the Chinese web-map systems GCJ-02 (AMap, Tencent,
  WeChat) and BD-09 (Baidu);
* converts GCJ-02 and BD-09 to WGS84 with an iterative inverse;
* picks the metric CRS of an area (CGCS2000 3-degree Gauss-Krüger zone inside
  China, UTM elsewhere) through which every length, area, buffer and distance
  in gisgrid is computed.

Storage is EPSG:4326 lon/lat.  CGCS2000 and WGS84 differ by centimetres, far
below street scale, so EPSG:4490 input is stored unchanged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError as _PyprojCRSError

from gisgrid.errors import CRSError

LOGGER = logging.getLogger(__name__)

STORAGE_SRID = 4326
WGS84 = 4326
CGCS2000 = 4490
GEOGRAPHIC_SAME_AS_STORAGE = {4326, 4490, 4258, 4269}  # datum shifts < 1 m: stored as is

_GCJ_ALIASES = {"gcj02", "gcj-02", "gcj", "amap", "tencent", "mars"}
_BD_ALIASES = {"bd09", "bd-09", "bd09ll", "baidu"}


@dataclass(frozen=True)
class InputCRS:
    """A declared input CRS.  ``kind`` is 'geographic', 'projected', 'gcj02' or 'bd09'."""

    kind: str
    epsg: int | None = None

    @property
    def name(self) -> str:
        return (
            self.kind.upper().replace("GCJ02", "GCJ-02").replace("BD09", "BD-09")
            if self.epsg is None
            else f"EPSG:{self.epsg}"
        )

    @property
    def is_lonlat(self) -> bool:
        return self.kind in {"geographic", "gcj02", "bd09"}


def parse_crs(value) -> InputCRS:
    """Parse a CRS declaration such as ``"EPSG:4490"``, ``4547``, ``"gcj02"`` or ``"BD-09"``.

    Raises
    ------
    CRSError
        When the value names no CRS gisgrid can convert from.
    """
    if isinstance(value, InputCRS):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        raise CRSError(
            "no CRS given: say which one the coordinates are in (e.g. EPSG:4326, EPSG:4490, "
            "gcj02, bd09 or a projected EPSG code)"
        )
    text = str(value).strip().lower()
    if text in _GCJ_ALIASES:
        return InputCRS("gcj02")
    if text in _BD_ALIASES:
        return InputCRS("bd09")
    if text in {"wgs84", "crs84", "urn:ogc:def:crs:ogc:1.3:crs84", "ogc:crs84"}:
        return InputCRS("geographic", WGS84)
    if text in {"cgcs2000"}:
        return InputCRS("geographic", CGCS2000)
    try:
        crs = CRS.from_user_input(int(text) if text.isdigit() else str(value).strip())
    except (_PyprojCRSError, ValueError, TypeError) as exc:
        raise CRSError(f"unknown CRS {value!r}: use EPSG:4326, EPSG:4490, gcj02, bd09 or an EPSG code") from exc
    epsg = crs.to_epsg()
    if epsg is None:
        raise CRSError(f"CRS {value!r} has no EPSG code; declare the EPSG code explicitly")
    if crs.is_geographic:
        return InputCRS("geographic", epsg)
    if crs.is_projected:
        return InputCRS("projected", epsg)
    raise CRSError(f"CRS {value!r} is neither geographic nor projected")


def reconcile_crs(declared, stated: str | None, *, source: str, default: int | None = None) -> InputCRS:
    """The CRS of a file's coordinates: the one rule for every file read (import, assign).

    Parameters
    ----------
    declared : str, int, InputCRS or None
        What the user declared (``--crs``).
    stated : str or None
        What the file states (a GeoPackage's or Shapefile's CRS, a GeoJSON
        ``crs`` member); None when it states none.
    source : str
        The file's name, for the messages.
    default : int, optional
        The CRS of a file that states none (RFC 7946: GeoJSON is WGS84).

    Returns
    -------
    InputCRS
        The declared CRS when the file states none; the file's when nothing is
        declared; else the declared one when the two agree: the same EPSG code,
        two geographic CRSs stored as they are (EPSG:4326 and EPSG:4490 both
        accepted, :data:`GEOGRAPHIC_SAME_AS_STORAGE`), or GCJ-02/BD-09 declared
        for a file labelled with such a CRS (those systems have no code a file
        could carry).  GCJ-02 and BD-09 are converted by :func:`to_storage`.

    Raises
    ------
    CRSError
        No CRS at all, a stated CRS without an EPSG code and nothing declared,
        or a declaration contradicting the file: gisgrid never reprojects
        silently.
    """
    user = parse_crs(declared) if declared is not None else None
    if stated is None:
        if user is not None:
            return user
        if default is not None:
            return parse_crs(default)
        raise CRSError(f"{source} states no CRS; declare it with --crs (e.g. EPSG:4490, gcj02 or an EPSG code)")
    try:
        own = parse_crs(stated)
    except CRSError:
        own = None
    if user is None:
        if own is None:
            raise CRSError(f"{source} states a CRS without an EPSG code; declare its EPSG code with --crs")
        return own
    if own == user:
        return user
    same_storage = own is not None and own.epsg in GEOGRAPHIC_SAME_AS_STORAGE
    if same_storage and (user.epsg in GEOGRAPHIC_SAME_AS_STORAGE or user.kind in {"gcj02", "bd09"}):
        LOGGER.info("%s is labelled %s; reading it as declared, %s", source, own.name, user.name)
        return user
    if own is None and user.epsg is not None and _same_crs(stated, user.epsg):
        return user
    stated_name = own.name if own is not None else "a CRS without an EPSG code"
    raise CRSError(
        f"{source} states {stated_name} but {user.name} was declared; "
        "drop --crs to use the file's CRS, or fix the file (gisgrid does not reproject silently)"
    )


def _same_crs(stated: str, epsg: int) -> bool:
    try:
        return CRS.from_user_input(stated).equals(CRS.from_epsg(epsg), ignore_axis_order=True)
    except _PyprojCRSError:
        return False


@lru_cache(maxsize=64)
def transformer(src: int, dst: int) -> Transformer:
    """A cached always-x/y (lon/lat) transformer between two EPSG codes."""
    return Transformer.from_crs(src, dst, always_xy=True)


# --- GCJ-02 / BD-09 ------------------------------------------------------------
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0


def reproject(geom, src: int, dst: int):
    """A shapely geometry (or array of them) from EPSG ``src`` to EPSG ``dst`` (x = lon/easting)."""
    t = transformer(src, dst)
    return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def in_china(lon, lat):
    """The rectangle inside which the GCJ-02 offset is applied (as the web-map APIs do)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _delta(lon, lat):
    x = lon - 105.0
    y = lat - 35.0
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon, lat):
    """WGS84 → GCJ-02 (the published forward formula); identity outside China."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    inside = in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_wgs84(lon, lat, *, tol_deg: float = 1e-9, max_iter: int = 30):
    """GCJ-02 → WGS84 by fixed-point iteration of the forward formula (error ≪ 1 cm)."""
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(max_iter):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = flon - glon, flat - glat
        wlon = wlon - elon
        wlat = wlat - elat
        if np.all(np.abs(elon[np.isfinite(elon)]) < tol_deg) and np.all(np.abs(elat[np.isfinite(elat)]) < tol_deg):
            break
    return wlon, wlat


def gcj02_to_bd09(lon, lat):
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon, lat, *, tol_deg: float = 1e-10, max_iter: int = 30):
    """BD-09 → GCJ-02, iterating the forward formula to its exact inverse."""
    blon = np.asarray(lon, dtype=float)
    blat = np.asarray(lat, dtype=float)
    glon, glat = blon - 0.0065, blat - 0.006
    for _ in range(max_iter):
        flon, flat = gcj02_to_bd09(glon, glat)
        elon, elat = flon - blon, flat - blat
        glon = glon - elon
        glat = glat - elat
        if np.all(np.abs(elon[np.isfinite(elon)]) < tol_deg) and np.all(np.abs(elat[np.isfinite(elat)]) < tol_deg):
            break
    return glon, glat


def wgs84_to_bd09(lon, lat):
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat):
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


# --- entry point for every input ------------------------------------------------
def geographic_bounds(crs: InputCRS) -> tuple[float, float, float, float]:
    """Valid coordinate range (xmin, ymin, xmax, ymax) of an input CRS, in its own units."""
    if crs.is_lonlat:
        return (-180.0, -90.0, 180.0, 90.0)
    c = CRS.from_epsg(crs.epsg)
    aou = c.area_of_use
    if aou is None:
        return (-math.inf, -math.inf, math.inf, math.inf)
    t = transformer(4326, crs.epsg)
    xs, ys = t.transform([aou.west, aou.east, aou.west, aou.east], [aou.south, aou.south, aou.north, aou.north])
    # projected bounds with a generous margin: area_of_use is advisory
    width = max(xs) - min(xs)
    height = max(ys) - min(ys)
    return (min(xs) - width, min(ys) - height, max(xs) + width, max(ys) + height)


def to_storage(x, y, crs) -> tuple[np.ndarray, np.ndarray]:
    """Convert coordinates in a declared CRS to storage lon/lat (EPSG:4326).

    Parameters
    ----------
    x, y : array-like of float
        Easting/longitude and northing/latitude, in the units of ``crs``.
    crs : str, int or InputCRS
        The declared CRS.

    Returns
    -------
    lon, lat : numpy arrays; NaN where the input was NaN.
    """
    crs = parse_crs(crs)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if crs.kind == "gcj02":
        return gcj02_to_wgs84(x, y)
    if crs.kind == "bd09":
        return bd09_to_wgs84(x, y)
    if crs.epsg in GEOGRAPHIC_SAME_AS_STORAGE:
        return x.copy(), y.copy()
    lon, lat = transformer(crs.epsg, STORAGE_SRID).transform(x, y)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def from_storage(lon, lat, crs) -> tuple[np.ndarray, np.ndarray]:
    """Storage lon/lat → a declared CRS (the inverse of :func:`to_storage`)."""
    crs = parse_crs(crs)
    if crs.kind == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if crs.kind == "bd09":
        return wgs84_to_bd09(lon, lat)
    if crs.epsg in GEOGRAPHIC_SAME_AS_STORAGE:
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    xs, ys = transformer(STORAGE_SRID, crs.epsg).transform(lon, lat)
    return np.asarray(xs), np.asarray(ys)


def metric_crs_for(lon: float, lat: float) -> int:
    """The projected metric CRS for an area centred at (lon, lat).

    Inside China: CGCS2000 / 3-degree Gauss-Krüger CM zone (EPSG:4534–4554),
    the national practice for municipal surveys.  Elsewhere: the WGS84 UTM zone.
    """
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise CRSError("cannot choose a metric CRS for a non-finite centre")
    if 73.5 <= lon <= 136.5 and 16.0 <= lat <= 54.0:
        cm = int(round(lon / 3.0)) * 3
        return 4534 + (cm - 75) // 3
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def jurisdiction_metric_crs(stored: int | None, setting: str | int | None, geom) -> int:
    """The metric CRS of a jurisdiction: its stored ``metric_epsg``, else the deployment setting at ``geom``'s centre."""
    if stored:
        return int(stored)
    centre = geom.centroid
    return resolve_metric_crs(setting, centre.x, centre.y)


def resolve_metric_crs(setting: str | int | None, lon: float, lat: float) -> int:
    """Honour a configured metric CRS (``"auto"`` picks one from the centre)."""
    if setting in (None, "", "auto"):
        return metric_crs_for(lon, lat)
    crs = parse_crs(setting)
    if crs.kind != "projected":
        raise CRSError(f"metric CRS must be a projected EPSG code, not {setting!r}")
    return crs.epsg


def to_metric(gdf, epsg: int):
    """Reproject a GeoDataFrame/GeoSeries in storage CRS to the metric CRS ``epsg``."""
    if gdf.crs is None:
        raise CRSError("geometries without a CRS cannot be measured")
    return gdf.to_crs(epsg)


@lru_cache(maxsize=64)
def northing_first(epsg: int) -> bool:
    """True when the CRS's first axis is north or south (EPSG:4326 and 4490 are latitude, longitude), as
    OGC API – Features Part 2 writes coordinates in a CRS given by URI.  CRS84 is never (not an EPSG code)."""
    axes = CRS.from_epsg(int(epsg)).axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")
