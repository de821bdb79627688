"""``gisgrid serve``: the web app under waitress, with background job worker threads."""

from __future__ import annotations

import sys

import click

from gisgrid.cli._common import first_start, handle_errors
from gisgrid.config import load_settings


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on (default from settings: 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default from settings: 5000).")
@click.option("--threads", type=int, default=None, help="Request threads (default from settings: 8).")
@click.option(
    "--workers",
    "job_workers",
    type=int,
    default=None,
    help="Background job threads (PNG export, large geocoding uploads); default from settings: 1. "
    "0 runs none: start `gisgrid worker` instead.",
)
@handle_errors
def serve(host: str | None, port: int | None, threads: int | None, job_workers: int | None) -> None:
    """Serve the web app with waitress, a production WSGI server (``gisgrid run`` is Flask's development server).

    Background jobs run in worker threads of the same process, sharing the
    app's routing snapshot and gazetteers.  A backup is written every night at
    GISGRID_BACKUP_AT (empty: none; see `gisgrid service install` for a timer instead).
    """
    from waitress import serve as waitress_serve

    from gisgrid.db import ensure_database, get_engine
    from gisgrid.web import create_app

    settings = load_settings()
    url = ensure_database(settings)
    with get_engine(url=url).begin() as conn:
        first_start(conn, settings, interactive=sys.stdin.isatty())
    host = host or settings.host
    port = port or settings.port
    app = create_app()
    threads = threads or int(settings.serve_threads)
    workers = start_workers(app, settings, settings.job_workers if job_workers is None else job_workers)
    nightly = None
    if settings.backup_at:
        from gisgrid.db.backup import NightlyBackup

        nightly = NightlyBackup(url, settings).start()
    click.echo(
        f"gisgrid serving on http://{host}:{port}/ ({threads} threads, {len(workers)} job worker thread(s)"
        + (f", nightly backup at {settings.backup_at})" if nightly else ")")
    )
    try:
        proxy = {}
        if settings.trusted_proxy:
            proxy = {
                "trusted_proxy": settings.trusted_proxy,
                "trusted_proxy_headers": "x-forwarded-for x-forwarded-proto",
                "clear_untrusted_proxy_headers": True,
            }
        waitress_serve(app, host=host, port=port, threads=threads, ident="gisgrid", **proxy)
    finally:
        for worker in workers:
            worker.stop(timeout=5)
        if nightly:
            nightly.stop()


def start_workers(app, settings, n: int) -> list:
    """Start ``n`` job worker threads sharing the app's engine and snapshots."""
    from gisgrid.jobs import Worker

    engine = app.extensions["gisgrid.engine"]
    snapshots = app.extensions["gisgrid.snapshots"]
    return [
        Worker(engine, settings, snapshots=snapshots, name=f"gisgrid-worker-{i + 1}").start() for i in range(max(0, n))
    ]
