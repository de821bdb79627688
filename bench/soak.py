"""Soak test: mixed traffic for a long time on 127.0.0.1; the server's memory must settle and nothing fail.

Run on demand (not a test)::

    .venv/bin/python bench/soak.py                       # 30 minutes, 30 simulated people
    .venv/bin/python bench/soak.py --minutes 5 --users 20 --cases 20000

A throw-away database ``gisgrid_bench_soak`` (or GISGRID_BENCH_DATABASE_URL) gets the sample towns, their
demo accounts and ``--cases`` cases (as ``bench/cases.py``).  ``gisgrid serve`` serves it on 127.0.0.1 and
``bench/locustfile.py`` (the cases benchmark's people: chiefs listing and handling, clerks taking cases in
with photos, dispatchers dispatching) runs headless against it, bounded in time (``--minutes``) and in
requests (``--max-requests``: locust is stopped when the server has answered that many).

Every ``--sample-s`` seconds the server's own ``/metrics`` is read: resident memory
(``process_resident_memory_bytes``), requests answered and 5xx answers.  Pass when

* memory at the end is within 10 % of memory after the warm-up (``--warmup`` minutes, default a fifth);
* locust counted no failure and the server answered no 5xx.

Prints the figures: requests, rate, latency percentiles per request kind, the memory timeline.
"""

from __future__ import annotations

import argparse
import csv
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cases import case_database  # noqa: E402

MEMORY_TOLERANCE = 0.10


