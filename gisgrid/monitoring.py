"""Monitoring: the Prometheus metrics of a gisgrid process and the readiness check.

Each web app has a registry of its own (:func:`make_registry`): request latency per endpoint (observed by
the web layer), the process's memory and CPU, and — read from the database and the app's snapshots when
``/metrics`` is scraped — the background job queue, the open and overdue cases (the one rule of
:mod:`gisgrid.db.sql`), the snapshot and gazetteer rebuilds, the age of the newest backup and whether the
schema is at head.
"""

from __future__ import annotations

import datetime as dt
import logging
import math

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from gisgrid.config import Settings
from gisgrid.db import sql

LOGGER = logging.getLogger(__name__)

#: Request latency buckets, seconds: pages answer in tens of milliseconds, map exports in seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_STATES = ("queued", "running", "done", "failed")


def schema_state(conn: sa.Connection) -> tuple[str | None, str]:
    """The database's schema revision (None: not migrated) and the head revision of this gisgrid."""
    from alembic.script import ScriptDirectory

    from gisgrid.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config(str(conn.engine.url))).get_current_head()
    try:
        with conn.begin_nested():
            current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except sa.exc.ProgrammingError:
        current = None
    return current, head


def readiness(connect) -> tuple[bool, dict]:
    """Whether the process can serve: the database answers and its schema is at this gisgrid's head.

    Parameters
    ----------
    connect : callable
        Returns the connection to ask.

    Returns
    -------
    (bool, dict)
        Ready or not, and ``{"status", "schema_revision", "head"}`` or ``{"status", "reason"}``.
    """
    try:
        current, head = schema_state(connect())
    except sa.exc.SQLAlchemyError as exc:
        LOGGER.warning("readiness: database unreachable: %s", exc.__class__.__name__)
        return False, {"status": "not ready", "reason": "database unreachable", "detail": exc.__class__.__name__}
    if current != head:
        return False, {
            "status": "not ready",
            "reason": "schema not at head: run gisgrid db migrate",
            "schema_revision": current,
            "head": head,
        }
    return True, {"status": "ready", "schema_revision": current, "head": head}


class _StateCollector:
    """Metrics read when scraped: jobs, cases, snapshots, backups, schema."""

    def __init__(self, engine: sa.Engine, settings: Settings, snapshots=None):
        self.engine = engine
        self.settings = settings
        self.snapshots = snapshots

    def describe(self):
        return []  # read on scrape only (the database may be down when the registry is built)

    def collect(self):
        from gisgrid.db.backup import last_backup_age_s

        up = GaugeMetricFamily("gisgrid_database_up", "1 when the database answered this scrape")
        try:
            with self.engine.connect() as conn:
                jobs = dict(conn.execute(sa.text("SELECT status, count(*) FROM job GROUP BY status")).all())
                cases = conn.execute(
                    sa.text(
                        f"SELECT count(*) FILTER (WHERE {sql.report_is_open('r')}), "
                        f"count(*) FILTER (WHERE {sql.report_is_overdue('r')}) FROM report r"
                    ),
                    {"now": dt.datetime.now(dt.timezone.utc)},
                ).one()
                current, head = schema_state(conn)
        except sa.exc.SQLAlchemyError as exc:
            LOGGER.warning("metrics: database unreachable: %s", exc.__class__.__name__)
            up.add_metric([], 0)
            yield up
        else:
            up.add_metric([], 1)
            yield up
            queue = GaugeMetricFamily("gisgrid_jobs", "Background jobs in the queue by state", labels=["state"])
            for state in JOB_STATES:
                queue.add_metric([state], jobs.get(state, 0))
            yield queue
            failed = CounterMetricFamily("gisgrid_jobs_failed", "Background jobs that failed (kept in the queue)")
            failed.add_metric([], jobs.get("failed", 0))
            yield failed
            open_ = GaugeMetricFamily("gisgrid_cases_open", "Open cases (not closed, rejected or merged)")
            open_.add_metric([], cases[0])
            yield open_
            overdue = GaugeMetricFamily("gisgrid_cases_overdue", "Open cases past their deadline (not suspended)")
            overdue.add_metric([], cases[1])
            yield overdue
            at_head = GaugeMetricFamily("gisgrid_schema_at_head", "1 when the database schema is at head")
            at_head.add_metric([], 1 if current == head else 0)
            yield at_head
        if self.snapshots is not None:
            rebuilds = CounterMetricFamily(
                "gisgrid_snapshot_rebuilds", "In-memory snapshots built by this process", labels=["snapshot"]
            )
            rebuilds.add_metric(["routing"], self.snapshots.deployment.builds)
            rebuilds.add_metric(["gazetteer"], self.snapshots.gazetteers.builds)
            yield rebuilds
        age = last_backup_age_s(self.settings)
        backup = GaugeMetricFamily(
            "gisgrid_backup_age_seconds", "Seconds since the newest backup archive was written (NaN: none)"
        )
        backup.add_metric([], math.nan if age is None else age)
        yield backup


def make_registry(engine: sa.Engine, settings: Settings, snapshots=None) -> tuple[CollectorRegistry, Histogram]:
    """A registry for one app, and the request-latency histogram the web layer observes.

    Returns
    -------
    (CollectorRegistry, Histogram)
        The histogram has labels ``endpoint`` (the Flask endpoint, or ``unmatched``), ``method`` and ``status``.
    """
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    latency = Histogram(
        "gisgrid_request_seconds",
        "Time to answer a request, by endpoint",
        ["endpoint", "method", "status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    registry.register(_StateCollector(engine, settings, snapshots))
    return registry, latency


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The registry in Prometheus text format, and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


__all__ = ["make_registry", "readiness", "render", "schema_state"]
