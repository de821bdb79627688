"""Signboards (街长公示牌): one printable board per segment, with a QR code to the public report page.

Each board shows the street and segment, the chain 段长 → 二级街长 → 一级街长 →
总街长 with names and phones (as on the day printed), the duties, the
supervision hotline (``supervision_hotline`` setting) and a QR code (segno)
opening the public report page with the segment chosen
(``<public_base_url>/public/report?segment=ID``).  The PDF is rendered with
WeasyPrint from an HTML template (CJK fonts from the system, Noto CJK).

Every print is recorded (``signboard_print``: what each board said and its
digest), so that after an owner changes :func:`boards_to_reprint` lists the
boards that now say something else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path

import jinja2
import segno
import sqlalchemy as sa

from gisgrid.accounts.store import record_action
from gisgrid.accounts.users import Actor
from gisgrid.config import Settings
from gisgrid.db import sql
from gisgrid.errors import NotFound
from gisgrid.io.records import records

LOGGER = logging.getLogger(__name__)

CHAIN_ROLES = ("段长", "二级街长", "一级街长", "总街长")
#: What the chiefs of a street answer for (街长职责), printed on every board.
DUTIES = (
    "巡查街道环境卫生、市容秩序、绿化和设施，发现问题及时处置或上报",
    "督促沿街单位和商户落实门前三包责任（包卫生、包秩序、包绿化）",
    "受理群众反映的问题，限时办结并反馈",
)
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=jinja2.select_autoescape(["html"]),
)


def report_url(settings: Settings, segment_id: int) -> str:
    """The public report page with the segment chosen: what each board's QR code opens."""
    return f"{settings.public_base_url.rstrip('/')}/public/report?segment={int(segment_id)}"


def board_contents(
    conn: sa.Connection, settings: Settings, jurisdiction_code: str, *, day: dt.date | None = None
) -> list[dict]:
    """One board per segment of the jurisdiction (and those below it), in street and segment order.

    Each board: ``segment_id``, ``street``, ``segment``, ``from_name``,
    ``to_name``, ``chain`` (role, name, phone — only what the board prints),
    ``hotline``, ``url``.
    """
    day = day or dt.date.today()
    found = conn.execute(sa.text("SELECT id FROM jurisdiction WHERE code = :c"), {"c": jurisdiction_code}).scalar()
    if found is None:
        raise NotFound(f"no jurisdiction with code {jurisdiction_code!r}")
    segs = conn.execute(
        sa.text("""
        WITH RECURSIVE tree AS (SELECT id FROM jurisdiction WHERE id = :j
                                UNION ALL SELECT c.id FROM jurisdiction c JOIN tree t ON c.parent_id = t.id)
        SELECT g.id, g.name, g.from_name, g.to_name, s.name AS street
        FROM segment g JOIN street s ON s.id = g.street_id
        WHERE s.jurisdiction_id IN (SELECT id FROM tree) ORDER BY s.name, g.seq, g.id"""),
        {"j": found},
    ).all()
    if not segs:
        return []
    ids = [int(r.id) for r in segs]
    chain: dict[int, dict[str, tuple]] = {}
    for r in conn.execute(
        sa.text(f"""
        SELECT ch.segment_id, ch.role, ch.owner_name, ch.owner_phone
        FROM {sql.owner_chain_on(":day", ":ids")} ch
        ORDER BY ch.segment_id, ch.level_rank, ch.valid_from DESC, ch.id DESC"""),
        {"day": day, "ids": ids},
    ):
        chain.setdefault(int(r.segment_id), {}).setdefault(r.role, (r.owner_name, r.owner_phone))
    boards = []
    for r in segs:
        held = chain.get(int(r.id), {})
        boards.append(
            {
                "segment_id": int(r.id),
                "street": r.street,
                "segment": r.name,
                "from_name": r.from_name,
                "to_name": r.to_name,
                "chain": [
                    {"role": role, "name": held.get(role, (None, None))[0], "phone": held.get(role, (None, None))[1]}
                    for role in CHAIN_ROLES
                ],
                "hotline": settings.supervision_hotline,
                "url": report_url(settings, r.id),
            }
        )
    return boards


