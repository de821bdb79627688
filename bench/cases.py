"""Benchmark the case lists and intake on a database holding many cases (issue 19's targets).

Run on demand (not a test)::

    .venv/bin/python bench/cases.py                     # 1,000,000 cases over the sample towns
    .venv/bin/python bench/cases.py --cases 200000 --repeat 100

A throw-away database ``gisgrid_bench_cases`` (or GISGRID_BENCH_DATABASE_URL)
is loaded with the four sample towns, their owners and demo accounts, then
filled with ``--cases`` cases by one ``INSERT … SELECT`` that copies the demo
reports' places (jittered a few metres), categories and routed owners, with
the state mix of a running deployment: about 90 % closed, the rest spread
over every open state, deadlines from the category's hours.  Measured:

``chief list``
    A 段长's open cases by deadline (``list_cases(view="mine")``, the page's
    first 50 with the count); target p95 < 50 ms.
``dispatcher queue``
    The town dispatcher's queue (``view="queue"``); target p95 < 100 ms.
``intake``
    ``create_case`` of one point with routing, deadline, history, event,
    audit row and the duplicate search, committed; target p99 < 50 ms.

``--locust``
    Serves the bench database with ``gisgrid serve`` on 127.0.0.1 and runs
    ``bench/locustfile.py`` headless (50 simulated users for 2 minutes by
    default: chiefs listing and handling, clerks taking cases in, dispatchers
    dispatching); target p95 < 150 ms and 0 errors.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.assign import _bench_url, fresh_database  # noqa: E402


def fill_cases(engine: sa.Engine, n: int, *, seed: int = 19) -> float:
    """Add ``n`` cases copied from the demo reports; seconds taken."""
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT setseed(:s)"), {"s": seed / 100.0})
        conn.execute(
            sa.text("""
            INSERT INTO report (geom, category_id, reported_at, due_at, closed_at, source, address, description, status,
                                jurisdiction_id, assigned_type, assigned_id, assigned_segment_id, assignee_person_id,
                                assignee_department_id, assigned_at, version, is_demo)
            SELECT ST_SetSRID(ST_MakePoint(ST_X(r.geom) + (random() - 0.5) * 0.0002,
                                           ST_Y(r.geom) + (random() - 0.5) * 0.0002), 4326),
                   r.category_id, t.at, t.at + make_interval(hours => COALESCE(c.deadline_hours, 8)::int),
                   CASE WHEN s.status = 'closed' THEN t.at + interval '3 hours' END,
                   'bench', r.address, r.description, s.status, r.jurisdiction_id, r.assigned_type, r.assigned_id,
                   r.assigned_segment_id, r.assignee_person_id, r.assignee_department_id, t.at, 1, true
            FROM generate_series(1, :n) g
            CROSS JOIN LATERAL (SELECT (SELECT max(id) FROM report WHERE source <> 'bench') AS top) m
            JOIN report r ON r.id = 1 + (CAST(g AS bigint) * 7919) % m.top
            LEFT JOIN category c ON c.id = r.category_id
            CROSS JOIN LATERAL (SELECT now() - random() * interval '730 days' AS at) t
            CROSS JOIN LATERAL (SELECT CASE WHEN random() < 0.9 THEN 'closed'
                                       ELSE (ARRAY['reported','accepted','dispatched','dispatched','dispatched',
                                                   'returned','handled','suspended'])[1 + floor(random() * 8)::int]
                                       END AS status) s
            WHERE r.geom IS NOT NULL"""),
            {"n": n},
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE report"))
    return time.perf_counter() - t0


def case_database(
    settings, cases: int, *, keep: bool, name: str = "gisgrid_bench_cases", reports_per_town: int = 2000
) -> sa.Engine:
    """The bench database ``name`` of ``cases`` cases over the sample towns (made again unless ``keep`` and it
    holds as many), with the demo accounts; an engine that connects as the app's engines do."""
    from gisgrid.db import SESSION_OPTIONS
    from gisgrid.demo import create_demo_users, load_demo

    url = _bench_url(name)
    engine = sa.create_engine(url, connect_args={"options": SESSION_OPTIONS})
    have = 0
    if keep:
        try:
            with engine.connect() as conn:
                have = conn.execute(sa.text("SELECT count(*) FROM report")).scalar()
        except sa.exc.SQLAlchemyError:
            have = 0
    if have < cases:
        engine.dispose()
        fresh_database(url).dispose()
        engine = sa.create_engine(url, connect_args={"options": SESSION_OPTIONS})
        t = time.perf_counter()
        with engine.begin() as conn:
            load_demo(conn, settings, reports_per_town=reports_per_town)
            create_demo_users(conn, settings)
        print(f"sample towns loaded in {time.perf_counter() - t:.1f} s")
        print(f"{cases:,} cases added in {fill_cases(engine, cases):.1f} s")
    return engine


