"""``runway-costs statement``: one month's spend as a spreadsheet a finance team files."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from runway_costs.analytics.export import ExportTargetError, write_file_atomic
from runway_costs.analytics.orgs import orgs_collected
from runway_costs.analytics.statement import (
    monthly_statement,
    parse_month,
    write_csv_zip,
    write_xlsx,
)
from runway_costs.cli.common import (
    ConfigOption,
    DbOption,
    OrgOption,
    cli_clock,
    console,
    fail,
    handle_errors,
    read_db,
    settings_from,
)
from runway_costs.cli.report_cmd import _output_file
from runway_costs.cli.text import safe


class StatementFormat(StrEnum):
    xlsx = "xlsx"
    csv = "csv"


@handle_errors
def statement(
    month: Annotated[str, typer.Option("--month", help="The calendar month, YYYY-MM (UTC)")],
    output: Annotated[
        str,
        typer.Option("--output", "-o", help="The file to write (atomically; a regular file)"),
    ],
    db: DbOption = None,
    config: ConfigOption = None,
    org: OrgOption = None,
    fmt: Annotated[
        StatementFormat,
        typer.Option("--format", help="xlsx (one sheet per table) or csv (a zip of CSVs)"),
    ] = StatementFormat.xlsx,
) -> None:
    """Write a month's spend statement (xlsx or CSV zip) for finance: orgs, tags, models, days.

    Per organization and tag: spend in credits and USD, budget, variance, purchases
    observed, balance at month start and end; then per model, per day and the month's
    restatements. Exit 0, or 2 on a bad or future month, unknown organization, an
    unwritable -o or no data.
    """
    try:
        first = parse_month(month)
    except ValueError as exc:
        raise fail(f"--month: {exc}") from None
    now = cli_clock()()
    if first > now.date():
        raise fail(f"--month: {month} has not started yet (today is {now.date()} UTC)")
    target = _output_file(output)
    settings = settings_from(config, db)
    with read_db(settings.db_path) as con:
        known = orgs_collected(con)
        if org is not None and org not in known:
            raise fail(f"unknown organization {org!r} (in the database: {', '.join(known)})")
        stmt = monthly_statement(con, settings, first, now, None if org is None else [org])
    writer = write_xlsx if fmt is StatementFormat.xlsx else write_csv_zip
    try:
        write_file_atomic(target, lambda tmp: writer(stmt, tmp))
    except ExportTargetError as exc:
        raise fail(f"cannot write {output}: {exc}") from None
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror or exc}") from None
    total = stmt.summary.filter(stmt.summary["org"] == "TOTAL")["credits"][0]
    state = "closed" if stmt.complete else "to date"
    console.print(
        f"wrote the {first:%Y-%m} statement ({state}; {len(stmt.orgs)} organization(s), "
        f"{total:,} credits) to {safe(output)}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("statement")(statement)
