"""``gisgrid serve``: the web app under waitress, with background job worker threads."""

from __future__ import annotations

import sys

import click

from gisgrid.cli._common import first_start, handle_errors
from gisgrid.config import load_settings


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on (default from settings: 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default from settings: 5000).")
@click.option("--threads", type=int, default=None, help="Request threads per process (default from settings: 8).")
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes sharing the port (one Python process computes on one core at a time: "
    "give about one per core).",
)
@click.option(
    "--workers",
    "job_workers",
    type=int,
    default=None,
    help="Background job threads (PNG export, large geocoding uploads); default from settings: 1. "
    "0 runs none: start `gisgrid worker` instead.",
)
@handle_errors
def serve(host: str | None, port: int | None, threads: int | None, processes: int, job_workers: int | None) -> None:
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
    job_workers = settings.job_workers if job_workers is None else job_workers
    threads = threads or int(settings.serve_threads)
    if processes > 1:
        get_engine(url=url).dispose()  # no pooled connection may cross a fork
        _serve_processes(host, port, threads, processes, settings, job_workers)
        return
    app = create_app()
    workers = start_workers(app, settings, job_workers)
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


def _serve_processes(host: str, port: int, threads: int, processes: int, settings, job_workers: int) -> None:
    """Bind once, fork ``processes`` children that each build the app and serve the shared socket with
    waitress (the kernel hands each connection to one of them); job workers run in the first child only.
    The parent waits; SIGTERM or Ctrl-C stops every child; a child that dies ends the others too."""
    import os
    import signal
    import socket

    from waitress import serve as waitress_serve

    from gisgrid.web import create_app

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    children: list[int] = []
    for i in range(processes):
        pid = os.fork()
        if pid == 0:  # the child: its own app, engine and snapshots
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                app = create_app()
                workers = start_workers(app, settings, job_workers if i == 0 else 0)
                waitress_serve(app, sockets=[sock], threads=threads, ident="gisgrid")
                for worker in workers:
                    worker.stop(timeout=5)
            except BaseException:  # noqa: BLE001 - the child reports and exits; the parent stops the rest
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    sock.close()
    click.echo(
        f"gisgrid serving on http://{host}:{port}/ ({processes} processes of {threads} threads, "
        f"{job_workers} job worker thread(s))"
    )

    def stop(*_args):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(0)))
    try:
        os.wait()  # the first child to end (a crash, or a signal) ends the service
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def start_workers(app, settings, n: int) -> list:
    """Start ``n`` job worker threads sharing the app's engine and snapshots."""
    from gisgrid.jobs import Worker

    engine = app.extensions["gisgrid.engine"]
    snapshots = app.extensions["gisgrid.snapshots"]
    return [
        Worker(engine, settings, snapshots=snapshots, name=f"gisgrid-worker-{i + 1}").start() for i in range(max(0, n))
    ]
