"""A database of its own for the interfaces to other systems (Open311, OGC API – Features): two sample towns
(龙岗区 龙城街道 and 海淀区 学院路街道), their owners, the demo accounts, and two API clients, one per town.

Each client is an account with the ``api_client`` role (keys) and a ``clerk`` grant in its town (what it
may read); the app is served on 127.0.0.1 by a real server thread, as other systems would reach it.
"""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from tests.browser import serve_app
from tests.conftest import scratch_database

LONGGANG = "440307001"
HAIDIAN = "110108001"


@pytest.fixture(scope="session")
def interop_db(server_url, settings):
    """(url, engine) of the database, with one API client per town (their keys in ``interop_keys``)."""
    from gisgrid.demo import TOWNS, create_demo_users, load_demo

    towns = [t for t in TOWNS if t.key in ("shenzhen_longgang", "beijing_haidian")]
    with scratch_database(server_url, "interop", migrated=True) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            load_demo(conn, settings, towns=towns, reports_per_town=40)
            create_demo_users(conn, settings)
        yield url, engine
        engine.dispose()


@pytest.fixture(scope="session")
def interop_engine(interop_db):
    return interop_db[1]


@pytest.fixture(scope="session")
def interop_keys(interop_engine) -> dict[str, str]:
    """API keys by town: ``longgang`` and ``haidian`` (api_client + clerk there), ``manager`` (api_client + a
    manager of everything, for the layer clients)."""
    from gisgrid.accounts.store import create_api_key, create_user
    from gisgrid.accounts.users import Actor

    actor = Actor.system("tests")
    keys = {}
    with interop_engine.begin() as conn:
        for name, grants in (
            ("longgang", [("api_client", None), ("clerk", LONGGANG)]),
            ("haidian", [("api_client", None), ("clerk", HAIDIAN)]),
            ("manager", [("api_client", None), ("manager", None)]),
            ("bare", [("api_client", None)]),
        ):
            user = create_user(
                conn, actor, username=f"client-{name}", password="client-password-1", min_password_length=10,
                name=f"接口 {name}", grants=grants,
            )  # fmt: skip
            keys[name], _id = create_api_key(conn, actor, user.id, f"tests {name}")
    return keys


@pytest.fixture(scope="session")
def interop_settings(settings, tmp_path_factory):
    return dataclasses.replace(settings, var_dir=str(tmp_path_factory.mktemp("interop-var")))


@pytest.fixture(scope="session")
def interop_app(interop_db, interop_settings):
    from gisgrid.web import create_app

    return create_app({"TESTING": True, "DATABASE_URL": interop_db[0], "GISGRID_SETTINGS": interop_settings})


@pytest.fixture(scope="session")
def base_url(interop_app, interop_keys):
    """The app served on 127.0.0.1 (a werkzeug server thread): real HTTP, no session, keys only."""
    with serve_app(interop_app) as url:
        yield url
