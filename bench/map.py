"""Manager map at scale: HTML size and headless-Chromium render time of /map for 10k, 100k, 1M reports.

Usage: ``.venv/bin/python bench/map.py [--sizes 10000,100000,1000000]``

A throw-away database ``gisgrid_bench_map`` (or GISGRID_BENCH_DATABASE_URL) is
recreated, the sample towns are loaded (streets, segments, owners), and
synthetic reports (clusters on a uniform background over the first town) are
added with COPY up to each size.  For each size it prints the matched count,
the server time of ``GET /map`` (the first request after the reports came,
and the median of ``--repeat`` more), the HTML size (must stay < 2 MB: reports are
aggregated in PostGIS once there are more than 2,000) and the render time in
headless Chromium: navigation start until the map's layers are drawn (the
page is served pre-rendered, so server time is not included).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.assign import _bench_url, _copy, fresh_database  # noqa: E402


def _prepare(url: str) -> tuple[sa.Engine, str]:
    from gisgrid.config import load_settings  # noqa: PLC0415
    from gisgrid.demo import load_demo  # noqa: PLC0415

    engine = fresh_database(url)
    with engine.begin() as conn:
        load_demo(conn, load_settings(), reports_per_town=0)
        conn.execute(sa.text("DELETE FROM report"))
        town = conn.execute(
            sa.text("SELECT code FROM jurisdiction WHERE level = 'town' ORDER BY code LIMIT 1")
        ).scalar()
    return engine, town


def _add_reports(engine: sa.Engine, town: str, n: int, seed: int) -> None:
    """COPY ``n`` synthetic reports: 70 % uniform over the town's box, 30 % in 8 tight clusters."""
    from gisgrid.cases.workflow import WorkingTime, deadlines  # noqa: PLC0415
    from gisgrid.config import load_settings  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    with engine.connect() as conn:
        xmin, ymin, xmax, ymax = conn.execute(
            sa.text(
                "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM jurisdiction WHERE code = :c"
            ),
            {"c": town},
        ).one()
        limits = pd.read_sql_query(sa.text("SELECT id, deadline_hours, working_time FROM category ORDER BY id"), conn)
    cats = limits["id"].tolist()
    n_cluster = int(n * 0.3)
    x = rng.uniform(xmin, xmax, n)
    y = rng.uniform(ymin, ymax, n)
    centres = np.column_stack([rng.uniform(xmin, xmax, 8), rng.uniform(ymin, ymax, 8)])
    pick = rng.integers(0, 8, n_cluster)
    x[:n_cluster] = centres[pick, 0] + rng.normal(0, 0.0008, n_cluster)
    y[:n_cluster] = centres[pick, 1] + rng.normal(0, 0.0008, n_cluster)
    reported = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 300, n), unit="D")
    closed = rng.random(n) < 0.85
    category = rng.choice(cats, n)
    # the deadline as every stored report gets it: the one rule, vectorised
    settings = load_settings()
    per = limits.set_index("id")
    due = deadlines(
        pd.Series(reported),
        per["deadline_hours"].reindex(category).to_numpy(),
        per["working_time"].reindex(category).to_numpy(),
        calendar=WorkingTime.from_settings(settings),
        tz=settings.timezone,
    )
    frame = pd.DataFrame(
        {
            "geom": [f"SRID=4326;POINT({a:.7f} {b:.7f})" for a, b in zip(x, y)],
            "category_id": category,
            "due_at": due.dt.strftime("%Y-%m-%d %H:%M:%S+00").fillna(""),
            "reported_at": reported.strftime("%Y-%m-%d %H:%M:%S+00"),
            "closed_at": np.where(closed, (reported + pd.Timedelta(hours=30)).strftime("%Y-%m-%d %H:%M:%S+00"), ""),
            "status": np.where(closed, "closed", "dispatched"),
            "description": "synthetic",
            "is_demo": "t",
        }
    )
    with engine.begin() as conn:
        _copy(conn.connection.dbapi_connection, "report", list(frame.columns), frame)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE report"))  # as autovacuum leaves a table at rest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=3, help="warm requests after the first, per size")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    import logging  # noqa: PLC0415

    from flask import Flask  # noqa: PLC0415
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    from gisgrid.config import VENDOR_DIR, load_settings  # noqa: PLC0415
    from gisgrid.web import create_app  # noqa: PLC0415
    from gisgrid.web.manager import bp  # noqa: PLC0415
    from tests.browser import CHROMIUM, CHROMIUM_ARGS, serve_app  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per asset
    url = _bench_url("gisgrid_bench_map")
    t0 = time.perf_counter()
    engine, town = _prepare(url)
    print(f"database ready ({time.perf_counter() - t0:.1f} s), town {town}")
    app = create_app({"TESTING": True, "DATABASE_URL": url, "GISGRID_SETTINGS": load_settings()})
    if "manager" not in app.blueprints:
        app.register_blueprint(bp)
    from tests.signin import SignedInClient  # noqa: PLC0415

    client = SignedInClient(app, app.response_class)  # signed in as a test admin

    have = 0
    print(f"{'reports':>9} {'matched':>9} {'first s':>8} {'server s':>9} {'HTML MB':>8} {'render s':>9}  mode"
          "   (server s: median of the warm requests; target < 1 s at 1,000,000)")  # fmt: skip
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for size in sizes:
            t = time.perf_counter()
            _add_reports(engine, town, size - have, seed=size)
            have = size
            load_s = time.perf_counter() - t
            times = []
            for _ in range(1 + args.repeat):  # the first after the new reports, then warm
                t = time.perf_counter()
                resp = client.get(f"/map?jurisdiction={town}")
                times.append(time.perf_counter() - t)
                assert resp.status_code == 200, resp.status_code
            first_s, server_s = times[0], float(np.median(times[1:] or times))
            html = resp.get_data(as_text=True)
            matched = int(html.split('id="gg-count">', 1)[1].split("<", 1)[0])
            mode = "hexagons" if "gg-density" in html else "markers"
            static = Flask("bench_static", static_folder=str(VENDOR_DIR.parent))
            static.add_url_rule("/map", "map", lambda html=html: html)
            with serve_app(static) as base:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                t = time.perf_counter()
                page.goto(base + "/map", wait_until="commit")
                page.wait_for_selector("path.gg-segment", state="attached", timeout=60000)
                page.wait_for_selector("path.gg-hotspot, path.gg-density", state="attached", timeout=60000)
                page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                render_s = time.perf_counter() - t
                page.close()
            print(
                f"{size:>9,} {matched:>9,} {first_s:>8.2f} {server_s:>9.2f} {len(resp.data) / 1e6:>8.2f} "
                f"{render_s:>9.2f}  "
                f"{mode} (COPY {load_s:.1f} s)",
                flush=True,
            )
        browser.close()
    engine.dispose()


if __name__ == "__main__":
    main()
