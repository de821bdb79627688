"""Property tests of the one CSV/XLSX writer: any text comes back as written, or neutralised; rows in = rows out."""

from __future__ import annotations

import csv
import io
import re

import openpyxl
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gisgrid.io.write import FORMULA_TRIGGERS, TableWriter, csv_bytes, neutralise_formula

#: Text that has broken writers: formula starts, quotes, delimiters, CR and LF alone and together, BOMs, NUL.
NASTY = [
    "=",
    "+",
    "-",
    "@",
    "\t",
    "\r",
    "\n",
    "\r\n",
    '"',
    "'",
    ",",
    ";",
    "|",
    "1",
    "-1",
    "1e5",
    "\ufeff",
    "学清路",
    " ",
]
cells = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.lists(st.sampled_from(NASTY), max_size=8).map("".join),
)


def frames(dtype):
    return st.integers(0, 3).flatmap(
        lambda width: st.lists(st.lists(cells, min_size=width, max_size=width), max_size=12).map(
            lambda rows: (
                pd.DataFrame(rows, columns=[f"c{i}" for i in range(width)], dtype=dtype)
                if width
                else pd.DataFrame(index=range(len(rows)))
            )
        )
    )


def _expected(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    return neutralise_formula(value)


def _neutralised_or_unchanged(value: str, got: str) -> bool:
    if got == value:
        return not value.startswith(FORMULA_TRIGGERS) or neutralise_formula(value) == value
    return got == "'" + value and value.startswith(FORMULA_TRIGGERS)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(frames(object), frames("string")), st.integers(1, 5))
def test_csv_gives_back_every_row_and_cell(frame, chunk):
    data = b"".join(csv_bytes(frame.iloc[i : i + chunk], header=i == 0) for i in range(0, max(len(frame), 1), chunk))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    if frame.shape[1] == 0:
        return  # no columns: nothing to write per row
    header, body = rows[0], rows[1:]
    assert header == list(frame.columns)
    assert len(body) == len(frame)  # rows in = rows out, whatever CR, LF or quote a value holds
    for record, (_, source) in zip(body, frame.iterrows()):
        for got, value in zip(record, source):
            assert got == _expected(value)
            if isinstance(value, str):
                assert _neutralised_or_unchanged(value, got)


_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _in_xlsx(value):
    """What a spreadsheet gives back: XML cannot hold control characters, and reads CR and CR LF as LF."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    text = neutralise_formula(_XML_ILLEGAL.sub("", value)).replace("\r\n", "\n").replace("\r", "\n")
    return text or None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(frames(object), frames("string")))
def test_xlsx_gives_back_every_row_and_cell_as_text(frame):
    if frame.shape[1] == 0:
        return
    buffer = io.BytesIO()
    with TableWriter(buffer, kind="xlsx") as out:
        out.write(frame.iloc[: len(frame) // 2])
        out.write(frame.iloc[len(frame) // 2 :])
    buffer.seek(0)
    rows = list(openpyxl.load_workbook(buffer).active.iter_rows(values_only=True))
    assert list(rows[0]) == list(frame.columns)
    expected = [tuple(_in_xlsx(v) for v in source) for _, source in frame.iterrows()]
    # XML parsers differ on a stored CR (openpyxl's own reads it as LF, lxml keeps it): line ends compared as LF
    got = [tuple(v.replace("\r\n", "\n").replace("\r", "\n") if isinstance(v, str) else v for v in r) for r in rows[1:]]
    # a workbook ends at its last filled row: blank rows at its end may not be rows of it
    assert len(got) <= len(expected) and all(not any(r) for r in expected[len(got) :])
    assert got == expected[: len(got)]
