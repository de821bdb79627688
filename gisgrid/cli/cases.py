"""``gisgrid cases``: take in a file of cases, run the escalation check, enter a year's working calendar."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from gisgrid.cli._common import deployment_engine_settings, engine_and_settings, handle_errors


@click.group("cases")
def cases() -> None:
    """Cases (问题清单): intake from files, escalation, the working-day calendar."""


@cases.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--crs", help="CRS of the coordinates (CSV/XLSX): EPSG:4326, EPSG:4490, gcj02, bd09 …")
@click.option("--sheet", help="XLSX worksheet (default: the first).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write one row per input row "
              "(case id or the reason it was refused) to this CSV or XLSX file.")  # fmt: skip
@click.option("--as-user", "username", help="Record the cases as taken in by this account (default: the CLI).")
@handle_errors
def import_cases_cmd(path: Path, crs: str | None, sheet: str | None, output: Path | None, username: str | None) -> None:
    """Take in every row of PATH as a case: routed, with its deadline; duplicates are listed.

    Columns: lon/lat (经度/纬度) or point geometries, category (类别, a code or
    name), and optionally description (描述), address (地址), reported_at
    (上报时间) and client_id (编号: a row sent twice makes one case).  Rows
    in = rows out: every row is a case or a reason.
    """
    from gisgrid.accounts.store import find_user
    from gisgrid.accounts.users import Actor
    from gisgrid.cases.bulk import import_cases
    from gisgrid.io.write import write_table

    deployment, engine, settings = deployment_engine_settings()
    with engine.begin() as conn:
        actor = find_user(conn, username).actor("cli") if username else Actor.system("gisgrid cases import")
        result = import_cases(conn, actor, deployment, settings, path, crs=crs, sheet=sheet)
    made = int(result["created"].sum())
    again = int((result["case_id"].notna() & ~result["created"]).sum())
    refused = result[result["error"].notna()]
    unassigned = int(result["unassigned"].fillna(False).astype(bool).sum()) if "unassigned" in result else 0
    click.echo(
        f"{path.name}: {len(result)} rows: {made} cases created ({unassigned} unassigned: outside every owner's area), "
        f"{again} already taken in (same client id), {len(refused)} refused"
    )
    for rec in refused.head(20).itertuples():
        click.echo(f"  row {rec.row}: {rec.error}")
    if len(refused) > 20:
        click.echo(f"  … and {len(refused) - 20} more" + (f" (see {output.name})" if output else ""))
    if output:
        write_table(result, output)
        click.echo(f"wrote {output}")


@cases.command("tick")
@handle_errors
def tick_cmd() -> None:
    """Escalate overdue cases up the chain and warn of deadlines near (workers do it every case_tick_s)."""
    from gisgrid.cases.escalation import tick

    engine, settings = engine_and_settings()
    with engine.begin() as conn:
        out = tick(conn, settings)
    click.echo(f"{out['checked']} overdue cases checked, {out['escalated']} escalated, {out['warned']} warned")


@cases.command("calendar")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("--year", type=int, help="The year the file holds (default: the year of its first date).")
@handle_errors
def calendar_cmd(path: Path | None, year: int | None) -> None:
    """Enter a year's official holidays and make-up working days (调休) from PATH; without PATH, list the years.

    PATH: a CSV or XLSX with columns date (日期), workday (上班: 1/0, 是/否,
    班/休) and optionally note (说明).  Listed days override the calendar
    package; the year's other days are working days Monday–Friday.  Entering
    a year again replaces it.
    """
    from gisgrid.accounts.users import Actor
    from gisgrid.cases.calendar import calendar_entries, enter_calendar_year, uncovered_years
    from gisgrid.cases.workflow import parse_calendar_rows
    from gisgrid.db.imports import read_table
    from gisgrid.errors import InputError

    engine, settings = engine_and_settings()
    if path is None:
        with engine.connect() as conn:
            entries = calendar_entries(conn)
            missing = uncovered_years(conn, settings)
        for rec in entries.itertuples():
            click.echo(
                f"{rec.year}: {rec.holidays} holidays, {rec.workdays} make-up days (entered by {rec.entered_by})"
            )
        if missing:
            click.echo(
                f"warning: working days of {', '.join(map(str, missing))} are not known: counted Monday–Friday "
                "until entered"
            )
        return
    frame, malformed = read_table(path)
    if malformed:
        raise InputError("; ".join(f"row {r}: {why}" for r, why in sorted(malformed.items())))
    days = parse_calendar_rows(frame.drop(columns="row"))
    year = year or (days[0][0].year if days else dt.date.today().year)
    with engine.begin() as conn:
        n = enter_calendar_year(conn, Actor.system("gisgrid cases calendar"), year, days)
    click.echo(f"{year}: {n} days entered ({sum(1 for d in days if not d[1])} holidays)")
