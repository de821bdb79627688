"""``gisgrid serve``: the web app under waitress."""

from __future__ import annotations

import sys

import click

from gisgrid.cli._common import handle_errors
from gisgrid.config import load_settings


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on (default from settings: 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default from settings: 5000).")
@click.option("--threads", type=int, default=8, show_default=True)
@handle_errors
def serve(host: str | None, port: int | None, threads: int) -> None:
    """Serve the web app with waitress, a production WSGI server (``gisgrid run`` is Flask's development server)."""
    from waitress import serve as waitress_serve

    from gisgrid.cli.users import first_start
    from gisgrid.db import ensure_database, get_engine
    from gisgrid.web import create_app

    settings = load_settings()
    url = ensure_database(settings)
    with get_engine(url=url).begin() as conn:
        first_start(conn, settings, interactive=sys.stdin.isatty())
    host = host or settings.host
    port = port or settings.port
    click.echo(f"gisgrid serving on http://{host}:{port}/")
    waitress_serve(create_app(), host=host, port=port, threads=threads, ident="gisgrid")
