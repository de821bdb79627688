"""Fixtures: a real PostGIS database for the test session.

By default the managed cluster under ``var/`` is started and a database
``gisgrid_test`` is recreated in it.  ``GISGRID_TEST_DATABASE_URL`` points the
tests at another server's (throw-away) database instead.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from gisgrid.config import DATA_DIR, load_settings

pytest_plugins = ["tests.browser"]  # browser, page and live_server fixtures


def pytest_configure(config):
    # every app's test client is signed in as a test admin of its database, and sends the CSRF token
    # (tests/signin.py); app.test_client(user=None) is anonymous
    from flask import Flask

    from tests.signin import SignedInClient

    Flask.test_client_class = SignedInClient


ARTIFACTS = Path(__file__).parent / "artifacts"
DATA = DATA_DIR


def _admin_url(url: str) -> sa.engine.URL:
    return sa.engine.make_url(url).set(database="postgres")


def _recreate(url: str) -> None:
    """Drop and create the database named in ``url``, with PostGIS."""
    u = sa.engine.make_url(url)
    admin = sa.create_engine(_admin_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{u.database}"'))
    admin.dispose()
    eng = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
    eng.dispose()


@pytest.fixture(scope="session")
def settings():
    return load_settings(pg_durable=False)


@pytest.fixture(scope="session")
def server_url(settings) -> str:
    """URL of a database on the test server (its name is replaced per fixture)."""
    explicit = os.environ.get("GISGRID_TEST_DATABASE_URL")
    if explicit:
        return explicit.replace("postgresql://", "postgresql+psycopg://", 1)
    from gisgrid.db.cluster import Cluster

    cluster = Cluster(settings)
    cluster.start()
    return cluster.url("gisgrid_test")


@pytest.fixture(scope="session")
def db_url(server_url) -> str:
    """The session's database, migrated to head (shared, loaded with the sample town by ``town``)."""
    from gisgrid.db import migrate

    _recreate(server_url)
    migrate(server_url)
    return server_url


@pytest.fixture(scope="session")
def engine(db_url):
    eng = sa.create_engine(db_url)
    yield eng
    eng.dispose()


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str = "scratch", *, migrated: bool = False):
    """A fresh database on the test server (PostGIS enabled; migrated to head if asked), dropped afterwards.

    Yields its URL as text.
    """
    url = sa.engine.make_url(server_url).set(database=f"gisgrid_{prefix}_{uuid.uuid4().hex[:8]}")
    text = url.render_as_string(hide_password=False)
    _recreate(text)
    try:
        if migrated:
            from gisgrid.db import migrate

            migrate(text)
        yield text
    finally:
        admin = sa.create_engine(_admin_url(text), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture()
def scratch_url(server_url):
    """A fresh, empty database (PostGIS enabled, not migrated) dropped after the test."""
    with scratch_database(server_url) as url:
        yield url


@pytest.fixture()
def scratch_engine(scratch_url):
    """A fresh database migrated to head."""
    from gisgrid.db import migrate

    migrate(scratch_url)
    eng = sa.create_engine(scratch_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def town(engine, settings):
    """The session database loaded with the sample towns (real OSM streets, demo owners and reports)."""
    from gisgrid.demo import load_demo

    with engine.begin() as conn:
        counts = load_demo(conn, settings, reports_per_town=300)
    return counts


@pytest.fixture(scope="session")
def shatin_url(server_url, settings):
    """A database of its own with one sample town (Sha Tin: streets, segments, grid, owners, a few reports),
    for tests that write to it (imports, fuzzed edits) without touching the session's towns."""
    from gisgrid.demo import TOWNS, load_demo

    with scratch_database(server_url, "shatin", migrated=True) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            load_demo(conn, settings, towns=[t for t in TOWNS if t.key == "shatin"], reports_per_town=20, grid=True)
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def users(engine, town, settings) -> dict[str, dict]:
    """The demo accounts (one per role, see :data:`gisgrid.demo.DEMO_USERS`) by user name."""
    from gisgrid.demo import create_demo_users

    with engine.begin() as conn:
        accounts = create_demo_users(conn, settings)
    return {a["username"]: a for a in accounts}


@pytest.fixture(scope="session")
def app(db_url, town, settings):
    from gisgrid.web import create_app

    # a higher login rate than deployed: the browser tests sign in through the form several times
    return create_app(
        {"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": settings, "LOGIN_RATE_LIMIT": "60 per minute"}
    )


@pytest.fixture()
def client(app):
    """Signed in as a test admin (tests/signin.py)."""
    return app.test_client()
