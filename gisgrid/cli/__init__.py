"""The ``gisgrid`` command: one module per command group, assembled here.

Each group is a thin click wrapper over a package's public functions; error
handling and the database engine are in :mod:`gisgrid.cli._common`.  The Flask
CLI commands (``run``, ``routes``, ``shell``) live in the same group.
"""

from __future__ import annotations

import logging

import click
from flask.cli import FlaskGroup

from gisgrid.cli._common import handle_errors
from gisgrid.cli.analytics import hotspots_cmd, rankings_cmd
from gisgrid.cli.basemap import basemap
from gisgrid.cli.cases import cases
from gisgrid.cli.db import db
from gisgrid.cli.demo import demo
from gisgrid.cli.frontage import frontage, signboards_cmd
from gisgrid.cli.geocode import geocode_cmd
from gisgrid.cli.grid import audit_cmd, grid
from gisgrid.cli.jobs import worker_cmd
from gisgrid.cli.layers import export_cmd, import_cmd
from gisgrid.cli.network import segments
from gisgrid.cli.routing import assign
from gisgrid.cli.serve import serve
from gisgrid.cli.service import service
from gisgrid.cli.users import users
from gisgrid.config import load_settings

LOGGER = logging.getLogger(__name__)

__all__ = ["main", "handle_errors"]


def _app_factory():
    from gisgrid.web import create_app

    # the commands' app context signs no sessions that outlive the command: a default secret key is
    # replaced by a random one here; `gisgrid serve` refuses it
    return create_app(ephemeral_key=True)


@click.group(cls=FlaskGroup, create_app=_app_factory, add_default_commands=True, add_version_option=False)
@click.option("-v", "--verbose", is_flag=True, help="Log progress at INFO level.")
def main(verbose: bool) -> None:
    """gisgrid: street-chief grid management (街长制 / 网格化管理)."""
    from gisgrid.logs import configure_logging

    configure_logging(logging.INFO if verbose else logging.WARNING, json_lines=load_settings().log_json)


for _command in (
    basemap,
    db,
    demo,
    segments,
    export_cmd,
    import_cmd,
    assign,
    serve,
    worker_cmd,
    geocode_cmd,
    grid,
    audit_cmd,
    users,
    cases,
    frontage,
    signboards_cmd,
    service,
    hotspots_cmd,
    rankings_cmd,
):
    main.add_command(_command)
