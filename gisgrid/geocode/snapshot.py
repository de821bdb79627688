"""The geocoding gazetteers a process geocodes with, rebuilt when streets, address points or
jurisdictions change, by one thread at a time (:class:`gisgrid.db.snapshot.SnapshotCache`)."""

from __future__ import annotations

from gisgrid.db.snapshot import SnapshotCache
from gisgrid.geocode.store import AreaGazetteers, gazetteer_signature, load_gazetteer


def gazetteer_cache(*, check_every_s: float = 0.0) -> SnapshotCache[AreaGazetteers]:
    """A cache of :func:`gisgrid.geocode.store.load_gazetteer`; ``cache.get(conn)`` gives the current one."""
    return SnapshotCache("geocoding gazetteers", load_gazetteer, gazetteer_signature, check_every_s=check_every_s)


__all__ = ["gazetteer_cache"]
