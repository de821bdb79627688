"""Background jobs on a PostgreSQL-backed queue: the ``job`` table (migration 0009).

Heavy work (the PNG export of the manager map, a large geocoding upload) does
not run inside a web request: the request :func:`enqueue` s a job and answers
at once; a :class:`Worker` (a thread of ``gisgrid serve``, or ``gisgrid
worker`` alone) claims it, runs it and stores its result or a readable error.

Life of a job::

    queued ──claim──▶ running ──▶ done    (result: the kind's JSON answer)
       ▲                 │
       └── interrupted ──┴──────▶ failed  (error: a readable reason, never a traceback)

* **Claim**: ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)``:
  any number of workers, each job to exactly one of them.
* **Liveness**: while it runs a job, the worker holds a session-level advisory
  lock on it on a connection of its own.  A crash (killed process, lost
  connection) ends that session and so the lock; :func:`recover_interrupted`
  finds running jobs whose lock is free and queues them again, or fails them
  once they were started ``max_attempts`` times.  No job is lost silently and
  no timeout guesses whether a slow job is dead.
* **Wake-up**: :func:`enqueue` sends ``NOTIFY gisgrid_jobs``; idle workers
  ``LISTEN`` and also poll every ``job_poll_s`` seconds.
* **Kinds** are registered by name with :func:`job_kind`; a kind is a function
  ``run(ctx: JobContext) -> dict | None`` that reports progress with
  :meth:`JobContext.progress`.  The built-in kinds (at the end of this module)
  are thin: each calls one package function.

Why not procrastinate or pgqueuer (both PostgreSQL-backed, no second server)?
Both are asyncio-first, install their own schema outside our Alembic chain,
and keep neither a percent done nor a result per job, which the progress page
needs; our jobs are synchronous (pandas, Chromium).  The queue itself is the
standard ``SKIP LOCKED`` pattern and fits in this module.

Layering: this module sits above the packages whose work it runs (``maps``,
``geocode``, ``routing``) and below ``web`` and ``cli``; it imports neither
Flask nor the web layer.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from gisgrid.config import Settings
from gisgrid.errors import GisgridError, InputError, NotFound

LOGGER = logging.getLogger(__name__)

#: NOTIFY channel that wakes idle workers.
CHANNEL = "gisgrid_jobs"
#: Job ids are 32 lowercase hex digits (also the name of a job's folder).
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
STATUSES = ("queued", "running", "done", "failed")
#: Seed of the 64-bit hash of a job id that keys the advisory lock a worker holds on it ('gjob');
#: single-key locks, so they never meet the two-key locks of :mod:`gisgrid.db.snapshot`.
JOB_LOCK_SPACE = 0x676A6F62
#: How often (seconds) an idle worker looks for jobs interrupted by a crash.
RECOVER_EVERY_S = 30.0


# --- records ---------------------------------------------------------------------------
@dataclass(frozen=True)
class JobRecord:
    """One row of the ``job`` table, as callers see it."""

    id: str
    kind: str
    params: dict
    status: str
    progress: float
    message: str | None
    message_args: dict | None
    result: dict | None
    error: str | None
    error_detail: dict | None
    attempts: int
    max_attempts: int
    created_at: object = None
    started_at: object = None
    finished_at: object = None
    user_id: int | None = None

    def seen_by(self, user_id: int | None, *, admin: bool = False) -> bool:
        """May the user ``user_id`` see this job?  Its own user may, and admins; a system job: admins only.

        Job ids are unguessable, but a link travels (a shared screen, a log):
        the web layer answers 404 to everybody else, as for a job that does
        not exist.
        """
        return admin or (self.user_id is not None and self.user_id == user_id)

    @property
    def message_text(self) -> str:
        """``message`` with its fields filled in (English; a page translates ``message`` first)."""
        return fill(self.message or "", self.message_args)

    @property
    def finished(self) -> bool:
        """True once the job is done or failed (nothing more will happen to it)."""
        return self.status in ("done", "failed")

    def as_dict(self) -> dict:
        """The fields a progress page polls for (JSON-ready)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "progress": round(float(self.progress), 1),
            "message": self.message_text,
            "result": self.result,
            "error": self.error,
            "attempts": self.attempts,
        }


