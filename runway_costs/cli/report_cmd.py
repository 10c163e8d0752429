"""Commands that read the database: ``status``, ``export usage`` and ``export revisions``."""

from __future__ import annotations

import json
import sys
from contextlib import closing
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import duckdb
import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from runway_costs.analytics.db import connect_reader
from runway_costs.analytics.export import (
    ExportTargetError,
    export_target,
    render,
    usage_export,
    usage_grouped,
    write_atomic,
)
from runway_costs.analytics.keys import NO_KEY_USAGE
from runway_costs.analytics.orgs import orgs_collected
from runway_costs.analytics.revisions import revisions
from runway_costs.analytics.status import model_status, org_status
from runway_costs.analytics.tags import GroupingError, parse_by
from runway_costs.cli.common import (
    EXIT_USAGE,
    ConfigOption,
    DbOption,
    JsonOption,
    OrgOption,
    console,
    fail,
    handle_errors,
    parse_date,
    read_db,
    settings_from,
    warn,
)
from runway_costs.cli.text import safe


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"
    parquet = "parquet"


def _iso(value: object) -> object:
    """Naive UTC timestamps as ISO with 'Z'; dates as ISO; others as they are."""
    if isinstance(value, datetime):
        return value.isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    return value


def status_document(con: duckdb.DuckDBPyConnection, credit_usd: float) -> dict:
    """Everything ``status`` shows, as plain JSON-ready data."""
    orgs = org_status(con, credit_usd)
    models = model_status(con)
    out = []
    for row in orgs.iter_rows(named=True):
        mine = models.filter(pl.col("org") == row["org"]).drop("org")
        out.append(
            {k: _iso(v) for k, v in row.items()}
            | {"models": [{k: _iso(v) for k, v in m.items()} for m in mine.iter_rows(named=True)]}
        )
    return {"orgs": out}


def _fmt_int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _fmt_time(value: str | None) -> str:
    return "never" if value is None else value[:19].replace("T", " ") + " UTC"


def print_status(doc: dict, out: Console) -> None:
    """Human view of ``status_document``: a summary line and a model table per org."""
    if not doc["orgs"]:
        out.print("no organizations collected yet: run `runway-costs collect`")
    for org in doc["orgs"]:
        balance = _fmt_int(org["credit_balance"])
        usd = "-" if org["balance_usd"] is None else f"${org['balance_usd']:,.2f}"
        cap = _fmt_int(org["max_monthly_credit_spend"])
        cap_usd = "-" if org["cap_usd"] is None else f"${org['cap_usd']:,.2f}"
        out.print(
            f"[bold]{safe(org['org'])}[/]  balance {balance} credits ({usd})  "
            f"monthly cap {cap} credits ({cap_usd})  "
            f"last collected {_fmt_time(org['last_success_at'])}",
            highlight=False,
        )
        if org["usage_days"]:
            out.print(
                f"  usage held: {org['usage_days']} days with usage from "
                f"{org['usage_first_date']} to {org['usage_last_date']}, "
                f"{_fmt_int(org['usage_credits'])} credits net",
                highlight=False,
            )
        else:
            out.print("  usage held: none yet", highlight=False)
        if org["last_status"] == "failed":
            out.print(f"  [red]last run failed:[/] {safe(org['last_error'])}", highlight=False)
        table = Table(show_edge=False, pad_edge=False)
        table.add_column("model")
        table.add_column("concurrent", justify="right")
        table.add_column("daily limit", justify="right")
        table.add_column("generations (24h)", justify="right")
        for m in org["models"]:
            table.add_row(
                safe(m["model"]),
                _fmt_int(m["max_concurrent_generations"]),
                _fmt_int(m["max_daily_generations"]),
                _fmt_int(m["daily_generations"]),
            )
        if org["models"]:
            out.print(table)
        out.print()


def show_status(db_path: Path, credit_usd: float, out: Console) -> None:
    """Print the status report for ``db_path`` (used by ``status`` and ``demo``)."""
    with closing(connect_reader(db_path)) as con:
        doc = status_document(con, credit_usd)
    print_status(doc, out)


