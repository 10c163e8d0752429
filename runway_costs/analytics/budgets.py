"""Spend against the calendar-month budgets the user sets in the config file.

A budget (``[[budgets]]`` in the TOML file, ``runway_costs.core.config.Budget``) is per
organization or per tag (``tag = "team=growth"``: every configured organization carrying
that tag, together; tags are read from the config at read time, so a changed tag applies to
the whole history), optionally per model, in credits or USD. Its month-end outlook is the
``analytics.forecast`` month-end forecast of that organization's (or that model's) spend;
for a tag, the sum of its organizations' forecasts (low, mid and high each summed: the
interval of a sum is at most that wide).

Public API:

- ``budget_status(con, settings, as_of) -> pl.DataFrame``, one row per configured budget:
  org (NULL for a tag budget), tag ("team=growth", NULL for an organization's), orgs (the
  organizations covered), model (NULL = all models), month, budget_credits,
  spent_mtd_credits, used_ratio, forecast_low / forecast_mid / forecast_high (credits),
  forecast_ratio (mid / budget), and ``budget_usd``, ``spent_mtd_usd``, ``forecast_mid_usd``.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from runway_costs.analytics.forecast import month_end_forecasts
from runway_costs.core.config import Settings
from runway_costs.core.money import usd

__all__ = ["budget_status"]

_SCHEMA = pl.Schema(
    {
        "org": pl.String(),
        "tag": pl.String(),
        "orgs": pl.List(pl.String()),
        "model": pl.String(),
        "month": pl.Date(),
        "budget_credits": pl.Int64(),
        "spent_mtd_credits": pl.Int64(),
        "forecast_low": pl.Int64(),
        "forecast_mid": pl.Int64(),
        "forecast_high": pl.Int64(),
    }
)


def budget_status(
    con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime
) -> pl.DataFrame:
    """Month-to-date use and month-end outlook of every configured budget at ``as_of``."""
    rows = []
    for b in settings.budgets:  # one batched forecast of the orgs of each budget line
        covered = settings.budget_orgs(b)
        outlooks = month_end_forecasts(con, covered, as_of, b.model)
        rows.append(
            (
                b.org,
                b.tag,
                covered,
                b.model,
                as_of.date().replace(day=1),
                b.monthly_credits(settings.credit_usd),
                sum(me.month_to_date for me in outlooks),
                sum(me.low for me in outlooks),
                sum(me.mid for me in outlooks),
                sum(me.high for me in outlooks),
            )
        )
    frame = pl.DataFrame(rows, schema=_SCHEMA, orient="row")
    return frame.with_columns(
        used_ratio=pl.col("spent_mtd_credits") / pl.col("budget_credits"),
        forecast_ratio=pl.col("forecast_mid") / pl.col("budget_credits"),
        budget_usd=usd(pl.col("budget_credits"), settings.credit_usd),
        spent_mtd_usd=usd(pl.col("spent_mtd_credits"), settings.credit_usd),
        forecast_mid_usd=usd(pl.col("forecast_mid"), settings.credit_usd),
    )
