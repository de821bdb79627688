"""Benchmark the coverage audit on a synthetic town of 10,000 cells.

Run on demand (not a test)::

    .venv/bin/python bench/audit.py                 # 100 × 100 cells of 100 m, ~5,000 segment areas
    .venv/bin/python bench/audit.py --side 150 --repeat 3

The town is a ``side × side`` grid of 100 m square cells drawn in the metric CRS
near Beijing (EPSG:4548) and stored in EPSG:4326, with planted problems:
``--gaps`` cells removed, ``--overlaps`` cells grown 10 m into their east
neighbour, ``--slivers`` cells with a 1 m strip cut off as a separate cell.
Segment areas are 20 m deep frontage strips on both sides of every fourth
grid line (each 100 m long, about 5,000 of them for 100 × 100), every owned by a
person; each cell too, except ``--vacant`` of them.  300 reports, 30 of them in
the planted gaps.  Building the town is not timed; ``audit_coverage`` is, and
the figures printed are seconds per run and the counts found (which must equal
the planted ones).  Target: under 10 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gisgrid.audit.coverage import audit_coverage  # noqa: E402
from gisgrid.crs import STORAGE_SRID, metric_crs_for, transformer  # noqa: E402

CELL_M = 100.0
TODAY = dt.date(2026, 5, 1)


def _to_storage(geoms: np.ndarray, epsg: int) -> np.ndarray:
    t = transformer(epsg, STORAGE_SRID)
    return shapely.transform(geoms, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def build_town(side: int, *, gaps: int, overlaps: int, slivers: int, vacant: int, seed: int = 7) -> dict:
    rng = np.random.default_rng(seed)
    epsg = metric_crs_for(116.35, 40.0)
    x0, y0 = (round(v) for v in transformer(STORAGE_SRID, epsg).transform(116.35, 40.0))
    col, row = np.meshgrid(np.arange(side), np.arange(side))
    col, row = col.ravel(), row.ravel()
    cells = shapely.box(x0 + col * CELL_M, y0 - (row + 1) * CELL_M, x0 + (col + 1) * CELL_M, y0 - row * CELL_M)
    jurisdiction = shapely.box(x0, y0 - side * CELL_M, x0 + side * CELL_M, y0)
    codes = np.array([f"110108001{1 + i // 999:03d}{1 + i % 999:03d}" for i in range(len(cells))], dtype=object)

    # planted problems on distinct interior cells, two apart so they never touch
    interior = np.flatnonzero(
        (col > 1) & (col < side - 2) & (row > 1) & (row < side - 2) & (col % 3 == 0) & (row % 3 == 0)
    )
    chosen = rng.choice(interior, size=gaps + overlaps + slivers, replace=False)
    gap_idx, over_idx, sliver_idx = np.split(chosen, [gaps, gaps + overlaps])
    keep = np.ones(len(cells), dtype=bool)
    keep[gap_idx] = False
    cells = cells.copy()
    for i in over_idx:  # grow 10 m into the east neighbour: 1,000 m² of overlap each
        xmin, ymin, xmax, ymax = cells[i].bounds
        cells[i] = shapely.box(xmin, ymin, xmax + 10.0, ymax)
    extra, extra_codes = [], []
    for k, i in enumerate(sliver_idx):  # a 1 m × 100 m strip (100 m², thinness 0.03) as a cell of its own
        xmin, ymin, xmax, ymax = cells[i].bounds
        cells[i] = shapely.box(xmin + 1.0, ymin, xmax, ymax)
        extra.append(shapely.box(xmin, ymin, xmin + 1.0, ymax))
        extra_codes.append(f"110108099{k + 1:03d}")
    cell_geoms = np.concatenate([cells[keep], np.array(extra, dtype=object)])
    cell_codes = np.concatenate([codes[keep], np.array(extra_codes, dtype=object)])
    cell_frame = gpd.GeoDataFrame(
        {"id": np.arange(1, len(cell_geoms) + 1), "code": cell_codes},
        geometry=_to_storage(cell_geoms, epsg),
        crs=STORAGE_SRID,
    )

    # frontage strips 20 m deep on both sides of every fourth horizontal grid line
    lines_y = np.arange(2, side, 4)
    ly, lc = np.meshgrid(lines_y, np.arange(side))
    ly, lc = ly.ravel(), lc.ravel()
    north = shapely.box(x0 + lc * CELL_M, y0 - ly * CELL_M, x0 + (lc + 1) * CELL_M, y0 - ly * CELL_M + 20.0)
    south = shapely.box(x0 + lc * CELL_M, y0 - ly * CELL_M - 20.0, x0 + (lc + 1) * CELL_M, y0 - ly * CELL_M)
    seg_geoms = np.concatenate([north, south])
    seg_frame = gpd.GeoDataFrame(
        {"id": np.arange(1, len(seg_geoms) + 1), "name": [f"路{i}段" for i in range(len(seg_geoms))]},
        geometry=_to_storage(seg_geoms, epsg),
        crs=STORAGE_SRID,
    )

    cell_ids = cell_frame["id"].to_numpy()
    owned = np.ones(len(cell_ids), dtype=bool)
    owned[rng.choice(len(cell_ids), size=vacant, replace=False)] = False
    owners = pd.concat(
        [
            pd.DataFrame(
                {
                    "target_type": "cell",
                    "target_id": cell_ids[owned],
                    "role": "网格长",
                    "person_id": 10_000 + np.arange(owned.sum()) // 10,
                    "valid_from": dt.date(2025, 1, 1),
                    "valid_to": None,
                }
            ),
            pd.DataFrame(
                {
                    "target_type": "segment",
                    "target_id": seg_frame["id"],
                    "role": "段长",
                    "person_id": 50_000 + np.arange(len(seg_frame)) // 5,
                    "valid_from": dt.date(2025, 1, 1),
                    "valid_to": None,
                }
            ),
        ],
        ignore_index=True,
    )
    owners["owner_name"] = "P" + owners["person_id"].astype(str)
    owners.loc[owners.index[:25], "person_id"] = 99_999  # one over-limit owner (25 cells)
    owners.loc[owners.index[:25], "owner_name"] = "王大忙"
    owners.loc[owners.index[-7:], "valid_to"] = TODAY + dt.timedelta(days=12)  # 7 expiring

    pts = shapely.points(rng.uniform([x0, y0 - side * CELL_M], [x0 + side * CELL_M, y0], size=(400, 2)))
    pts = pts[~shapely.intersects(pts, shapely.union_all(cells[gap_idx]))][:270]  # cell-routed: not in a gap
    n_gap_reports = 30 if gaps else 0
    gap_pts = shapely.points(np.resize(shapely.get_coordinates(shapely.centroid(cells[gap_idx])), (n_gap_reports, 2)))
    points = np.concatenate([pts, gap_pts])
    reports = gpd.GeoDataFrame(
        {
            "id": np.arange(len(points)),
            "reported_at": pd.Timestamp(TODAY) - pd.Timedelta(days=3),
            "rule": ["grid_cell"] * len(pts) + ["unassigned"] * n_gap_reports,
        },
        geometry=_to_storage(points, epsg),
        crs=STORAGE_SRID,
    )
    return {
        "jurisdiction": _to_storage(np.array([jurisdiction], dtype=object), epsg)[0],
        "cells": cell_frame,
        "segments": seg_frame,
        "owners": owners,
        "reports": reports,
        "epsg": epsg,
        "planted": {
            "gaps": gaps,
            "overlaps": overlaps,
            "slivers": slivers,
            "vacant": vacant,
            "expiring": 7,
            "over_limit": 1,
            "reports": n_gap_reports,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=100, help="cells per side (default 100: 10,000 cells)")
    parser.add_argument("--gaps", type=int, default=5)
    parser.add_argument("--overlaps", type=int, default=5)
    parser.add_argument("--slivers", type=int, default=3)
    parser.add_argument("--vacant", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    town = build_town(args.side, gaps=args.gaps, overlaps=args.overlaps, slivers=args.slivers, vacant=args.vacant)
    print(
        f"town: {len(town['cells']):,} cells, {len(town['segments']):,} segment areas, "
        f"{len(town['owners']):,} assignments, {len(town['reports'])} reports "
        f"(built in {time.perf_counter() - t0:.1f} s, not timed)"
    )
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        result = audit_coverage(
            town["jurisdiction"],
            town["cells"],
            town["segments"],
            owners=town["owners"],
            reports=town["reports"],
            metric_epsg=town["epsg"],
            today=TODAY,
        )
        times.append(time.perf_counter() - t)
    print(f"audit_coverage: {min(times):.2f} s (best of {len(times)}; target < 10 s)")
    summary = result.summary()
    for key, value in summary.items():
        print(f"  {key:<22}{value:>14}")
    found = {
        "gaps": summary["gaps_count"],
        "overlaps": summary["overlaps_count"],
        "slivers": int((result.slivers["kind"] == "cell").sum()),
        "vacant": summary["vacant_count"],
        "expiring": summary["expiring_count"],
        "over_limit": summary["over_limit_count"],
        "reports": summary["reports_count"],
    }
    planted = town["planted"]
    ok = all(found[k] == planted[k] for k in found)
    print("planted:", planted)
    print("found:  ", found, "OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
