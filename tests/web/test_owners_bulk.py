"""Many appointments from a sheet: upload, a preview naming every bad row, confirm; each one in the audit log."""

from __future__ import annotations

import datetime as dt
import io
import re

import openpyxl
import sqlalchemy as sa

HEADER = ["类型", "单元", "角色", "人员编号", "姓名", "部门", "起始日期"]


def _xlsx(rows: list[list]) -> io.BytesIO:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    buf.seek(0)
    return buf


def _upload(client, rows, name="任命.xlsx"):
    return client.post("/owners/bulk", data={"file": (_xlsx(rows), name)}, content_type="multipart/form-data")


def _state(engine, segs):
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT id, valid_to FROM owner_assignment WHERE target_type = 'segment' AND target_id = ANY(:s)"),
            {"s": segs},
        ).all()


def test_a_manager_appoints_from_a_sheet_good_rows_go_through_bad_rows_are_named(app, users, engine):
    manager = app.test_client(user="manager")
    day = dt.date.today()
    with engine.begin() as conn:
        mine = [
            r[0]
            for r in conn.execute(
                sa.text("""SELECT g.id FROM segment g JOIN street s ON s.id = g.street_id JOIN jurisdiction j
                           ON j.id = s.jurisdiction_id WHERE j.code LIKE '110108%' ORDER BY g.id DESC LIMIT 3""")
            )
        ]
        other = conn.execute(
            sa.text("""SELECT g.id FROM segment g JOIN street s ON s.id = g.street_id JOIN jurisdiction j
                       ON j.id = s.jurisdiction_id WHERE j.code NOT LIKE '110108%' ORDER BY g.id LIMIT 1""")
        ).scalar()
        twins = [
            conn.execute(
                sa.text("INSERT INTO person (name, phone) VALUES ('批量同名', :p) RETURNING id"), {"p": p}
            ).scalar()
            for p in ("331", "332")
        ]
        department = conn.execute(sa.text("SELECT code FROM department ORDER BY id LIMIT 1")).scalar()
        before = _state(engine, mine)
    rows = [
        ["路段", mine[0], "段长", twins[1], None, None, day.isoformat()],  # 1: good, by person id
        ["路段", other, "段长", twins[0], None, None, None],  # 2: another county's segment
        ["路段", mine[2], "段长", None, "批量同名", None, None],  # 3: a name two people bear
        ["网格", "NOPE", "段长", twins[0], None, None, None],  # 4: role and cell both wrong
        ["路段", mine[1], "段长", None, None, department, "2026-02-30"],  # 5: no such day
        ["路段", mine[1], "段长", None, None, department, None],  # 6: good, a department
        ["路段", mine[0], "段长", twins[0], None, None, None],  # 7: row 1's unit and role again
    ]
    try:
        preview = _upload(manager, rows)
        page = preview.get_data(as_text=True)
        assert preview.status_code == 200, page[:800]
        assert re.findall(r"\d+", _text(page, "gg-bulk-counts")) == ["7", "2", "5"]  # read, ready, with problems
        problems = dict(re.findall(r'<tr data-row="(\d+)"><td>\d+</td><td>([^<]*)</td>', page))
        assert sorted(int(r) for r in problems) == [2, 3, 4, 5, 7], problems
        # the reasons in the page's language (zh-CN), the values as written
        assert f"没有 segment &#39;{other}&#39;" in problems["2"]  # not theirs: as if it did not exist
        assert f"人员编号 {twins[0]}, {twins[1]}" in problems["3"]
        assert "与第 1 行的单元和职务相同" in problems["7"]
        assert _state(engine, mine) == before, "the preview writes nothing"
        token = re.search(r'action="/owners/bulk/([0-9a-f]{32})"', page).group(1)
        # the sheet is its uploader's: another manager (here the admin) cannot confirm it
        assert app.test_client(user="admin").post(f"/owners/bulk/{token}").status_code == 404

        done = manager.post(f"/owners/bulk/{token}")
        page = done.get_data(as_text=True)
        assert done.status_code == 200, page[:800]
        assert re.findall(r"\d+", _text(page, "gg-bulk-counts")) == ["7", "2", "5"]  # rows in = appointed + reported
        with engine.connect() as conn:
            owners = dict(
                conn.execute(
                    sa.text("""SELECT target_id, coalesce(person_id, -department_id) FROM owner_assignment
                               WHERE target_type = 'segment' AND target_id = ANY(:s) AND role = '段长'
                               AND valid_from <= :d AND (valid_to IS NULL OR :d < valid_to)"""),
                    {"s": mine, "d": day},
                ).all()
            )
            log = conn.execute(
                sa.text("""SELECT action, actor_name, target_id FROM audit_log
                           WHERE action LIKE 'owner.%' ORDER BY id DESC LIMIT 3""")
            ).all()
        assert owners[mine[0]] == twins[1] and owners[mine[1]] < 0
        assert [r.action for r in log] == ["owner.bulk", "owner.appoint", "owner.appoint"]
        assert {r.actor_name for r in log} == {users["manager"]["name"]}  # the session's author, each one
        assert manager.post(f"/owners/bulk/{token}").status_code == 404  # confirmed once
    finally:  # the shared sample town as it was
        with engine.begin() as conn:
            conn.execute(
                sa.text("""DELETE FROM owner_assignment WHERE target_type = 'segment' AND target_id = ANY(:s)
                           AND id <> ALL(:ids)"""),
                {"s": mine, "ids": [r.id for r in before]},
            )
            for r in before:
                conn.execute(
                    sa.text("UPDATE owner_assignment SET valid_to = :t WHERE id = :i"), {"t": r.valid_to, "i": r.id}
                )


def _text(page: str, element_id: str) -> str:
    return re.search(rf'id="{element_id}"[^>]*>(.*?)</', page, re.S).group(1)


def test_a_sheet_that_cannot_be_used_is_refused_in_the_pages_language(app, users):
    manager = app.test_client(user="manager")
    bad = manager.post(
        "/owners/bulk", data={"file": (io.BytesIO(b"a,b\n1,2\n"), "x.csv")}, content_type="multipart/form-data"
    )
    assert bad.status_code == 400 and "x.csv" in bad.get_data(as_text=True)
    wrong = manager.post(
        "/owners/bulk", data={"file": (io.BytesIO(b"hello"), "x.pdf")}, content_type="multipart/form-data"
    )
    assert wrong.status_code == 400 and "gg-bulk-error" in wrong.get_data(as_text=True)
    assert app.test_client(user="duanzhang").get("/owners/bulk").status_code == 403