_COLUMNS = (
    "id, kind, params, status, progress, message, message_args, result, error, error_detail, attempts, max_attempts, "
    "created_at, started_at, finished_at, user_id"
)


def _record(row) -> JobRecord:
    return JobRecord(**dict(row._mapping))


def _(text: str) -> str:
    """Marks a progress message for translation (the page translates it; the job stores English)."""
    return text


def fill(message: str, args: dict | None) -> str:
    """``message % args`` when it has fields, else ``message`` (a bad field leaves the text as is)."""
    if not args:
        return message
    try:
        return message % args
    except (KeyError, ValueError, TypeError):
        return message


#: Shown while a job interrupted by a crash waits to run again.
INTERRUPTED = _("interrupted; queued again")


# --- kinds -----------------------------------------------------------------------------
@dataclass(frozen=True)
class JobKind:
    """A registered kind: its name, the function that runs it, how often it may be started."""

    name: str
    run: Callable[[JobContext], dict | None]
    max_attempts: int = 1


_KINDS: dict[str, JobKind] = {}


def job_kind(name: str, *, max_attempts: int = 1):
    """Register ``run(ctx) -> dict | None`` as the job kind ``name`` (a decorator).

    Parameters
    ----------
    name : str
        The kind's name, stored in ``job.kind`` (at most 40 characters).
    max_attempts : int
        Starts allowed: a job interrupted by a crash (not one that raised) is
        queued again until it was started this many times.  Give more than 1
        only to kinds that can safely run again from the start.
    """
    if not name or len(name) > 40:
        raise ValueError(f"job kind name must have 1 to 40 characters: {name!r}")
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")

    def register(run):
        _KINDS[name] = JobKind(name, run, max_attempts)
        return run

    return register


def kinds() -> dict[str, JobKind]:
    """The registered kinds by name."""
    return dict(_KINDS)


#: Kinds queued on a rhythm by the workers (:func:`enqueue_periodic`): name -> the setting giving seconds.
_PERIODIC: dict[str, str] = {}


def periodic(name: str, every_setting: str) -> None:
    """Have workers queue the kind ``name`` every ``settings.<every_setting>`` seconds (0: never)."""
    if name not in _KINDS:
        raise ValueError(f"unknown job kind {name!r}")
    _PERIODIC[name] = every_setting


def enqueue_periodic(engine: sa.Engine, settings: Settings, *, kinds: list[str] | None = None) -> list[str]:
    """Queue each periodic kind whose time has come (of ``kinds``, default all); the ids queued.

    A kind is queued when none of it waits or runs and the last one was
    queued at least its period ago.  An advisory lock per kind makes two
    workers (or processes) queue it once.
    """
    out = []
    for name, setting in _PERIODIC.items():
        if kinds is not None and name not in kinds:
            continue
        every = float(getattr(settings, setting, 0) or 0)
        if every <= 0:
            continue
        with engine.begin() as conn:
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:name))"),
                {"space": JOB_LOCK_SPACE, "name": name},
            )
            due = conn.execute(
                sa.text("""
                SELECT NOT EXISTS (SELECT 1 FROM job WHERE kind = :k AND status IN ('queued', 'running'))
                   AND COALESCE((SELECT max(created_at) FROM job WHERE kind = :k) < now() - make_interval(secs => :every),
                                true)"""),
                {"k": name, "every": every},
            ).scalar()
            if due:
                out.append(enqueue(conn, name))
    return out


# --- the queue -------------------------------------------------------------------------
def new_job_id() -> str:
    """A fresh random job id (32 hex digits: unguessable, safe as a folder name)."""
    return secrets.token_hex(16)


