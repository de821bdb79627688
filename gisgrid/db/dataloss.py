"""Migrations that would delete data refuse, unless told to go ahead.

A downgrade that drops a table or a column holding data calls :func:`refuse_data_loss` first, naming what
it drops.  When any of it holds data, the migration stops (the whole migration run is rolled back:
PostgreSQL's DDL is transactional) with a message naming every table and column and their rows, and how
to go on: back up first (``gisgrid db backup``), then ``gisgrid db downgrade REV --allow-data-loss``
(Alembic: ``-x allow_data_loss=1``; anywhere: ``GISGRID_ALLOW_DATA_LOSS=1``).
"""

from __future__ import annotations

import logging
import os

import sqlalchemy as sa

from gisgrid.errors import DatabaseError

LOGGER = logging.getLogger(__name__)

ALLOW_ENV = "GISGRID_ALLOW_DATA_LOSS"


class DataLossRefused(DatabaseError):
    """A migration would delete data and was not allowed to; nothing was changed."""


def data_loss_allowed() -> bool:
    from alembic import context

    x_args = context.get_x_argument(as_dictionary=True)
    flag = x_args.get("allow_data_loss") or os.environ.get(ALLOW_ENV, "")
    return str(flag).lower() in {"1", "true", "yes", "on"}


def _exists(conn: sa.Connection, table: str) -> bool:
    return conn.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"public.{table}"}).scalar()


def losses(
    conn: sa.Connection,
    *,
    tables: tuple[str, ...] = (),
    columns: tuple[tuple[str, str], ...] = (),
    rows: tuple[tuple[str, str, str], ...] = (),
) -> list[str]:
    """What would be lost, one phrase each: tables with rows, columns with values, rows matching a condition.

    Parameters
    ----------
    tables : tables that would be dropped
    columns : (table, column) pairs that would be dropped; a column counts when it holds a non-null value
    rows : (table, SQL condition, what it means) of rows that would be deleted or changed
    """
    found = []
    for table in tables:
        if _exists(conn, table):
            n = conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar()
            if n:
                found.append(f"table {table} ({n} rows)")
    for table, column in columns:
        if _exists(conn, table):
            n = conn.execute(sa.text(f'SELECT count(*) FROM "{table}" WHERE "{column}" IS NOT NULL')).scalar()
            if n:
                found.append(f"column {table}.{column} ({n} values)")
    for table, condition, meaning in rows:
        if _exists(conn, table):
            n = conn.execute(sa.text(f'SELECT count(*) FROM "{table}" WHERE {condition}')).scalar()
            if n:
                found.append(f"{n} {meaning}")
    return found


def refuse_data_loss(revision: str, **what) -> None:
    """In a migration: raise :class:`DataLossRefused` when what it drops holds data, unless allowed.

    Keyword arguments as :func:`losses`.  When allowed, the loss is logged as a warning.
    """
    from alembic import op

    found = losses(op.get_bind(), **what)
    if not found:
        return
    if data_loss_allowed():
        LOGGER.warning("migration %s deletes data, as allowed: %s", revision, "; ".join(found))
        return
    raise DataLossRefused(
        f"migration {revision} would delete data: {'; '.join(found)}. Nothing was changed. "
        "Back up first (gisgrid db backup), then run again with --allow-data-loss "
        f"(gisgrid db downgrade REV --allow-data-loss; alembic -x allow_data_loss=1; or {ALLOW_ENV}=1)"
    )


__all__ = ["ALLOW_ENV", "DataLossRefused", "losses", "refuse_data_loss"]
