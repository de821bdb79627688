"""Problems of single rows, collected on whole arrays and reported with a code and a reason.

Every batch entry point (import, assign, geocode) keeps the good rows and
reports each bad row; :class:`RowProblems` is where the reasons of a batch are
gathered, by position, without stopping at the first one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class RowProblems:
    """An error code and readable messages per row position.

    A row with several problems keeps the code that comes first in ``codes``
    (the most basic problem) and every message, joined by ``"; "``.

    Parameters
    ----------
    n : int
        Number of rows.
    codes : sequence of str
        The codes that can be added, most basic first.
    """

    def __init__(self, n: int, codes: Sequence[str]):
        self.n = n
        self.labels = tuple(codes)
        self._rank = {code: i for i, code in enumerate(self.labels)}
        self.code = np.full(n, -1, dtype=np.int8)
        self.message: np.ndarray | None = None

    def add(self, where: np.ndarray, code: str, messages: str | Sequence[str]) -> None:
        """Record ``code`` for the rows at ``where`` (a boolean mask or positions), one message each or one for all."""
        where = np.asarray(where)
        positions = np.flatnonzero(where) if where.dtype == bool else where.astype(np.int64)
        if positions.size == 0:
            return
        rank = self._rank[code]
        current = self.code[positions]
        self.code[positions] = np.where((current < 0) | (current > rank), rank, current)
        if self.message is None:
            self.message = np.full(self.n, None, dtype=object)
        if isinstance(messages, str):
            messages = [messages] * positions.size
        old = self.message[positions]
        self.message[positions] = [m if o is None else f"{o}; {m}" for o, m in zip(old, messages)]

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of the rows without a problem."""
        return self.code < 0

    def codes(self) -> np.ndarray:
        """The code of each row, None where there is none."""
        labels = np.array([*self.labels, None], dtype=object)
        return labels[self.code]  # -1 picks the trailing None

    def messages(self) -> np.ndarray:
        """The messages of each row, None where there are none."""
        return self.message if self.message is not None else np.full(self.n, None, dtype=object)

    def reasons(self) -> dict[int, str]:
        """Position → messages of every row with a problem."""
        return {int(i): str(self.messages()[i]) for i in np.flatnonzero(~self.ok)}


def text_lengths(values) -> np.ndarray:
    """Characters of each text value (0 for missing values and anything that is not text), as integers."""
    import pandas as pd  # noqa: PLC0415 - this module otherwise needs numpy only

    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    if series.dtype == object:
        is_text = series.map(lambda v: isinstance(v, str), na_action="ignore").fillna(False).astype(bool)
        series = series.where(is_text).astype(object)
        return series.map(len, na_action="ignore").fillna(0).to_numpy(dtype=np.int64)
    if not pd.api.types.is_string_dtype(series.dtype):
        return np.zeros(len(series), dtype=np.int64)
    return series.str.len().fillna(0).to_numpy(dtype=np.int64)


def check_text(frame, problems: RowProblems, code: str, *, limit: int, limits=None) -> None:
    """Record ``code`` for each row with a text cell longer than its column allows, or holding a NUL character.

    The one rule for text cells of every batch input (import, assign, geocode,
    the web upload): PostgreSQL text cannot hold NUL (0x00), and no cell may
    be longer than ``limit`` characters, or than a narrower limit of its column.

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows, in the order of ``problems``.
    problems : RowProblems
    code : str
        One of ``problems``' codes (``"bad_text"``).
    limit : int
        Characters any text cell may hold (:attr:`gisgrid.config.TextLimits.text`).
    limits : mapping of str to int, optional
        Narrower limits of single columns (a database column of fixed width:
        an id of 64 characters, a phone number of 40).
    """
    import pandas as pd  # noqa: PLC0415 - this module otherwise needs numpy only

    limits = dict(limits or {})
    for position, column in enumerate(frame.columns):
        values = frame.iloc[:, position]
        most = min(limit, limits.get(str(column), limit))
        lengths = text_lengths(values)
        over = np.flatnonzero(lengths > most)
        if over.size:
            problems.add(
                over, code, [f"{str(column)!r} has {n:,} characters; at most {most:,} fit" for n in lengths[over]]
            )
        if lengths.any():
            text = values.astype(object).where(pd.Series(lengths > 0, index=values.index))
            nul = np.flatnonzero(
                text.map(lambda v: isinstance(v, str) and "\x00" in v, na_action="ignore").fillna(False)
            )
            if nul.size:
                problems.add(nul, code, f"{str(column)!r} holds a NUL character (0x00), which no text can store")
