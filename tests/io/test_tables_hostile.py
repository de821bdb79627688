"""The one table reader on broken CSV: a row it cannot read is reported with its number, the others are read.

A quote opened and never closed made every CSV reader (pyarrow's and Python's)
take the rest of the file as one value: the rows after it vanished without a
word.  Now that row is reported and the rows after it are read as rows.
"""

from __future__ import annotations

import pytest

from gisgrid.io.tables import read_table


def _read(tmp_path, text: str, *, chunk_rows: int | None = None):
    path = tmp_path / "table.csv"
    path.write_bytes(text.encode("utf-8"))
    if chunk_rows is None:
        _table, chunk = read_table(path)
        return chunk.frame, chunk.malformed
    from gisgrid.io.tables import open_table

    frames, malformed = [], {}
    for chunk in open_table(path).chunks(chunk_rows):
        frames.append(chunk.frame)
        malformed.update(chunk.malformed)
    import pandas as pd

    return pd.concat(frames), malformed


@pytest.mark.parametrize("chunk_rows", [None, 1, 2])
def test_a_quote_never_closed_is_one_reported_row(tmp_path, chunk_rows):
    frame, malformed = _read(
        tmp_path,
        '编号,地址,备注\nR1,源禾路,a\nR2,"大埔公路\n二段",b\nR3,"unclosed quote,c\nR4,多石街,d\nR5,x,y\n',
        chunk_rows=chunk_rows,
    )
    assert frame["编号"].tolist() == ["R1", "R2", "R4", "R5"] and list(frame.index) == [1, 2, 4, 5]
    assert frame.loc[2, "地址"] == "大埔公路\n二段"  # a value over two lines, quoted, is one value
    assert list(malformed) == [3] and "never closed" in malformed[3] and "R3" in malformed[3]


def test_a_stray_quote_closed_rows_later_does_not_merge_them(tmp_path):
    frame, malformed = _read(tmp_path, 'id,addr,note\nR1,a,b\nR2,"stray,c\nR3,d,e\nR4,"x",y\nR5,f,g\n')
    assert frame["id"].tolist() == ["R1", "R3", "R4", "R5"] and frame.loc[4, "addr"] == "x"
    assert list(malformed) == [2]


def test_rows_in_are_rows_read_plus_rows_reported(tmp_path):
    lines = ["id,addr,note"] + [f"R{i},a{i},n{i}" for i in range(1, 2001)]
    lines[500] = 'R500,"open,n'  # a quote never closed, deep in a file pyarrow reads
    lines[1500] = "R1500,a,b,c,d"  # too many fields
    frame, malformed = _read(tmp_path, "\n".join(lines) + "\n")
    assert len(frame) + len(malformed) == 2000 and sorted(malformed) == [500, 1500]
    assert frame.loc[501, "id"] == "R501" and frame.loc[2000, "id"] == "R2000"
