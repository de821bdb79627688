"""A database of the office's own server (``GISGRID_DATABASE_URL``): what gisgrid needs there, said plainly.

gisgrid connects as an ordinary role (not a superuser).  Before migrating it checks, and names what is
missing with the statement the database administrator runs:

* PostGIS enabled in the database (a superuser's statement: ``CREATE EXTENSION postgis;``);
* the right to create tables in schema ``public`` (``GRANT CREATE ON SCHEMA public TO role;``), unless
  the schema is already at head.

TLS options in the URL (``?sslmode=verify-full&sslrootcert=…``) pass through to libpq unchanged.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from gisgrid.errors import ConfigError

LOGGER = logging.getLogger(__name__)


class DatabaseNotReady(ConfigError):
    """The external database lacks PostGIS or a right gisgrid needs; the message has the DBA's statement."""


def check_database(conn: sa.Connection, *, will_migrate: bool = True) -> None:
    """Check PostGIS and the role's rights in the database of ``conn``; enable PostGIS when the role may.

    Raises
    ------
    DatabaseNotReady
        Naming the database, the role, what is missing and the statement that grants it.
    """
    role, database = conn.execute(sa.text("SELECT current_user, current_database()")).one()
    has_postgis = conn.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).scalar()
    if not has_postgis:
        try:
            with conn.begin_nested():
                conn.execute(sa.text("CREATE EXTENSION postgis"))
            LOGGER.info("PostGIS enabled in database %s", database)
        except sa.exc.DBAPIError as exc:
            available = conn.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")).scalar()
            if not available:
                raise DatabaseNotReady(
                    f"PostGIS is not installed on the database server: install it there (Debian: apt-get install "
                    f"postgresql-<version>-postgis-3), then have the database administrator run, connected to "
                    f"database {database}: CREATE EXTENSION postgis;"
                ) from None
            LOGGER.debug("CREATE EXTENSION postgis refused: %s", exc)
            raise DatabaseNotReady(
                f"PostGIS is not enabled in database {database} and role {role} may not enable it: ask the "
                f"database administrator to run, connected to database {database}: CREATE EXTENSION postgis;"
            ) from None
    if not will_migrate:
        return
    at_head_already = False
    try:
        with conn.begin_nested():
            at_head_already = _at_head(conn)
    except sa.exc.DBAPIError:
        at_head_already = False
    if at_head_already:
        return
    may_create = conn.execute(sa.text("SELECT has_schema_privilege('public', 'CREATE')")).scalar()
    if not may_create:
        raise DatabaseNotReady(
            f"role {role} lacks the right to create tables in schema public of database {database} "
            f"(privilege CREATE on schema public), needed to create and upgrade gisgrid's tables: ask the "
            f"database administrator to run, connected to database {database}: GRANT CREATE ON SCHEMA public "
            f"TO {role}; (or to make {role} the owner of the database)"
        )


def _at_head(conn: sa.Connection) -> bool:
    from alembic.script import ScriptDirectory

    from gisgrid.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config(str(conn.engine.url))).get_current_head()
    exists = conn.execute(sa.text("SELECT to_regclass('public.alembic_version') IS NOT NULL")).scalar()
    return bool(exists) and conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head


__all__ = ["DatabaseNotReady", "check_database"]
