"""In-memory snapshots built from the database, rebuilt one at a time when the data moves on.

The routing deployment and the geocoding gazetteers are expensive to build
(seconds) and cheap to check (one small query gives a version or signature).
:class:`SnapshotCache` holds the last one built and answers every caller with
it until the version changes; then exactly one thread rebuilds it:

* while a previous snapshot exists, the other threads keep answering with it
  (they never wait for a rebuild);
* when there is none yet (the first call), they wait once for the one build
  and then all use it.

Across processes (``gisgrid serve`` and a separate ``gisgrid worker``, or
several servers on one database) each process holds its own copy, so there is
nothing to share; a PostgreSQL advisory lock per snapshot name still lets only
one process build at a time, so that a data change does not make every process
run the same heavy queries at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import sqlalchemy as sa

LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

#: First key of the two-key advisory locks gisgrid takes for snapshot builds ('gsnp').
SNAPSHOT_LOCK_SPACE = 0x67736E70


class SnapshotCache(Generic[T]):
    """A value built from the database, rebuilt when ``version(conn)`` changes, one build at a time.

    Parameters
    ----------
    name : str
        Names the snapshot in logs and in the advisory lock (``hashtext(name)``).
    build : callable
        ``build(conn) -> value``: the expensive part.
    version : callable
        ``version(conn) -> hashable``: cheap; a different answer means the value is stale.
    check_every_s : float
        Between checks the cached value answers without touching the database
        (0: check on every call).
    """

    def __init__(
        self,
        name: str,
        build: Callable[[sa.Connection], T],
        version: Callable[[sa.Connection], Hashable],
        *,
        check_every_s: float = 0.0,
    ):
        self.name = name
        self._build = build
        self._version = version
        self.check_every_s = check_every_s
        self._value: T | None = None
        self._built_version: Hashable = None
        self._checked = float("-inf")
        self._lock = threading.Lock()  # held by the one thread that builds
        #: How many times the value was built in this process.
        self.builds = 0

    def get(self, conn: sa.Connection) -> T:
        """The current value: the cached one while its version holds, else rebuilt (by one thread).

        Parameters
        ----------
        conn : sqlalchemy.Connection
            Used for the version check; the thread that rebuilds uses a connection of its own
        from the same engine.
        """
        value = self._value
        now = time.monotonic()
        if value is not None and now - self._checked < self.check_every_s:
            return value
        current = self._version(conn)
        if value is not None and current == self._built_version:
            self._checked = now
            return value
        if value is not None:
            if not self._lock.acquire(blocking=False):
                return value  # another thread rebuilds: keep answering with the previous snapshot
        else:
            self._lock.acquire()  # nothing to answer with yet: wait once for the one build
        try:
            if self._value is not None and self._built_version == current:
                return self._value  # built by another thread while this one waited
            value = self._rebuild(conn, current)
            self._checked = time.monotonic()
            return value
        finally:
            self._lock.release()

    def _rebuild(self, conn: sa.Connection, current: Hashable) -> T:
        started = time.monotonic()
        # A connection of its own: the transaction-scoped lock ends with the build, whatever the
        # caller's connection does (a request's stays open until the response is sent).
        with conn.engine.connect() as own, own.begin():
            own.execute(sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:name))"), _key(self.name))
            value = self._build(own)
        # version read before the build: a change during the build is seen by the next check
        self._value, self._built_version = value, current
        self.builds += 1
        LOGGER.info("%s rebuilt at version %r in %.2f s", self.name, current, time.monotonic() - started)
        return value

    def clear(self) -> None:
        """Forget the value (the next call builds it)."""
        with self._lock:
            self._value, self._built_version, self._checked = None, None, float("-inf")


def _key(name: str) -> dict:
    return {"space": SNAPSHOT_LOCK_SPACE, "name": name}


__all__ = ["SNAPSHOT_LOCK_SPACE", "SnapshotCache"]
