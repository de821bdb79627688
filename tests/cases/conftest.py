"""A database of its own for the case workflow: one sample town (龙岗区 龙城街道), its owners and demo accounts.

The session database (``town``) is shared with tests that count reports; cases
made here would change their counts.
"""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from tests.conftest import scratch_database


@pytest.fixture(scope="session")
def case_db(server_url, settings):
    """(url, engine) of a database with one sample town, its demo owners and one account per role."""
    from gisgrid.demo import TOWNS, create_demo_users, load_demo

    town = next(t for t in TOWNS if t.key == "shenzhen_longgang")
    with scratch_database(server_url, "cases", migrated=True) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            load_demo(conn, settings, towns=(town,), reports_per_town=30)
            create_demo_users(conn, settings)
        yield url, engine
        engine.dispose()


@pytest.fixture(scope="session")
def case_engine(case_db):
    return case_db[1]


@pytest.fixture(scope="session")
def case_settings(settings, tmp_path_factory):
    """The test settings with a data folder of their own (photos are written there)."""
    return dataclasses.replace(settings, var_dir=str(tmp_path_factory.mktemp("case-var")))


@pytest.fixture(scope="session")
def deployment(case_engine, case_settings):
    from gisgrid.routing.store import load_deployment

    with case_engine.connect() as conn:
        return load_deployment(conn, case_settings)


@pytest.fixture(scope="session")
def case_app(case_db, case_settings):
    from gisgrid.web import create_app

    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": case_db[0],
            "GISGRID_SETTINGS": case_settings,
            "LOGIN_RATE_LIMIT": "100 per minute",
        }
    )
