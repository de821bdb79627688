"""Rows of a frame as plain Python values: a missing value is None.

pandas marks a missing value as NaN (NaT for times), also in text columns: a page shows it as "nan" and
a database driver stores it as a number.  Everything that hands a frame's rows on — to a template, to an
INSERT — goes through :func:`plain` or :func:`records`.
"""

from __future__ import annotations

import pandas as pd


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with object columns and None wherever a value is missing."""
    return frame.astype(object).where(frame.notna(), None)


def records(frame: pd.DataFrame) -> list[dict]:
    """The rows of ``frame`` as dicts, None wherever a value is missing."""
    return plain(frame).to_dict("records")
