"""What every command group shares: error handling and the database engine."""

from __future__ import annotations

import functools
import getpass
import logging
import sys

import click

from gisgrid.config import Settings, load_settings
from gisgrid.errors import GisgridError

LOGGER = logging.getLogger(__name__)


def handle_errors(fn):
    """Print a :class:`GisgridError`, or the database going away, as one line (``error: …`` on stderr)
    and exit with status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GisgridError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except Exception as exc:
            from gisgrid.db import database_trouble  # noqa: PLC0415 - only when something failed

            reason = database_trouble(exc)
            if reason is None:
                raise
            LOGGER.debug("database error", exc_info=exc)
            click.echo(f"error: {reason}", err=True)
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


#: The command that creates the first administrator.
FIRST_ADMIN_HINT = "gisgrid users add admin --name '姓名' --role admin"


def cli_actor():
    """Who the audit log names for changes made from the command line: ``cli:<login name>``."""
    from gisgrid.accounts.users import Actor

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor.system(f"cli:{who}")


def first_start(conn, settings, *, interactive: bool) -> None:
    """With no user accounts yet: ask for the first admin (interactive), or say which command creates one."""
    from gisgrid.accounts.store import count_users, create_user

    if count_users(conn):
        return
    if not interactive:
        click.echo(f"no user accounts yet: nobody can log in. Create the first admin with:\n  {FIRST_ADMIN_HINT}")
        return
    click.echo("No user accounts yet. Create the first administrator:")
    username = click.prompt("User name", default="admin")
    name = click.prompt("Person's name (姓名)")
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = create_user(
        conn,
        cli_actor(),
        username=username,
        password=password,
        min_password_length=settings.password_min_length,
        name=name,
        grants=[("admin", None)],
    )
    click.echo(f"added {user.username} (admin)")
