"""Every migration run on a database that holds data: the demo, down to the first revision and back.

The demo (one town, its owners, reports, accounts and cases in every state) is loaded at head.  A
downgrade that would drop data refuses and names it; allowed, each step down keeps every row of the
tables both revisions have.  Then each step up, from the first revision's version of the demo, keeps
them too, and every report comes back to head with the owner it was routed to.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from gisgrid.db import alembic_config, downgrade, migrate
from gisgrid.db.dataloss import DataLossRefused

#: Tables of the first revision: their rows must survive every step down and up.
CORE = ("jurisdiction", "street", "segment", "person", "department", "category", "owner_assignment", "report")


def revisions(url: str) -> list[str]:
    """Revision ids from the first to head."""
    script = ScriptDirectory.from_config(alembic_config(url))
    return [s.revision for s in reversed(list(script.walk_revisions()))]


def counts(conn: sa.Connection) -> dict[str, int]:
    names = conn.execute(
        sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'spatial_ref_sys'")
    ).scalars()
    return {n: conn.execute(sa.text(f'SELECT count(*) FROM "{n}"')).scalar() for n in list(names)}


def version(conn: sa.Connection) -> str:
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def routed(conn: sa.Connection) -> dict[int, tuple]:
    rows = conn.execute(sa.text("SELECT report_id, target_type, target_id, rule FROM report_current")).all()
    return {r[0]: tuple(r[1:]) for r in rows}


@pytest.fixture()
def demo_url(server_url, settings, tmp_path):
    import dataclasses

    from gisgrid.demo import TOWNS, create_demo_users, demo_cases, load_demo
    from tests.conftest import scratch_database

    own = dataclasses.replace(settings, var_dir=str(tmp_path / "var"))
    with scratch_database(server_url, "upgrades", migrated=True) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            load_demo(conn, own, towns=[t for t in TOWNS if t.key == "shatin"], reports_per_town=40)
            create_demo_users(conn, own)
            demo_cases(conn, own)
        engine.dispose()
        yield url


def test_every_migration_down_and_up_with_the_demo_in_it(demo_url, monkeypatch):
    from gisgrid.cli import main

    revs = revisions(demo_url)
    head = revs[-1]
    engine = sa.create_engine(demo_url)
    with engine.connect() as conn:
        at_head = counts(conn)
        owners_at_head = routed(conn)
    assert at_head["case_event"] > 0 and at_head["user_account"] > 0 and len(owners_at_head) == at_head["report"]

    # refused: the demo's cases would be lost; the whole run is rolled back, with the reason and the way on
    with pytest.raises(DataLossRefused, match=r"migration \S+ would delete data: .*\(\d+ (rows|values)\)") as refused:
        downgrade(demo_url, "base")
    assert "Nothing was changed" in str(refused.value)
    monkeypatch.setenv("GISGRID_DATABASE_URL", demo_url)
    out = CliRunner().invoke(main, ["db", "downgrade", "0010"])
    assert out.exit_code == 2 and "--allow-data-loss" in out.output and "gisgrid db backup" in out.output
    with engine.connect() as conn:
        assert version(conn) == head and counts(conn) == at_head

    # allowed: step by step down to the first revision; the first revision's tables keep every row
    for rev in reversed(revs[:-1]):
        with engine.connect() as conn:
            before = counts(conn)
        downgrade(demo_url, rev, allow_data_loss=True)
        with engine.connect() as conn:
            after = counts(conn)
            assert version(conn) == rev
        kept = {t: after[t] for t in before if t in after and t != "report_assignment"}
        assert kept == {t: before[t] for t in kept}, f"rows lost going down to {rev}"
    with engine.connect() as conn:
        assert {t: n for t, n in counts(conn).items() if t in CORE} == {t: at_head[t] for t in CORE}
        assigned = conn.execute(sa.text("SELECT count(*) FROM report WHERE rule IS NOT NULL")).scalar()
    assert assigned == len(owners_at_head)  # the first schema holds each report's assignment in its row

    # and up again, one revision at a time, with that data
    for rev in revs[1:]:
        with engine.connect() as conn:
            before = counts(conn)
        migrate(demo_url, rev)
        with engine.connect() as conn:
            after = counts(conn)
            assert version(conn) == rev
        lost = {t: (before[t], after[t]) for t in before if after[t] < before[t]}
        assert not lost, f"rows lost going up to {rev}: {lost}"
    with engine.connect() as conn:
        assert {t: n for t, n in counts(conn).items() if t in CORE} == {t: at_head[t] for t in CORE}
        # every report still has the owner it was routed to (0004 moves a first-schema assignment into the history)
        assert routed(conn) == owners_at_head
    engine.dispose()
