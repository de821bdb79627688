"""Imports of an office's real files: long values, Chinese column names, files imported twice, a lost server.

Each row ends up stored (new or updated) or rejected with its number and reason; nothing aborts
the whole file with a database error, and nothing is stored twice.
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gisgrid.db import imports, migrate
from gisgrid.db.imports import import_file
from gisgrid.errors import InputError
from tests.db.test_imports import _count, _jurisdictions

LON, LAT = 114.1994533, 22.3807552


@pytest.fixture()
def shatin_db(scratch_engine, tmp_path):
    with scratch_engine.begin() as conn:
        import_file(conn, "jurisdictions", _jurisdictions(tmp_path))
        conn.execute(
            sa.text("INSERT INTO category (code, name, kind, deadline_hours) VALUES ('0101','暴露垃圾','event',4)")
        )
    return scratch_engine


def _reports(path, **columns):
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame({"lon": [LON] * n, "lat": [LAT] * n, "reported_at": ["2026-11-01 08:00"] * n, **columns})
    frame.to_csv(path, index=False)
    return path


def _stored(engine):
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT external_id, source, address, status FROM report ORDER BY external_id, id")
        ).all()


def test_too_long_values_reject_their_rows_and_the_good_rows_load(shatin_db, tmp_path):
    path = _reports(
        tmp_path / "reports.csv",
        id=["R1", "R" * 65, "R3", "R4"],
        source=["12345", "12345", "s" * 41, "12345"],
        description=["ok", "ok", "ok", "长" * 10_001],
    )
    with shatin_db.begin() as conn:
        summary = import_file(conn, "reports", path, crs_name="EPSG:4326")
    assert summary.inserted == 1 and summary.inserted + len(summary.rejected) == summary.total == 4
    reasons = {p.row: p.reason for p in summary.rejected}
    assert reasons[2] == "'id' has 65 characters; at most 64 fit"
    assert reasons[3] == "'source' has 41 characters; at most 40 fit"
    assert reasons[4] == "'description' has 10,001 characters; at most 10,000 fit"
    assert [r.external_id for r in _stored(shatin_db)] == ["R1"]


def test_a_long_phone_rejects_its_owner_row(shatin_db, tmp_path):
    path = tmp_path / "owners.csv"
    pd.DataFrame(
        {
            "target_type": ["jurisdiction", "jurisdiction"],
            "target": ["810006", "810006001"],
            "role": ["总街长", "一级街长"],
            "姓名": ["王伟", "张三"],
            "电话": ["13800138000", "1" * 41],
        }
    ).to_csv(path, index=False)
    with shatin_db.begin() as conn:
        summary = import_file(conn, "owners", path)
    assert summary.inserted == 1 and [(p.row, p.reason) for p in summary.rejected] == [
        (2, "'电话' has 41 characters; at most 40 fit")
    ]
    with shatin_db.connect() as conn:
        assert conn.execute(sa.text("SELECT name, phone FROM person")).all() == [("王伟", "13800138000")]


def test_chinese_column_names_are_read_and_unused_columns_named(shatin_db, tmp_path):
    path = tmp_path / "hotline.csv"
    pd.DataFrame(
        {
            "编号": ["H1", "H2"],
            "经度": [LON, LON],
            "纬度": [LAT, LAT],
            "类别": ["暴露垃圾", "0101"],
            "时间": ["2026-11-01 08:00", "2026-11-02 09:30"],
            "地点": ["圓洲角路13号", "多石街23号"],
            "描述": ["垃圾", "占道"],
            "来源": ["12345", "12345"],
            "备注": ["", "复查"],
        }
    ).to_csv(path, index=False)
    with shatin_db.begin() as conn:
        summary = import_file(conn, "reports", path, crs_name="EPSG:4326")
        stored = conn.execute(
            sa.text("SELECT external_id, address, description, source, category_id IS NOT NULL FROM report ORDER BY 1")
        ).all()
    assert summary.inserted == 2 and not summary.rejected
    assert stored == [("H1", "圓洲角路13号", "垃圾", "12345", True), ("H2", "多石街23号", "占道", "12345", True)]
    assert summary.renamed == {
        "编号": "id",
        "类别": "category",
        "时间": "reported_at",
        "地点": "address",
        "描述": "description",
        "来源": "source",
    }
    assert summary.unused == ("备注",)
    lines = "\n".join(summary.lines())
    assert "编号 → id" in lines and "columns not used: 备注" in lines


def test_english_column_names_and_a_column_named_like_the_field_wins(shatin_db, tmp_path):
    path = _reports(
        tmp_path / "reports.csv",
        ID=["E1"],
        Location=["Yuen Chau Kok Road 13"],
        address=["圓洲角路13号"],
        Details=["litter"],
    )
    with shatin_db.begin() as conn:
        summary = import_file(conn, "reports", path, crs_name="EPSG:4326")
        stored = conn.execute(sa.text("SELECT external_id, address, description FROM report")).all()
    assert stored == [("E1", "圓洲角路13号", "litter")]
    assert summary.unused == ("Location",)


def test_an_id_column_by_another_name_is_checked_for_repeats(shatin_db, tmp_path):
    path = _reports(tmp_path / "reports.csv", 编号=["A", "B", "A"])
    with shatin_db.begin() as conn:
        summary = import_file(conn, "reports", path, crs_name="EPSG:4326")
    assert summary.inserted == 2 and [(p.row, p.reason) for p in summary.rejected] == [
        (3, "duplicate 编号 'A': same as row 1")
    ]


def test_importing_the_same_reports_again_updates_them(shatin_db, tmp_path):
    first = _reports(
        tmp_path / "july.csv", id=["R1", "R2", "R3"], source=["12345", "12345", "巡查"], address=["a1", "a2", "a3"]
    )
    with shatin_db.begin() as conn:
        assert import_file(conn, "reports", first, crs_name="EPSG:4326").inserted == 3
    with shatin_db.begin() as conn:  # R1 taken up, its deadline extended; R2 still waits with a deadline set
        conn.execute(sa.text("UPDATE report SET status = 'dispatched' WHERE external_id = 'R1'"))
        conn.execute(sa.text("UPDATE report SET due_at = '2030-01-01T00:00Z' WHERE external_id IN ('R1', 'R2')"))

    # the same file again: recognised by its bytes, nothing imported, said so
    with shatin_db.begin() as conn:
        again = import_file(conn, "reports", first, crs_name="EPSG:4326")
    assert again.previous is not None and again.inserted == again.updated == 0
    assert "july.csv was imported before" in again.lines()[0] and "--again" in again.lines()[0]
    assert _count(shatin_db, "report") == 3

    # a later export of the same hotline: R1 and R2 corrected, R4 new, R3 under another source is another report
    later = _reports(
        tmp_path / "july-2.csv",
        id=["R1", "R2", "R4", "R3"],
        source=["12345", "12345", "12345", "12345"],
        address=["b1", "b2", "b4", "b3"],
    )
    with shatin_db.begin() as conn:
        summary = import_file(conn, "reports", later, crs_name="EPSG:4326")
    assert (summary.inserted, summary.updated, summary.rejected) == (2, 2, [])
    assert "4 of 4 rows imported (2 new, 2 updated)" in summary.lines()[0]
    assert _stored(shatin_db) == [
        ("R1", "12345", "b1", "dispatched"),  # the file has no status: the workflow's is kept
        ("R2", "12345", "b2", "reported"),
        ("R3", "巡查", "a3", "reported"),
        ("R3", "12345", "b3", "reported"),
        ("R4", "12345", "b4", "reported"),
    ]

    with shatin_db.connect() as conn:  # the case's own deadline is kept once it is taken up
        due = dict(
            conn.execute(sa.text("SELECT external_id, due_at IS NOT NULL FROM report WHERE source = '12345'")).all()
        )
    assert due["R1"] is True and due["R2"] is False  # R2 has no category: no deadline, as when first imported

    # --again: the same bytes imported anyway update the same reports
    with shatin_db.begin() as conn:
        forced = import_file(conn, "reports", later, crs_name="EPSG:4326", again=True)
    assert (forced.inserted, forced.updated) == (0, 4) and _count(shatin_db, "report") == 5


def test_a_file_imported_into_another_layer_or_rolled_back_is_not_taken_as_imported(shatin_db, tmp_path):
    path = _reports(tmp_path / "reports.csv", id=["R1", "R2"], category=["0101", "nonsense"])
    with pytest.raises(InputError, match="--strict"):
        with shatin_db.begin() as conn:
            import_file(conn, "reports", path, crs_name="EPSG:4326", strict=True)
    with shatin_db.connect() as conn:
        logged = conn.execute(sa.text("SELECT layer FROM import_log")).scalars().all()
    assert _count(shatin_db, "report") == 0 and logged == ["jurisdictions"]
    with shatin_db.begin() as conn:  # the strict import left nothing behind, its record neither
        summary = import_file(conn, "reports", path, crs_name="EPSG:4326")
    assert summary.previous is None and summary.inserted == 1 and [p.row for p in summary.rejected] == [2]
    with shatin_db.begin() as conn:
        assert import_file(conn, "reports", path, crs_name="EPSG:4326", strict=True).previous is not None


def test_the_database_going_away_mid_import_is_one_line(shatin_db, scratch_url, tmp_path, monkeypatch):
    from gisgrid.cli import main

    migrate(scratch_url)
    path = _reports(tmp_path / "reports.csv", id=["R1", "R2"])
    real = imports._Reports.store

    def server_gone(self, rows, **kwargs):
        # the server ends this session (as a restart or a killed backend does) before the rows are written
        self.conn.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return real(self, rows, **kwargs)

    monkeypatch.setattr(imports._Reports, "store", server_gone)
    res = CliRunner().invoke(
        main,
        ["import", "reports", str(path), "--crs", "EPSG:4326"],
        env={"GISGRID_DATABASE_URL": scratch_url},
    )
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "OperationalError" not in res.output
    (line,) = res.output.strip().splitlines()
    assert line.startswith("error: the database stopped answering") and "the unfinished work was not stored" in line
    assert _count(shatin_db, "report") == 0
