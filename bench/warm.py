"""Warm page times on the demo: server time of GET / and GET /map, and the bytes sent with and without gzip.

Usage: ``.venv/bin/python bench/warm.py [--repeat 7] [--reuse]``

A throw-away database ``gisgrid_bench_warm`` (or GISGRID_BENCH_DATABASE_URL) is
loaded with the demo (``--reuse`` keeps one already loaded).  Each page is
requested once cold, then ``--repeat`` times warm, by a signed-in admin; the
figures printed are the cold time, the warm median and maximum, and the
response size plain and gzip-compressed (what a browser receives).  The
target of issue 21 is a warm median under 0.3 s for both pages.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.assign import _bench_url, fresh_database  # noqa: E402

TARGET_S = 0.3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="keep the database when it is already loaded")
    args = parser.parse_args(argv)

    from gisgrid.config import load_settings  # noqa: PLC0415
    from gisgrid.db import analyze  # noqa: PLC0415
    from gisgrid.demo import load_demo  # noqa: PLC0415
    from gisgrid.web import create_app  # noqa: PLC0415
    from tests.signin import SignedInClient  # noqa: PLC0415

    url = _bench_url("gisgrid_bench_warm")
    settings = load_settings()
    engine = sa.create_engine(url)
    loaded = False
    if args.reuse:
        try:
            with engine.connect() as conn:
                loaded = bool(conn.execute(sa.text("SELECT count(*) FROM segment")).scalar())
        except sa.exc.SQLAlchemyError:
            loaded = False
    if not loaded:
        t = time.perf_counter()
        engine = fresh_database(url)
        with engine.begin() as conn:
            load_demo(conn, settings)
        analyze(engine)  # as `gisgrid demo load` does: statistics of the tables just filled
        print(f"demo loaded ({time.perf_counter() - t:.1f} s)")
    with engine.connect() as conn:
        town = conn.execute(
            sa.text("SELECT code FROM jurisdiction WHERE level = 'town' ORDER BY code LIMIT 1")
        ).scalar()
        n = conn.execute(sa.text("SELECT count(*) FROM report")).scalar()
    app = create_app({"TESTING": True, "DATABASE_URL": url, "GISGRID_SETTINGS": settings})
    client = SignedInClient(app, app.response_class)
    print(f"{n:,} reports; town {town}")
    print(f"{'page':<28} {'cold s':>7} {'warm median s':>14} {'warm max s':>11} {'KB':>8} {'gzip KB':>8}  target")
    for page in ("/", f"/map?jurisdiction={town}"):
        times = []
        for _ in range(args.repeat + 1):
            t = time.perf_counter()
            resp = client.get(page)
            times.append(time.perf_counter() - t)
            assert resp.status_code == 200, (page, resp.status_code)
        packed = client.get(page, headers={"Accept-Encoding": "gzip"})
        assert packed.headers.get("Content-Encoding") == "gzip"
        warm = statistics.median(times[1:])
        print(
            f"{page:<28} {times[0]:>7.2f} {warm:>14.3f} {max(times[1:]):>11.3f} {len(resp.data) / 1e3:>8.0f} "
            f"{len(packed.data) / 1e3:>8.0f}  {'ok' if warm < TARGET_S else 'over'} (< {TARGET_S} s)",
            flush=True,
        )
    engine.dispose()


if __name__ == "__main__":
    main()
