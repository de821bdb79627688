"""Connection wiring for the web app: one engine per app, a connection per request on ``g``."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, current_app, g
from flask_babel import gettext as _

from gisgrid.db import database_url

LOGGER = logging.getLogger(__name__)


#: What a request sees when the database server is gone (answered with a 503 below).
DATABASE_DOWN = (sa.exc.OperationalError, sa.exc.InterfaceError)


def get_engine() -> sa.Engine:
    return current_app.extensions["gisgrid.engine"]


def get_conn() -> sa.Connection:
    """The request's connection (opened on first use, closed on teardown)."""
    if "gisgrid_conn" not in g:
        g.gisgrid_conn = get_engine().connect()
    return g.gisgrid_conn


def reset_conn() -> None:
    """Roll back the request's connection after an error, so that the error page can still read (a
    failed statement leaves the transaction aborted: every later query would fail, the page with it)."""
    conn = g.get("gisgrid_conn")
    if conn is not None:
        try:
            conn.rollback()
        except sa.exc.SQLAlchemyError:  # the connection itself is gone: the page needs a new one
            g.pop("gisgrid_conn", None)


def _bad_value(exc: BaseException) -> bool:
    """Whether an error is PostgreSQL refusing a value of the request (SQLSTATE class 22, data exception:
    a number out of range, text of the wrong kind), raised directly or through pandas' read_sql."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, sa.exc.DataError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def close_conn(_exc=None) -> None:
    conn = g.pop("gisgrid_conn", None)
    if conn is not None:
        conn.close()


def init_app(app: Flask) -> None:
    url = app.config.get("DATABASE_URL") or database_url(app.config["GISGRID_SETTINGS"])
    # JIT off: every page's queries carry the visibility predicate (gisgrid.accounts.scope), whose PostGIS
    # and sub-plan cost estimates cross jit_above_cost at a thousand reports; compiling then takes ~2 s for
    # a query that runs in 20 ms (gisgrid.db.sql.no_jit says the same of the manager map's scans)
    # pool sizes are settings: with more request threads (serve_threads) than pooled connections, requests wait
    settings = app.config["GISGRID_SETTINGS"]
    app.extensions["gisgrid.engine"] = sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=int(settings.db_pool_size),
        max_overflow=int(settings.db_max_overflow),
        connect_args={"options": "-c statement_timeout=30000 -c jit=off"},
    )
    app.teardown_appcontext(close_conn)

    @app.errorhandler(sa.exc.DataError)
    def _value_refused(exc):
        # a value the database cannot take (out of range, of the wrong kind): the request is wrong, not the server
        from gisgrid.web.guards import _answer

        reset_conn()
        LOGGER.info("a value of the request refused by the database: %s", str(exc.orig).splitlines()[0])
        return _answer(
            400, "bad_value", _("A value in the request cannot be used: it is out of range or of the wrong kind.")
        )

    @app.errorhandler(sa.exc.OperationalError)
    @app.errorhandler(sa.exc.InterfaceError)
    def _database_unavailable(exc):
        # the server went away or refused us: a 503 the page can explain, never a traceback
        from gisgrid.web.guards import _answer

        LOGGER.warning("database unavailable: %s", exc.__class__.__name__)
        return _answer(503, "database_unavailable", _("The database is not answering; try again shortly."))
