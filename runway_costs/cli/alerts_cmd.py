"""``runway-costs alerts check|open|history``: evaluate, announce and review alerts."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Annotated

import duckdb
import polars as pl
import typer
from rich.table import Table

from runway_costs.analytics.alert_rules import Severity
from runway_costs.analytics.alerts import Alert, alert_history, check_alerts, open_alerts
from runway_costs.analytics.db import NoDataError
from runway_costs.cli.common import (
    EXIT_PARTIAL,
    AsOfOption,
    ConfigOption,
    DbOption,
    JsonOption,
    OrgOption,
    console,
    err_console,
    fail,
    handle_errors,
    parse_as_of,
    read_db,
    settings_from,
    warn,
)
from runway_costs.cli.text import safe
from runway_costs.collector.locks import LockError

# keyed by str: Alert.severity is a plain string, which a StrEnum member equals
_STYLE: dict[str, str] = {
    Severity.CRITICAL: "bold red",
    Severity.WARNING: "yellow",
    Severity.INFO: "cyan",
}


def _alerts_table(alerts: list[Alert], title: str) -> Table:
    table = Table(title=title, show_lines=True)
    for col in ("org", "rule", "severity", "status", "message"):
        table.add_column(col, overflow="fold")
    for a in alerts:
        rule = f"{a.rule} ({a.target})" if a.target else a.rule
        sev = f"[{_STYLE.get(a.severity, '')}]{a.severity}[/]"
        table.add_row(safe(a.org), safe(rule), sev, safe(a.status), safe(a.message))
    return table


class _WarnLine(logging.Handler):
    """A warning logged by the reader, printed as ``warning: ...`` on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        warn(record.getMessage())


def check(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Evaluate only: record and send nothing")
    ] = False,
    as_json: JsonOption = False,
    as_of: AsOfOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Evaluate every rule; announce new and resolved alerts to the configured channels.

    Exit 0 when done, 1 when a notice could not be delivered (it is retried by the next
    checks), 2 on bad config or when nothing has been collected yet.
    """
    settings = settings_from(config, db)
    at = parse_as_of(as_of)
    # Failed deliveries are reported below; keep the library's log lines off the terminal.
    logging.getLogger("runway_costs.analytics.alerts").addHandler(logging.NullHandler())
    # A damaged snapshot read past: the same warning line as every other reader prints.
    db_log = logging.getLogger("runway_costs.analytics.db")
    if not any(isinstance(h, _WarnLine) for h in db_log.handlers):
        db_log.addHandler(_WarnLine())
        db_log.propagate = False
    try:
        # an --as-of is computed at that instant; otherwise the latest cycle's stored
        # outlooks stand for now (analytics.outlook)
        result = check_alerts(settings, at, dry_run=dry_run, stored=as_of is None)
    except NoDataError as exc:
        raise fail(str(exc)) from None
    except LockError as exc:
        raise fail(str(exc), EXIT_PARTIAL) from None
    except (duckdb.Error, OSError) as exc:  # the live file cannot take the alert state
        raise fail(f"cannot use database {settings.db_path}: {exc}") from None
    shown = result.visible()
    if as_json:
        typer.echo(json.dumps([a.to_json() for a in shown], indent=2))
    elif shown:
        mode = " (dry run: nothing recorded or sent)" if dry_run else ""
        console.print(_alerts_table(shown, f"Alerts at {at:%Y-%m-%d %H:%M} UTC{mode}"))
    else:
        console.print(f"no alerts at {at:%Y-%m-%d %H:%M} UTC")
    for title, channel, delivery in result.deliveries:
        if not delivery.ok:
            err_console.print(
                f"delivery of {safe(repr(title))} to {safe(channel)} failed after "
                f"{delivery.attempts} attempts: {safe(delivery.error)}",
                highlight=False,
                soft_wrap=True,
            )
    if result.failed_deliveries:
        raise typer.Exit(EXIT_PARTIAL)


def _rows_json(frame: pl.DataFrame) -> str:
    def conv(v: object) -> object:
        return v.isoformat() + "Z" if isinstance(v, datetime) else v

    return json.dumps(
        [{k: conv(v) for k, v in row.items()} for row in frame.iter_rows(named=True)], indent=2
    )


def open_cmd(as_json: JsonOption = False, db: DbOption = None, config: ConfigOption = None) -> None:
    """Alerts whose condition still holds, most severe first."""
    settings = settings_from(config, db)
    with read_db(settings.db_path) as con:
        frame = open_alerts(con)
    if as_json:
        typer.echo(_rows_json(frame))
        return
    table = Table(title="Open alerts", show_lines=True)
    for col in ("org", "rule", "severity", "since", "message"):
        table.add_column(col, overflow="fold")
    for r in frame.iter_rows(named=True):
        rule = f"{r['rule']} ({r['target']})" if r["target"] else r["rule"]
        table.add_row(
            safe(r["org"]),
            safe(rule),
            safe(r["severity"]),
            f"{r['first_fired_at']:%Y-%m-%d %H:%M}",
            safe(r["message"]),
        )
    console.print(table if frame.height else "no open alerts")


def history(
    org: OrgOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest N notices")] = 50,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Notices announced (fired and resolved), newest first, with delivery counts."""
    settings = settings_from(config, db)
    with read_db(settings.db_path) as con:
        frame = alert_history(con, org, limit)
    if as_json:
        typer.echo(_rows_json(frame))
        return
    table = Table(title="Alert history", show_lines=True)
    for col in ("at", "org", "rule", "status", "severity", "delivered", "message"):
        table.add_column(col, overflow="fold")
    for r in frame.iter_rows(named=True):
        table.add_row(
            f"{r['event_at']:%Y-%m-%d %H:%M}",
            safe(r["org"]),
            safe(r["rule"]),
            safe(r["status"]),
            safe(r["severity"]),
            f"{r['delivered']}/{r['delivered'] + r['undelivered']}",
            safe(r["message"]),
        )
    console.print(table if frame.height else "no alerts announced yet")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Spend, cap, budget, balance, limit and collection alerts.")
    group.command("check")(handle_errors(check))
    group.command("open")(handle_errors(open_cmd))
    group.command("history")(handle_errors(history))
    app.add_typer(group, name="alerts")
