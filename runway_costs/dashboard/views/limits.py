"""The Limits page: rolling-24h generations against each model's daily limit, per day,
and each organization's tier progress."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

import duckdb
import polars as pl

from runway_costs.analytics import limits as limits_mod
from runway_costs.analytics import outlook as outlook_mod
from runway_costs.analytics import tiers as tiers_mod
from runway_costs.analytics import tiertable as tiertable_mod
from runway_costs.core.config import Settings
from runway_costs.core.windows import window_start
from runway_costs.dashboard.views.common import Scope, cursor


@dataclass(frozen=True)
class LimitsData:
    """Per organization and model: rolling-24h generations against the tier's limits."""

    scope: Scope
    as_of: date
    current: pl.DataFrame
    # org, model, daily_generations, max_daily_generations, max_concurrent_generations,
    # observed_at, peak_7d, days_at_limit_30d, usage_ratio
    history: pl.DataFrame  # series, date, used (peak share of the daily limit), ...
    tiers: pl.DataFrame
    # org, tier, cap_credits, next_tier, next_cap_credits, next_unlock_days,
    # next_unlock_spend_usd, days_at_tier, since_first_snapshot, spend_usd, days_progress,
    # spend_progress, eligible


def _tiers_frame(progress: list[tiers_mod.TierProgress]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "org": p.org,
                "tier": p.tier,
                "cap_credits": p.cap_credits,
                "next_tier": p.next_tier,
                "next_cap_credits": p.next_cap_credits,
                "next_unlock_days": p.next_unlock_days,
                "next_unlock_spend_usd": p.next_unlock_spend_usd,
                "days_at_tier": p.days_at_tier,
                "since_first_snapshot": p.since_first_snapshot,
                "spend_usd": p.spend_usd,
                "days_progress": p.days_progress,
                "spend_progress": p.spend_progress,
                "eligible": p.eligible,
            }
            for p in progress
        ],
        schema={
            "org": pl.String,
            "tier": pl.Int64,
            "cap_credits": pl.Int64,
            "next_tier": pl.Int64,
            "next_cap_credits": pl.Int64,
            "next_unlock_days": pl.Int64,
            "next_unlock_spend_usd": pl.Float64,
            "days_at_tier": pl.Float64,
            "since_first_snapshot": pl.Boolean,
            "spend_usd": pl.Float64,
            "days_progress": pl.Float64,
            "spend_progress": pl.Float64,
            "eligible": pl.Boolean,
        },
    )


def limits(
    con: duckdb.DuckDBPyConnection, settings: Settings, scope: Scope, start: date, at: datetime
) -> LimitsData:
    """Limit use now and per day, and each organization's tier progress.

    One organization: a line per model. Several: per organization, the share of the
    daily limit of its busiest model (1,200 lines of org x model say nothing at once).
    The "now" table, the limits the tier is matched on and the tier facts come from the
    latest cycle's stored outlooks when they describe this collection
    (``outlook.stored_limit_page``: the same figures); otherwise computed, set-based for
    any number of organizations: one scan of the days needed, one query for caps and
    spend, one for the limits of ``at``'s day so far.
    """
    as_of = at.date()
    table = tiertable_mod.load_tiers()
    orgs = scope.org_list
    stored = outlook_mod.stored_limit_page(cursor(con), orgs, as_of)
    # several orgs: the chart from the collector's per-org roll-up (orgs x days), and the
    # "now" table grouped from 30 days of model_daily: no (org, model) carried over days
    rollup = len(scope.orgs) > 1 and limits_mod.limit_rollup_kept(con)
    if stored is not None:
        page = stored
        daily = (
            None
            if rollup
            else limits_mod.limits_by_day(
                cursor(con), orgs, min(start, window_start(as_of)), as_of, scope.all_orgs
            )
        )
        history_rows = (
            limits_mod.org_limit_history(cursor(con), orgs, start, as_of, scope.all_orgs)
            if rollup
            else None
        )
    else:
        page, daily, history_rows = _computed(con, scope, start, at, rollup)
    progress = tiers_mod.progress_from(table, at, page.facts, page.in_force, settings.credit_usd)
    if history_rows is not None:
        history = history_rows.with_columns(series=pl.col("org") + " (busiest model)")
    else:  # no roll-up read: the day grid was
        history = _grid_history(cast(pl.DataFrame, daily), start, len(scope.orgs) > 1)
    return LimitsData(
        scope=scope,
        as_of=as_of,
        current=page.current,
        history=history.sort("series", "date"),
        tiers=_tiers_frame(progress),
    )


def _grid_history(daily: pl.DataFrame, start: date, several: bool) -> pl.DataFrame:
    """The chart's lines from the day grid: a line per model, or for several orgs per org
    the share of its busiest model."""
    history = daily.filter(pl.col("date") >= start).with_columns(used=limits_mod.PEAK_SHARE)
    if not several:
        return history.with_columns(series=pl.col("model"))
    return (
        history.group_by("org", "date")
        .agg(pl.col("used").max())
        .with_columns(series=pl.col("org") + " (busiest model)")
    )


def _computed(
    con: duckdb.DuckDBPyConnection, scope: Scope, start: date, at: datetime, rollup: bool
) -> tuple[outlook_mod.LimitPage, pl.DataFrame | None, pl.DataFrame | None]:
    """The page's figures computed on load (no current stored ones): the "now" table, the
    limits in force, the tier facts, the day grid (None with the roll-up) and the roll-up's
    per-org history (None without)."""
    as_of = at.date()
    orgs = scope.org_list
    midnight = datetime.combine(as_of, datetime.min.time(), at.tzinfo)
    with ThreadPoolExecutor(max_workers=3) as pool:  # DuckDB queries release the GIL
        facts_job = pool.submit(tiers_mod.tier_facts, cursor(con), at, orgs)
        today_job = pool.submit(tiers_mod.latest_limits, cursor(con), at, orgs, midnight)
        history_job = (
            pool.submit(
                limits_mod.org_limit_history, cursor(con), orgs, start, as_of, scope.all_orgs
            )
            if rollup
            else None
        )
        if rollup:  # the "now" table grouped from 30 days of model_daily, no day grid
            current, before = limits_mod.limit_summary(cursor(con), orgs, as_of, scope.all_orgs)
            grid = None
        else:
            before = grid = limits_mod.limits_by_day(
                cursor(con), orgs, min(start, window_start(as_of)), as_of, scope.all_orgs
            )
            current = limits_mod.daily_limit_summary(grid, as_of)
        facts, today = facts_job.result(), today_job.result()
        history_rows = history_job.result() if history_job is not None else None
    page = outlook_mod.LimitPage(current, limits_mod.limits_at(before, today, at), facts)
    return page, grid, history_rows
