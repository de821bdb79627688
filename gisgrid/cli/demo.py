"""``gisgrid demo``: the sample towns."""

from __future__ import annotations

import click

from gisgrid.cli._common import engine_and_settings, handle_errors


@click.group()
def demo() -> None:
    """The sample towns (real OpenStreetMap streets, demo owners and reports)."""


@demo.command("load")
@click.option("--reports", "reports_per_town", default=600, show_default=True, help="Demo reports per town.")
@click.option("--replace", is_flag=True, help="Empty the database first (default: skip when data exists).")
@handle_errors
def demo_load(reports_per_town: int, replace: bool) -> None:
    """Load the sample towns into the database (idempotent: does nothing when already loaded)."""
    from gisgrid.demo import clear_data, count_jurisdictions, load_demo

    engine, settings = engine_and_settings()
    with engine.begin() as conn:
        existing = count_jurisdictions(conn)
        if existing and not replace:
            click.echo(f"sample data already loaded ({existing} jurisdictions); use --replace to reload")
        else:
            if existing:
                clear_data(conn)
            counts = load_demo(conn, settings, reports_per_town=reports_per_town, grid=True)
            click.echo("loaded: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
            _demo_buildings(conn)
        _demo_users(conn, settings)
        from gisgrid.demo import demo_cases

        n = demo_cases(conn, settings)
        if n:
            click.echo(f"demo cases: {n} in every state of the workflow (see /cases)")
        from gisgrid.demo import demo_inspections

        done = demo_inspections(conn, settings)
        if done.get("rounds"):
            click.echo(
                f"demo inspection rounds: {done['rounds']} (督查 and 暗访), {done['findings']} findings (see /inspections/)"
            )
        from gisgrid.demo import demo_frontage_cases

        n = demo_frontage_cases(conn, settings)
        if n:
            click.echo(f"frontage cases: {n} of last month against 门前三包 units (see /frontage/redblack)")
    from gisgrid.db import analyze

    analyze(engine)  # statistics of the tables just filled: the first pages are fast too


def _demo_buildings(conn) -> None:
    """Helsinki's OSM buildings, through the importer every office uses (``gisgrid import buildings``)."""
    from gisgrid.config import DATA_DIR
    from gisgrid.db.imports import import_file

    for line in import_file(conn, "buildings", DATA_DIR / "helsinki_buildings.geojson", again=True).lines():
        click.echo(line)


def _demo_users(conn, settings) -> None:
    """Create the demo accounts (one per role) if missing, and print them with their password."""
    from gisgrid.demo import create_demo_users

    accounts = create_demo_users(conn, settings)
    if not accounts:
        return
    click.echo(f"\ndemo accounts (password for every one: {accounts[0]['password']}; FOR THE DEMO ONLY):")
    for a in accounts:
        click.echo(f"  {a['username']:<14} {a['role']:<12} {a['name']:<12}  {a['about']}")
