"""``gisgrid worker``: run background jobs without the web server."""

from __future__ import annotations

import click

from gisgrid.cli._common import engine_and_settings, handle_errors


@click.command("worker")
@click.option("--threads", type=int, default=1, show_default=True, help="Jobs run at once.")
@click.option("--once", is_flag=True, help="Run the jobs waiting now, then exit.")
@handle_errors
def worker_cmd(threads: int, once: bool) -> None:
    """Run background jobs (PNG export, large geocoding uploads) without the web server.

    Jobs interrupted by a crash are queued again (or failed, once started too
    often) when a worker starts and every half minute after.  Use the same
    settings (GISGRID_VAR_DIR above all) as the web server: job files live there.
    """
    import signal
    import threading

    from gisgrid.jobs import Snapshots, Worker, recover_interrupted

    engine, settings = engine_and_settings()
    snapshots = Snapshots(settings)
    if once:
        recover_interrupted(engine)
        n = Worker(engine, settings, snapshots=snapshots).run_pending()
        click.echo(f"{n} job(s) run")
        return
    workers = [
        Worker(engine, settings, snapshots=snapshots, name=f"gisgrid-worker-{i + 1}").start()
        for i in range(max(1, threads))
    ]
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"gisgrid worker: {len(workers)} thread(s) waiting for jobs (Ctrl-C to stop)")
    while not stop.wait(1.0):
        if not any(w.alive for w in workers):
            break
    for w in workers:
        w.stop()
    click.echo("stopped")
