"""Short runs of street join a neighbouring run of the same street (:func:`absorb_short`).

A run between two crossings shorter than the town's minimum (a jog, a slip
road piece, the stretch between the two carriageways of a dual road) should
not get a chief of its own.  Part of :func:`gisgrid.network.segments.build_segments`;
all lengths are metres in its metric CRS.  Nothing here touches a database or Flask.
"""

from __future__ import annotations

import heapq
import logging
from typing import NamedTuple

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

LOGGER = logging.getLogger(__name__)


class _Join(NamedTuple):
    """One way for a short run to join a run of its street: ``line`` passes through ``joint``."""

    partner: int
    joint: tuple
    line: BaseGeometry
    crossed: tuple  # live runs the line newly crosses, at the joint (none for a clean join)


def absorb_short(segs: pd.DataFrame, min_length_m: float, *, snap_m: float) -> pd.DataFrame:
    """Join every run shorter than ``min_length_m`` to a run of the same street it meets end to end.

    A join passes through its joint, so no other street should pass through
    it too.  Where two dual carriageways cross, their stubs compete for the
    same four joints: taking the most constrained stub first (fewest joins
    left), and for it the joint fewest other stubs need, then a short
    neighbour (two stubs make one segment), then the longest, gives each stub
    a joint of its own where one exists.  A stub left with no such joint joins
    across a street that already passes through its joint: the two
    centerlines then cross at that junction and nowhere else, which costs
    nothing (frontage areas still partition the space) and saves a chief for a
    few metres of street.  A street with no other run (a short lane, a way cut
    off at the edge of the data) and a spur branching off its own street stay
    as they are.

    One join at a time, as each changes the ends and joints the next choice
    depends on; a join only changes the choices of stubs near it, so those
    alone are looked at again (a heap of stubs by how constrained they are,
    each checked afresh before it is joined).  Returns the live runs; two runs
    that now meet end to end with nothing else there are left for the caller
    to join up.
    """
    if min_length_m <= 0 or len(segs) < 2:
        return segs
    geoms = segs["geometry"].to_numpy().copy()
    street = segs["street_id"].to_numpy()
    lengths = shapely.length(geoms)
    alive = np.ones(len(segs), dtype=bool)
    runs = _Runs(geoms, street, alive, snap_m)
    options: dict[int, list[_Join]] = {}
    need: dict[tuple, set] = {}  # joint -> {(stub, partner)}
    partners: dict[int, set] = {}  # run -> stubs that could join it
    version = np.zeros(len(segs), dtype=int)
    heap: list[tuple] = []

    def forget(s: int) -> None:
        for o in options.pop(s, []):
            need[o.joint].discard((s, o.partner))
            partners[o.partner].discard(s)

    def remember(s: int, found: list[_Join]) -> None:
        forget(s)
        version[s] += 1
        if not (alive[s] and lengths[s] < min_length_m and found):
            return
        options[s] = found
        for o in found:
            need.setdefault(o.joint, set()).add((s, o.partner))
            partners.setdefault(o.partner, set()).add(s)
        clean = sum(1 for o in found if not o.crossed)
        heapq.heappush(heap, (clean == 0, clean or len(found), lengths[s], s, version[s]))

    for s in np.flatnonzero(lengths < min_length_m):
        remember(s, runs.joins(s))
    joined = crossed = 0
    while heap:
        *_, i, v = heapq.heappop(heap)
        if v != version[i] or i not in options:
            continue
        found = runs.joins(i)  # checked afresh: a join elsewhere may have taken one of these
        if [o[:2] + (o.crossed,) for o in found] != [o[:2] + (o.crossed,) for o in options[i]]:
            remember(i, found)
            continue
        choices = [o for o in found if not o.crossed] or found
        best = min(
            choices,
            key=lambda o: (
                sum(1 for k, m in need[o.joint] if k not in (i, o.partner) and m != i),  # rivals for the joint
                lengths[o.partner] >= min_length_m,
                -lengths[o.partner],
                o.partner,
            ),
        )
        j = best.partner
        touched = {j} | partners.get(i, set()) | partners.get(j, set()) | {k for k, _ in need[best.joint]}
        for h in best.crossed:
            touched |= {h} | partners.get(h, set())
        forget(i)
        runs.join(i, j, best.line)
        lengths[j] = best.line.length
        joined += 1
        crossed += bool(best.crossed)
        for s in touched - {i}:
            if alive[s] and lengths[s] < min_length_m:
                remember(s, runs.joins(s))
            else:
                forget(s)
    if joined:
        LOGGER.info(
            "joined %d run(s) shorter than %g m to a neighbouring segment of their street (%d across a street "
            "passing through the joint)",
            joined,
            min_length_m,
            crossed,
        )
    return segs.assign(geometry=geoms)[alive].reset_index(drop=True)


