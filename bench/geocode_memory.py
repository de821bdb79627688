"""Peak memory and time of `gisgrid geocode` on a 100,000-row file with hostile rows in it.

The file mixes the Sha Tin sample's written addresses (Chinese and English, with
house numbers that do and do not exist), typos, blank cells, long descriptions
pasted into the address column (1,000 and 120,000 characters), formula text and
bare carriage returns.  The command runs in a child process against the
configured database (`gisgrid demo load` first); its peak resident set size is
read from ``getrusage`` and must stay under 1 GB.

Run: ``.venv/bin/python bench/geocode_memory.py [--rows 100000]``
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parent.parent / "gisgrid" / "data"
LIMIT_KIB = 1024 * 1024


def hostile_rows(n: int, seed: int = 7) -> list[tuple[str, str, str]]:
    """``n`` rows (id, address, description): most of them real, a share of them broken or hostile."""
    rng = random.Random(seed)
    sample = pd.read_csv(DATA / "shatin_addresses_dev.csv", dtype=str, keep_default_na=False)
    written = [f"{r.street_zh}{r.housenumber}号" for r in sample.itertuples() if r.street_zh and r.housenumber]
    written += [f"{r.housenumber} {r.street_en}" for r in sample.itertuples() if r.street_en and r.housenumber]
    hostile = [
        "沙田" + "大埔公路" * 30_000,  # a pasted document
        "备注：" + "路" * 1_000,
        '=HYPERLINK("http://x","y")',
        "\r=1+1",
        "",
        "   ",
        "Tai Po Road / " * 80,
    ]
    rows = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.002:
            address = rng.choice(hostile)
        elif roll < 0.3:  # a number that may not exist on the street: interpolation work, distinct text
            address = rng.choice(written).rstrip("号") + str(rng.randint(1, 400)) + "号"
        elif roll < 0.35:  # typos: characters shuffled
            text = rng.choice(written)
            address = "".join(rng.sample(text, k=len(text)))
        else:
            address = rng.choice(written)
        rows.append((f"R{i + 1}", address, "巡查" * rng.randint(0, 20)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "hotline.csv", Path(tmp) / "out.csv"
        with open(src, "w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["编号", "地址", "描述"])
            out.writerows(hostile_rows(args.rows))
        script = textwrap.dedent(f"""
            import resource, sys
            from gisgrid.cli import main
            try:
                main(["geocode", {str(src)!r}, "--column", "地址", "-o", {str(dst)!r}, "--quiet"])
            except SystemExit as exc:
                code = exc.code
            print("peak", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
            sys.exit(code)
        """)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=dict(os.environ))
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(done.stderr[-3000:])
        peak_kib = int(done.stderr.rsplit("peak", 1)[1].split()[0])
        result = pd.read_csv(dst, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        print(done.stdout.strip())
        print(
            f"{args.rows:,} rows ({src.stat().st_size / 1e6:.1f} MB) in {seconds:.0f} s: "
            f"{len(result):,} rows out, peak RSS {peak_kib / 1024:.0f} MB (limit {LIMIT_KIB // 1024} MB)"
        )
        if len(result) != args.rows or peak_kib >= LIMIT_KIB:
            sys.exit("FAILED: rows lost or memory over the limit")


if __name__ == "__main__":
    main()
