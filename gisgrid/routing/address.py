"""The address-street rule: a report located from a written address goes to a segment of the street it names.

Frontage duty (门前三包) follows the street an address is on: a problem reported
at "Kalevankatu 14" belongs to a Kalevankatu segment chief.  A point placed
from a written address lies on or near the centerline of its street, and near
a corner it can fall inside the frontage area of the *cross* street; routing it
by the polygon that holds it would throw away the most reliable fact of the
row, the street it names.  A GPS point (coordinates only) names no street and
keeps the polygon rules of :mod:`gisgrid.routing.index`.

The rule (``address_street``, tried after a category's department route and
before the frontage areas):

* **one street S** (a house number on S, or S alone): the segment of S whose
  centerline is nearest the located point, when it lies within the rule set's
  ``address_tolerance_m``.  S wins even where the point sits inside another
  street's frontage area.  An interpolated point stands at its house number's
  position along S, so the nearest segment of S is the one the number falls on.
* **a crossing** (A与B交叉口, "A / B"): the segments of A and of B within the
  tolerance of the crossing point; which street answers is the deployment's
  ``intersection_rule``:

  - ``"first_written"`` (default): A, the street written first; B only when no
    segment of A is within the tolerance;
  - ``"road_class"``: the street whose segment at the junction has the higher
    road class (:data:`gisgrid.config.ROAD_CLASS_ORDER`; ``*_link`` ranks as
    its road); equal classes: the street written first.

* **no street named** (a landmark, a jurisdiction, a point placed by hand,
  coordinates): the rule does not apply; a landmark goes to the frontage area
  that holds it, as any point.
* A named street with no segment within the tolerance (the address was placed
  far from it, or the street has no segments) falls through to the other rules.

Ties, as everywhere in routing: the nearest centerline (distances compared to
the micrometre), then the lowest segment id.  At a junction both segments of A
that meet there are at distance 0, so the lower id answers.

Street names are compared by :func:`street_name_key` (Unicode NFKC, case,
spaces and punctuation ignored): "Kalevankatu", "KALEVANKATU" and
"Kalevan katu" name one street.  Pure module: numpy, pandas and shapely only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from gisgrid.config import ROAD_CLASS_ORDER

#: The rule's name in routing results (``rule`` column) and explanations.
ADDRESS_RULE = "address_street"
#: Which street of a written crossing answers (:class:`gisgrid.routing.rules.RuleSet` ``intersection_rule``).
INTERSECTION_RULES = ("first_written", "road_class")

_PUNCT_RE = re.compile(r"[\W_]+", re.UNICODE)


def street_name_key(name: Any) -> str:
    """The key two spellings of one street name share: NFKC, case-folded, no spaces or punctuation.

    ``None``, NaN and blank text give ``""`` (no street).
    """
    if name is None or (isinstance(name, float) and name != name) or name is pd.NA:
        return ""
    return _PUNCT_RE.sub("", unicodedata.normalize("NFKC", str(name)).casefold())


def road_class_rank(road_class: Any) -> int:
    """Position of a road class in :data:`gisgrid.config.ROAD_CLASS_ORDER` (0 = highest); unknown last."""
    text = str(road_class or "").strip().lower()
    text = text.removesuffix("_link")
    return ROAD_CLASS_ORDER.index(text) if text in ROAD_CLASS_ORDER else len(ROAD_CLASS_ORDER)


class StreetNames:
    """The streets of an index by name: each segment's street code, and written names → codes.

    Parameters
    ----------
    segment_streets : sequence of str or None
        The street name of each segment, in the index's segment order (None:
        unnamed, never an address street).
    """

    def __init__(self, segment_streets: Sequence[Any]):
        keys = pd.Series([street_name_key(n) for n in segment_streets], dtype=object)
        codes, uniques = pd.factorize(keys.where(keys != "", None), use_na_sentinel=True)
        self.segment_street = np.asarray(codes, dtype=np.int64)  # -1: unnamed
        self._keys = pd.Index(uniques, dtype=object)
        names = list(segment_streets)
        code, position = np.unique(self.segment_street, return_index=True)
        #: Display name of each street code (its first segment's spelling).
        self.names: list[str] = [str(names[i]) for c, i in zip(code, position) if c >= 0]
        # the segments of each street, as one sorted array and offsets into it (street k: _order[_start[k]:_start[k + 1]])
        named = np.flatnonzero(self.segment_street >= 0)
        self._order = named[np.argsort(self.segment_street[named], kind="stable")]
        self._start = np.searchsorted(self.segment_street[self._order], np.arange(len(self.names) + 1))

    def segment_count(self, codes: np.ndarray) -> np.ndarray:
        """How many segments each street code has (0 for -1)."""
        codes = np.asarray(codes, dtype=np.int64)
        ok = codes >= 0
        out = np.zeros(len(codes), dtype=np.int64)
        out[ok] = self._start[codes[ok] + 1] - self._start[codes[ok]]
        return out

    def pairs(self, points: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every (point, segment) pair of each point with each segment of its street code, vectorised."""
        points = np.asarray(points, dtype=np.int64)
        codes = np.asarray(codes, dtype=np.int64)
        count = self.segment_count(codes)
        total = int(count.sum())
        first = np.repeat(self._start[np.maximum(codes, 0)], count)
        within = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
        return np.repeat(points, count), self._order[first + within]

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, written: Any) -> np.ndarray:
        """Street code of each written name (-1: blank, or a name no segment carries); vectorised over
        the distinct names."""
        values = pd.Series(written, dtype=object) if not isinstance(written, pd.Series) else written.astype(object)
        found, uniques = pd.factorize(values, use_na_sentinel=True)
        if not len(uniques):
            return np.full(len(values), -1, dtype=np.int64)
        codes = self._keys.get_indexer([street_name_key(u) for u in uniques]).astype(np.int64)
        return np.where(found >= 0, codes[np.maximum(found, 0)], -1)


