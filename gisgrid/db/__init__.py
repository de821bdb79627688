"""Database wiring: the URL in use, engines, and migrations."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa

from gisgrid.config import MIGRATIONS_DIR, Settings, load_settings

LOGGER = logging.getLogger(__name__)


def database_url(settings: Settings | None = None) -> str:
    """The SQLAlchemy URL: ``GISGRID_DATABASE_URL`` or the managed cluster's."""
    settings = settings or load_settings()
    if settings.database_url:
        url = settings.database_url
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url
    from gisgrid.db.cluster import Cluster

    return Cluster(settings).url()


#: Session options of every gisgrid connection.  JIT off: PostgreSQL compiles a plan whose *estimated*
#: cost passes ``jit_above_cost``, and the visibility predicate's subplans make every scoped query look
#: expensive; compiling then takes ~300 ms for a query that runs in 5 ms (bench/cases.py: the dispatcher's
#: queue over 1M cases went from p50 1.2 s to tens of ms).
SESSION_OPTIONS = "-c jit=off"


@lru_cache(maxsize=8)
def _engine_for(url: str, pool_size: int = 5, max_overflow: int = 10) -> sa.Engine:
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        future=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={"options": SESSION_OPTIONS},
    )


def get_engine(settings: Settings | None = None, url: str | None = None) -> sa.Engine:
    """The process's engine of ``url`` (default the configured database), pooled as the settings say
    (``db_pool_size`` connections kept, ``db_max_overflow`` more under load)."""
    settings = settings or load_settings()
    return _engine_for(url or database_url(settings), int(settings.db_pool_size), int(settings.db_max_overflow))


def ping(settings: Settings | None = None) -> None:
    """Run ``SELECT 1`` on the configured database; raises when it does not answer."""
    with get_engine(settings).connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def health(connect) -> dict:
    """Whether the database answers: ``status``, ``database`` and PostGIS and schema versions, or why not.

    Parameters
    ----------
    connect : callable
        Returns the connection to ask (called here, so a refused connection is reported too).

    Returns
    -------
    dict
        ``{"status": "ok", "database": "ok", "postgis": "3.5.2", "schema_revision": "0007"}``, or
        ``{"status": "error", "database": "unreachable", "detail": <exception class>}``.
    """
    try:
        conn = connect()
        postgis = conn.execute(sa.text("SELECT postgis_lib_version()")).scalar()
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except sa.exc.SQLAlchemyError as exc:
        LOGGER.warning("health check failed: %s", exc)
        return {"status": "error", "database": "unreachable", "detail": str(exc.__class__.__name__)}
    return {"status": "ok", "database": "ok", "postgis": postgis, "schema_revision": revision}


def data_version(conn: sa.Connection) -> int | None:
    """The counter that moves on whenever routing data (streets, segments, cells, owners) changes."""
    return conn.execute(sa.text("SELECT version FROM data_version WHERE id = 1")).scalar()


def database_trouble(exc: BaseException) -> str | None:
    """One line for an error of the database connection or server, or None for any other error.

    The transaction the error ended was rolled back: nothing of it is stored.
    """
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        said = f" ({first[0]})" if first else ""
        return (
            f"the database stopped answering{said}; the unfinished work was not stored: "
            "check that it runs (gisgrid db status) and run the command again"
        )
    if isinstance(exc, sa.exc.DBAPIError):
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return f"the database refused the data ({first[0] if first else type(exc).__name__}); it was not stored"
    return None


def analyze(engine: sa.Engine) -> None:
    """Planner statistics of every table (``ANALYZE``), e.g. after a bulk load: until autovacuum gets to a
    freshly filled table, PostgreSQL plans as if it were empty and the first pages are slow."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base", *, allow_data_loss: bool = False) -> None:
    """Downgrade the database at ``url`` to ``revision``.

    A migration that would drop data refuses (:class:`gisgrid.db.dataloss.DataLossRefused`, nothing
    changed) unless ``allow_data_loss``.
    """
    from alembic import command

    cfg = alembic_config(url)
    if allow_data_loss:
        cfg.cmd_opts = _XArgs(["allow_data_loss=1"])
    command.downgrade(cfg, revision)


class _XArgs:
    """What ``alembic -x`` leaves in ``Config.cmd_opts``: read by ``context.get_x_argument``."""

    def __init__(self, x: list[str]):
        self.x = x


def ensure_database(settings: Settings | None = None) -> str:
    """Make the configured database usable: start the managed cluster if needed, migrate to head."""
    settings = settings or load_settings()
    url = database_url(settings)
    if settings.managed:
        from gisgrid.db.cluster import Cluster

        cluster = Cluster(settings)
        cluster.start()
        cluster.create_database()
    else:
        check_external(url)
    migrate(url)
    return url


def check_external(url: str) -> None:
    """PostGIS and the rights gisgrid needs in a database of the office's own server (see
    :mod:`gisgrid.db.external`); raises :class:`~gisgrid.db.external.DatabaseNotReady` naming what is missing."""
    from gisgrid.db.external import check_database

    with get_engine(url=url).begin() as conn:
        check_database(conn)


__all__ = [
    "database_url",
    "get_engine",
    "ping",
    "health",
    "data_version",
    "migrate",
    "downgrade",
    "ensure_database",
    "Path",
]
