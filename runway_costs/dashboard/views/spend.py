"""The Spend page: daily spend stacked by a group (model, organization, a tag's values or
API key), monthly totals, per-key spend, restated months, the raw rows.

Read as sums, not rows (issue #12): the window's totals per (date, model) make the charts
and tables (per (org, date) too when grouping by organization or tag), and at most
``ROW_LIMIT`` raw (org, date, model) rows are read, from the newest days only (the per-day
row counts say how far back), so the load follows the window and what the page draws,
not the number of organizations' rows. "All organizations" reads with no filter on org.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import duckdb
import polars as pl

from runway_costs.analytics import keys as keys_mod
from runway_costs.analytics import spend as spend_mod
from runway_costs.analytics.revisions import restated_months
from runway_costs.analytics.tags import Grouping, parse_by, with_tag
from runway_costs.core.config import Settings
from runway_costs.dashboard.views.common import Scope, cursor

NO_KEY_USAGE = keys_mod.NO_KEY_USAGE
# The raw rows a page holds at most: a table the browser can show (one organization's 90
# days x 60 models is 5,400); beyond it, the newest rows. The totals cover everything.
ROW_LIMIT = 10_000


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
    # org, date, model, credits, usd: every row by (org, date, model), or when there are
    # more than ROW_LIMIT the newest ROW_LIMIT by (date descending, org, model)
    rows: pl.DataFrame
    grouping: Grouping = Grouping("model")
    # date, group (top + "other"), credits / group, credits, usd, share
    daily_by_group: pl.DataFrame = field(default_factory=pl.DataFrame)
    by_group: pl.DataFrame = field(default_factory=pl.DataFrame)
    # org, api_key_id, key_label, credits, usd, share
    keys: pl.DataFrame = field(default_factory=pl.DataFrame)
    # month, change_credits, changes, last_seen_at
    restated: pl.DataFrame = field(default_factory=pl.DataFrame)
    total_credits: int = 0  # the whole selection's, not only the rows held
    total_usd: float = 0.0
    row_count: int = 0  # stored rows in the selection (``rows`` holds ROW_LIMIT at most)

    @property
    def rows_cut(self) -> bool:
        """Whether ``rows`` holds only the newest ROW_LIMIT of the selection's rows."""
        return self.row_count > self.rows.height

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
    row_limit: int = ROW_LIMIT,
) -> SpendData:
    """Daily spend stacked by the ``top_n`` largest of ``group_by`` (model, org, tag:KEY,
    key) plus "other"; tags are the config's now, applied to the whole range."""
    orgs, usd = scope.org_list, settings.credit_usd
    read = None if scope.all_orgs else orgs  # every org: no filter to evaluate per row
    grouping = parse_by(group_by, settings)
    with ThreadPoolExecutor(max_workers=1) as pool:  # DuckDB queries release the GIL
        by_org_job = (
            pool.submit(spend_mod.spend_by_org_date, cursor(con), read, start, end, usd)
            if grouping.kind in ("org", "tag")
            else None
        )
        sums = spend_mod.spend_by_date_model(cursor(con), read, start, end, usd)
        row_count = int(sums["rows"].sum()) if sums.height else 0
        if row_count <= row_limit:
            rows = spend_mod.spend_rows(cursor(con), read, start, end, usd)
        else:  # the newest days holding ROW_LIMIT rows: the read skips older row groups
            per_day = sums.group_by("date").agg(pl.col("rows").sum()).sort("date", descending=True)
            fits = per_day.filter(pl.col("rows").cum_sum() <= row_limit)
            since: date = (fits if fits.height else per_day.head(1))["date"].to_list()[-1]
            rows = spend_mod.spend_rows(cursor(con), read, since, end, usd, limit=row_limit)
        per_key = keys_mod.key_usage(cursor(con), settings, read, start, end)
        restated = restated_months(cursor(con), read, start, end)
        by_org = by_org_job.result() if by_org_job is not None else None
    by_model, daily = _ranked(sums, "model", top_n)
    if grouping.kind == "key":
        labelled = per_key.with_columns(
            group=pl.col("key_label")
            if len(orgs) == 1
            else pl.format("{} · {}", pl.col("org"), pl.col("key_label"))
        )
    elif grouping.kind == "tag":
        assert grouping.tag_key is not None
        assert by_org is not None
        labelled = with_tag(by_org, settings, grouping.tag_key)
    elif grouping.kind == "org":
        assert by_org is not None
        labelled = by_org.with_columns(group=pl.col("org"))
    else:
        labelled = sums.with_columns(group=pl.col("model"))
    by_group, daily_by_group = _ranked(
        labelled.select("date", "group", "credits", "usd"), "group", top_n
    )
    monthly = (
        sums.group_by(month=pl.col("date").dt.truncate("1mo"))
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
        restated=restated,
        total_credits=int(sums["credits"].sum()) if sums.height else 0,
        total_usd=round(float(sums["usd"].sum()), 2) if sums.height else 0.0,
        row_count=row_count,
    )
