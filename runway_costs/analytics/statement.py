"""The monthly statement: one calendar month's spend, as a finance team files it.

Tables (each a polars frame; credits are integers, USD rounded to cents):

- ``summary``: per organization (its tags as columns): spend in credits and USD, its
  organization-wide budget and the variance (spend - budget), purchases observed in the
  month (reconstructed, ``analytics.purchases``; ``purchase_days_known`` of the month's
  days), balance at month start (00:00 UTC of the 1st) and at month end (the end of the
  last day, or of the last day so far for the current month), NULL where not observed;
  then a ``TOTAL`` row: every column the sum of the rows above (a balance total only when
  every organization's is known).
- ``tags``: per tag key and value (tags from the config, applied to the whole month): the
  organizations, spend, tag budget and variance; each key's values add up to the total.
- ``models``: per organization and model, then ``TOTAL``.
- ``days``: per day and organization, then ``TOTAL``.
- ``revisions``: the restatements of the month's days (changes to a day already over
  when the old value was collected; ``analytics.revisions``), whenever they were seen.
- ``notes``: what the figures mean and where they are partial.

Public API:
    parse_month(text) -> date                     ("2026-10" -> 2026-10-01; ValueError)
    monthly_statement(con, settings, month, as_of, orgs=None) -> Statement
    Statement.sheets() -> dict[str, pl.DataFrame] (sheet name -> table, in order)
    write_xlsx(statement, path) / write_csv_zip(statement, path)
"""

from __future__ import annotations

import calendar
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from runway_costs.analytics.orgs import orgs_with_data
from runway_costs.analytics.purchases import purchases_daily
from runway_costs.analytics.revisions import revisions
from runway_costs.analytics.spend import query
from runway_costs.analytics.tags import UNTAGGED, tags_frame
from runway_costs.core.config import Settings
from runway_costs.core.money import usd

__all__ = ["Statement", "monthly_statement", "parse_month", "write_csv_zip", "write_xlsx"]

TOTAL = "TOTAL"
_MONTH = re.compile(r"(\d{4})-(\d{2})\Z")


