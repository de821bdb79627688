"""Rate-limit counters kept in PostgreSQL, shared by every process of a deployment.

``gisgrid serve --processes N`` runs several processes; counters in each
process's memory would let an abuser send N times the limit.  The
:mod:`limits` package (under Flask-Limiter) stores counters in memory, Redis,
Memcached or MongoDB, none of which a gisgrid deployment has: this module adds
a storage over the database every process already shares — one row per
counter (``rate_limit``: key, hits, end of its window), incremented with one
upsert, so concurrent processes count together.

Flask-Limiter finds it by its scheme::

    Limiter(key_func, storage_uri=STORAGE_URI, storage_options={"engine": engine})

Only the fixed-window strategy (Flask-Limiter's default) is supported.  Rows of
windows that ended are deleted now and then (at most every ``prune_every_s``
seconds per process), so the table holds the live windows only.
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from limits.storage import Storage

LOGGER = logging.getLogger(__name__)

#: The storage URI Flask-Limiter is given for this storage.
STORAGE_URI = "gisgrid+postgresql://"

_INCR = sa.text("""
INSERT INTO rate_limit AS r (key, hits, expires_at)
VALUES (:key, :amount, clock_timestamp() + make_interval(secs => :expiry))
ON CONFLICT (key) DO UPDATE SET
    hits = CASE WHEN r.expires_at <= clock_timestamp() THEN EXCLUDED.hits ELSE r.hits + EXCLUDED.hits END,
    expires_at = CASE WHEN r.expires_at <= clock_timestamp() THEN EXCLUDED.expires_at ELSE r.expires_at END
RETURNING hits""")


class PostgresStorage(Storage):
    """A :mod:`limits` storage in the ``rate_limit`` table (fixed windows).

    Parameters
    ----------
    uri : str
        ``gisgrid+postgresql://`` (the engine is passed as an option), or
        ``gisgrid+postgresql://user@host:port/db`` to connect on its own.
    engine : sqlalchemy.Engine, optional
        The application's engine: each call takes a connection from its pool
        and commits at once, apart from the request's own transaction.
    prune_every_s : float
        How often (seconds, per process) the rows of ended windows are deleted.
    """

    STORAGE_SCHEME = ["gisgrid+postgresql"]

    def __init__(
        self,
        uri: str | None = None,
        wrap_exceptions: bool = False,
        *,
        engine: sa.Engine | None = None,
        prune_every_s: float = 600.0,
        **options,
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        if engine is None:
            rest = (uri or "").partition("://")[2]
            if not rest:
                raise ValueError(f"{STORAGE_URI} needs an engine (storage_options) or a database in the URI")
            engine = sa.create_engine("postgresql+psycopg://" + rest, pool_pre_ping=True)
        self.engine = engine
        self.prune_every_s = float(prune_every_s)
        self._pruned_at = time.monotonic()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sa.exc.SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        with self.engine.begin() as conn:
            hits = conn.execute(_INCR, {"key": key, "expiry": float(expiry), "amount": int(amount)}).scalar()
            if time.monotonic() - self._pruned_at > self.prune_every_s:
                self._pruned_at = time.monotonic()
                gone = conn.execute(sa.text("DELETE FROM rate_limit WHERE expires_at <= clock_timestamp()")).rowcount
                LOGGER.debug("pruned %d ended rate-limit windows", gone)
        return int(hits)

    def get(self, key: str) -> int:
        with self.engine.connect() as conn:
            hits = conn.execute(
                sa.text("SELECT hits FROM rate_limit WHERE key = :key AND expires_at > clock_timestamp()"),
                {"key": key},
            ).scalar()
        return int(hits or 0)

    def get_expiry(self, key: str) -> float:
        with self.engine.connect() as conn:
            at = conn.execute(
                sa.text("SELECT extract(epoch FROM expires_at) FROM rate_limit WHERE key = :key"), {"key": key}
            ).scalar()
        return float(at) if at is not None else time.time()

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1 FROM rate_limit LIMIT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            return conn.execute(sa.text("DELETE FROM rate_limit")).rowcount

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM rate_limit WHERE key = :key"), {"key": key})


def prune(conn: sa.Connection) -> int:
    """Delete the counters of windows that ended; returns how many."""
    return conn.execute(sa.text("DELETE FROM rate_limit WHERE expires_at <= clock_timestamp()")).rowcount