def _metrics(port: int) -> dict[str, float]:
    """Resident memory, requests answered and 5xx answers, from the server's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    out = {"rss": 0.0, "requests": 0.0, "errors_5xx": 0.0}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "process_resident_memory_bytes":
                out["rss"] = s.value
            elif s.name == "gisgrid_request_seconds_count" and s.labels.get("endpoint") != "ops.metrics":
                out["requests"] += s.value
                if s.labels.get("status", "").startswith("5"):
                    out["errors_5xx"] += s.value
    return out


def prepare(cases: int, keep: bool) -> tuple[str, tuple[float, float]]:
    """The bench database with the towns, demo accounts and cases (``bench.cases.case_database``); its URL and
    the point the clerks report around."""
    from gisgrid.accounts.store import find_user
    from gisgrid.config import load_settings

    engine = case_database(load_settings(), cases, keep=keep, name="gisgrid_bench_soak", reports_per_town=500)
    with engine.connect() as conn:
        chief = find_user(conn, "duanzhang")
        point = conn.execute(
            sa.text("""SELECT ST_X(ST_LineInterpolatePoint(g.geom, 0.5)), ST_Y(ST_LineInterpolatePoint(g.geom, 0.5))
                       FROM segment g JOIN owner_assignment a ON a.target_type = 'segment' AND a.target_id = g.id
                       WHERE a.person_id = :p LIMIT 1"""),
            {"p": chief.person_id},
        ).one()
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    return url, (float(point[0]), float(point[1]))


def soak(url: str, point, args) -> int:
    port = args.port
    with tempfile.TemporaryDirectory(prefix="gisgrid-soak-") as tmp:
        env = {
            **os.environ,
            "GISGRID_DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://", 1),
            "GISGRID_SECRET_KEY": secrets.token_hex(32),
            "GISGRID_VAR_DIR": str(Path(tmp) / "var"),  # photos of the clerks' cases go here, then away
            "GISGRID_JOB_WORKERS": "1",
            "GISGRID_BACKUP_AT": "",
            "GISGRID_LOGIN_RATE_LIMIT": "100000 per minute",
            "GISGRID_BENCH_CENTRE": f"{point[0]},{point[1]}",
        }
        server = subprocess.Popen(
            [str(ROOT / ".venv/bin/gisgrid"), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--threads", str(args.threads)],
            env=env, stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "server.log", "w"),  # noqa: SIM115
        )  # fmt: skip
        locust = None
        timeline: list[tuple[float, dict]] = []
        stopped_by = "time"
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            else:
                raise SystemExit("the server did not become ready: " + (Path(tmp) / "server.log").read_text()[-2000:])
            prefix = str(Path(tmp) / "run")
            locust = subprocess.Popen(
                [str(ROOT / ".venv/bin/locust"), "-f", str(ROOT / "bench/locustfile.py"), "--headless",
                 "-u", str(args.users), "-r", str(max(1, args.users // 5)), "-t", f"{int(args.minutes * 60)}s",
                 "--host", f"http://127.0.0.1:{port}", "--csv", prefix, "--only-summary", "--stop-timeout", "10"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            started = time.monotonic()
            while locust.poll() is None:
                time.sleep(args.sample_s)
                sample = _metrics(port)
                timeline.append((time.monotonic() - started, sample))
                if sample["requests"] >= args.max_requests:
                    stopped_by = f"{args.max_requests:,} requests"
                    locust.send_signal(signal.SIGTERM)
                    locust.wait(60)
                    break
            final = _metrics(port)
            timeline.append((time.monotonic() - started, final))
            with open(prefix + "_stats.csv", newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        finally:
            if locust is not None and locust.poll() is None:
                locust.kill()
            server.terminate()
            server.wait(30)
    return report(rows, timeline, args, stopped_by)


def report(rows: list[dict], timeline: list[tuple[float, dict]], args, stopped_by: str) -> int:
    elapsed = timeline[-1][0]
    warm_s = args.warmup * 60 if args.warmup is not None else elapsed / 5
    after_warmup = next((s for t, s in timeline if t >= warm_s), timeline[0][1])
    end = timeline[-1][1]
    print(f"soak: {args.users} simulated people for {elapsed / 60:.1f} min on 127.0.0.1 (stopped by {stopped_by})")
    for r in rows:
        print(
            f"  {r['Name']:<34} n={int(r['Request Count']):>7}  failures {int(r['Failure Count']):>4}  "
            f"p50 {r['50%']:>5} ms  p95 {r['95%']:>5} ms  p99 {r['99%']:>5} ms"
        )
    total = next(r for r in rows if r["Name"] == "Aggregated")
    requests = int(total["Request Count"])
    failures = int(total["Failure Count"])
    print(f"requests {requests:,} ({requests / max(elapsed, 1):.1f}/s), locust failures {failures}, "
          f"server 5xx {int(end['errors_5xx'])}")  # fmt: skip
    print("server memory (RSS, MiB) over time:")
    for t, s in timeline:
        print(f"  {t / 60:6.1f} min  {s['rss'] / 2**20:8.1f}  ({int(s['requests']):,} requests answered)")
    growth = (end["rss"] - after_warmup["rss"]) / after_warmup["rss"]
    print(
        f"memory after warm-up ({warm_s / 60:.1f} min) {after_warmup['rss'] / 2**20:.1f} MiB, at the end "
        f"{end['rss'] / 2**20:.1f} MiB: {growth:+.1%} (target within ±{MEMORY_TOLERANCE:.0%})"
    )
    ok = abs(growth) <= MEMORY_TOLERANCE and failures == 0 and end["errors_5xx"] == 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run (default 30)")
    parser.add_argument("--users", type=int, default=30, help="simulated people")
    parser.add_argument("--max-requests", type=int, default=500_000, help="stop after this many requests")
    parser.add_argument("--warmup", type=float, default=None, help="minutes of warm-up (default a fifth of the run)")
    parser.add_argument("--sample-s", type=float, default=30.0, help="seconds between memory samples")
    parser.add_argument("--cases", type=int, default=100_000, help="cases in the bench database")
    parser.add_argument("--threads", type=int, default=8, help="request threads of the server")
    parser.add_argument("--port", type=int, default=5056)
    parser.add_argument("--keep", action="store_true", help="reuse the bench database if it holds the cases")
    args = parser.parse_args(argv)
    url, point = prepare(args.cases, args.keep)
    return soak(url, point, args)


if __name__ == "__main__":
    raise SystemExit(main())
