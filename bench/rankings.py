"""Benchmark the quarterly ranking and the bulletin on a database of a million cases (issue 20's targets).

Run on demand (not a test)::

    .venv/bin/python bench/rankings.py                  # 1,000,000 cases of one quarter, 10,000 owners
    .venv/bin/python bench/rankings.py --cases 200000 --owners 2000 --keep

A throw-away database ``gisgrid_bench_rankings`` (or GISGRID_BENCH_DATABASE_URL)
is loaded with the sample towns and filled by ``bench/cases.py``'s builder;
then the cases are moved into one quarter (2026-Q3) and spread over
``--owners`` people (with a rework on one case in 13).  Measured:

``rank owners``
    :func:`gisgrid.supervision.ranking_store.compute_ranking` of every owner
    for the quarter: case facts by COPY, working hours, every indicator,
    composite, grades and order; target < 3 s.
``rank towns``
    the same for the towns.
``bulletin PDF``
    the bulletin of the published town ranking (the quarterly 一季一排名):
    12-month trends, the map, the HTML and WeasyPrint's PDF; target < 5 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.assign import _bench_url, fresh_database  # noqa: E402
from bench.cases import fill_cases  # noqa: E402

QUARTER = "2026-Q3"


def spread(engine: sa.Engine, owners: int) -> float:
    """Move every case into the quarter and give them ``owners`` people; seconds taken."""
    t0 = time.perf_counter()
    with engine.begin() as conn:
        first = (
            conn.execute(
                sa.text("""INSERT INTO person (name) SELECT '责任人' || g FROM generate_series(1, :n) g
                       RETURNING id"""),
                {"n": owners},
            )
            .scalars()
            .all()[0]
        )
        conn.execute(
            sa.text("""
            UPDATE report SET reported_at = t.at,
                   due_at = t.at + interval '8 hours',
                   closed_at = CASE WHEN status = 'closed' THEN t.at + (id % 17) * interval '1 hour' END,
                   assignee_person_id = :first + id % :n, assignee_department_id = NULL,
                   rework_count = (id % 13 = 0)::int
            FROM (SELECT id AS rid, TIMESTAMPTZ '2026-07-01 00:00+08' + (id % 7919) / 7919.0 * interval '91 days' AS at
                  FROM report) t
            WHERE t.rid = report.id AND status NOT IN ('merged')"""),
            {"first": first, "n": owners},
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE report"))
    return time.perf_counter() - t0


def timed(fn, repeat: int) -> np.ndarray:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return np.array(out)


def line(name: str, s: np.ndarray, target_s: float) -> str:
    best, median = float(s.min()), float(np.median(s))
    return (
        f"{name:<14} median {median:6.2f} s  best {best:6.2f} s  target < {target_s:.0f} s  "
        f"ratio to target {median / target_s:.2f}  {'OK' if median < target_s else 'SLOW'}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--owners", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="reuse the bench database if it holds the cases already")
    args = parser.parse_args(argv)

    from gisgrid.accounts.scope import Scope
    from gisgrid.accounts.users import Actor
    from gisgrid.config import load_settings
    from gisgrid.db import SESSION_OPTIONS
    from gisgrid.demo import load_demo
    from gisgrid.supervision import bulletin
    from gisgrid.supervision import ranking_store as store
    from gisgrid.supervision.indicators import parse_period

    settings = load_settings()
    url = _bench_url("gisgrid_bench_rankings")
    engine = sa.create_engine(url, connect_args={"options": SESSION_OPTIONS})
    have = 0
    if args.keep:
        try:
            with engine.connect() as conn:
                have = conn.execute(sa.text("SELECT count(*) FROM report")).scalar()
        except sa.exc.SQLAlchemyError:
            have = 0
    if have >= args.cases:
        from gisgrid.db import migrate

        migrate(url)  # a kept database follows the schema to head
    if have < args.cases:
        engine.dispose()
        fresh_database(url).dispose()
        engine = sa.create_engine(url, connect_args={"options": SESSION_OPTIONS})
        t = time.perf_counter()
        with engine.begin() as conn:
            load_demo(conn, settings, reports_per_town=2000)
        print(f"sample towns loaded in {time.perf_counter() - t:.1f} s")
        print(f"{args.cases:,} cases added in {fill_cases(engine, args.cases):.1f} s")
        print(f"moved into {QUARTER} over {args.owners:,} owners in {spread(engine, args.owners):.1f} s")
    period = parse_period(QUARTER, settings.timezone)
    with engine.connect() as conn:
        total = conn.execute(
            sa.text("SELECT count(*) FROM report WHERE reported_at >= :a AND reported_at < :b"),
            {"a": period.start, "b": period.end},
        ).scalar()
    print(f"{total:,} cases in {QUARTER}")

    results = {}

    def rank(kind):
        with engine.connect() as conn:
            results[kind] = store.compute_ranking(conn, settings, period, kind)

    owners = timed(lambda: rank("owner"), args.repeat)
    print(f"{len(results['owner'].rows):,} owners ranked")
    towns = timed(lambda: rank("town"), args.repeat)

    from gisgrid.web import create_app
    from gisgrid.web import rankings as pages

    with engine.begin() as conn:
        sid = store.publish(conn, Actor.system("bench"), results["town"], title=f"{QUARTER} 街长制工作排名通报")
    app = create_app({"TESTING": True, "DATABASE_URL": url, "GISGRID_SETTINGS": settings})
    sizes = []

    def pdf():
        with app.test_request_context("/?lang=zh_CN"), engine.connect() as conn:
            ctx = pages.bulletin_context(conn, sid, Scope.everything())
            sizes.append(len(bulletin.pdf_bytes(pages.bulletin_html(ctx))))

    printed = timed(pdf, args.repeat)
    print(line("rank owners", owners, 3.0))
    print(line("rank towns", towns, 3.0))
    print(line("bulletin PDF", printed, 5.0) + f"  ({sizes[-1] / 1024:.0f} KiB)")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