def job_dir(settings: Settings, job_id: str) -> Path:
    """The folder for a job's files, ``<var_dir>/jobs/<id>`` (not created)."""
    if not JOB_ID.fullmatch(job_id or ""):
        raise NotFound(f"no job {job_id}")
    return Path(settings.var_dir) / "jobs" / job_id


def enqueue(
    conn: sa.Connection,
    kind: str,
    params: dict | None = None,
    *,
    job_id: str | None = None,
    max_attempts: int | None = None,
    user_id: int | None = None,
) -> str:
    """Queue a job; its id.  Visible to workers when ``conn``'s transaction commits.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    kind : str
        A registered kind (:func:`job_kind`).
    params : dict, optional
        JSON-serialisable parameters handed to the kind as ``ctx.params``.
    job_id : str, optional
        32 hex digits (:func:`new_job_id`), when the caller named a folder after it already.
    max_attempts : int, optional
        Default: the kind's.
    user_id : int, optional
        The user who asks for the job (:meth:`JobRecord.seen_by`); None: the system.

    Raises
    ------
    ValueError
        Unknown kind, bad id, or parameters that are not JSON.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown job kind {kind!r}; known: {', '.join(sorted(_KINDS)) or 'none'}")
    job_id = job_id or new_job_id()
    if not JOB_ID.fullmatch(job_id):
        raise ValueError(f"job id must be 32 lowercase hex digits, got {job_id!r}")
    try:
        text = json.dumps(params or {}, ensure_ascii=False)
    except TypeError as exc:
        raise ValueError(f"job parameters must be JSON: {exc}") from exc
    conn.execute(
        sa.text(
            "INSERT INTO job (id, kind, params, max_attempts, user_id) "
            "VALUES (:id, :kind, CAST(:params AS jsonb), :max_attempts, :user_id)"
        ),
        {
            "id": job_id,
            "kind": kind,
            "params": text,
            "max_attempts": max_attempts or _KINDS[kind].max_attempts,
            "user_id": user_id,
        },
    )
    conn.execute(sa.text("SELECT pg_notify(:channel, :id)"), {"channel": CHANNEL, "id": job_id})
    LOGGER.info("job %s queued: %s", job_id, kind)
    return job_id


def get_job(conn: sa.Connection, job_id: str) -> JobRecord | None:
    """The job with this id, or None (also for anything that is not a job id)."""
    if not JOB_ID.fullmatch(job_id or ""):
        return None
    row = conn.execute(sa.text(f"SELECT {_COLUMNS} FROM job WHERE id = :id"), {"id": job_id}).first()
    return None if row is None else _record(row)


def queued_ahead(conn: sa.Connection, job_id: str) -> int:
    """How many queued jobs were queued before this one (0 when it is next, running or finished)."""
    return int(
        conn.execute(
            sa.text("""
            SELECT count(*) FROM job o, job j
            WHERE j.id = :id AND j.status = 'queued' AND o.status = 'queued' AND o.created_at < j.created_at"""),
            {"id": job_id},
        ).scalar()
    )


def claim(conn: sa.Connection, *, worker: str, kinds: list[str] | None = None) -> JobRecord | None:
    """Take the oldest queued job of ``kinds`` (default: every registered kind) and mark it running.

    The caller then holds the job's advisory lock on ``conn`` (a session lock:
    keep ``conn`` open while the job runs and release it with
    :func:`release`).  Taking the row and the lock in one transaction means no
    other session ever sees the job running without its lock.
    """
    names = list(kinds if kinds is not None else _KINDS)
    if not names:
        return None
    with conn.begin():
        row = conn.execute(
            sa.text(f"""
            UPDATE job SET status = 'running', attempts = attempts + 1, worker = :worker,
                           started_at = now(), updated_at = now(), progress = 0, message = NULL,
                           message_args = NULL
            WHERE id = (SELECT id FROM job WHERE status = 'queued' AND kind = ANY(:kinds)
                        ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING {_COLUMNS}"""),
            {"worker": worker, "kinds": names},
        ).first()
        if row is None:
            return None
        conn.execute(
            sa.text("SELECT pg_advisory_lock(hashtextextended(:id, :space))"), {"space": JOB_LOCK_SPACE, "id": row.id}
        )
    return _record(row)


def release(conn: sa.Connection, job_id: str) -> None:
    """Give up the advisory lock :func:`claim` took on ``conn``."""
    conn.execute(
        sa.text("SELECT pg_advisory_unlock(hashtextextended(:id, :space))"), {"space": JOB_LOCK_SPACE, "id": job_id}
    )
    conn.commit()


def set_progress(
    conn: sa.Connection, job_id: str, percent: float, message: str | None = None, args: dict | None = None
) -> None:
    """Store how far a running job is (percent, 0–100) and what it does now.

    ``message`` is English with ``%(name)s`` fields taken from ``args``; a page
    translates it (mark it with ``_()`` where it is written), then fills it in.
    """
    conn.execute(
        sa.text("""
        UPDATE job SET progress = :p, updated_at = now(),
                       message = coalesce(:m, message),
                       message_args = CASE WHEN :m IS NULL THEN message_args ELSE CAST(:a AS jsonb) END
        WHERE id = :id AND status = 'running'"""),
        {
            "id": job_id,
            "p": min(100.0, max(0.0, float(percent))),
            "m": message,
            "a": json.dumps(args, ensure_ascii=False) if args else None,
        },
    )


def finish(conn: sa.Connection, job_id: str, result: dict | None = None) -> None:
    """Mark a running job done with its ``result`` (JSON)."""
    conn.execute(
        sa.text("""
        UPDATE job SET status = 'done', progress = 100, result = CAST(:r AS jsonb), error = NULL,
                       message = NULL, message_args = NULL,
                       error_detail = NULL, finished_at = now(), updated_at = now()
        WHERE id = :id AND status = 'running'"""),
        {"id": job_id, "r": json.dumps(result or {}, ensure_ascii=False, default=str)},
    )


def fail(conn: sa.Connection, job_id: str, error: str, detail: dict | None = None) -> None:
    """Mark a running job failed with a readable ``error`` and, optionally, its fields in ``detail``."""
    conn.execute(
        sa.text("""
        UPDATE job SET status = 'failed', error = :e, error_detail = CAST(:d AS jsonb),
                       finished_at = now(), updated_at = now()
        WHERE id = :id AND status = 'running'"""),
        {"id": job_id, "e": error, "d": None if detail is None else json.dumps(detail, ensure_ascii=False)},
    )


def recover_interrupted(engine: sa.Engine) -> dict[str, str]:
    """Queue again (or fail) the running jobs whose worker is gone; ``{job id: new status}``.

    A running job's worker holds an advisory lock on it; when this session can
    take that lock, the worker's session has ended (crash, kill, lost
    connection).  The job is queued again while it was started fewer than
    ``max_attempts`` times, else it fails saying it was interrupted.
    """
    out: dict[str, str] = {}
    # A connection of its own that holds no job lock (session locks are re-entrant, so a
    # connection that holds one would take it again and call its own job dead).
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        running = conn.execute(sa.text("SELECT id FROM job WHERE status = 'running'")).scalars().all()
        for job_id in running:
            key = {"space": JOB_LOCK_SPACE, "id": job_id}
            if not conn.execute(sa.text("SELECT pg_try_advisory_lock(hashtextextended(:id, :space))"), key).scalar():
                continue  # its worker is alive
            try:
                status = conn.execute(
                    sa.text("""
                    UPDATE job SET
                        status = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
                        error = CASE WHEN attempts < max_attempts THEN NULL ELSE
                            'interrupted: the worker stopped while running this job (started '
                            || attempts || ' time' || CASE WHEN attempts = 1 THEN '' ELSE 's' END || ')' END,
                        message = CASE WHEN attempts < max_attempts THEN :interrupted ELSE message END,
                        message_args = CASE WHEN attempts < max_attempts THEN NULL ELSE message_args END,
                        finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE now() END,
                        updated_at = now()
                    WHERE id = :id AND status = 'running'
                    RETURNING status"""),
                    {"id": job_id, "interrupted": INTERRUPTED},
                ).scalar()
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(hashtextextended(:id, :space))"), key)
            if status:
                out[job_id] = status
                LOGGER.warning("job %s was interrupted (its worker is gone): now %s", job_id, status)
    if out:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_notify(:channel, 'recovered')"), {"channel": CHANNEL})
    return out


# --- running a job ---------------------------------------------------------------------
@dataclass
class JobContext:
    """What a running kind gets: its parameters, the database, the settings, shared snapshots."""

    id: str
    kind: str
    params: dict
    attempt: int
    engine: sa.Engine
    settings: Settings
    snapshots: Snapshots
    _last: float = field(default=float("-inf"), repr=False)

    @property
    def directory(self) -> Path:
        """``<var_dir>/jobs/<id>``, created on first use, for the job's files."""
        path = job_dir(self.settings, self.id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def progress(self, percent: float, message: str | None = None, *, force: bool = False, **args) -> None:
        """Report percent done (0–100) and, optionally, what the job does now.

        ``message`` is English, marked for translation with ``_()`` where it is
        written, its ``%(name)s`` fields given as keyword arguments.  Written at
        most twice a second (a tight loop may call it per row) unless ``force``.
        """
        now = time.monotonic()
        if not force and now - self._last < 0.5:
            return
        self._last = now
        with self.engine.begin() as conn:
            set_progress(conn, self.id, percent, message, args)


class Snapshots:
    """The routing deployment and geocoding gazetteers a process works with, built once and shared.

    ``gisgrid serve`` gives its web app and its worker threads one instance,
    so that both use the same in-memory copies and rebuild them once.
    """

    def __init__(self, settings: Settings):
        from gisgrid.geocode.snapshot import gazetteer_cache
        from gisgrid.routing.snapshot import deployment_cache

        self.deployment = deployment_cache(settings)
        self.gazetteers = gazetteer_cache()


def _error_detail(exc: GisgridError) -> dict:
    """The exception's type and its plain fields (column, sheet …), for wording it again elsewhere."""
    detail: dict = {"type": type(exc).__name__}
    for key, value in vars(exc).items():
        if key.startswith("_"):
            continue
        if isinstance(value, (str, int, float, bool)) or value is None:
            detail[key] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
            detail[key] = list(value)
    return detail


def run_job(job: JobRecord, engine: sa.Engine, settings: Settings, snapshots: Snapshots) -> str:
    """Run one claimed job to its end and store the outcome; its final status ('done' or 'failed').

    An exception from the kind fails the job: a :class:`~gisgrid.errors.GisgridError`
    with its own message (and its fields in ``error_detail``), anything else as
    "internal error (TypeName): message" while the traceback goes to the log.
    """
    kind = _KINDS.get(job.kind)
    ctx = JobContext(job.id, job.kind, dict(job.params or {}), job.attempts, engine, settings, snapshots)
    started = time.monotonic()
    try:
        if kind is None:
            raise InputError(f"unknown job kind {job.kind!r}")
        result = kind.run(ctx)
    except GisgridError as exc:
        LOGGER.warning("job %s (%s) failed: %s", job.id, job.kind, exc)
        with engine.begin() as conn:
            fail(conn, job.id, str(exc), _error_detail(exc))
        return "failed"
    except Exception as exc:  # noqa: BLE001 - any failure of a job is stored, the worker goes on
        LOGGER.exception("job %s (%s) failed", job.id, job.kind)
        with engine.begin() as conn:
            fail(conn, job.id, f"internal error ({type(exc).__name__}): {exc}", {"type": type(exc).__name__})
        return "failed"
    with engine.begin() as conn:
        finish(conn, job.id, result)
    LOGGER.info("job %s (%s) done in %.1f s", job.id, job.kind, time.monotonic() - started)
    return "done"


def run_next(
    engine: sa.Engine,
    settings: Settings,
    snapshots: Snapshots,
    *,
    worker: str | None = None,
    kinds: list[str] | None = None,
) -> JobRecord | None:
    """Claim the next queued job and run it to its end; the job as claimed, or None when none waits."""
    worker = worker or default_worker_name()
    with engine.connect() as lock_conn:
        job = claim(lock_conn, worker=worker, kinds=kinds)
        if job is None:
            return None
        try:
            run_job(job, engine, settings, snapshots)
        finally:
            try:
                release(lock_conn, job.id)
            except sa.exc.SQLAlchemyError:
                # the session (and with it the lock) is gone, or unusable: never pool it again
                lock_conn.invalidate()
    return job


def default_worker_name() -> str:
    """host:pid:thread, stored in ``job.worker`` for the operator."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


class Worker:
    """Runs queued jobs until stopped: claim, run, and between jobs LISTEN (or poll).

    Parameters
    ----------
    engine : sqlalchemy.Engine
    settings : Settings
        ``job_poll_s`` is the longest wait between looks at the queue.
    snapshots : Snapshots, optional
        Shared with the web app under ``gisgrid serve``; else the worker's own.
    kinds : list of str, optional
        Only these kinds (default: every registered one).
    name : str, optional
        Thread name (and part of ``job.worker``).
    """

    def __init__(
        self,
        engine: sa.Engine,
        settings: Settings,
        *,
        snapshots: Snapshots | None = None,
        kinds: list[str] | None = None,
        name: str = "gisgrid-worker",
    ):
        self.engine = engine
        self.settings = settings
        self.snapshots = snapshots or Snapshots(settings)
        self.kinds = kinds
        self.name = name
        self.poll_s = float(settings.job_poll_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.jobs_run = 0

    # -- in a thread --------------------------------------------------------------------
    def start(self) -> Worker:
        """Run :meth:`run` in a daemon thread; returns self."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the loop to stop after the job it runs (if any) and wait up to ``timeout`` seconds."""
        self._stop.set()
        try:
            with self.engine.begin() as conn:  # wake a LISTENing loop now
                conn.execute(sa.text("SELECT pg_notify(:channel, 'stop')"), {"channel": CHANNEL})
        except sa.exc.SQLAlchemyError:
            pass
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the loop -----------------------------------------------------------------------
    def run_pending(self) -> int:
        """Run queued jobs until none is left; how many ran."""
        n = 0
        while not self._stop.is_set():
            job = run_next(self.engine, self.settings, self.snapshots, worker=self._worker_name(), kinds=self.kinds)
            if job is None:
                break
            n += 1
            self.jobs_run += 1
        return n

    def run(self) -> None:
        """Work until :meth:`stop`: recover interrupted jobs, run queued ones, wait for a NOTIFY or the poll."""
        LOGGER.info("worker %s started (poll every %.1f s)", self._worker_name(), self.poll_s)
        next_recover = 0.0
        while not self._stop.is_set():
            try:
                with self.engine.connect() as listen:
                    listen = listen.execution_options(isolation_level="AUTOCOMMIT")
                    listen.execute(sa.text(f"LISTEN {CHANNEL}"))
                    pg = listen.connection.driver_connection
                    while not self._stop.is_set():
                        if time.monotonic() >= next_recover:
                            recover_interrupted(self.engine)
                            enqueue_periodic(self.engine, self.settings, kinds=self.kinds)
                            next_recover = time.monotonic() + min(RECOVER_EVERY_S, self._periodic_check_s())
                        self.run_pending()
                        if self._stop.is_set():
                            break
                        for _note in pg.notifies(timeout=self.poll_s, stop_after=1):
                            pass
            except sa.exc.SQLAlchemyError as exc:
                LOGGER.warning("worker %s: database unavailable (%s); retrying", self.name, exc)
                self._stop.wait(self.poll_s)
            except Exception as exc:  # noqa: BLE001 - e.g. psycopg errors from notifies(); keep the worker alive
                LOGGER.warning("worker %s: %s; retrying", self.name, exc)
                self._stop.wait(self.poll_s)
        LOGGER.info("worker %s stopped", self._worker_name())

    def _periodic_check_s(self) -> float:
        periods = [float(getattr(self.settings, k, 0) or 0) for k in _PERIODIC.values()]
        return min([p for p in periods if p > 0] or [RECOVER_EVERY_S])

    def _worker_name(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{self.name}"


# --- the built-in kinds ----------------------------------------------------------------
#: The manager map as PNG (headless Chromium): params {"html": file name in the job folder}.
MAP_PNG = "map_png"
#: A geocoding upload: the job id is also the folder ``<var_dir>/geocode/<id>``.
GEOCODE_UPLOAD = "geocode_upload"
#: The PNG's file name in the job folder.
MAP_PNG_FILE = "gisgrid-map.png"
#: The cases' periodic check: escalate overdue cases up the chain, warn of deadlines near
#: (:func:`gisgrid.cases.escalation.tick`); queued by the workers every ``case_tick_s`` seconds.
CASES_TICK = "cases_tick"


@job_kind(MAP_PNG, max_attempts=2)
def _map_png(ctx: JobContext) -> dict:
    from gisgrid.maps.png import render_png

    name = str(ctx.params.get("html") or "")
    src = ctx.directory / Path(name).name  # a name in the job's folder, never a path elsewhere
    if not name or not src.is_file():
        raise InputError("the map to render is missing from the job folder")
    ctx.progress(10, _("starting the browser"), force=True)
    render_png(
        src,
        ctx.directory / MAP_PNG_FILE,
        chromium=ctx.settings.chromium_path,
        width=int(ctx.params.get("width") or 1400),
        height=int(ctx.params.get("height") or 1000),
    )
    src.unlink()  # the page (inlined assets, megabytes) is not needed once the PNG is there
    return {"file": MAP_PNG_FILE, "bytes": (ctx.directory / MAP_PNG_FILE).stat().st_size}


@job_kind(GEOCODE_UPLOAD, max_attempts=2)
def _geocode_upload(ctx: JobContext) -> dict:
    from gisgrid.geocode.upload import geocode_upload, upload_dir

    folder = upload_dir(ctx.settings, ctx.id)
    ctx.progress(1, _("loading the gazetteers"), force=True)
    with ctx.engine.connect() as conn:
        gazetteers = ctx.snapshots.gazetteers.get(conn)
        deployment = ctx.snapshots.deployment.get(conn)
    return geocode_upload(folder, gazetteers, deployment, progress=ctx.progress, limits=ctx.settings.text_limits)


@job_kind(CASES_TICK)
def _cases_tick(ctx: JobContext) -> dict:
    from gisgrid.cases.escalation import tick

    with ctx.engine.begin() as conn:
        return tick(conn, ctx.settings)


periodic(CASES_TICK, "case_tick_s")


__all__ = [
    "CASES_TICK",
    "CHANNEL",
    "GEOCODE_UPLOAD",
    "JOB_ID",
    "MAP_PNG",
    "MAP_PNG_FILE",
    "STATUSES",
    "JobContext",
    "JobKind",
    "JobRecord",
    "Snapshots",
    "Worker",
    "claim",
    "enqueue",
    "enqueue_periodic",
    "fail",
    "fill",
    "finish",
    "get_job",
    "job_dir",
    "job_kind",
    "kinds",
    "new_job_id",
    "periodic",
    "queued_ahead",
    "recover_interrupted",
    "release",
    "run_job",
    "run_next",
    "set_progress",
]
