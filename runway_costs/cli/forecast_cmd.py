"""``runway-costs forecast`` (month-end spend, run-out, cap-bound) and ``forecast backtest``."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import typer
from rich.table import Table

from runway_costs.analytics.backtest import backtest
from runway_costs.analytics.forecast import OrgForecast, forecast_all
from runway_costs.analytics.orgs import orgs_with_data
from runway_costs.analytics.outlook import stored_orgs, stored_outlooks
from runway_costs.cli.common import (
    AsOfOption,
    ConfigOption,
    DbOption,
    JsonOption,
    OrgOption,
    console,
    fail,
    handle_errors,
    parse_as_of,
    read_db,
    settings_from,
)
from runway_costs.cli.text import safe


def pick_orgs(con: duckdb.DuckDBPyConnection, configured: list[str], org: str | None) -> list[str]:
    """Configured organizations (else all in the database: those of the current stored
    outlooks when there are, the same list read faster), or the one asked for."""
    available = configured or stored_orgs(con) or orgs_with_data(con)
    if org is None:
        return available
    if org not in available and org not in orgs_with_data(con):
        known = ", ".join(available) or "none"
        raise fail(f"--org: unknown organization {org!r} (known: {known})")
    return [org]


def _n(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def forecast_table(results: list[OrgForecast], at: datetime, usd: float, width: int) -> Table:
    """One row per organization on a wide terminal, one column per organization otherwise."""
    header = [
        "balance",
        "30-day cap",
        "bought 30d",
        "spent MTD",
        "month end",
        "80% range",
        "month end $",
        "per day",
        "runs out",
        "cap bound",
    ]
    rows = {
        r.org: [
            _n(r.balance_credits),
            _n(r.cap_credits),
            safe(r.purchases_text),  # the window it covers, never a bare 0 (analytics.purchases)
            _n(r.spend_mtd_credits),
            _n(r.month_end.mid),
            f"{r.month_end.low:,}-{r.month_end.high:,}",
            f"{r.month_end.mid * usd:,.2f}",
            _n(r.daily_rate_credits),
            str(r.runout_date or "-"),
            f"{r.cap_bound_date or '-'}{'*' if r.cap_bound_assumption else ''}",
        ]
        for r in results
    }
    table = Table(title=f"Forecast at {at:%Y-%m-%d %H:%M} UTC (credits; 1 credit = ${usd})")
    if width >= 130:
        table.add_column("org")
        for col in header:
            table.add_column(col, justify="right", no_wrap=True)
        for org, values in rows.items():
            table.add_row(safe(org), *values)
        return table
    table.add_column("", no_wrap=True)  # row labels never shrink away
    for org in rows:
        table.add_column(safe(org), justify="right", ratio=1)
    for i, label in enumerate(header):
        table.add_row(label, *(values[i] for values in rows.values()))
    return table


def forecast(
    ctx: typer.Context,
    org: OrgOption = None,
    as_json: JsonOption = False,
    as_of: AsOfOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Month-end spend with an 80% interval, run-out date and 30-day-cap date per org."""
    if ctx.invoked_subcommand is not None:  # `forecast backtest`: the group's callback
        return
    settings = settings_from(config, db)
    at = parse_as_of(as_of)
    with read_db(settings.db_path) as con:
        names = pick_orgs(con, [o.name for o in settings.orgs], org)
        # Without --as-of, the latest cycle's stored outlooks, at its instant, when they
        # can stand for now (analytics.outlook); else computed at ``at``.
        stored = stored_outlooks(con, settings, names, at, daily=False) if as_of is None else None
        results = stored if stored is not None else forecast_all(con, settings, at, names)
    if stored:
        at = stored[0].as_of
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in results], indent=2))
        return
    console.print(forecast_table(results, at, settings.credit_usd, console.width))
    for r in results:  # a cap-bound date that assumes unknown purchases says so
        if r.cap_bound_assumption:
            console.print(f"* {safe(r.org)}: {safe(r.cap_bound_assumption)}", highlight=False)


def backtest_cmd(
    org: OrgOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Month-end forecasts made on days 7, 14, 21 of past months vs the naive baseline.

    MAPE of the forecast and of the naive baseline, and how often the 80% interval held
    the actual month total (its coverage), overall and per origin day.
    """
    settings = settings_from(config, db)
    with read_db(settings.db_path) as con:
        names = pick_orgs(con, [o.name for o in settings.orgs], org)
        result = backtest(con, names)
    if result.rows.is_empty():
        raise fail("no whole past month in the stored history to backtest on yet")
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "mape_forecast": round(result.mape_forecast or 0, 4),
                    "mape_naive": round(result.mape_naive or 0, 4),
                    "interval_coverage": round(result.coverage or 0, 4),
                    "interval_nominal": 0.8,
                    "by_origin_day": [
                        {
                            "origin_day": r["origin_day"],
                            "forecasts": r["forecasts"],
                            "mape_forecast": round(r["mape_forecast"], 4),
                            "mape_naive": round(r["mape_naive"], 4),
                            "interval_coverage": round(r["coverage"], 4),
                        }
                        for r in result.by_origin().iter_rows(named=True)
                    ],
                    "forecasts": [
                        {**row, "month": row["month"].isoformat()}
                        for row in result.rows.iter_rows(named=True)
                    ],
                },
                indent=2,
            )
        )
        return
    table = Table(title="Month-end forecast backtest (credits)")
    columns = ("org", "month", "day", "actual", "forecast", "80% range", "error", "naive")
    for col in (*columns, "naive error"):
        table.add_column(col, justify="left" if col in ("org", "month") else "right")
    for r in result.rows.iter_rows(named=True):
        table.add_row(
            safe(r["org"]),
            f"{r['month']:%Y-%m}",
            str(r["origin_day"]),
            f"{r['actual']:,}",
            f"{r['forecast']:,}",
            f"{r['low']:,}-{r['high']:,}" + ("" if r["covered"] else " (missed)"),
            f"{r['ape_forecast']:.1%}",
            f"{r['naive']:,}",
            f"{r['ape_naive']:.1%}",
        )
    console.print(table)
    summary = Table(title="By origin day")
    for col in ("day", "forecasts", "MAPE", "naive MAPE", "80% interval held"):
        summary.add_column(col, justify="right")
    for r in result.by_origin().iter_rows(named=True):
        summary.add_row(
            str(r["origin_day"]),
            str(r["forecasts"]),
            f"{r['mape_forecast']:.2%}",
            f"{r['mape_naive']:.2%}",
            f"{r['coverage']:.0%}",
        )
    console.print(summary)
    console.print(
        f"MAPE: forecast {result.mape_forecast:.2%}, naive baseline {result.mape_naive:.2%} "
        f"({result.rows.height} forecasts)"
    )
    console.print(f"80% interval: held the actual month total in {result.coverage:.0%} of them")


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Forecast month-end spend, run-out and 30-day-cap dates.",
        invoke_without_command=True,
        no_args_is_help=False,
    )

    group.callback(invoke_without_command=True)(handle_errors(forecast))
    group.command("backtest")(handle_errors(backtest_cmd))
    app.add_typer(group, name="forecast")
