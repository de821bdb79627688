"""Snapshots rebuilt from the database (routing deployment, gazetteers): one rebuild at a time."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

N_THREADS = 8


def _bump_data_version(engine) -> None:
    """What the triggers do on any change of routing data."""
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE data_version SET version = version + 1 WHERE id = 1"))


def _at_once(engine, cache, n: int = N_THREADS) -> list:
    """``cache.get`` from ``n`` threads released together, each on its own connection; their answers."""
    barrier = threading.Barrier(n)
    out: list = [None] * n
    errors: list = []

    def call(i: int) -> None:
        try:
            with engine.connect() as conn:
                barrier.wait()
                out[i] = cache.get(conn)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return out


def _caches(settings):
    from gisgrid.geocode.snapshot import gazetteer_cache
    from gisgrid.routing.snapshot import deployment_cache

    return {
        "deployment": lambda: deployment_cache(settings, check_every_s=0.0),
        "gazetteers": lambda: gazetteer_cache(),
    }


@pytest.mark.parametrize("which", ["deployment", "gazetteers"])
def test_threads_asking_for_a_missing_snapshot_at_once_wait_for_one_build(engine, town, settings, which):
    cache = _caches(settings)[which]()
    answers = _at_once(engine, cache)
    assert cache.builds == 1
    assert answers[0] is not None and all(a is answers[0] for a in answers)  # one snapshot for all


@pytest.mark.parametrize("which", ["deployment", "gazetteers"])
def test_threads_asking_for_a_stale_snapshot_at_once_cause_one_rebuild(engine, town, settings, which):
    cache = _caches(settings)[which]()
    with engine.connect() as conn:
        old = cache.get(conn)
    _bump_data_version(engine)
    answers = _at_once(engine, cache)
    assert cache.builds == 2  # the first build and exactly one rebuild
    new = [a for a in answers if a is not old]
    assert new and all(a is new[0] for a in new)  # the others answered with the previous one meanwhile
    with engine.connect() as conn:
        assert cache.get(conn) is new[0]  # and everyone has the new one from now on
    assert cache.builds == 2


def test_an_unchanged_snapshot_is_not_rebuilt_and_a_change_is_seen(engine, town, settings):
    from gisgrid.routing.snapshot import data_version

    cache = _caches(settings)["deployment"]()
    with engine.connect() as conn:
        first = cache.get(conn)
        assert cache.get(conn) is first and cache.builds == 1
    _bump_data_version(engine)
    with engine.connect() as conn:
        second = cache.get(conn)
        assert second is not first and second.data_version == data_version(conn)
    assert cache.builds == 2


def test_concurrent_requests_after_a_data_change_rebuild_the_apps_deployment_once(engine, town, settings, db_url):
    """The web app's /api/assign under N simultaneous requests: one build, all answered."""
    from gisgrid.web import create_app

    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "GISGRID_SETTINGS": settings})
    cache = app.extensions["gisgrid.snapshots"].deployment
    point = {"lon": 24.9414, "lat": 60.1713}

    def burst() -> list[int]:
        barrier = threading.Barrier(N_THREADS)
        codes: list[int] = []

        def call() -> None:
            client = app.test_client()
            barrier.wait()
            codes.append(client.post("/api/assign", json=point).status_code)

        threads = [threading.Thread(target=call) for _ in range(N_THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        return codes

    assert burst() == [200] * N_THREADS and cache.builds == 1  # cold: they waited once for one build
    _bump_data_version(engine)
    cache.check_every_s = 0.0  # check the version on every request (default: once a second)
    assert burst() == [200] * N_THREADS and cache.builds == 2
