"""How good is the month-end forecast? Replay it on the stored history.

For every organization and every calendar month wholly inside its stored history, the
forecast is made as it would have been at the end of days 7, 14 and 21 (only the days up
to then are visible), and compared with what the month really came to. The naive
baseline is month-to-date / days elapsed * days in the month. Both are scored by mean
absolute percentage error (months whose actual total is not positive are skipped: a
percentage of zero means nothing).

Public API:

- ``backtest(con, orgs=None, origins=(7, 14, 21), as_of=None) -> Backtest``
  ``Backtest.rows``: org, month, origin_day, actual, forecast, naive, ape_forecast,
  ape_naive; ``Backtest.mape_forecast`` / ``mape_naive`` (fractions, None without rows).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import cast

import duckdb
import polars as pl

from runway_costs.analytics.forecast import month_end
from runway_costs.analytics.orgs import orgs_with_data
from runway_costs.analytics.spend import query

__all__ = ["Backtest", "backtest"]


@dataclass(frozen=True)
class Backtest:
    rows: pl.DataFrame

    @property
    def mape_forecast(self) -> float | None:
        return None if self.rows.is_empty() else cast(float, self.rows["ape_forecast"].mean())

    @property
    def mape_naive(self) -> float | None:
        return None if self.rows.is_empty() else cast(float, self.rows["ape_naive"].mean())


_SCHEMA = {
    "org": pl.String,
    "month": pl.Date,
    "origin_day": pl.Int64,
    "actual": pl.Int64,
    "forecast": pl.Int64,
    "naive": pl.Int64,
}


def _months(first: date, last: date) -> list[date]:
    """First days of the months that lie wholly within [first, last]."""
    month = first.replace(day=1)
    if month < first:
        month = (month + timedelta(days=32)).replace(day=1)
    out: list[date] = []
    while True:
        end = month.replace(day=calendar.monthrange(month.year, month.month)[1])
        if end > last:
            return out
        out.append(month)
        month = end + timedelta(days=1)


def backtest(
    con: duckdb.DuckDBPyConnection,
    orgs: Sequence[str] | None = None,
    origins: Sequence[int] = (7, 14, 21),
    as_of: date | None = None,
) -> Backtest:
    """Score the month-end forecast against the naive baseline on every whole past month."""
    names = list(orgs) if orgs is not None else orgs_with_data(con)
    records = []
    for org in names:  # per org and month: a few dozen forecasts, not a loop over rows
        history = query(
            con,
            """
            SELECT date, CAST(SUM(credits) AS BIGINT) AS credits FROM daily_usage
            WHERE org = $org GROUP BY date ORDER BY date
            """,
            {"org": org},
        )
        if history.is_empty():
            continue
        # The last stored day may be today's partial figure: it is not a whole day.
        last = (as_of or cast(date, history["date"].max())) - timedelta(days=1)
        for month in _months(cast(date, history["date"].min()), last):
            dim = calendar.monthrange(month.year, month.month)[1]
            in_month = history.filter(
                (pl.col("date") >= month) & (pl.col("date") < month + timedelta(days=dim))
            )
            actual = int(in_month["credits"].sum())
            for k in origins:
                cutoff = datetime.combine(month + timedelta(days=k), time())
                mtd = int(in_month.filter(pl.col("date") < cutoff.date())["credits"].sum())
                visible = history.filter(pl.col("date") < cutoff.date())
                forecast = month_end(visible, cutoff, interval=False).mid
                records.append((org, month, k, actual, forecast, round(mtd / k * dim)))
    rows = pl.DataFrame(records, schema=_SCHEMA, orient="row").filter(pl.col("actual") > 0)
    rows = rows.with_columns(
        ape_forecast=(pl.col("forecast") - pl.col("actual")).abs() / pl.col("actual"),
        ape_naive=(pl.col("naive") - pl.col("actual")).abs() / pl.col("actual"),
    )
    return Backtest(rows)