def pick_address_segments(
    point: np.ndarray,
    segment: np.ndarray,
    distance: np.ndarray,
    *,
    first: np.ndarray,
    second: np.ndarray,
    segment_street: np.ndarray,
    segment_rank: np.ndarray,
    segment_id: np.ndarray,
    tolerance_m: float,
    intersection_rule: str = "first_written",
    tie_decimals: int = 6,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The address-street rule on candidate (point, segment) pairs, vectorised.

    Parameters
    ----------
    point, segment : numpy.ndarray of int
        Candidate pairs: positions of points and of segments whose centerline
        lies within the tolerance of the point (an STRtree ``dwithin`` query).
    distance : numpy.ndarray of float
        Distance of each pair, metres.
    first, second : numpy.ndarray of int
        Per point: street code of the street named (the first one written of a
        crossing) and of the second street of a crossing; -1 where none.
    segment_street, segment_rank, segment_id : numpy.ndarray of int
        Per segment: street code (-1 unnamed), road-class rank
        (:func:`road_class_rank`) and id.
    tolerance_m : float
        Largest distance from the point to a centerline of the named street, metres.
    intersection_rule : {'first_written', 'road_class'}
    tie_decimals : int
        Distances are compared rounded to this many decimals of a metre.

    Returns
    -------
    points, segments : numpy.ndarray of int
        One pair per point that the rule routes: the point and its segment.
    crossing : numpy.ndarray of bool
        Whether that point's address is a crossing (two streets named).
    """
    if intersection_rule not in INTERSECTION_RULES:
        raise ValueError(f"intersection_rule must be one of {', '.join(INTERSECTION_RULES)}, not {intersection_rule!r}")
    street = segment_street[segment]
    a, b = first[point], second[point]
    which = np.where((street >= 0) & (street == a), 0, np.where((street >= 0) & (street == b), 1, -1))
    dq = np.round(distance, tie_decimals)
    keep = (which >= 0) & (dq <= tolerance_m)
    point, segment, which, dq = point[keep], segment[keep], which[keep], dq[keep]
    if not point.size:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=bool)
    rank = segment_rank[segment] if intersection_rule == "road_class" else np.zeros(point.size, dtype=np.int64)
    # per point, the first pair by (road class rank, street written first, distance, segment id)
    order = np.lexsort((segment_id[segment], dq, which, rank, point))
    g = point[order]
    head = np.ones(len(g), dtype=bool)
    head[1:] = g[1:] != g[:-1]
    chosen = order[head]
    return point[chosen], segment[chosen], second[point[chosen]] >= 0


__all__ = [
    "ADDRESS_RULE",
    "INTERSECTION_RULES",
    "StreetNames",
    "pick_address_segments",
    "road_class_rank",
    "street_name_key",
]
