"""``gisgrid frontage`` (门前三包 units) and ``gisgrid signboards`` (街长公示牌)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from gisgrid.cli._common import cli_actor, engine_and_settings, handle_errors


@click.group()
def frontage() -> None:
    """Frontage units (门前三包): import, frontages, the red and black list."""


@frontage.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sheet", help="Worksheet of an XLSX file (default: the first).")
@handle_errors
def frontage_import(file: Path, sheet: str | None) -> None:
    """Import units from a market-regulation registry export (企业名称, 统一社会信用代码, 经营场所 …).

    Addresses are geocoded; good rows go in, every bad row is listed with its number and reason.
    """
    from gisgrid.frontage.store import import_units

    engine, settings = engine_and_settings()
    with engine.begin() as conn:
        result = import_units(conn, cli_actor(), settings, file, sheet=sheet)
    click.echo(
        f"{result.rows} rows: {result.inserted} units added, {result.updated} updated, {len(result.rejected)} rejected"
    )
    for number, why in result.rejected:
        click.echo(f"  row {number}: {why}")


@frontage.command("derive")
@click.option("--redraw", is_flag=True, help="Derive again also the frontages a planner drew.")
@handle_errors
def frontage_derive(redraw: bool) -> None:
    """Place units on their segments and derive their frontages."""
    from gisgrid.frontage.store import derive_and_store

    engine, settings = engine_and_settings()
    with engine.begin() as conn:
        counts = derive_and_store(conn, settings, redraw_planner=redraw)
    click.echo(f"{counts['derived']} frontages derived; {counts['unplaced']} units on no segment")


@frontage.command("redblack")
@click.option("--month", required=True, help="YYYY-MM")
@click.option("--jurisdiction", "code", help="Division code (default: everywhere).")
@click.option("--xlsx", "xlsx", type=click.Path(dir_okay=False, path_type=Path), help="Write the list to XLSX.")
@click.option("--pdf", "pdf", type=click.Path(dir_okay=False, path_type=Path), help="Write a printable PDF.")
@click.option("--publish", is_flag=True, help="Keep the list as published (later case edits do not change it).")
@handle_errors
def frontage_redblack(month: str, code: str | None, xlsx: Path | None, pdf: Path | None, publish: bool) -> None:
    """The monthly red and black list (红黑榜) of frontage units."""
    from gisgrid.frontage.store import publish_ranking, red_black_list, write_ranking_xlsx

    engine, settings = engine_and_settings()
    with engine.begin() as conn:
        table, rules = red_black_list(conn, settings, month, jurisdiction_code=code)
        if publish:
            rid = publish_ranking(conn, cli_actor(), month, table, rules, jurisdiction_code=code)
            click.echo(f"published as ranking {rid}")
    for label, name in (("black", "黑榜"), ("red", "红榜")):
        part = table[table["list"] == label]
        click.echo(f"{name} ({len(part)}):")
        for r in part.itertuples():
            click.echo(f"  {r.name}  {r.why}")
    if xlsx:
        write_ranking_xlsx(table, xlsx)
        click.echo(f"wrote {xlsx}")
    if pdf:
        from gisgrid.frontage.signboards import redblack_pdf

        pdf.write_bytes(redblack_pdf(table, rules, month))
        click.echo(f"wrote {pdf}")


@click.command("signboards")
@click.option("--jurisdiction", "code", required=True, help="Division code of a town or county.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="PDF to write.")
@click.option("--changed", is_flag=True, help="Only the boards whose content changed since they were printed.")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="Owners of this day (default today).")
@handle_errors
def signboards_cmd(code: str, output: Path | None, changed: bool, day) -> None:
    """Print the signboards (街长公示牌): one board per segment with its chain, duties, hotline and QR code.

    With --changed, list (and with -o print) only the boards an owner change made wrong.
    """
    from gisgrid.frontage.signboards import board_contents, boards_to_reprint, record_prints, render_pdf

    engine, settings = engine_and_settings()
    day = day.date() if day else dt.date.today()
    with engine.begin() as conn:
        if changed:
            boards = boards_to_reprint(conn, settings, code, day=day)
            click.echo(f"{len(boards)} boards to print again:")
            for b in boards:
                click.echo(f"  {b['street']} · {b['segment']} (segment {b['segment_id']}): {', '.join(b['changed'])}")
        else:
            boards = board_contents(conn, settings, code, day=day)
        if output and boards:
            output.write_bytes(render_pdf(boards, printed_on=day))
            record_prints(conn, cli_actor(), boards)
            click.echo(f"wrote {len(boards)} boards to {output}")
        elif output:
            click.echo("no boards to print")
