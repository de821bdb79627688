"""Owners on a date: the 段长 → 二级街长 → 一级街长 → 总街长 chain of each segment.

The rules (owner on a day, the chain: most specific level wins) are those of
:mod:`gisgrid.ownership.history`, read here through their SQL form
(:func:`gisgrid.db.sql.owner_chain_on`).
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import sqlalchemy as sa

from gisgrid.db import sql
from gisgrid.ownership.history import CHAIN_ROLES, chain_text

LOGGER = logging.getLogger(__name__)


def _chain_sql(restricted: bool) -> str:
    return f"""
    SELECT c.segment_id, c.role, c.owner_name, c.owner_phone, c.owner_key, c.target_type, c.target_id, c.valid_from
    FROM {sql.owner_chain_on(":day", ":ids" if restricted else None)} c"""


def segment_owner_chains(
    conn: sa.Connection, day: dt.date | None = None, *, segment_ids: list[int] | None = None
) -> pd.DataFrame:
    """One row per segment: the owner of each chain role on ``day`` (default today).

    Returns
    -------
    DataFrame indexed by ``segment_id`` with columns ``段长``, ``二级街长``, ``一级街长``,
    ``总街长`` (owner names), ``owner_name``/``owner_phone`` (the 段长),
    ``owner_key`` (a stable id of the 段长: ``person:N`` or ``department:N``) and
    ``chain`` (a readable "段长 X → 二级街长 Y → …" string).  Segments without a
    段长 have ``owner_name`` NaN.
    """
    day = day or dt.date.today()
    flt = "AND g.id = ANY(:ids)" if segment_ids is not None else ""
    params = {"day": day}
    if segment_ids is not None:
        params["ids"] = [int(i) for i in segment_ids]
    rows = pd.read_sql_query(sa.text(_chain_sql(segment_ids is not None)), conn, params=params)
    seg_ids = pd.read_sql_query(
        sa.text(f"SELECT g.id AS segment_id FROM segment g WHERE true {flt}"), conn, params=params
    )
    out = seg_ids.set_index("segment_id")
    for role in CHAIN_ROLES:
        sub = rows[rows.role == role].set_index("segment_id")
        out[role] = sub["owner_name"]
        if role == "段长":
            out["owner_name"] = sub["owner_name"]
            out["owner_phone"] = sub["owner_phone"]
            out["owner_key"] = sub["owner_key"]
    out["chain"] = [chain_text(dict(zip(CHAIN_ROLES, names))) or None for names in out[list(CHAIN_ROLES)].to_numpy()]
    return out