@handle_errors
def status(
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per organization: balance, monthly cap, last collection, model limits and 24h usage.

    Exit 0, or 2 when there is no data yet or the config is bad.
    """
    settings = settings_from(config, db)
    with read_db(settings.db_path) as con:
        doc = status_document(con, settings.credit_usd)
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        print_status(doc, console)


FromOption = Annotated[
    str | None, typer.Option("--from", help="First date, inclusive (YYYY-MM-DD)")
]
ToOption = Annotated[str | None, typer.Option("--to", help="Last date, inclusive (YYYY-MM-DD)")]
FormatOption = Annotated[ExportFormat, typer.Option("--format", help="Output format")]
OutputOption = Annotated[
    str | None,
    typer.Option("--output", "-o", help="Write this regular file (atomically) instead of stdout"),
]


def _range(from_: str | None, to: str | None) -> tuple[date | None, date | None]:
    start = parse_date(from_, "--from") if from_ is not None else None
    end = parse_date(to, "--to") if to is not None else None
    if start and end and start > end:
        raise fail(f"--from {start} is after --to {end}")
    return start, end


def _emit(frame: pl.DataFrame, fmt: ExportFormat, output: str | None, target: Path | None) -> None:
    """The frame on stdout, or written atomically to ``target`` (the checked ``-o``)."""
    if target is None or output is None:
        sys.stdout.write(render(frame, fmt.value))
        return
    try:
        write_atomic(frame, fmt.value, target)
    except ExportTargetError as exc:
        raise fail(f"cannot write {output}: {exc}", EXIT_USAGE) from None
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror or exc}", EXIT_USAGE) from None
    console.print(f"wrote {frame.height} rows to {safe(output)}", highlight=False)


@handle_errors
def export_usage(
    db: DbOption = None,
    config: ConfigOption = None,
    org: OrgOption = None,
    from_: FromOption = None,
    to: ToOption = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Per day and org, model, tag:KEY (the [[orgs]] tags, applied to all of "
            "history) or key (per API key, as the API reports it)",
        ),
    ] = None,
    fmt: FormatOption = ExportFormat.csv,
    output: OutputOption = None,
) -> None:
    """Daily net credits as org,date,model,credits sorted by org, date, model.

    With --by: credits per group and day (org, model, tag:KEY) or the per-API-key rows
    (key). Exit 0, or 2 on a bad date, unknown organization or tag key, parquet without
    -o or no data.
    """
    start, end = _range(from_, to)
    if fmt is ExportFormat.parquet and output is None:
        raise fail("--format parquet needs an output file (-o FILE)")
    target = None if output is None else _output_file(output)
    settings = settings_from(config, db)
    grouping = None
    if by is not None:
        try:
            grouping = parse_by(by, settings)
        except GroupingError as exc:
            raise fail(f"--by: {exc}") from None
    with read_db(settings.db_path) as con:
        if org is not None and org not in (orgs := orgs_collected(con)):
            known = ", ".join(orgs) or "none"
            raise fail(f"unknown organization {org!r} (in the database: {known})")
        if grouping is None:
            frame = usage_export(con, org, start, end)
        else:
            frame = usage_grouped(con, settings, grouping, org, start, end)
    if grouping is not None and grouping.kind == "key" and frame.is_empty():
        warn(NO_KEY_USAGE)
    _emit(frame, fmt, output, target)


@handle_errors
def export_revisions(
    db: DbOption = None,
    config: ConfigOption = None,
    org: OrgOption = None,
    from_: FromOption = None,
    to: ToOption = None,
    restated: Annotated[
        bool,
        typer.Option("--restated", help="Only restatements (days changed after they were over)"),
    ] = False,
    fmt: FormatOption = ExportFormat.csv,
    output: OutputOption = None,
) -> None:
    """Every change to a stored daily value: org, date, model, seen_at, old, new, change.

    --from/--to bound the revised usage date. restated is true when the day was already
    over when the old value was collected. Exit 0, or 2 on a bad date, unknown
    organization, parquet without -o or no data.
    """
    start, end = _range(from_, to)
    if fmt is ExportFormat.parquet and output is None:
        raise fail("--format parquet needs an output file (-o FILE)")
    target = None if output is None else _output_file(output)
    settings = settings_from(config, db)
    with read_db(settings.db_path) as con:
        if org is not None and org not in (orgs := orgs_collected(con)):
            known = ", ".join(orgs) or "none"
            raise fail(f"unknown organization {org!r} (in the database: {known})")
        frame = revisions(con, None if org is None else [org], start, end)
    if restated:
        frame = frame.filter(pl.col("restated"))
    _emit(frame, fmt, output, target)


def _output_file(output: str) -> Path:
    """``-o``: a path that names a regular file (existing or new), checked before reading."""
    if not output.strip():
        raise fail("-o/--output: the path is empty")
    try:
        return export_target(Path(output))
    except ExportTargetError as exc:
        raise fail(f"cannot write {output}: {exc}") from None


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    export = typer.Typer(help="Export collected data.", no_args_is_help=True)
    export.command("usage")(export_usage)
    export.command("revisions")(export_revisions)
    app.add_typer(export, name="export")
