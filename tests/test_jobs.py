"""Background jobs (gisgrid.jobs): a real PostgreSQL queue and real worker threads and processes."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import sqlalchemy as sa

from gisgrid import jobs
from gisgrid.errors import InputError

# Kinds used only here; each test's worker runs only the kinds it names, so jobs of other tests
# (in other databases anyway) are never touched.
SEEN: list[dict] = []


@jobs.job_kind("test_sum")
def _sum(ctx: jobs.JobContext) -> dict:
    total = 0
    for i, n in enumerate(ctx.params["numbers"]):
        total += n
        ctx.progress(100 * (i + 1) / len(ctx.params["numbers"]), f"{i + 1} added", force=True)
    SEEN.append({"id": ctx.id, "attempt": ctx.attempt})
    return {"sum": total}


@jobs.job_kind("test_bad_input")
def _bad_input(ctx: jobs.JobContext) -> dict:
    raise InputError("column 'address' not found", column="address")


@jobs.job_kind("test_bug")
def _bug(ctx: jobs.JobContext) -> dict:
    return {"x": 1 / 0}


@jobs.job_kind("test_slow", max_attempts=2)
def _slow(ctx: jobs.JobContext) -> dict:
    time.sleep(float(ctx.params.get("sleep", 0)))
    return {"slept": ctx.params.get("sleep", 0), "attempt": ctx.attempt}


@pytest.fixture()
def queue(scratch_engine, settings, tmp_path):
    """A migrated scratch database and settings with a temporary var_dir: (engine, settings)."""
    own = dataclasses.replace(settings, var_dir=str(tmp_path / "var"), job_poll_s=0.2)
    return scratch_engine, own


def _wait(engine, job_id: str, *, timeout: float = 30.0, until=lambda j: j.finished) -> jobs.JobRecord:
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            job = jobs.get_job(conn, job_id)
        if until(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def _enqueue(engine, kind: str, params: dict | None = None, **kw) -> str:
    with engine.begin() as conn:
        return jobs.enqueue(conn, kind, params, **kw)


def test_a_worker_thread_runs_a_queued_job_and_stores_its_result(queue):
    engine, settings = queue
    job_id = _enqueue(engine, "test_sum", {"numbers": [1, 2, 3.5]})
    with engine.connect() as conn:
        queued = jobs.get_job(conn, job_id)
    assert (queued.status, queued.progress, queued.attempts) == ("queued", 0, 0)
    worker = jobs.Worker(engine, settings, kinds=["test_sum"]).start()
    try:
        done = _wait(engine, job_id)
    finally:
        worker.stop()
    assert done.status == "done" and done.result == {"sum": 6.5}
    assert done.progress == 100 and done.attempts == 1 and done.error is None
    assert done.finished_at is not None and done.started_at >= done.created_at
    assert not worker.alive


def test_a_job_that_raises_ends_failed_with_a_readable_message_and_the_worker_goes_on(queue):
    engine, settings = queue
    bad = _enqueue(engine, "test_bad_input")
    bug = _enqueue(engine, "test_bug")
    good = _enqueue(engine, "test_sum", {"numbers": [2]})
    worker = jobs.Worker(engine, settings, kinds=["test_bad_input", "test_bug", "test_sum"]).start()
    try:
        results = {k: _wait(engine, j) for k, j in (("bad", bad), ("bug", bug), ("good", good))}
    finally:
        worker.stop()
    assert results["bad"].status == "failed"
    assert results["bad"].error == "column 'address': column 'address' not found"
    assert results["bad"].error_detail["type"] == "InputError" and results["bad"].error_detail["column"] == "address"
    assert results["bug"].status == "failed"
    assert results["bug"].error == "internal error (ZeroDivisionError): division by zero"
    assert "Traceback" not in results["bug"].error
    assert results["good"].status == "done" and results["good"].result == {"sum": 2}


def test_enqueue_refuses_unknown_kinds_and_parameters_that_are_not_json(queue):
    engine, _ = queue
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="unknown job kind 'nope'"):
            jobs.enqueue(conn, "nope")
        with pytest.raises(ValueError, match="JSON"):
            jobs.enqueue(conn, "test_sum", {"when": object()})
        with pytest.raises(ValueError, match="32 lowercase hex"):
            jobs.enqueue(conn, "test_sum", job_id="../../etc")
        assert jobs.get_job(conn, "../../etc") is None


def test_each_job_runs_once_however_many_workers_claim_at_the_same_time(queue):
    engine, settings = queue
    ids = {_enqueue(engine, "test_sum", {"numbers": [i]}) for i in range(12)}
    SEEN.clear()
    workers = [jobs.Worker(engine, settings, kinds=["test_sum"], name=f"w{i}").start() for i in range(4)]
    try:
        finished = [_wait(engine, j) for j in ids]
    finally:
        for w in workers:
            w.stop()
    assert all(j.status == "done" and j.attempts == 1 for j in finished)
    runs = [s["id"] for s in SEEN]
    assert sorted(runs) == sorted(ids)  # every job ran, none twice


def test_a_notify_wakes_an_idle_worker_before_its_poll(queue):
    engine, settings = queue
    settings = dataclasses.replace(settings, job_poll_s=30.0)
    worker = jobs.Worker(engine, settings, kinds=["test_sum"]).start()
    try:
        time.sleep(0.5)  # the worker is waiting now
        started = time.monotonic()
        job_id = _enqueue(engine, "test_sum", {"numbers": [1]})
        done = _wait(engine, job_id, timeout=10)
        assert done.status == "done" and time.monotonic() - started < 10
    finally:
        worker.stop()


_CRASHING_WORKER = textwrap.dedent(
    """
    import sys, time
    import sqlalchemy as sa
    from gisgrid import jobs
    from gisgrid.config import load_settings

    @jobs.job_kind("test_slow", max_attempts=int(sys.argv[2]))
    def slow(ctx):
        ctx.progress(50, "half way", force=True)
        time.sleep(600)

    engine = sa.create_engine(sys.argv[1])
    settings = load_settings(job_poll_s=0.2)
    jobs.Worker(engine, settings, kinds=["test_slow"]).run()
    """
)


def _crash_a_worker_while_it_runs(engine, url: str, job_id: str, max_attempts: int) -> None:
    """A worker process claims ``job_id`` and is killed (SIGKILL) half way through it."""
    proc = subprocess.Popen([sys.executable, "-c", _CRASHING_WORKER, url, str(max_attempts)])
    try:
        running = _wait(engine, job_id, timeout=60, until=lambda j: j.progress == 50)
        assert running.status == "running", running
        # while its worker lives, the job is not taken for interrupted
        assert jobs.recover_interrupted(engine) == {}
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def _until_the_server_saw_it_die(engine, job_id: str, timeout: float = 10.0) -> None:
    """Wait until the killed worker's session has ended (its lock on the job is free)."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        key = {"id": job_id, "space": jobs.JOB_LOCK_SPACE}
        while time.monotonic() < deadline:
            if conn.execute(sa.text("SELECT pg_try_advisory_lock(hashtextextended(:id, :space))"), key).scalar():
                conn.execute(sa.text("SELECT pg_advisory_unlock(hashtextextended(:id, :space))"), key)
                return
            time.sleep(0.05)
    raise AssertionError("the killed worker's session did not end")