def parse_month(text: str) -> date:
    """``YYYY-MM`` as the month's first day; anything else is a ValueError."""
    m = _MONTH.match(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1970:
        raise ValueError(f"{text!r} is not a month (expected YYYY-MM)")
    return date(int(m.group(1)), int(m.group(2)), 1)


def month_last_day(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


@dataclass(frozen=True)
class Statement:
    month: date
    as_of: datetime
    orgs: tuple[str, ...]
    complete: bool  # the month was over at as_of
    summary: pl.DataFrame
    tags: pl.DataFrame
    models: pl.DataFrame
    days: pl.DataFrame
    revisions: pl.DataFrame
    notes: pl.DataFrame

    def sheets(self) -> dict[str, pl.DataFrame]:
        return {
            "Summary": self.summary,
            "Tags": self.tags,
            "Models": self.models,
            "Days": self.days,
            "Restatements": self.revisions,
            "Notes": self.notes,
        }


def _with_total(frame: pl.DataFrame, label_col: str, sums: Sequence[str]) -> pl.DataFrame:
    """``frame`` plus a TOTAL row: ``label_col`` = TOTAL, each of ``sums`` summed (USD
    sums rounded to cents), every other column NULL."""
    row: dict[str, object] = {c: None for c in frame.columns}
    row[label_col] = TOTAL
    for c in sums:
        column = frame[c]
        total = column.sum() if column.null_count() < frame.height or frame.height == 0 else None
        if total is not None and column.dtype.is_float():
            total = round(float(total), 2)
        row[c] = total
    return pl.concat([frame, pl.DataFrame([row], schema=frame.schema, orient="row")])


def monthly_statement(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    month: date,
    as_of: datetime,
    orgs: Sequence[str] | None = None,
) -> Statement:
    """The statement of ``month`` (its first day) as known at ``as_of`` (naive UTC)."""
    names = list(orgs) if orgs is not None else orgs_with_data(con)
    last = month_last_day(month)
    complete = as_of.date() > last
    upto = min(last, as_of.date())
    rate = settings.credit_usd

    rows = query(
        con,
        """
        SELECT org, date, model, credits FROM daily_usage
        WHERE date BETWEEN $start AND $end AND list_contains($orgs, org)
        ORDER BY org, date, model
        """,
        {"orgs": names, "start": month, "end": last},
    )
    per_org = rows.group_by("org").agg(credits=pl.col("credits").sum().cast(pl.Int64))
    budgets = pl.DataFrame(
        {
            "org": names,
            "budget_credits": [_org_budget(settings, o) for o in names],
        },
        schema={"org": pl.String, "budget_credits": pl.Int64},
    )
    balances = _balances(con, names, month, upto)
    summary = (
        tags_frame(settings, names)
        .join(per_org, on="org", how="left")
        .with_columns(pl.col("credits").fill_null(0))
        .with_columns(usd=usd(pl.col("credits"), rate))
        .join(budgets, on="org", how="left")
        .with_columns(variance_credits=pl.col("credits") - pl.col("budget_credits"))
        .join(balances, on="org", how="left")
        .with_columns(pl.col("purchase_days_known").fill_null(0))
        .sort("org")
    )
    summary = _with_total(
        summary,
        "org",
        [
            "credits",
            "usd",
            "budget_credits",
            "variance_credits",
            "purchases_credits",
            "purchase_days_known",
            "balance_start_credits",
            "balance_end_credits",
        ],
    )
    models = rows.group_by("org", "model").agg(pl.col("credits").sum().cast(pl.Int64))
    models = models.with_columns(usd=usd(pl.col("credits"), rate)).sort("org", "model")
    days = rows.group_by("date", "org").agg(pl.col("credits").sum().cast(pl.Int64))
    days = days.with_columns(usd=usd(pl.col("credits"), rate)).sort("date", "org")
    days = days.with_columns(pl.col("date").cast(pl.String))  # TOTAL shares the column
    restated = revisions(con, names, month, last).filter(pl.col("restated")).drop("restated")
    return Statement(
        month=month,
        as_of=as_of,
        orgs=tuple(names),
        complete=complete,
        summary=summary,
        tags=_tag_table(settings, summary.filter(pl.col("org") != TOTAL), rate),
        models=_with_total(models, "org", ["credits", "usd"]),
        days=_with_total(days, "date", ["credits", "usd"]),
        revisions=restated,
        notes=_notes(month, last, as_of, complete, rate),
    )


def _org_budget(settings: Settings, org: str) -> int | None:
    found = [
        b.monthly_credits(settings.credit_usd)
        for b in settings.budgets
        if b.org == org and b.model is None
    ]
    return sum(found) if found else None


def _balances(
    con: duckdb.DuckDBPyConnection, orgs: list[str], month: date, upto: date
) -> pl.DataFrame:
    """Per org: purchases observed in [month, upto], the days known, and the balance at
    the end of the day before the month and of ``upto`` (NULL where not observed)."""
    daily = purchases_daily(con, orgs, month - timedelta(days=1), upto)
    inside = daily.filter(pl.col("date") >= month)
    sums = inside.group_by("org").agg(
        purchases_credits=pl.col("purchases").sum().cast(pl.Int64),
        purchase_days_known=pl.col("purchases").is_not_null().sum().cast(pl.Int64),
    )
    start = daily.filter(pl.col("date") == month - timedelta(days=1)).select(
        "org", balance_start_credits=pl.col("balance_end").cast(pl.Int64)
    )
    end = daily.filter(pl.col("date") == upto).select(
        "org", balance_end_credits=pl.col("balance_end").cast(pl.Int64)
    )
    base = pl.DataFrame({"org": orgs}, schema={"org": pl.String})
    joined = base.join(sums, on="org", how="left").join(start, on="org", how="left")
    return joined.join(end, on="org", how="left").with_columns(
        # a month without a single known day has purchases unknown, not 0
        purchases_credits=pl.when(pl.col("purchase_days_known") > 0).then(
            pl.col("purchases_credits")
        )
    )


def _tag_table(settings: Settings, summary: pl.DataFrame, rate: float) -> pl.DataFrame:
    out = []
    for key in settings.tag_keys():
        column = key if key != "org" else "tag:org"
        groups = summary.with_columns(pl.col(column).fill_null(UNTAGGED)).group_by(column)
        for (value,), frame in sorted(groups, key=lambda g: str(g[0][0])):
            budget = [
                b.monthly_credits(settings.credit_usd)
                for b in settings.budgets
                if b.tag_pair == (key, value) and b.model is None
            ]
            credits = int(frame["credits"].sum())
            total_budget = sum(budget) if budget else None
            out.append(
                (
                    key,
                    str(value),
                    ", ".join(sorted(frame["org"].to_list())),
                    credits,
                    usd(credits, rate),
                    total_budget,
                    None if total_budget is None else credits - total_budget,
                )
            )
    return pl.DataFrame(
        out,
        schema={
            "tag_key": pl.String,
            "tag_value": pl.String,
            "orgs": pl.String,
            "credits": pl.Int64,
            "usd": pl.Float64,
            "budget_credits": pl.Int64,
            "variance_credits": pl.Int64,
        },
        orient="row",
    )


def _notes(month: date, last: date, as_of: datetime, complete: bool, rate: float) -> pl.DataFrame:
    lines = [
        ("month", f"{month:%Y-%m} ({month} to {last}, UTC days)"),
        ("as of", f"{as_of:%Y-%m-%d %H:%M} UTC"),
        ("status", "closed month" if complete else "month not over: figures to date"),
        ("credit price", f"USD {rate:g} per credit; spend is net of refunds"),
        (
            "purchases",
            "reconstructed from observed balances and spend (the API reports none); "
            "purchases_credits covers only purchase_days_known days; empty = unknown",
        ),
        (
            "balances",
            "balance at 00:00 UTC of the 1st and at the end of the last day; empty = not observed",
        ),
        ("tags", "the tags in the config now, applied to the whole month"),
        (
            "restatements",
            "changes to a day of the month after that day was over (export revisions "
            "lists every change)",
        ),
    ]
    return pl.DataFrame(lines, schema={"item": pl.String, "value": pl.String}, orient="row")


def _cell(value: object) -> object:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return value


def write_xlsx(statement: Statement, path: Path) -> None:
    """One sheet per table; numbers are number cells, dates date cells."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    if book.active is not None:
        book.remove(book.active)
    for name, frame in statement.sheets().items():
        sheet = book.create_sheet(name)
        sheet.append(frame.columns)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in frame.iter_rows():
            sheet.append([_cell(v) for v in row])
        for i, column in enumerate(frame.columns, start=1):
            width = max([len(column), *(len(str(v)) for v in frame[column].head(200))])
            sheet.column_dimensions[sheet.cell(1, i).column_letter].width = min(width + 2, 60)
        sheet.freeze_panes = "A2"
    book.save(path)


def write_csv_zip(statement: Statement, path: Path) -> None:
    """The same tables as CSV files (summary.csv, tags.csv, ...) in one zip."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, frame in statement.sheets().items():
            buf = io.StringIO()
            frame.write_csv(buf)
            zf.writestr(f"{name.lower()}.csv", buf.getvalue())
