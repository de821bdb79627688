"""Hotspots over the archive on a dask.distributed cluster, through dask-geopandas.

``gisgrid hotspots --workers N`` (a local cluster of N processes) or ``--scheduler tcp://HOST:PORT`` (a
cluster that exists already) runs :func:`hotspots_distributed`, which gives what
:func:`gisgrid.analytics.store.hotspots` gives:

1. the matched reports (:func:`gisgrid.analytics.store.report_filter`, the same filter) are cut into
   partitions by id range (:func:`gisgrid.routing.distributed.id_ranges`);
2. each partition is read on a worker with one COPY into a GeoDataFrame of points (a dask-geopandas
   GeoDataFrame of the partitions) and binned there on the hexagon lattice: the hexagon each report keeps
   (``report.hex_q``/``hex_r``, the trigger of migration 0014_map_bins) where it is the one asked for, as
   the single-process path reads it, else :func:`gisgrid.analytics.hotspots.hex_axial`;
3. the partial counts per hexagon are summed (dask's groupby), and the study area, Gi* and the FDR
   correction run once on the sums, by the single-process code
   (:func:`gisgrid.analytics.store.hotspots_of_counts`).

Only the counting moves to the workers; every formula stays where it is.  Workers must reach the database
at the URL given and have the same gisgrid installed (docs/operations.md).
"""

from __future__ import annotations

import io
import logging
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import sqlalchemy as sa

from gisgrid.analytics import hotspots as hs
from gisgrid.analytics.store import HEX_SIZE_M, ReportFilters, hotspots_of_counts, report_filter, study_area
from gisgrid.errors import InputError
from gisgrid.routing.distributed import (
    DEFAULT_PARTITION_ROWS,
    id_ranges,
    libpq_url,
    psycopg_query,
    using_client,
)

LOGGER = logging.getLogger(__name__)

_POINT_COLUMNS = ("lon", "lat", "hex_epsg", "hex_q", "hex_r")


def _empty_points() -> gpd.GeoDataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in ("hex_epsg", "hex_q", "hex_r")})
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")


def _empty_counts() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64") for c in ("q", "r", "count")})


def read_points(url: str, where: str, params: dict, lo: int, hi: int) -> gpd.GeoDataFrame:
    """The located reports of one id range matching ``where`` (psycopg parameters), read with one COPY:
    points in EPSG:4326 with the hexagon they keep (``hex_epsg``, ``hex_q``, ``hex_r``, NaN where none).
    Runs on a worker."""
    import psycopg
    from pyarrow import csv as pacsv

    copy_sql = (
        "COPY (SELECT ST_X(r.geom), ST_Y(r.geom), r.hex_epsg, r.hex_q, r.hex_r FROM report r "
        f"WHERE r.geom IS NOT NULL AND {where} AND r.id >= {int(lo)} AND r.id < {int(hi)}) TO STDOUT (FORMAT csv)"
    )
    buf = io.BytesIO()
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        with cur.copy(copy_sql, params or None) as copy:
            for chunk in copy:
                buf.write(chunk)
    if buf.getbuffer().nbytes == 0:
        return _empty_points()
    buf.seek(0)
    import pyarrow as pa

    frame = pacsv.read_csv(
        buf,
        read_options=pacsv.ReadOptions(column_names=list(_POINT_COLUMNS)),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.float64() for c in _POINT_COLUMNS}),
    ).to_pandas()
    return gpd.GeoDataFrame(
        frame[["hex_epsg", "hex_q", "hex_r"]],
        geometry=gpd.points_from_xy(frame["lon"], frame["lat"], crs="EPSG:4326"),
    )


def bin_points(part: gpd.GeoDataFrame, size_m: float, epsg: int) -> pd.DataFrame:
    """Reports per hexagon (``q``, ``r``, ``count``) of one partition, on the lattice of ``size_m`` hexagons
    in ``epsg`` (runs on a worker).

    The hexagon a report keeps is used where it is the one asked for (100 m in ``epsg``), as
    :func:`gisgrid.analytics.store.hotspots` reads it; the others are computed by
    :func:`gisgrid.analytics.hotspots.hex_axial`.
    """
    if len(part) == 0:
        return _empty_counts()
    q = part["hex_q"].to_numpy(dtype=float, copy=True)
    r = part["hex_r"].to_numpy(dtype=float, copy=True)
    kept = (part["hex_epsg"].to_numpy(dtype=float) == epsg) if float(size_m) == HEX_SIZE_M else np.zeros(len(q), bool)
    if not kept.all():
        lon = part.geometry.x.to_numpy()[~kept]
        lat = part.geometry.y.to_numpy()[~kept]
        cq, cr = hs.hex_axial(lon, lat, size_m=size_m, metric_epsg=epsg)
        q[~kept], r[~kept] = cq, cr
    counts = pd.DataFrame({"q": q.astype(np.int64), "r": r.astype(np.int64)}).value_counts().rename("count")
    return counts.reset_index().astype(np.int64)


