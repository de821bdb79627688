"""Benchmark the interfaces to other systems (issue 23's targets) on the million-case database of
``bench/cases.py``.

Run on demand (not a test)::

    .venv/bin/python bench/interop.py                  # builds gisgrid_bench_cases with 1,000,000 cases if needed
    .venv/bin/python bench/interop.py --keep           # reuse it when it holds enough cases already
    .venv/bin/python bench/interop.py --cases 200000 --repeat 50

The app is served on 127.0.0.1 by ``gisgrid serve`` (waitress, two
processes, as deployed) and called over HTTP with ``requests``
(keep-alive), authenticated by API keys made for the run: one of an API client that manages everything, one of a town's clerk.
Measured (each figure with its ratio to the target; < 1 meets it):

``ogc segments 1000``
    ``GET /ogc/collections/segments/items?limit=1000`` — a page of 1,000
    segment features with their owner chain on the day; target < 200 ms
    (the median is compared).
``open311 GET 1000``
    ``GET /open311/v2/requests.json`` — the default window (last 90 days),
    1,000 results; target < 300 ms (median).
``open311 POST``
    ``POST /open311/v2/requests.json``, form-encoded, at points of a town:
    key check, intake, routing, deadline, history, event, audit row,
    committed; target p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import requests
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cases import case_database, line, served, timed  # noqa: E402


def _keys(engine) -> dict[str, str]:
    from gisgrid.accounts.store import create_api_key, create_user, find_user
    from gisgrid.accounts.users import Actor
    from gisgrid.errors import NotFound

    actor = Actor.system("bench")
    out = {}
    with engine.begin() as conn:
        town = conn.execute(
            sa.text("SELECT code FROM jurisdiction WHERE level = 'town' ORDER BY code LIMIT 1")
        ).scalar()
        for name, grants in (("all", [("api_client", None), ("manager", None)]), ("town", [("api_client", None),
                                                                                             ("clerk", town)])):  # fmt: skip
            try:
                user = find_user(conn, f"bench-{name}")
            except NotFound:
                user = create_user(conn, actor, username=f"bench-{name}", password="bench-password-1",
                                   min_password_length=10, name=f"bench {name}", grants=grants)  # fmt: skip
            out[name], _ = create_api_key(conn, actor, user.id, f"bench {time.time():.0f}")
    out["town_code"] = town
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="reuse the bench database if it holds cases already")
    parser.add_argument("--port", type=int, default=5057, help="where gisgrid serve listens (127.0.0.1)")
    args = parser.parse_args(argv)

    from gisgrid.config import load_settings

    settings = load_settings()
    engine = case_database(settings, args.cases, keep=args.keep)
    url = engine.url.render_as_string(hide_password=False)
    keys = _keys(engine)
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM report")).scalar()
        segments = conn.execute(sa.text("SELECT count(*) FROM segment")).scalar()
        points = conn.execute(
            sa.text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(g.geom, 0.5) AS p FROM segment g
                       JOIN street s ON s.id = g.street_id JOIN jurisdiction j ON j.id = s.jurisdiction_id
                       WHERE j.code = :c ORDER BY g.id LIMIT 200) t"""),
            {"c": keys["town_code"]},
        ).all()
    print(f"database: {total:,} cases, {segments:,} segments (measured on a machine shared with other work)")
    # served as deployed (gisgrid serve: waitress, two processes); the bench is one client calling as fast as it
    # can, so the per-key rate limit (120 a minute deployed) is lifted
    with served(url, port=args.port, env={"GISGRID_API_RATE_LIMIT": "1000000 per minute"}):
        base = f"http://127.0.0.1:{args.port}"
        session = requests.Session()
        auth = {"Authorization": f"Bearer {keys['all']}"}
        rng = np.random.default_rng(23)

        def ogc_page():
            res = session.get(f"{base}/ogc/collections/segments/items", params={"limit": 1000}, headers=auth)
            res.raise_for_status()
            return res.json()["numberReturned"]

        def open311_list(key):
            def run():
                res = session.get(f"{base}/open311/v2/requests.json", params={"api_key": key})
                res.raise_for_status()
                return len(res.json())

            return run

        def open311_post():
            lon, lat = points[int(rng.integers(len(points)))]
            dx, dy = rng.normal(0, 0.0002, 2)
            res = session.post(
                f"{base}/open311/v2/requests.json",
                data={
                    "api_key": keys["town"],
                    "service_code": "0101",
                    "lat": f"{lat + dy:.7f}",
                    "long": f"{lon + dx:.7f}",
                    "description": "bench",
                },  # fmt: skip
            )
            if res.status_code != 201:
                raise RuntimeError(res.text)

        returned = ogc_page()
        listed = open311_list(keys["all"])()
        listed_town = open311_list(keys["town"])()
        for _ in range(20):  # each server process loads its routing snapshot on its first intake: warm them all
            open311_post()
        print(f"(a page holds {returned} segment features; GET requests answers {listed} results for the "
              f"county-wide client, {listed_town} for a town clerk's)")  # fmt: skip
        rows = [
            ("ogc segments 1000", ogc_page, args.repeat, "p50 < 200 ms", 50, 200),
            ("open311 GET 1000", open311_list(keys["all"]), args.repeat, "p50 < 300 ms", 50, 300),
            ("open311 GET town", open311_list(keys["town"]), args.repeat, "(scoped, no target)", 50, None),
            ("open311 POST", open311_post, args.repeat * 2, "p99 < 50 ms", 99, 50),
        ]
        for name, fn, repeat, target, pct, limit in rows:
            ms = timed(fn, repeat)
            ratio = f"  ratio {np.percentile(ms, pct) / limit:.2f}" if limit else ""
            print(line(name, ms, target) + ratio, flush=True)
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
