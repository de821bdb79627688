"""`gisgrid service install`: systemd units that systemd itself accepts."""

from __future__ import annotations

import subprocess

from click.testing import CliRunner

from gisgrid.cli import main

UNITS = [
    "gisgrid-backup.service",
    "gisgrid-backup.timer",
    "gisgrid-db.service",
    "gisgrid-web.service",
    "gisgrid-worker.service",
]


def test_units_for_the_managed_cluster_pass_systemd_analyze(tmp_path, monkeypatch):
    monkeypatch.setenv("GISGRID_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("GISGRID_PG_PORT", "54999")
    monkeypatch.setenv("GISGRID_DATABASE_URL", "")
    out = CliRunner().invoke(
        main,
        [
            "service",
            "install",
            "--dir",
            str(tmp_path / "units"),
            "--user",
            "root",
            "--worker-threads",
            "3",
            "--backup-at",
            "03:15",
        ],
        catch_exceptions=False,
    )
    assert out.exit_code == 0, out.output
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == UNITS
    assert (
        "systemctl enable --now gisgrid-db.service gisgrid-web.service gisgrid-worker.service gisgrid-backup.timer"
        in out.output
    )
    web = (tmp_path / "units" / "gisgrid-web.service").read_text()
    assert f'Environment="GISGRID_VAR_DIR={tmp_path / "var"}"' in web and 'Environment="GISGRID_PG_PORT=54999"' in web
    assert "Requires=gisgrid-db.service" in web
    # the timer makes the backups, so the server does not make a second one
    assert 'Environment="GISGRID_BACKUP_AT="' in web
    assert "serve --workers 0" in web
    assert "worker --threads 3" in (tmp_path / "units" / "gisgrid-worker.service").read_text()
    assert "OnCalendar=*-*-* 03:15:00" in (tmp_path / "units" / "gisgrid-backup.timer").read_text()
    assert "db backup --prune" in (tmp_path / "units" / "gisgrid-backup.service").read_text()
    assert "PIDFile=" in (tmp_path / "units" / "gisgrid-db.service").read_text()
    files = [str(tmp_path / "units" / n) for n in UNITS]
    check = subprocess.run(["systemd-analyze", "verify", "--man=no", *files], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_units_for_an_external_database_have_no_cluster_and_no_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("GISGRID_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("GISGRID_DATABASE_URL", "postgresql://gisgrid:pa55word@db.example:5432/gisgrid?sslmode=require")
    out = CliRunner().invoke(main, ["service", "install", "--print", "--user", "gisgrid"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "# gisgrid-web.service" in out.output and "gisgrid-db.service" not in out.output
    assert "pa55word" not in out.output  # secrets stay in /etc/gisgrid/gisgrid.env
    assert "EnvironmentFile=-/etc/gisgrid/gisgrid.env" in out.output
    assert "User=gisgrid" in out.output


def test_a_bad_backup_time_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("GISGRID_VAR_DIR", str(tmp_path / "var"))
    out = CliRunner().invoke(main, ["service", "install", "--print", "--backup-at", "2am"])
    assert out.exit_code == 2 and "HH:MM" in out.output


def _wait_for(url: str, proc, timeout: float = 90.0):
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gisgrid serve exited: {proc.stdout.read()}")
        try:
            return urllib.request.urlopen(url, timeout=5)
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout} s")


def test_serve_behind_a_trusted_proxy(db_url, town, tmp_path):
    """`gisgrid serve` with its settings: threads, the proxy it trusts (https → Secure cookies), readiness."""
    import os
    import secrets
    import sys
    import urllib.request
    from pathlib import Path

    from tests.ops.test_backup import free_port

    port = free_port()
    env = dict(os.environ)
    env.update(
        GISGRID_DATABASE_URL=db_url,
        GISGRID_VAR_DIR=str(tmp_path / "var"),
        GISGRID_SECRET_KEY=secrets.token_hex(16),
        GISGRID_TRUSTED_PROXY="127.0.0.1",
        GISGRID_SERVE_THREADS="3",
        GISGRID_BACKUP_AT="",
        GISGRID_JOB_WORKERS="0",
    )
    exe = str(Path(sys.executable).parent / "gisgrid")
    proc = subprocess.Popen(
        [exe, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert _wait_for(base + "/readyz", proc).status == 200
        via_proxy = urllib.request.Request(
            base + "/auth/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.1.2.3"}
        )
        cookies = urllib.request.urlopen(via_proxy, timeout=10).headers.get_all("Set-Cookie")
        assert cookies and all("Secure" in c for c in cookies), cookies
        plain = urllib.request.urlopen(base + "/auth/login", timeout=10).headers.get_all("Set-Cookie")
        assert plain and not any("Secure" in c for c in plain), plain
        # the forwarded client is not this machine: no metrics for it
        forwarded = urllib.request.Request(base + "/metrics", headers={"X-Forwarded-For": "10.1.2.3"})
        try:
            urllib.request.urlopen(forwarded, timeout=10)
            raise AssertionError("/metrics answered a forwarded request")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
        assert b"gisgrid_request_seconds" in urllib.request.urlopen(base + "/metrics", timeout=10).read()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "3 threads" in out, out
