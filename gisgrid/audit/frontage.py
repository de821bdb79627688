"""The frontage part of the coverage audit (门前三包), pure: what the agreements and frontages leave undone.

* ``frontage_gaps``: stretches of shopping streets' frontage (``street.commercial``)
  that no unit answers for, at least ``frontage_gap_min_m`` long, per side;
* ``agreements``: units whose agreement has expired, ends within
  ``frontage_expiry_days``, or was never signed;
* ``frontage_overlaps``: pairs of units whose frontages overlap (a planner's
  edit or an import that placed two units on one shop front).

Metres in each town's metric CRS (:mod:`gisgrid.crs`); geometries out in EPSG:4326.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd

from gisgrid.routing.frontage import agreement_state

AGREEMENT_PROBLEMS = ("expired", "expiring", "none")


@dataclass
class FrontageAudit:
    frontage_gaps: gpd.GeoDataFrame
    agreements: pd.DataFrame
    frontage_overlaps: gpd.GeoDataFrame
    today: dt.date
    params: dict = field(default_factory=dict)

    def summary_lines(self) -> list[str]:
        a = self.agreements["state"].value_counts() if len(self.agreements) else pd.Series(dtype=int)
        return [
            f"frontage nobody answers for on shopping streets: {len(self.frontage_gaps)} stretches, "
            f"{self.frontage_gaps['length_m'].sum():.0f} m" if len(self.frontage_gaps) else
            "frontage nobody answers for on shopping streets: none",
            f"frontage agreements: {int(a.get('expired', 0))} expired, {int(a.get('expiring', 0))} expiring within "
            f"{self.params.get('expiry_days')} days, {int(a.get('none', 0))} units without one",
            f"overlapping frontages: {len(self.frontage_overlaps)} pairs",
        ]  # fmt: skip

    def to_tables(self) -> dict[str, pd.DataFrame]:
        def plain(frame):
            out = pd.DataFrame(frame.drop(columns="geometry", errors="ignore")).copy()
            if isinstance(frame, gpd.GeoDataFrame) and len(frame):
                where = frame.geometry.representative_point()
                out["lon"], out["lat"] = where.x.round(7).to_numpy(), where.y.round(7).to_numpy()
            return out.reset_index(drop=True)

        return {
            "frontage_gaps": plain(self.frontage_gaps),
            "agreements": plain(self.agreements),
            "frontage_overlaps": plain(self.frontage_overlaps),
        }


def agreement_problems(units: pd.DataFrame, today: dt.date, *, expiry_days: int) -> pd.DataFrame:
    """Units (``unit_id``, ``name``, ``street``, ``segment``, ``signed_on``, ``expires_on``) whose agreement is a
    problem on ``today``, with ``state`` and ``days_left``; expired first, then by expiry."""
    states = [
        agreement_state(s, e, today, expiry_days=expiry_days) for s, e in zip(units["signed_on"], units["expires_on"])
    ]
    out = units.assign(state=states)
    out = out[out["state"].isin(AGREEMENT_PROBLEMS)].copy()
    out["days_left"] = [
        (pd.Timestamp(e).date() - today).days if e is not None and not pd.isna(e) else None for e in out["expires_on"]
    ]
    order = out["state"].map({"expired": 0, "expiring": 1, "none": 2})
    return out.assign(_o=order).sort_values(["_o", "expires_on", "unit_id"]).drop(columns="_o").reset_index(drop=True)