def digest(board: dict) -> str:
    """A board's content digest: equal digests print the same board."""
    return hashlib.sha256(json.dumps(board, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def qr_svg(url: str) -> str:
    """The QR code of ``url`` as an inline SVG (error correction M, a quiet zone of 4 modules)."""
    return segno.make(url, error="m", micro=False).svg_inline(scale=6, border=4)


def render_html(boards: list[dict], *, printed_on: dt.date | None = None) -> str:
    return _TEMPLATES.get_template("signboards.html").render(
        boards=[{**b, "qr": qr_svg(b["url"])} for b in boards],
        duties=DUTIES,
        printed_on=(printed_on or dt.date.today()).isoformat(),
    )


def render_pdf(boards: list[dict], *, printed_on: dt.date | None = None) -> bytes:
    """The boards as a PDF, one A4 page each."""
    import weasyprint

    return weasyprint.HTML(string=render_html(boards, printed_on=printed_on)).write_pdf()


def record_prints(conn: sa.Connection, actor: Actor, boards: list[dict]) -> int:
    """Keep what each printed board said (the reprint list compares against it)."""
    if not boards:
        return 0
    conn.execute(
        sa.text(
            "INSERT INTO signboard_print (segment_id, content, digest, printed_by) "
            "VALUES (:s, CAST(:c AS jsonb), :d, :by)"
        ),
        [
            {"s": b["segment_id"], "c": json.dumps(b, ensure_ascii=False), "d": digest(b), "by": actor.name}
            for b in boards
        ],
    )
    record_action(conn, actor, "signboards.print", target_type="segments",
                  target_id=",".join(str(b["segment_id"]) for b in boards[:50]), after={"boards": len(boards)})  # fmt: skip
    return len(boards)


def boards_to_reprint(
    conn: sa.Connection, settings: Settings, jurisdiction_code: str, *, day: dt.date | None = None
) -> list[dict]:
    """Boards printed before whose content changed since (an owner, a phone, the hotline): what to print again.

    Each: the board now, and ``changed`` — the roles whose name or phone differ.
    """
    boards = board_contents(conn, settings, jurisdiction_code, day=day)
    last = {
        int(r.segment_id): (r.digest, r.content)
        for r in conn.execute(
            sa.text("""
            SELECT DISTINCT ON (segment_id) segment_id, digest, content FROM signboard_print
            WHERE segment_id = ANY(CAST(:ids AS integer[])) ORDER BY segment_id, id DESC"""),
            {"ids": [b["segment_id"] for b in boards]},
        )
    }
    out = []
    for b in boards:
        if b["segment_id"] not in last or last[b["segment_id"]][0] == digest(b):
            continue
        before = {c["role"]: (c["name"], c["phone"]) for c in last[b["segment_id"]][1].get("chain", [])}
        changed = [c["role"] for c in b["chain"] if before.get(c["role"]) != (c["name"], c["phone"])]
        out.append({**b, "changed": changed or ["hotline"]})
    return out


def board_for_segment(conn: sa.Connection, settings: Settings, segment_id: int, *, day: dt.date | None = None) -> dict:
    """The board of one segment (as :func:`board_contents`), with the segment's middle point (``lon``, ``lat``)."""
    row = conn.execute(
        sa.text("""
        SELECT j.code, ST_X(ST_LineInterpolatePoint(g.geom, 0.5)) AS lon, ST_Y(ST_LineInterpolatePoint(g.geom, 0.5)) AS lat
        FROM segment g JOIN street s ON s.id = g.street_id JOIN jurisdiction j ON j.id = s.jurisdiction_id
        WHERE g.id = :id"""),
        {"id": int(segment_id)},
    ).first()
    if row is None:
        raise NotFound(f"no segment {segment_id}")
    board = next(b for b in board_contents(conn, settings, row.code, day=day) if b["segment_id"] == int(segment_id))
    return {**board, "lon": round(row.lon, 7), "lat": round(row.lat, 7)}


_STATES_ZH = {"valid": "有效", "expiring": "即将到期", "expired": "已过期", "none": "未签", "future": "未生效"}


def redblack_html(table, rules: dict, month: str) -> str:
    """The month's 红黑榜 as a printable HTML page (its ``<section class="gg-redblack">`` fits into a bulletin)."""
    rows = records(table)
    return _TEMPLATES.get_template("redblack.html").render(
        month=month, rules=rules, states=_STATES_ZH,
        black=[r for r in rows if r["list"] == "black"], red=[r for r in rows if r["list"] == "red"],
    )  # fmt: skip


def redblack_pdf(table, rules: dict, month: str) -> bytes:
    """The month's 红黑榜 as a PDF, for printing with the bulletin."""
    import weasyprint

    return weasyprint.HTML(string=redblack_html(table, rules, month)).write_pdf()
