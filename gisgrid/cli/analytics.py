"""``gisgrid hotspots`` (Gi* hot and cold spots of a town) and ``gisgrid rankings`` (a period's ranking),
in one process or, with ``--workers`` / ``--scheduler``, counted on a dask.distributed cluster."""

from __future__ import annotations

from pathlib import Path

import click

from gisgrid.cli._common import engine_and_settings, handle_errors

_WORKERS = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Count on a local dask.distributed cluster of this many processes (docs/operations.md).",
)
_SCHEDULER = click.option("--scheduler", default=None, help="Count on the dask.distributed cluster at tcp://HOST:PORT.")
_PARTITION_ROWS = click.option(
    "--partition-rows",
    type=click.IntRange(min=1),
    default=250_000,
    show_default=True,
    help="Rows per partition on the cluster (a worker holds one partition at a time).",
)


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _cluster_line(run: dict) -> str:
    return f"  on {run['workers']} dask workers, {run['partitions']} partitions, {run['seconds']:.2f} s"


@click.command("hotspots")
@click.option("--jurisdiction", "code", required=True, help="Division code of the town or community.")
@click.option("--from", "date_from", type=click.DateTime(formats=["%Y-%m-%d"]), help="First day (local).")
@click.option("--to", "date_to", type=click.DateTime(formats=["%Y-%m-%d"]), help="Last day (local, inclusive).")
@click.option("--size", "size_m", type=click.FloatRange(min=1.0), default=100.0, show_default=True,
              help="Hexagon edge, metres.")  # fmt: skip
@click.option("--permutations", type=click.IntRange(min=99), default=9999, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the hexagons (.geojson, .gpkg, .csv or .xlsx).",
)
@_WORKERS
@_SCHEDULER
@_PARTITION_ROWS
@handle_errors
def hotspots_cmd(code, date_from, date_to, size_m, permutations, out, workers, scheduler, partition_rows) -> None:
    """Getis-Ord Gi* hot and cold spots of the reports in a town (the manager map's hotspots)."""
    from gisgrid.analytics.store import ReportFilters, hotspots
    from gisgrid.io.write import write_layer

    engine, _settings = engine_and_settings()
    filters = ReportFilters(
        jurisdiction=code,
        date_from=date_from.date() if date_from else None,
        date_to=date_to.date() if date_to else None,
    )
    run = None
    if workers or scheduler:
        from gisgrid.analytics.distributed import hotspots_distributed

        result, run = hotspots_distributed(
            _url(engine), filters, size_m, permutations=permutations, scheduler=scheduler, workers=workers,
            partition_rows=partition_rows,
        )  # fmt: skip
    else:
        with engine.connect() as conn:
            result = hotspots(conn, filters, size_m, permutations=permutations)
    classes = result["hotspot"].value_counts() if len(result) else {}
    click.echo(f"{len(result)} hexagons, {int(result['count'].sum()) if len(result) else 0} reports")
    if run:
        click.echo(_cluster_line(run))
    for name in ("hot_99", "hot_95", "hot_90", "cold_90", "cold_95", "cold_99"):
        if classes.get(name, 0):
            click.echo(f"  {name:>8}: {int(classes[name])}")
    if out:
        write_layer(result, out, layer="hotspots")
        click.echo(f"wrote {out}")


@click.command("rankings")
@click.argument("period", required=False)
@click.option("--by", "kind", type=click.Choice(["owner", "street", "community", "town"]), default="owner",
              show_default=True, help="What is ranked.")  # fmt: skip
@click.option("--jurisdiction", "code", help="Division code whose subtree is ranked (default: the highest).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the ranking (.csv or .xlsx).")
@_WORKERS
@_SCHEDULER
@_PARTITION_ROWS
@handle_errors
def rankings_cmd(period, kind, code, out, workers, scheduler, partition_rows) -> None:
    """The ranking of a month (2026-11) or quarter (2026-Q4; default: the last full quarter)."""
    from gisgrid import timeutil
    from gisgrid.io.write import write_table
    from gisgrid.supervision import indicators as ind
    from gisgrid.supervision.ranking import Rules
    from gisgrid.supervision.ranking_store import compute_ranking, find_jurisdiction

    engine, settings = engine_and_settings()
    tz = settings.timezone
    chosen = ind.parse_period(period, tz) if period else ind.last_full_quarter(timeutil.local_today(tz), tz)
    rules = Rules.from_settings(settings)
    with engine.connect() as conn:
        jur = find_jurisdiction(conn, None, code)
    run = None
    if workers or scheduler:
        from gisgrid.supervision.distributed import ranking_distributed

        ranking, run = ranking_distributed(
            _url(engine), settings, chosen, kind, jurisdiction=jur, rules=rules, scheduler=scheduler,
            workers=workers, partition_rows=partition_rows,
        )  # fmt: skip
    else:
        with engine.connect() as conn:
            ranking = compute_ranking(conn, settings, chosen, kind, jurisdiction=jur, rules=rules)
    rows = ranking.rows
    click.echo(f"{jur['name']} {chosen.label}, by {kind}: {len(rows)} units, {int(rows['cases_filed'].sum())} cases")
    if run:
        click.echo(_cluster_line(run))
    for uid, r in rows.head(10).iterrows():
        click.echo(f"  {int(r['rank']):>3}. {r['unit_name']}  {r['composite']:.2f} {r['grade']}  ({uid})")
    if out:
        write_table(rows.reset_index(), out, sheet=chosen.label)
        click.echo(f"wrote {out}")


__all__ = ["hotspots_cmd", "rankings_cmd"]
