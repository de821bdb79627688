"""The bulletin (通报) of a published ranking: a printable PDF and the same figures as XLSX.

The web layer renders the bulletin's HTML (``rankings/bulletin.html``, in the
reader's language) from :func:`bulletin_parts`; :func:`pdf_bytes` prints it
with WeasyPrint, which embeds the subset of the CJK font it uses (Noto Sans
CJK, Debian's ``fonts-noto-cjk``), so the PDF reads the same on any machine.
The map and the trend chart are SVG (:mod:`gisgrid.supervision.charts`),
drawn from the snapshot's figures — never from today's cases.
"""

from __future__ import annotations

import io
import logging

import pandas as pd
import sqlalchemy as sa

from gisgrid.config import Settings
from gisgrid.io.write import TableWriter
from gisgrid.supervision import charts
from gisgrid.supervision import ranking_store as store

LOGGER = logging.getLogger(__name__)

#: Units drawn in the bulletin's trend chart: the commended and the named.
TREND_UNITS = 6


def bulletin_parts(
    conn: sa.Connection, settings: Settings, snapshot: dict, *, legend: list[tuple[str, str]], map_title: str = ""
) -> dict:
    """What the bulletin shows besides the table: ``map_svg``, ``trend_svg``, ``commended``, ``named``, ``rows``.

    The trend is each unit's composite score over the 12 months up to the
    period's end, computed with the snapshot's rules (months before the
    period are not part of the published figures; they give the context).
    """
    rows = snapshot["rows"]
    kind = snapshot["unit_kind"]
    period = snapshot["period_obj"]
    map_svg = unit_map(conn, kind, rows, period.last_day, legend=legend, title=map_title)
    from gisgrid.supervision.ranking import Rules

    jur = {"id": snapshot["jurisdiction_id"]} if snapshot["jurisdiction_id"] is not None else None
    shown = rows[rows["commended"] | rows["named"]].head(TREND_UNITS)
    trend = store.trends(conn, settings, period, kind, jurisdiction=jur, rules=Rules.from_dict(snapshot["rules"]))
    series = []
    for uid, row in shown.iterrows():
        series.append((str(row["unit_name"]), trend["units"].get(uid, [None] * len(trend["months"]))))
    return {
        "map_svg": map_svg,
        "trend_svg": charts.trend_chart_svg(trend["months"], series) if series else "",
        "commended": rows[rows["commended"]],
        "named": rows[rows["named"]],
        "rows": rows,
        "trend": trend,
    }


def unit_map(conn: sa.Connection, kind: str, rows: pd.DataFrame, day, *, legend, title: str = "") -> str:
    """The ranking's units on a static SVG map coloured by grade (areas for towns and communities, lines
    for streets and owners' segments), each labelled with its name and score."""
    shapes = store.unit_geometries(conn, kind, list(rows.index), day)
    keyed = [uid for uid in rows.index if uid in shapes]
    if not keyed:
        return ""
    return charts.choropleth_svg(
        [shapes[u] for u in keyed],
        [rows.loc[u, "grade"] for u in keyed],
        [f"{rows.loc[u, 'unit_name']} {rows.loc[u, 'composite']:.1f}" for u in keyed],
        legend=legend,
        title=title,
        labels_on_map=kind in ("town", "community"),
    )


def pdf_bytes(html: str, *, base_url: str | None = None) -> bytes:
    """The bulletin's HTML printed to PDF (A4, fonts embedded)."""
    from weasyprint import HTML

    return HTML(string=html, base_url=base_url).write_pdf()


def xlsx_bytes(rows: pd.DataFrame, columns: list[tuple[str, str]], *, sheet: str) -> bytes:
    """The ranking table as XLSX through the one writer (:class:`gisgrid.io.write.TableWriter`).

    ``columns`` are (column, header) pairs in order; rates are written as percentages with one decimal.
    """
    table = rows.reset_index()
    out = pd.DataFrame()
    for col, header in columns:
        values = table[col] if col in table.columns else pd.Series([None] * len(table))
        if col.endswith("_rate"):
            values = (pd.to_numeric(values, errors="coerce") * 100).round(1)
        elif values.dtype.kind == "f":
            values = values.round(2)
        elif values.dtype.kind == "b":
            values = values.map({True: "✓", False: ""})
        out[header] = values.to_numpy()
    buf = io.BytesIO()
    with TableWriter(buf, kind="xlsx", sheet=sheet[:31]) as writer:
        writer.write(out)
    return buf.getvalue()