def _recover(engine, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:  # the server notices the closed connection within moments
        out = jobs.recover_interrupted(engine)
        if out or time.monotonic() > deadline:
            return out
        time.sleep(0.1)


def test_a_job_interrupted_by_a_crash_is_run_again(queue, scratch_url):
    engine, settings = queue
    job_id = _enqueue(engine, "test_slow", {"sleep": 0}, max_attempts=2)
    _crash_a_worker_while_it_runs(engine, scratch_url, job_id, 2)
    with engine.connect() as conn:
        assert jobs.get_job(conn, job_id).status == "running"  # as the dead worker left it
    assert _recover(engine) == {job_id: "queued"}
    with engine.connect() as conn:
        assert jobs.get_job(conn, job_id).message == jobs.INTERRUPTED
    worker = jobs.Worker(engine, settings, kinds=["test_slow"]).start()
    try:
        done = _wait(engine, job_id)
    finally:
        worker.stop()
    assert done.status == "done" and done.attempts == 2 and done.result == {"slept": 0, "attempt": 2}


def test_a_job_interrupted_as_often_as_allowed_ends_failed_saying_so(queue, scratch_url):
    engine, _ = queue
    job_id = _enqueue(engine, "test_slow", {"sleep": 0}, max_attempts=1)
    _crash_a_worker_while_it_runs(engine, scratch_url, job_id, 1)
    assert _recover(engine) == {job_id: "failed"}
    with engine.connect() as conn:
        failed = jobs.get_job(conn, job_id)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.error == "interrupted: the worker stopped while running this job (started 1 time)"


def test_a_worker_that_starts_picks_up_what_a_crashed_one_left(queue, scratch_url):
    """No separate recovery step: a starting worker recovers interrupted jobs itself."""
    engine, settings = queue
    job_id = _enqueue(engine, "test_slow", {"sleep": 0}, max_attempts=2)
    _crash_a_worker_while_it_runs(engine, scratch_url, job_id, 2)
    _until_the_server_saw_it_die(engine, job_id)
    worker = jobs.Worker(engine, settings, kinds=["test_slow"]).start()
    try:
        done = _wait(engine, job_id, timeout=40)
    finally:
        worker.stop()
    assert done.status == "done" and done.attempts == 2


def test_gisgrid_worker_once_runs_the_waiting_jobs(queue, scratch_url, monkeypatch):
    from click.testing import CliRunner

    from gisgrid.cli import main

    engine, settings = queue
    job_id = _enqueue(engine, "test_sum", {"numbers": [4, 5]})
    monkeypatch.setenv("GISGRID_DATABASE_URL", scratch_url)
    monkeypatch.setenv("GISGRID_VAR_DIR", settings.var_dir)
    res = CliRunner().invoke(main, ["worker", "--once"])
    assert res.exit_code == 0, res.output
    assert "job(s) run" in res.output
    with engine.connect() as conn:
        assert jobs.get_job(conn, job_id).result == {"sum": 9}


def test_serve_starts_worker_threads_that_share_the_apps_snapshots(queue, scratch_url):
    from gisgrid.cli.serve import start_workers
    from gisgrid.web import create_app

    engine, settings = queue
    app = create_app({"TESTING": True, "DATABASE_URL": scratch_url, "GISGRID_SETTINGS": settings})
    workers = start_workers(app, settings, 2)
    try:
        assert len(workers) == 2 and all(w.alive for w in workers)
        assert all(w.snapshots is app.extensions["gisgrid.snapshots"] for w in workers)
        job_id = _enqueue(engine, "test_sum", {"numbers": [1, 1]})
        assert _wait(engine, job_id).result == {"sum": 2}
    finally:
        for w in workers:
            w.stop()
    assert not any(w.alive for w in workers)


def test_progress_is_stored_while_the_job_runs(queue):
    engine, settings = queue
    gate = threading.Event()

    @jobs.job_kind("test_gate")
    def _gate(ctx):
        ctx.progress(40, "waiting at the gate", force=True)
        gate.wait(30)
        return {}

    job_id = _enqueue(engine, "test_gate")
    worker = jobs.Worker(engine, settings, kinds=["test_gate"]).start()
    try:
        running = _wait(engine, job_id, until=lambda j: j.progress == 40)
        assert (running.status, running.message) == ("running", "waiting at the gate")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT worker FROM job WHERE id = :id"), {"id": job_id}).scalar()
        gate.set()
        assert _wait(engine, job_id).status == "done"
    finally:
        gate.set()
        worker.stop()
