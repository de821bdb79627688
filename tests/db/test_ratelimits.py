"""Rate-limit counters in PostgreSQL (:mod:`gisgrid.db.ratelimits`): shared, windowed, safe under concurrency."""

from __future__ import annotations

import threading
import uuid

import sqlalchemy as sa
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from gisgrid.db.ratelimits import STORAGE_URI, PostgresStorage, prune


def test_two_storages_on_one_database_count_together(engine):
    key = f"test/{uuid.uuid4().hex}"
    one, two = (storage_from_string(STORAGE_URI, engine=engine) for _ in range(2))
    assert isinstance(one, PostgresStorage)
    limit = parse("3 per hour")
    a, b = FixedWindowRateLimiter(one), FixedWindowRateLimiter(two)
    assert [a.hit(limit, key), b.hit(limit, key), a.hit(limit, key)] == [True, True, True]
    assert not b.hit(limit, key) and not a.test(limit, key)
    assert b.get_window_stats(limit, key).remaining == 0
    one.clear(limit.key_for(key))
    assert a.hit(limit, key)


def test_a_window_that_ended_starts_again_and_is_pruned(engine):
    key = f"test/{uuid.uuid4().hex}"
    storage = PostgresStorage(STORAGE_URI, engine=engine)
    assert storage.incr(key, 3600) == 1 and storage.incr(key, 3600) == 2
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE rate_limit SET expires_at = now() - interval '1 second' WHERE key = :k"), {"k": key}
        )
    assert storage.get(key) == 0
    assert storage.incr(key, 3600) == 1  # a new window
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE rate_limit SET expires_at = now() - interval '1 second' WHERE key = :k"), {"k": key}
        )
        assert prune(conn) >= 1
        assert conn.execute(sa.text("SELECT count(*) FROM rate_limit WHERE key = :k"), {"k": key}).scalar() == 0


def test_concurrent_hits_are_all_counted(engine):
    key = f"test/{uuid.uuid4().hex}"
    storage = PostgresStorage(STORAGE_URI, engine=engine)

    def hit():
        for _ in range(25):
            storage.incr(key, 3600)

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert storage.get(key) == 100
