"""Natural order of names shown to people: 学院路第2段 before 学院路第10段, Mannerheimintie (2) before (10).

One rule (natsort's), used wherever segment, cell or unit names are listed.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from natsort import natsort_keygen, natsorted

_KEY = natsort_keygen()


def natural_key(name) -> tuple:
    """Sort key of one name (None and NaN sort first, as empty text)."""
    return _KEY("" if name is None or (isinstance(name, float) and name != name) else str(name))


def natural_sorted(names: Iterable) -> list:
    return natsorted(names, key=natural_key)


def sort_frame(frame: pd.DataFrame, by: list[str] | str, *, natural: Iterable[str] = ()) -> pd.DataFrame:
    """``frame`` sorted by the columns ``by``; the columns named in ``natural`` compare in natural order."""
    by = [by] if isinstance(by, str) else list(by)
    natural = set(natural)

    def key(column: pd.Series) -> pd.Series:
        return column.map(natural_key) if column.name in natural else column

    return frame.sort_values(by, key=key, kind="stable")
