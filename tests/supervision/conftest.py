"""A database of its own for inspection rounds: one sample town with its grid, owners and one account per role."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from tests.conftest import scratch_database


@pytest.fixture(scope="session")
def insp_db(server_url, settings):
    """(url, engine) of a database with 龙岗区 龙城街道, its grid, demo owners, accounts and checklist."""
    from gisgrid.demo import TOWNS, create_demo_users, load_demo
    from gisgrid.supervision.inspections import ensure_checklist

    town = next(t for t in TOWNS if t.key == "shenzhen_longgang")
    with scratch_database(server_url, "inspections", migrated=True) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            load_demo(conn, settings, towns=(town,), reports_per_town=30, grid=True)
            create_demo_users(conn, settings)
            ensure_checklist(conn)
        yield url, engine
        engine.dispose()


@pytest.fixture(scope="session")
def insp_engine(insp_db):
    return insp_db[1]


@pytest.fixture(scope="session")
def insp_settings(settings, tmp_path_factory):
    return dataclasses.replace(settings, var_dir=str(tmp_path_factory.mktemp("insp-var")))


@pytest.fixture(scope="session")
def insp_deployment(insp_engine, insp_settings):
    from gisgrid.routing.store import load_deployment

    with insp_engine.connect() as conn:
        return load_deployment(conn, insp_settings)


@pytest.fixture(scope="session")
def insp_app(insp_db, insp_settings):
    from gisgrid.web import create_app

    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": insp_db[0],
            "GISGRID_SETTINGS": insp_settings,
            "LOGIN_RATE_LIMIT": "100 per minute",
        }
    )


@pytest.fixture
def conn(insp_engine):
    """A connection whose transaction is rolled back after the test."""
    with insp_engine.connect() as c:
        tx = c.begin()
        yield c
        tx.rollback()