def timed(fn, repeat: int) -> np.ndarray:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000.0)
    return np.array(out)


def line(name: str, ms: np.ndarray, target: str) -> str:
    return (
        f"{name:<18} n={len(ms):>4}  p50 {np.percentile(ms, 50):7.1f} ms  p95 {np.percentile(ms, 95):7.1f} ms  "
        f"p99 {np.percentile(ms, 99):7.1f} ms  max {ms.max():7.1f} ms   target {target}"
    )


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process and its children, live and ended (Linux /proc), else None."""
    import os

    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            children = [int(p) for p in f.read().split()]
        total = 0
        for p in (pid, *children):
            try:
                with open(f"/proc/{p}/stat", encoding="ascii") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:  # a child that ended meanwhile: counted in its parent's cutime
                continue
            # utime, stime (fields 14, 15 of stat), and for the parent cutime, cstime (ended children)
            total += int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if p == pid else 0)
        return total / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def _postmaster_pid(url: str) -> int | None:
    """The PostgreSQL server's pid when it is the managed cluster on this machine (its backends' CPU counts)."""
    try:
        from gisgrid.config import load_settings  # noqa: PLC0415
        from gisgrid.db.cluster import Cluster  # noqa: PLC0415

        pidfile = Cluster(load_settings()).datadir / "postmaster.pid"
        return int(pidfile.read_text().split()[0]) if "127.0.0.1" in url else None
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def served(url: str, *, port: int, processes: int = 2, threads: int = 8, env: dict | None = None):
    """``gisgrid serve`` (waitress, as deployed) on 127.0.0.1:``port`` over the database at ``url``, ready; yields
    the server process.  ``env`` adds settings (``GISGRID_…``) for the bench."""
    import os
    import secrets
    import subprocess
    import urllib.request

    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "GISGRID_DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://", 1),
        "GISGRID_SECRET_KEY": secrets.token_hex(32),
        "GISGRID_JOB_WORKERS": "0",
        **(env or {}),
    }
    server = subprocess.Popen(
        [
            str(root / ".venv/bin/gisgrid"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--threads",
            str(threads),
            *(["--processes", str(processes)] if processes > 1 else []),  # one: as gisgrid serve did before
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        yield server
    finally:
        server.terminate()
        server.wait(30)


def run_locust(
    url: str, point, *, users: int, minutes: float, port: int = 5055, processes: int = 2, threads: int = 8
) -> int:
    """``gisgrid serve`` on 127.0.0.1 over the bench database, locust headless against it; prints the figures."""
    import csv
    import os
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "GISGRID_LOGIN_RATE_LIMIT": "10000 per minute",
        "GISGRID_BENCH_CENTRE": f"{point[0]},{point[1]}",
    }
    with served(url, port=port, processes=processes, threads=threads, env=env) as server:
        cpu0 = _cpu_seconds(server.pid)  # start-up (app, routing snapshot) not counted
        postmaster = _postmaster_pid(url)
        db0 = _cpu_seconds(postmaster)
        with tempfile.TemporaryDirectory() as tmp:
            prefix = str(Path(tmp) / "run")
            subprocess.run(
                [str(root / ".venv/bin/locust"), "-f", str(root / "bench/locustfile.py"), "--headless",
                 "-u", str(users), "-r", str(max(1, users // 5)), "-t", f"{int(minutes * 60)}s",
                 "--host", f"http://127.0.0.1:{port}", "--csv", prefix, "--only-summary"],
                env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            with open(prefix + "_stats.csv", newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        cpu = _cpu_seconds(server.pid)
        cpu = cpu - cpu0 if cpu is not None and cpu0 is not None else None
        db = _cpu_seconds(postmaster)
        db = db - db0 if db is not None and db0 is not None else None
    print(f"locust: {users} users for {minutes:g} min on 127.0.0.1")
    for r in rows:
        print(
            f"  {r['Name']:<34} n={int(r['Request Count']):>6}  failures {int(r['Failure Count']):>4}  "
            f"p50 {r['50%']:>5} ms  p95 {r['95%']:>5} ms  p99 {r['99%']:>5} ms"
        )
    total = next(r for r in rows if r["Name"] == "Aggregated")
    print(f"aggregated p95 {total['95%']} ms (target < 150 ms), failures {total['Failure Count']} (target 0)")
    n = int(total["Request Count"])
    if cpu is not None and n:
        print(
            f"server CPU (all processes, Python side; PostgreSQL not included): {cpu:.1f} s for {n} requests, "
            f"{cpu / n * 1000:.1f} ms per request; load average at the end {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} cores"
        )
    if db is not None and n:
        print(f"PostgreSQL CPU: {db:.1f} s, {db / n * 1000:.1f} ms per request")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="reuse the bench database if it holds cases already")
    parser.add_argument("--locust", action="store_true", help="serve the bench database and run locust headless")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--port", type=int, default=5055, help="where --locust serves (127.0.0.1)")
    parser.add_argument("--processes", type=int, default=2, help="server processes for --locust (one per core)")
    parser.add_argument("--threads", type=int, default=8, help="request threads per server process")
    args = parser.parse_args(argv)

    from gisgrid.accounts.scope import Scope
    from gisgrid.accounts.store import find_user
    from gisgrid.cases import lists as case_lists
    from gisgrid.cases import store
    from gisgrid.cases.intake import CaseInput
    from gisgrid.config import load_settings
    from gisgrid.routing.store import load_deployment

    settings = load_settings()

    engine = case_database(settings, args.cases, keep=args.keep)
    url = engine.url.render_as_string(hide_password=False)
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM report")).scalar()
        chief, dispatcher, clerk = (find_user(conn, n) for n in ("duanzhang", "dispatcher", "clerk"))
        deployment = load_deployment(conn, settings)
        point = conn.execute(
            sa.text("""SELECT ST_X(ST_LineInterpolatePoint(g.geom, 0.5)), ST_Y(ST_LineInterpolatePoint(g.geom, 0.5))
                       FROM segment g JOIN owner_assignment a ON a.target_type = 'segment' AND a.target_id = g.id
                       WHERE a.person_id = :p LIMIT 1"""),
            {"p": chief.person_id},
        ).one()
    today = dt.date.today()
    print(f"database: {total:,} cases; chief {chief.username}, dispatcher {dispatcher.username}")

    def listing(user, view):
        def run():  # what the list page asks: its 50 rows and the count (up to 1,000: "more than 1,000")
            with engine.connect() as conn:
                case_lists.case_page(conn, Scope(user.id, today), user, settings, view=view, per_page=50)

        return run

    rng = np.random.default_rng(5)

    def intake():
        dx, dy = rng.normal(0, 0.0003, 2)
        data = CaseInput(lon=point[0] + dx, lat=point[1] + dy, crs="EPSG:4326", category="0101", description="bench")
        with engine.begin() as conn:
            store.create_case(conn, clerk.actor("bench"), deployment, settings, data)

    if args.locust:
        return run_locust(
            url,
            point,
            users=args.users,
            minutes=args.minutes,
            port=args.port,
            processes=args.processes,
            threads=args.threads,
        )
    for fn in (listing(chief, "mine"), listing(dispatcher, "queue"), intake):
        fn()  # warm
    postmaster = _postmaster_pid(url)
    for name, fn, target in (
        ("chief list", listing(chief, "mine"), "p95 < 50 ms"),
        ("dispatcher queue", listing(dispatcher, "queue"), "p95 < 100 ms"),
        ("intake", intake, "p99 < 50 ms"),
    ):
        py0, db0 = time.process_time(), _cpu_seconds(postmaster)
        ms = timed(fn, args.repeat)
        py, db = time.process_time() - py0, _cpu_seconds(postmaster)
        cpu = f"   CPU/call: Python {py / args.repeat * 1000:.1f} ms"
        if db is not None and db0 is not None:
            cpu += f", PostgreSQL {(db - db0) / args.repeat * 1000:.1f} ms"
        print(line(name, ms, target) + cpu)
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work on this machine slows the figures)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