class _Runs:
    """The runs of :func:`absorb_short` as they join: geometries, streets, which are live,
    and an index of the runs as they came (a joined run is the union of runs that came)."""

    def __init__(self, geoms: np.ndarray, street: np.ndarray, alive: np.ndarray, snap_m: float):
        self.geoms, self.street, self.alive, self.snap_m = geoms, street, alive, snap_m
        self.tree = shapely.STRtree(geoms.copy())
        self.parent = np.arange(len(geoms))
        self.starts = shapely.get_coordinates(shapely.get_point(geoms, 0))
        self.stops = shapely.get_coordinates(shapely.get_point(geoms, -1))
        self.by_street = pd.Series(np.arange(len(geoms))).groupby(street).apply(np.asarray).to_dict()

    def owner(self, runs: np.ndarray) -> np.ndarray:
        """The live run each run that came is now part of."""
        out = np.empty(len(runs), dtype=int)
        for n, r in enumerate(runs):
            while self.parent[r] != r:
                self.parent[r] = self.parent[self.parent[r]]
                r = self.parent[r]
            out[n] = r
        return out

    def join(self, i: int, j: int, line: BaseGeometry) -> None:
        self.geoms[j] = line
        self.alive[i] = False
        self.parent[i] = j
        self.starts[j] = shapely.get_coordinates(shapely.get_point(line, 0))[0]
        self.stops[j] = shapely.get_coordinates(shapely.get_point(line, -1))[0]

    def joins(self, i: int) -> list[_Join]:
        """Run ``i``'s possible joins: each live run of its street that meets it end to end in one
        line crossing other live runs nowhere but at the joint."""
        ends_i = shapely.get_coordinates(shapely.boundary(self.geoms[i]))
        if len(ends_i) == 0:  # a closed ring
            return []
        others = self.by_street[self.street[i]]
        others = others[self.alive[others] & (others != i)]
        found = []
        for xy in ends_i:
            near = (np.hypot(*(self.starts[others] - xy).T) <= self.snap_m) | (
                np.hypot(*(self.stops[others] - xy).T) <= self.snap_m
            )
            for j in others[near]:
                line = shapely.line_merge(shapely.multilinestrings([self.geoms[j], self.geoms[i]]))
                if line.geom_type != "LineString":
                    continue
                near_runs = np.unique(self.owner(self.tree.query(line)))
                near_runs = near_runs[(near_runs != i) & (near_runs != j)]
                hit = near_runs[shapely.crosses(line, self.geoms[near_runs])]
                joint = shapely.points(xy)
                new = []  # runs the join crosses where neither part crossed them already
                for h in hit:
                    h_line = self.geoms[h]
                    before = shapely.union(
                        _crossings(self.geoms[i], h_line, self.snap_m), _crossings(self.geoms[j], h_line, self.snap_m)
                    )
                    extra = shapely.difference(
                        _crossings(line, h_line, self.snap_m), shapely.buffer(before, self.snap_m)
                    )
                    if not extra.is_empty:
                        new.append((int(h), shapely.hausdorff_distance(extra, joint) <= self.snap_m))
                if not all(at_joint for _h, at_joint in new):
                    continue  # it would cross a street away from the joint
                found.append(_Join(int(j), (round(xy[0], 3), round(xy[1], 3)), line, tuple(h for h, _ in new)))
        return found


def _crossings(a: BaseGeometry, b: BaseGeometry, snap_m: float) -> BaseGeometry:
    """Where lines ``a`` and ``b`` cross: their common points inside both (not where one ends on the other)."""
    if not shapely.crosses(a, b):
        return shapely.Point()
    ends = shapely.buffer(shapely.union(shapely.boundary(a), shapely.boundary(b)), snap_m)
    return shapely.difference(shapely.intersection(a, b), ends)
