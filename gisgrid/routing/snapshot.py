"""The routing snapshot: the deployment (rules, indexes, owner history) a process routes with.

Rebuilt when the ``data_version`` row moves on (triggers bump it on every
change of routing data), by one thread at a time (:class:`gisgrid.db.snapshot.SnapshotCache`).
"""

from __future__ import annotations

import sqlalchemy as sa

from gisgrid.config import Settings
from gisgrid.db.snapshot import SnapshotCache
from gisgrid.routing.store import Deployment, load_deployment

#: How often (seconds) a caller checks whether routing data changed; in between
#: the cached deployment answers without touching the database.
VERSION_CHECK_S = 1.0


def data_version(conn: sa.Connection) -> int:
    """The routing data's version (bumped by triggers on every change)."""
    return int(conn.execute(sa.text("SELECT version FROM data_version WHERE id = 1")).scalar() or 0)


def deployment_cache(settings: Settings, *, check_every_s: float = VERSION_CHECK_S) -> SnapshotCache[Deployment]:
    """A cache of the deployment built with ``settings``; ``cache.get(conn)`` gives the current one."""

    def build(conn: sa.Connection) -> Deployment:
        deployment = load_deployment(conn, settings)  # carries its own data_version
        # the parts built on first use are built here, by the one builder, not by each request thread
        deployment.lookup  # noqa: B018
        if deployment.parts:
            deployment.index  # noqa: B018
        return deployment

    return SnapshotCache("routing snapshot", build, data_version, check_every_s=check_every_s)


__all__ = ["VERSION_CHECK_S", "data_version", "deployment_cache"]
