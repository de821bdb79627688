"""Owners on a date: the 段长 → 二级街长 → 一级街长 → 总街长 chain of each segment.

An assignment is valid on day ``d`` when ``valid_from <= d < valid_to`` (open
ended while ``valid_to`` is NULL), so the owner on any past date stays
answerable.  For each role the most specific target wins: segment, then its
street, then the street's town, then the county.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import sqlalchemy as sa

LOGGER = logging.getLogger(__name__)

CHAIN_ROLES = ("段长", "二级街长", "一级街长", "总街长")

# For a segment g: the targets that can carry each role, most specific first.
_CHAIN_SQL = """
WITH valid AS (
    SELECT a.*, COALESCE(p.name, d.name) AS owner_name, COALESCE(p.phone, d.phone) AS owner_phone,
           CASE WHEN a.person_id IS NOT NULL THEN 'person' ELSE 'department' END AS owner_kind
    FROM owner_assignment a
    LEFT JOIN person p ON p.id = a.person_id
    LEFT JOIN department d ON d.id = a.department_id
    WHERE a.valid_from <= :day AND (a.valid_to IS NULL OR :day < a.valid_to)
),
targets AS (
    SELECT g.id AS segment_id, t.target_type, t.target_id, t.rank
    FROM segment g
    JOIN street s ON s.id = g.street_id
    LEFT JOIN jurisdiction town ON town.id = s.jurisdiction_id
    CROSS JOIN LATERAL (VALUES ('segment', g.id, 1), ('street', s.id, 2), ('jurisdiction', town.id, 3),
                               ('jurisdiction', town.parent_id, 4),
                               ('jurisdiction', (SELECT parent_id FROM jurisdiction WHERE id = town.parent_id), 5))
         AS t(target_type, target_id, rank)
    WHERE t.target_id IS NOT NULL {segment_filter}
)
SELECT DISTINCT ON (t.segment_id, v.role)
       t.segment_id, v.role, v.owner_name, v.owner_phone, v.owner_kind, v.person_id, v.department_id,
       v.target_type, v.target_id, v.valid_from
FROM targets t JOIN valid v ON v.target_type = t.target_type AND v.target_id = t.target_id
ORDER BY t.segment_id, v.role, t.rank, v.valid_from DESC, v.id
"""


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
        params["ids"] = list(segment_ids)
    rows = pd.read_sql_query(sa.text(_CHAIN_SQL.format(segment_filter=flt)), conn, params=params)
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
            out["owner_key"] = (
                sub["owner_kind"] + ":" + sub["person_id"].fillna(sub["department_id"]).astype("Int64").astype(str)
            )
    chain = pd.Series("", index=out.index, dtype=object)
    for role in CHAIN_ROLES:
        part = role + " " + out[role].fillna("—")
        chain = chain.where(chain == "", chain + " → ") + part
    out["chain"] = chain
    return out
