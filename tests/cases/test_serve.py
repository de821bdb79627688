"""``gisgrid serve --processes 2``: one port served by two processes (one Python process computes on one
core at a time), and a stop that ends them all."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
        return [int(p) for p in f.read().split()]


def test_serve_with_two_processes_shares_one_port_and_stops_whole(case_db, tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "GISGRID_DATABASE_URL": case_db[0].replace("+psycopg", ""),
        "GISGRID_SECRET_KEY": secrets.token_hex(32),
        "GISGRID_VAR_DIR": str(tmp_path),
    }
    gisgrid = Path(sys.executable).with_name("gisgrid")
    server = subprocess.Popen(
        [str(gisgrid), "serve", "--host", "127.0.0.1", "--port", str(port), "--processes", "2", "--threads", "2",
         "--workers", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as res:
                    assert res.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "the server did not answer within 2 minutes"
                time.sleep(0.5)
        children = _children(server.pid)
        assert len(children) == 2  # two processes serve the one socket
        for _ in range(10):  # and keep answering (the login page: the app, not just the health check)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/auth/login", timeout=10) as res:
                assert res.status == 200
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=60)
    assert "2 processes of 2 threads" in out
    for pid in children:  # no process is left behind
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
