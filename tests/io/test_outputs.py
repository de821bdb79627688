"""Every CSV and XLSX gisgrid writes goes through the one writer (gisgrid.io.write): rows in = rows out,
and no text runs as a formula in a clerk's spreadsheet."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from pathlib import Path

import openpyxl
from click.testing import CliRunner

import gisgrid

PACKAGE = Path(gisgrid.__file__).resolve().parent
#: Ways of writing a table other than the one writer.
OTHER_WRITERS = re.compile(
    r"\.to_csv\(|\.to_excel\(|csv\.writer\(|csv\.DictWriter\(|ExcelWriter\(|openpyxl\.Workbook\("
)

#: The issue's file: 14 rows, one of them with a bare carriage return before a formula.
HOSTILE = [
    "Kaivokatu 1",
    "\r=1+1",
    '=HYPERLINK("http://evil.example","详情")',
    "+cmd|' /C calc'!A0",
    "@SUM(A1)",
    "-1+1",
    "Mannerheimintie 5\r\nB",
    'say "hi", then go',
    "学清路\r=1+1",
    "",
    "\t=1",
    "-5",
    "Aleksanterinkatu 52",
    "Kaivokatu 8\n=2",
]


def _hostile_csv() -> bytes:
    """The 14 rows as a spreadsheet program writes them: values with CR or LF quoted (pandas' to_csv does not)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)  # the test's input, not gisgrid's output
    writer.writerow(["编号", "地址"])
    writer.writerows([f"R{i + 1}", text] for i, text in enumerate(HOSTILE))
    return out.getvalue().encode("utf-8")


def test_no_module_writes_a_table_but_the_one_writer():
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "io" / "write.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if OTHER_WRITERS.search(line):
                found.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert found == []


def _records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _safe(value: str) -> bool:
    return not value.startswith(("=", "+", "@", "\t", "\r")) and not re.match(r"-(?![\d.]+$)", value)


def test_geocode_output_keeps_14_rows_and_no_live_formula(tmp_path, db_url, town):
    from gisgrid.cli import main

    src = tmp_path / "hotline.csv"
    src.write_bytes(_hostile_csv())
    for suffix in (".csv", ".xlsx"):
        dst = tmp_path / f"out{suffix}"
        res = CliRunner().invoke(
            main,
            ["geocode", str(src), "--column", "地址", "-o", str(dst), "--quiet"],
            env={"GISGRID_DATABASE_URL": db_url},
        )
        assert res.exit_code == 0, res.output
        if suffix == ".csv":
            header, *rows = _records(dst.read_bytes())
        else:
            header, *rows = [list(r) for r in openpyxl.load_workbook(dst).active.iter_rows(values_only=True)]
        assert len(rows) == 14, suffix
        assert [r[0] for r in rows] == [f"R{i + 1}" for i in range(14)]
        for row in rows:
            assert all(_safe(v) for v in row if isinstance(v, str)), row


def test_the_web_job_result_keeps_14_rows_and_no_live_formula(db_url, town, settings, tmp_path):
    from gisgrid.web import create_app

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "GISGRID_SETTINGS": dataclasses.replace(settings, var_dir=str(tmp_path / "var")),
        }
    )
    client = app.test_client()  # signed in (tests/signin.py)
    body = _hostile_csv()
    res = client.post(
        "/geocode/",
        data={"file": (io.BytesIO(body), "hotline.csv"), "column": "地址", "sheet": ""},
        content_type="multipart/form-data",
    )
    assert res.status_code == 302, res.get_data(as_text=True)
    job = res.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    header, *rows = _records(client.get(f"/geocode/{job}.csv").data)
    assert len(rows) == 14 and all(_safe(v) for row in rows for v in row)
    book = openpyxl.load_workbook(io.BytesIO(client.get(f"/geocode/{job}.xlsx").data))
    cells = list(book.active.iter_rows(values_only=True))[1:]
    assert len(cells) == 14 and all(_safe(v) for row in cells for v in row if isinstance(v, str))
