"""What every command group shares: error handling and the database engine."""

from __future__ import annotations

import functools
import logging
import sys

import click

from gisgrid.config import Settings, load_settings
from gisgrid.errors import GisgridError

LOGGER = logging.getLogger(__name__)


def handle_errors(fn):
    """Print a :class:`GisgridError` as one line (``error: …`` on stderr) and exit with status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GisgridError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


def engine_and_settings(settings: Settings | None = None):
    """The engine of the configured database, made usable first (cluster started, migrated), and the settings."""
    from gisgrid.db import ensure_database, get_engine

    settings = settings or load_settings()
    return get_engine(url=ensure_database(settings)), settings


def deployment_engine_settings():
    """The routing deployment loaded from the database, with the engine and settings it came from."""
    from gisgrid.routing.store import load_deployment

    engine, settings = engine_and_settings()
    with engine.connect() as conn:
        return load_deployment(conn, settings), engine, settings
