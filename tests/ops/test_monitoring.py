"""/metrics, /healthz and /readyz: what a Prometheus server and a load balancer rely on."""

from __future__ import annotations

import dataclasses
import math

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from gisgrid.web import create_app
from tests.conftest import scratch_database


def samples(text: str) -> dict[tuple, float]:
    """{(name, (label, value), …): value} of a Prometheus text exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, *sorted(s.labels.items()))] = s.value
    return out


@pytest.fixture(scope="module")
def ops_app(db_url, town, settings, tmp_path_factory):
    folder = tmp_path_factory.mktemp("backups")
    own = dataclasses.replace(settings, metrics_token="scrape-me-8d1f", backup_dir=str(folder))
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": own})
    return app, folder


def test_metrics_count_requests_jobs_cases_and_backups(ops_app, engine):
    from gisgrid.db.backup import archive_name
    from gisgrid.jobs import enqueue

    app, folder = ops_app
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.post("/api/assign", json={"lon": 114.19, "lat": 22.38, "crs": "EPSG:4326"}).status_code in (200, 422)
    first = samples(client.get("/metrics").get_data(as_text=True))
    assert (
        first[("gisgrid_request_seconds_count", ("endpoint", "api.healthz"), ("method", "GET"), ("status", "200"))] == 1
    )
    assert math.isnan(first[("gisgrid_backup_age_seconds",)])
    assert first[("gisgrid_database_up",)] == 1
    assert first[("gisgrid_schema_at_head",)] == 1
    assert first[("gisgrid_snapshot_rebuilds_total", ("snapshot", "routing"))] >= 1
    assert first[("process_resident_memory_bytes",)] > 0

    with engine.begin() as conn:
        enqueue(conn, "cases_tick", {})
        queued = conn.execute(sa.text("SELECT count(*) FROM job WHERE status = 'queued'")).scalar()
        open_, overdue = conn.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE status NOT IN ('closed','rejected','merged')), "
                "count(*) FILTER (WHERE status NOT IN ('closed','rejected','merged','suspended') AND due_at < now()) "
                "FROM report"
            )
        ).one()
    (folder / archive_name(__import__("datetime").datetime.now())).write_bytes(b"archive")
    client.get("/healthz")
    second = samples(client.get("/metrics").get_data(as_text=True))
    assert second[("gisgrid_jobs", ("state", "queued"))] == queued >= 1
    assert second[("gisgrid_cases_open",)] == open_ > 0
    assert second[("gisgrid_cases_overdue",)] == overdue
    assert 0 <= second[("gisgrid_backup_age_seconds",)] < 60
    assert (
        second[("gisgrid_request_seconds_count", ("endpoint", "api.healthz"), ("method", "GET"), ("status", "200"))]
        == 2
    )
    # the metrics scrape itself is timed too, and unknown paths share one label (bounded series)
    client.get("/no/such/page/1")
    client.get("/no/such/page/2")
    third = samples(client.get("/metrics").get_data(as_text=True))
    assert (
        third[("gisgrid_request_seconds_count", ("endpoint", "unmatched"), ("method", "GET"), ("status", "404"))] == 2
    )
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM job WHERE kind = 'cases_tick' AND status = 'queued'"))


def test_metrics_are_for_this_machine_or_the_token_only(ops_app):
    app, _ = ops_app
    remote = app.test_client(user=None)
    far = {"REMOTE_ADDR": "10.20.30.40"}
    assert remote.get("/metrics", environ_base=far).status_code == 404
    assert remote.get("/metrics", environ_base=far, headers={"Authorization": "Bearer wrong"}).status_code == 404
    ok = remote.get("/metrics", environ_base=far, headers={"Authorization": "Bearer scrape-me-8d1f"})
    assert ok.status_code == 200 and "gisgrid_jobs" in ok.get_data(as_text=True)
    # nginx on this machine: the request comes from 127.0.0.1 but was forwarded from elsewhere
    assert remote.get("/metrics", headers={"X-Forwarded-For": "10.20.30.40"}).status_code == 404
    assert remote.get("/metrics").status_code == 200  # on this machine, no account needed


def test_metrics_token_unset_means_no_remote_access(db_url, town, settings):
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": settings})
    assert settings.metrics_token == ""
    resp = app.test_client(user=None).get(
        "/metrics", environ_base={"REMOTE_ADDR": "10.20.30.40"}, headers={"Authorization": "Bearer "}
    )
    assert resp.status_code == 404


def test_readyz_needs_the_schema_at_head(ops_app, server_url, settings):
    app, _ = ops_app
    ready = app.test_client(user=None).get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"
    with scratch_database(server_url, "behind") as url:
        from gisgrid.db import migrate

        migrate(url, "0012")
        behind = create_app({"TESTING": True, "DATABASE_URL": url, "GISGRID_SETTINGS": settings})
        client = behind.test_client(user=None)
        assert client.get("/healthz").status_code == 200  # alive ...
        resp = client.get("/readyz")  # ... but not ready
        assert resp.status_code == 503
        body = resp.get_json()
        assert body["schema_revision"] == "0012" and "gisgrid db migrate" in body["reason"]
        behind.extensions["gisgrid.engine"].dispose()


def test_readyz_and_metrics_when_the_database_is_down(settings):
    url = "postgresql+psycopg://nobody@127.0.0.1:1/nothing"
    app = create_app({"TESTING": True, "DATABASE_URL": url, "GISGRID_SETTINGS": settings})
    client = app.test_client(user=None)
    resp = client.get("/readyz")
    assert resp.status_code == 503 and resp.get_json()["reason"] == "database unreachable"
    metrics = samples(client.get("/metrics").get_data(as_text=True))
    assert metrics[("gisgrid_database_up",)] == 0


def test_json_lines_logs(capsys):
    import json
    import logging

    from gisgrid.logs import configure_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(logging.INFO, json_lines=True)
        logging.getLogger("gisgrid.test").warning("备份完成 %s", "gisgrid-20261207.tar")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("gisgrid.test").exception("failed")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["message"] == "备份完成 gisgrid-20261207.tar" and lines[0]["level"] == "WARNING"
    assert lines[0]["logger"] == "gisgrid.test" and lines[0]["time"].endswith("+00:00")
    assert "ValueError: boom" in lines[1]["exception"]
