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
