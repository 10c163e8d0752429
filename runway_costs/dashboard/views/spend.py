"""The Spend page: daily spend stacked by a group (model, organization, a tag's values or
API key), monthly totals, per-key spend, restated months, the raw rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb
import polars as pl

from runway_costs.analytics import keys as keys_mod
from runway_costs.analytics import spend as spend_mod
from runway_costs.analytics.revisions import restated_months
from runway_costs.analytics.tags import Grouping, parse_by, with_tag
from runway_costs.core.config import Settings
from runway_costs.dashboard.views.common import Scope

NO_KEY_USAGE = keys_mod.NO_KEY_USAGE


def group_choices(settings: Settings) -> dict[str, str]:
    """The Spend and Overview pages' "group by" choices: value -> label."""
    choices = {"model": "model", "org": "organization"}
    choices |= {f"tag:{k}": f"tag: {k}" for k in settings.tag_keys()}
    choices["key"] = "API key"
    return choices


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
    grouping: Grouping = Grouping("model")
    # date, group (top + "other"), credits / group, credits, usd, share
    daily_by_group: pl.DataFrame = field(default_factory=pl.DataFrame)
    by_group: pl.DataFrame = field(default_factory=pl.DataFrame)
    # org, api_key_id, key_label, credits, usd, share
    keys: pl.DataFrame = field(default_factory=pl.DataFrame)
    # month, change_credits, changes, last_seen_at
    restated: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def total_credits(self) -> int:
        return int(self.rows["credits"].sum()) if not self.rows.is_empty() else 0

    @property
    def restated_lines(self) -> list[str]:
        """ "Restated since it closed" lines, one per closed month of the range that changed."""
        return [
            f"{r['month']:%Y-%m} restated since it closed: {r['change_credits']:+,} credits "
            f"({r['changes']} change(s), last seen {r['last_seen_at']:%Y-%m-%d %H:%M} UTC)"
            for r in self.restated.iter_rows(named=True)
        ]


def _ranked(rows: pl.DataFrame, column: str, top_n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Totals per ``column`` (credits, usd, share) and the daily frame with all but the
    ``top_n`` largest folded into "other"."""
    totals = (
        rows.group_by(column)
        .agg(pl.col("credits").sum(), pl.col("usd").sum().round(2))
        .sort(["credits", column], descending=[True, False])
    )
    total = int(totals["credits"].sum()) if not totals.is_empty() else 0
    totals = totals.with_columns(
        share=(pl.col("credits") / total).round(4) if total else pl.lit(None, pl.Float64)
    )
    top = totals.head(top_n)[column]
    daily = (
        rows.with_columns(
            pl.when(pl.col(column).is_in(top.implode()))
            .then(pl.col(column))
            .otherwise(pl.lit("other"))
            .alias(column)
        )
        .group_by("date", column)
        .agg(pl.col("credits").sum())
        .sort("date", column)
    )
    return totals, daily


def spend(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    scope: Scope,
    start: date,
    end: date,
    top_n: int = 6,
    group_by: str = "model",
) -> SpendData:
    """Daily spend stacked by the ``top_n`` largest of ``group_by`` (model, org, tag:KEY,
    key) plus "other"; tags are the config's now, applied to the whole range."""
    orgs, usd = scope.org_list, settings.credit_usd
    grouping = parse_by(group_by, settings)
    rows = spend_mod.spend_daily_by_model(con, orgs, start, end, usd)
    by_model, daily = _ranked(rows, "model", top_n)
    per_key = keys_mod.key_usage(con, settings, orgs, start, end)
    if grouping.kind == "key":
        labelled = per_key.with_columns(
            group=pl.col("key_label")
            if len(orgs) == 1
            else pl.format("{} · {}", pl.col("org"), pl.col("key_label"))
        )
    elif grouping.kind == "tag":
        assert grouping.tag_key is not None
        labelled = with_tag(rows, settings, grouping.tag_key)
    else:
        labelled = rows.with_columns(group=pl.col(grouping.kind))
    by_group, daily_by_group = _ranked(
        labelled.select("date", "group", "credits", "usd"), "group", top_n
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
        grouping=grouping,
        daily_by_group=daily_by_group,
        by_group=by_group,
        keys=keys_mod.key_totals(per_key),
        restated=restated_months(con, orgs, start, end),
    )
