"""The Spend page: daily spend stacked by top models, monthly totals, the raw rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

from runway_costs.analytics import spend as spend_mod
from runway_costs.core.config import Settings
from runway_costs.dashboard.views.common import Scope


@dataclass(frozen=True)
class SpendData:
    """Spend of the scope between ``start`` and ``end`` (inclusive), in credits and USD."""

    scope: Scope
    start: date
    end: date
    daily: pl.DataFrame  # date, model (top models + "other"), credits
    monthly: pl.DataFrame  # month, credits, usd
    by_model: pl.DataFrame  # model, credits, usd, share
    rows: pl.DataFrame  # org, date, model, credits, usd: the downloadable table

    @property
    def total_credits(self) -> int:
        return int(self.rows["credits"].sum()) if not self.rows.is_empty() else 0


def spend(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    scope: Scope,
    start: date,
    end: date,
    top_n: int = 6,
) -> SpendData:
    """Daily spend stacked by the ``top_n`` models (by credits in range) plus "other"."""
    orgs, usd = scope.org_list, settings.credit_usd
    rows = spend_mod.spend_daily_by_model(con, orgs, start, end, usd)
    by_model = (
        rows.group_by("model")
        .agg(pl.col("credits").sum(), pl.col("usd").sum().round(2))
        .sort(["credits", "model"], descending=[True, False])
    )
    total = int(by_model["credits"].sum()) if not by_model.is_empty() else 0
    by_model = by_model.with_columns(
        share=(pl.col("credits") / total).round(4) if total else pl.lit(None, pl.Float64)
    )
    top = by_model.head(top_n)["model"]
    daily = (
        rows.with_columns(
            model=pl.when(pl.col("model").is_in(top.implode()))
            .then(pl.col("model"))
            .otherwise(pl.lit("other"))
        )
        .group_by("date", "model")
        .agg(pl.col("credits").sum())
        .sort("date", "model")
    )
    monthly = (
        spend_mod.spend_monthly(con, orgs, start, end, usd)
        .group_by("month")
        .agg(pl.col("credits").sum(), pl.col("usd").sum().round(2))
        .sort("month")
    )
    return SpendData(
        scope=scope,
        start=start,
        end=end,
        daily=daily,
        monthly=monthly,
        by_model=by_model,
        rows=rows,
    )