def hex_counts(
    url: str,
    filters: ReportFilters,
    *,
    client,
    size_m: float = HEX_SIZE_M,
    partition_rows: int = DEFAULT_PARTITION_ROWS,
) -> tuple[pd.DataFrame, dict]:
    """The matched reports per hexagon counted on the cluster of ``client``: the frame
    :func:`gisgrid.analytics.store.hotspots_of_counts` takes (``q``, ``r``, ``count``, centre ``lon``,
    ``lat``, sorted by ``r`` then ``q``), and what the run did (``reports``, ``partitions``, ``workers``)."""
    import dask
    import dask.dataframe as dd
    import dask_geopandas

    if partition_rows < 1:
        raise ValueError(f"partition_rows must be at least 1, not {partition_rows!r}")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            epsg, _bounds = study_area(conn, filters)
            where, params = report_filter(conn, filters)
            where = psycopg_query(where)
            ranges = id_ranges(conn, f"r.geom IS NOT NULL AND {where}", params, partition_rows)
    finally:
        engine.dispose()
    counts = _empty_counts()
    if ranges:
        parts = [dask.delayed(read_points)(url, where, params, lo, hi) for lo, hi in ranges]
        points = dask_geopandas.from_dask_dataframe(dd.from_delayed(parts, meta=_empty_points()))
        partial = points.map_partitions(bin_points, float(size_m), int(epsg), meta=_empty_counts())
        summed = client.compute(partial.groupby(["q", "r"])["count"].sum()).result()
        counts = summed.reset_index().astype(np.int64)
    counts = counts.sort_values(["r", "q"]).reset_index(drop=True)
    counts["lon"], counts["lat"] = hs.hex_centres(counts["q"], counts["r"], size_m=size_m, metric_epsg=epsg)
    run = {
        "reports": int(counts["count"].sum()),
        "partitions": len(ranges),
        "workers": len(client.scheduler_info()["workers"]),
    }
    return counts, run


def hotspots_distributed(
    url: str,
    filters: ReportFilters,
    size_m: float = HEX_SIZE_M,
    *,
    permutations: int = 9999,
    seed: int = 0,
    client=None,
    scheduler: str | None = None,
    workers: int | None = None,
    partition_rows: int = DEFAULT_PARTITION_ROWS,
) -> tuple[gpd.GeoDataFrame, dict]:
    """Getis-Ord Gi* hotspots of the matched reports, counted on a dask.distributed cluster: what
    :func:`gisgrid.analytics.store.hotspots` gives, hexagon for hexagon.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the database, reachable from the workers.
    filters : ReportFilters
        The selection; it needs a jurisdiction, as :func:`gisgrid.analytics.store.hotspots` does.
    client : distributed.Client, optional
        A client to use (left open); else one is made from ``scheduler`` or ``workers`` and closed after.
    partition_rows : int
        Reports per partition (a worker holds one partition's points at a time).

    Returns
    -------
    (GeoDataFrame, dict)
        The hexagons with ``gi_z``, ``p``, ``p_fdr``, ``hotspot`` … (EPSG:4326), and ``reports``,
        ``partitions``, ``workers``, ``seconds``.
    """
    if not filters.jurisdiction:
        raise InputError("hotspots need a jurisdiction: choose a town or community")
    t0 = time.perf_counter()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:  # a bad filter is refused before a cluster is started
            study_area(conn, filters)
            report_filter(conn, filters)
    finally:
        engine.dispose()
    with using_client(client, scheduler=scheduler, workers=workers) as client:
        counts, run = hex_counts(url, filters, client=client, size_m=size_m, partition_rows=partition_rows)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            result = hotspots_of_counts(conn, filters, counts, size_m, permutations=permutations, seed=seed)
    finally:
        engine.dispose()
    run["seconds"] = time.perf_counter() - t0
    return result, run


__all__ = ["hex_counts", "hotspots_distributed"]
