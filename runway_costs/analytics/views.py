"""The data behind each dashboard page, one function per page section.

Pages only present what these functions return, so everything a reviewer sees is
computed here (on top of the other analytics modules) and can be tested without a
browser. Every function takes a read-only DuckDB connection from
``analytics.db.connect_reader`` and a tuple of organization names (the scope); an
"all organizations" scope sums them.

Public API::

    reader(db_path) -> ContextManager[duckdb connection]      # raises DataUnavailable
    known_orgs(con, settings) -> list[str]
    Scope(orgs, all_orgs).label
    collection_status(con, settings, scope, now) -> CollectionStatus
    overview(con, settings, scope, now) -> Overview
    spend(con, settings, scope, start, end, top_n=6) -> SpendData
    limits(con, settings, scope, start, at) -> LimitsData
    plan_rows_from_file(settings, name, data) -> list[dict]     # raises plan.PlanError
    price_records(settings, records) -> PlannerData
    plan_feasibility(con, settings, records_json, org) -> Feasibility | None
    tier_feasibility(settings, records, tier) -> Feasibility | None
    alerts(con, settings, scope) -> AlertsData
    send_test_notification(settings) -> list[ChannelCheck]
"""

from __future__ import annotations

import contextlib
import functools
import json
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from runway_costs.analytics import alert_store as alert_store_mod
from runway_costs.analytics import compare as compare_mod
from runway_costs.analytics import feasibility as feasibility_mod
from runway_costs.analytics import forecast as forecast_mod
from runway_costs.analytics import notify as notify_mod
from runway_costs.analytics import plan as plan_mod
from runway_costs.analytics import pricing as pricing_mod
from runway_costs.analytics import purchases as purchases_mod
from runway_costs.analytics import rates as rates_mod
from runway_costs.analytics import spend as spend_mod
from runway_costs.analytics import tiers as tiers_mod
from runway_costs.analytics import tiertable as tiertable_mod
from runway_costs.analytics.db import DatabaseBusyError, NoDataError, connect_reader
from runway_costs.collector import store as store_mod
from runway_costs.core.config import Settings

WINDOW_DAYS = 30  # the API's rolling purchase-cap window
HORIZON_DAYS = forecast_mod.HORIZON_DAYS  # run-out and cap dates are searched this far


class DataUnavailable(Exception):
    """The database cannot be read right now; ``kind`` picks the page's message.

    kind: ``"missing"`` (nothing collected yet), ``"busy"`` (being written; retry).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@contextlib.contextmanager
def reader(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, with the two expected failures turned into DataUnavailable."""
    try:
        con = connect_reader(db_path)
    except DatabaseBusyError as exc:
        raise DataUnavailable("busy", str(exc)) from None
    except NoDataError as exc:
        raise DataUnavailable("missing", str(exc)) from None
    except (duckdb.IOException, duckdb.ConnectionException) as exc:
        raise DataUnavailable(
            "busy", f"the database is being written right now ({type(exc).__name__})"
        ) from None
    try:
        yield con
    finally:
        con.close()


@dataclass(frozen=True)
class Scope:
    """Which organizations a page shows; charts name them through ``label``."""

    orgs: tuple[str, ...]
    all_orgs: bool = False

    @property
    def label(self) -> str:
        names = ", ".join(self.orgs)
        if self.all_orgs:
            return f"all organizations ({names})"
        return names

    @property
    def org_list(self) -> list[str]:
        return list(self.orgs)


def known_orgs(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """Organizations with any collected row, sorted by name."""
    return spend_mod.known_orgs(con)


def _cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A separate cursor per analytics call: one left with an unfetched result (DuckDB
    refuses further work on it) cannot then break the next call."""
    return con.cursor()


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> pl.DataFrame:
    return con.sql(sql, params=params).pl()


# --- collection freshness ------------------------------------------------------------


@dataclass(frozen=True)
class CollectionStatus:
    """When the scope's data was last collected successfully, and whether that is stale."""

    last_success: datetime | None
    failed_since: int  # failed runs after the last success, across the scope
    stale: bool
    stale_hours: float
    as_of: date  # the day the pages treat as "today": the last collection's UTC date


def collection_status(
    con: duckdb.DuckDBPyConnection, settings: Settings, scope: Scope, now: datetime
) -> CollectionStatus:
    """Stale when the last success is older than the alerts' ``stale_hours``."""
    stale_hours = settings.alerts.thresholds.stale_hours
    last, failed, last_any = con.execute(
        """
        WITH r AS (SELECT * FROM collection_runs WHERE list_contains($orgs, org)),
             ok AS (SELECT max(finished_at) AS t FROM r WHERE status = 'ok')
        SELECT (SELECT t FROM ok),
               (SELECT count(*) FROM r WHERE status <> 'ok'
                  AND finished_at > coalesce((SELECT t FROM ok), TIMESTAMP '1970-01-01')),
               (SELECT max(taken_at) FROM org_snapshots WHERE list_contains($orgs, org))
        """,
        {"orgs": scope.org_list},
    ).fetchall()[0]
    reference = last or last_any
    if reference is None:
        day = con.execute(
            "SELECT max(date) FROM daily_usage WHERE list_contains($orgs, org)",
            {"orgs": scope.org_list},
        ).fetchall()[0][0]
        as_of = day or now.date()
    else:
        as_of = reference.date()
    stale = last is None or (now - last) > timedelta(hours=stale_hours)
    return CollectionStatus(
        last_success=last,
        failed_since=int(failed or 0),
        stale=stale,
        stale_hours=stale_hours,
        as_of=as_of,
    )


# --- spend ---------------------------------------------------------------------------


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


# --- limits --------------------------------------------------------------------------


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


def _daily_limits(
    con: duckdb.DuckDBPyConnection, scope: Scope, start: date, as_of: date
) -> pl.DataFrame:
    """Per (org, model, day) in [start, as_of]: generations at the day's end, the day's peak,
    and the limits in force. Read from ``model_daily`` (model_snapshots reduced per day by
    the collector), which has a row only for days with a change, so each day carries the
    latest earlier day's values when it has none of its own. Rows before ``start`` only
    give each (org, model) its latest day to carry in, and the day grid is filled in polars
    (an as-of join of days). For "all organizations" the scan skips the per-row org filter
    and the reduced rows are filtered instead."""
    orgs = scope.org_list
    of_orgs = "TRUE" if scope.all_orgs else "org = ANY($orgs)"  # a fixed fragment
    params = {"start": start, "end": as_of} | ({} if scope.all_orgs else {"orgs": orgs})
    sql = f"""
        SELECT org, model, date, gens_end, gens_peak, max_daily_generations AS lim,
               max_concurrent_generations AS conc, last_taken_at AS taken_at
        FROM {{in_range}}
        WHERE {of_orgs} AND date >= $start AND date <= $end
        UNION ALL  -- carried in from before the range: the latest day (no peak needed)
        SELECT org, model, max(date), arg_max(gens_end, date), NULL,
               arg_max_null(max_daily_generations, date),
               arg_max_null(max_concurrent_generations, date), max(last_taken_at)
        FROM {{before}}
        WHERE {of_orgs} AND date < $start
        GROUP BY org, model
        """
    try:
        agg = _frame(con, sql.format(in_range="model_daily", before="model_daily"), params)
    except duckdb.CatalogException as exc:
        if "model_daily" not in str(exc):
            raise
        # a database not written since model_daily was added: reduce the snapshots here,
        # filtered on taken_at before the reduction (the filters on date cannot reach it)
        in_range, before = (
            f"({store_mod.MODEL_DAILY_SQL.format(where=f'{of_orgs} AND {taken}')})"
            for taken in (
                "taken_at >= $start::DATE AND taken_at < $end::DATE + INTERVAL 1 DAY",
                "taken_at < $start::DATE",
            )
        )
        agg = _frame(con, sql.format(in_range=in_range, before=before), params)
    if scope.all_orgs:
        agg = agg.filter(pl.col("org").is_in(orgs))
    days = pl.date_range(start, as_of, "1d", eager=True).alias("date").to_frame()
    # The grid in (org, model, date) order; the as-of join keeps it, and needs the right
    # side sorted by date within each (org, model) only. No sort on the strings after.
    grid = agg.select("org", "model").unique().sort("org", "model").join(days, how="cross")
    filled = grid.join_asof(
        agg.sort("date").with_columns(row_date=pl.col("date")),
        on="date",
        by=["org", "model"],
        check_sortedness=False,  # sorted within each (org, model); polars cannot check
    )
    # days before an (org, model)'s first row have nothing to show: drop them
    filled = filled.filter(pl.col("row_date").is_not_null())
    same_key = (pl.col("org") == pl.col("org").shift(1)) & (
        pl.col("model") == pl.col("model").shift(1)
    )
    peak = pl.when(pl.col("row_date") == pl.col("date")).then("gens_peak").otherwise("gens_end")
    return filled.select(
        "org",
        "model",
        "date",
        pl.col("gens_end").alias("daily_generations"),
        # the count at midnight (yesterday's end) belongs to today's peak too
        pl.max_horizontal(peak, pl.when(same_key).then(pl.col("gens_end").shift(1))).alias(
            "peak_generations"
        ),
        pl.col("lim").alias("max_daily_generations"),
        pl.col("conc").alias("max_concurrent_generations"),
        "taken_at",
    ).with_columns(peak_generations=pl.coalesce("peak_generations", "daily_generations"))


def _limits_at(daily: pl.DataFrame, today: pl.DataFrame, at: datetime) -> pl.DataFrame:
    """Each (org, model)'s limits at ``at``: its latest row of ``at``'s day up to ``at``
    (``today``), else the previous day's end from ``daily``. Rows of that day after ``at``
    must not count, so the day-end values of ``at``'s own day cannot be used."""
    before = daily.filter(pl.col("date") == at.date() - timedelta(days=1)).select(
        "org", "model", *tiers_mod.LIMIT_COLUMNS
    )
    return pl.concat(
        [
            today.select("org", "model", *tiers_mod.LIMIT_COLUMNS),
            before.join(today, on=["org", "model"], how="anti"),
        ],
        how="vertical_relaxed",
    )


def limits(
    con: duckdb.DuckDBPyConnection, settings: Settings, scope: Scope, start: date, at: datetime
) -> LimitsData:
    """Limit use now and per day, and each organization's tier progress.

    One organization: a line per model. Several: per organization, the share of the
    daily limit of its busiest model (1,200 lines of org x model say nothing at once).
    Set-based for any number of organizations: one scan of the days needed, one query for
    caps and spend, one for the limits of ``at``'s day so far.
    """
    as_of = at.date()
    table = tiertable_mod.load_tiers()
    orgs = scope.org_list
    midnight = datetime.combine(as_of, datetime.min.time(), at.tzinfo)
    with ThreadPoolExecutor(max_workers=2) as pool:  # DuckDB queries release the GIL
        facts_job = pool.submit(tiers_mod.tier_facts, _cursor(con), at, orgs)
        today_job = pool.submit(tiers_mod.latest_limits, _cursor(con), at, orgs, midnight)
        daily = _daily_limits(_cursor(con), scope, min(start, as_of - timedelta(days=29)), as_of)
        facts, today = facts_job.result(), today_job.result()
    progress = tiers_mod.progress_from(
        table, at, facts, _limits_at(daily, today, at), settings.credit_usd
    )
    share = pl.col("peak_generations") / pl.col("max_daily_generations")
    last7 = pl.col("date") > as_of - timedelta(days=7)
    last30 = pl.col("date") > as_of - timedelta(days=30)
    current = (  # every (org, model) has a row on as_of, the latest: 30 days suffice
        daily.filter(last30)
        .group_by("org", "model")
        .agg(
            pl.col("daily_generations", "max_daily_generations", "max_concurrent_generations")
            .sort_by("date")
            .last(),
            pl.col("taken_at").max().alias("observed_at"),
            pl.col("peak_generations").filter(last7).max().alias("peak_7d"),
            (share >= 1).filter(last30).sum().alias("days_at_limit_30d"),
        )
        .with_columns(usage_ratio=pl.col("daily_generations") / pl.col("max_daily_generations"))
        .sort("org", "model")
    )
    history = daily.filter(pl.col("date") >= start).with_columns(used=share)
    if len(scope.orgs) > 1:
        history = (
            history.group_by("org", "date")
            .agg(pl.col("used").max())
            .with_columns(series=pl.col("org") + " (busiest model)")
        )
    else:
        history = history.with_columns(series=pl.col("model"))
    return LimitsData(
        scope=scope,
        as_of=as_of,
        current=current,
        history=history.sort("series", "date"),
        tiers=_tiers_frame(progress),
    )


# --- overview ------------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    """The at-a-glance figures for the scope, as of its last collection.

    For several organizations every figure is the sum over them; the month-end forecast
    and its interval are those of their summed daily spend, the run-out date is the
    earliest organization's (named in ``runout_org``), and so is the date the 30-day
    purchase cap would bind (``cap_bound_org``).
    """

    scope: Scope
    status: CollectionStatus
    balance_credits: int | None
    balance_usd: float | None
    cap_credits: int | None  # sum of the orgs' 30-day purchase caps
    purchases_30d_credits: int | None  # reconstructed purchases in the 30-day window
    headroom_credits: int | None  # what may still be bought in the window
    mtd_credits: int
    mtd_usd: float
    budget_credits: int | None  # sum of the scope's organization-wide monthly budgets
    month_end_low: int
    month_end_mid: int
    month_end_high: int
    runout_date: date | None
    runout_org: str | None
    cap_bound_date: date | None  # the earliest organization's (named in cap_bound_org)
    cap_bound_org: str | None
    per_org: pl.DataFrame  # org, balance, mtd, month_end_mid, runout_date, cap_bound_date
    open_alerts: int
    window: pl.DataFrame  # date, kind ("actual" | "forecast"), cumulative, low, high
    credit_usd: float = 0.01
    # purchases_30d_credits covers only the days whose purchases are known: the fewest of
    # any org of the scope, from the latest first known day, balances since the latest start
    purchases_observed_days: int = 0
    purchases_observed_since: datetime | None = None
    balances_observed_since: datetime | None = None

    @property
    def purchases_window(self) -> str:
        """The span the bought figure covers ("since ... UTC"; analytics.purchases)."""
        return purchases_mod.purchases_window(
            self.purchases_observed_days,
            self.purchases_observed_since,
            self.balances_observed_since,
        )

    @property
    def budget_used(self) -> float | None:
        if not self.budget_credits:
            return None
        return self.mtd_credits / self.budget_credits

    def usd(self, credits: int | None) -> float | None:
        return None if credits is None else round(credits * self.credit_usd, 2)


def scope_budget(settings: Settings, scope: Scope) -> int | None:
    """Monthly credits budgeted for the scope's organizations as a whole (not per model)."""
    found = [
        b.monthly_credits(settings.credit_usd)
        for b in settings.budgets
        if b.org in scope.orgs and b.model is None
    ]
    return sum(found) if found else None


def as_of_time(status: CollectionStatus) -> datetime:
    """The moment the figures describe: the last successful collection, else end of day."""
    if status.last_success is not None:
        return status.last_success
    return datetime.combine(status.as_of, datetime.max.time()).replace(microsecond=0)


def _window(
    actual: pl.DataFrame,
    forecast: pl.DataFrame,
    as_of: date,
    me_low: int,
    me_mid: int,
    me_high: int,
    mtd: int,
) -> pl.DataFrame:
    """Cumulative spend over the last 30 days, then the forecast to month end with a band.

    The band scales the forecast's remaining spend by the month-end interval's ratios
    (``(high - mtd) / (mid - mtd)``), so at month end it meets the month-end tiles.
    """
    cum = actual.select(
        "date",
        kind=pl.lit("actual"),
        cumulative=pl.col("credits").cum_sum(),
        low=pl.lit(None, pl.Float64),
        high=pl.lit(None, pl.Float64),
    )
    rest = me_mid - mtd
    low_ratio = (me_low - mtd) / rest if rest > 0 else 1.0
    high_ratio = (me_high - mtd) / rest if rest > 0 else 1.0
    base = float(cum["cumulative"][-1]) if cum.height else 0.0
    month_end = (as_of.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    future = forecast.filter(pl.col("date") <= month_end).select(
        "date", ahead=pl.col("credits").cum_sum()
    )
    if future.is_empty():
        return cum.with_columns(pl.col("cumulative").cast(pl.Float64))
    # Today is in both: the actual row holds today's partial, the forecast its remainder.
    fut = future.select(
        "date",
        kind=pl.lit("forecast"),
        cumulative=base + pl.col("ahead"),
        low=base + pl.col("ahead") * low_ratio,
        high=base + pl.col("ahead") * high_ratio,
    )
    anchor = pl.DataFrame(
        {
            "date": [as_of],
            "kind": ["forecast"],
            "cumulative": [base],
            "low": [base],
            "high": [base],
        },
        schema=fut.schema,
    )
    return pl.concat([cum.with_columns(pl.col("cumulative").cast(pl.Float64)), anchor, fut])


def _histories(con: duckdb.DuckDBPyConnection, orgs: list[str], at: datetime) -> pl.DataFrame:
    """Net spend per org and day over the window ``analytics.forecast`` fits on, in one query
    (the forecast's own reader takes one query per organization)."""
    today = at.date()
    return _frame(
        con,
        """
        SELECT org, date, CAST(SUM(credits) AS BIGINT) AS credits FROM daily_usage
        WHERE list_contains($orgs, org) AND date <= $today AND date > $since
        GROUP BY org, date ORDER BY org, date
        """,
        {
            "orgs": orgs,
            "today": today,
            "since": today - timedelta(days=forecast_mod.HISTORY_DAYS + 62),
        },
    )


def _dense_series(
    history: pl.DataFrame, orgs: list[str], today: date
) -> dict[str, tuple[np.ndarray, int]]:
    """Per org, what ``analytics.forecast``'s series step makes of its history: complete
    days from its first one to yesterday, zero-filled, and today's partial figure; done
    for every org at once (one pivot) instead of once per org."""
    past = history.filter(pl.col("date") < today)
    partial = dict(
        history.filter(pl.col("date") == today)
        .group_by("org")
        .agg(pl.col("credits").sum())
        .iter_rows()
    )
    out = {org: (np.zeros(0), int(partial.get(org, 0))) for org in orgs}
    if past.is_empty():
        return out
    first_day = past["date"].min()
    days = pl.DataFrame(
        {"date": pl.date_range(first_day, today - timedelta(days=1), "1d", eager=True)}
    )
    wide = days.join(
        past.pivot(on="org", index="date", values="credits", aggregate_function="sum"),
        on="date",
        how="left",
    ).fill_null(0)
    for org, day in past.group_by("org").agg(pl.col("date").min()).iter_rows():
        y = wide[org].to_numpy().astype(float)[(day - first_day).days :]
        out[org] = (y, int(partial.get(org, 0)))
    return out


def _org_outlook(
    y: np.ndarray,
    partial: int,
    mtd: int,
    at: datetime,
    balance: int | None,
    cap: int | None,
    past_buys: np.ndarray,
) -> tuple[int, date | None, date | None, np.ndarray]:
    """(month-end mid, run-out date, cap-bound date, future daily spend) for one
    organization: the model and rules ``analytics.forecast.forecast_org`` applies, minus
    its per-org queries and its interval (the scope's interval comes from its summed
    history)."""
    today = at.date()
    model = forecast_mod.DailyModel.fit(y, today - timedelta(days=1))
    future = forecast_mod._future(model, at, partial, HORIZON_DAYS)
    runout, cap_bound, _ = forecast_mod.outlook_dates(future, balance, cap, past_buys, today)
    # month_end()'s mid, from the same model: spent this month plus the rest of the month.
    remaining = (forecast_mod._month_last(today) - today).days + 1
    return round(mtd + float(future[:remaining].sum())), runout, cap_bound, future


def overview(
    con: duckdb.DuckDBPyConnection, settings: Settings, scope: Scope, now: datetime
) -> Overview:
    """One organization: ``analytics.forecast.forecast_org`` as is. Several: one batched
    read, the month-end interval of their summed spend, and each one's run-out date."""
    status = collection_status(con, settings, scope, now)
    as_of, orgs, usd = status.as_of, scope.org_list, settings.credit_usd
    at = as_of_time(status)
    pool = ThreadPoolExecutor(max_workers=2)  # these queries run while the forecast fits
    head_job = pool.submit(purchases_mod.purchase_headroom, _cursor(con), as_of, orgs, usd)
    alerts_job = pool.submit(open_alert_count, _cursor(con), scope)
    bought_job = (  # several orgs: their past purchases feed each cap-bound date
        pool.submit(
            purchases_mod.purchases_daily, _cursor(con), orgs, as_of - timedelta(days=29), as_of
        )
        if len(orgs) > 1
        else None
    )
    pool.shutdown(wait=False)
    days = pl.date_range(as_of, as_of + timedelta(days=HORIZON_DAYS - 1), "1d", eager=True)
    if len(orgs) == 1:
        f = forecast_mod.forecast_org(_cursor(con), settings, orgs[0], at)
        me, cap_bound = f.month_end, f.cap_bound_date
        head = head_job.result()
        per_org = pl.DataFrame(
            {
                "org": orgs,
                "mtd_credits": [f.spend_mtd_credits],
                "month_end_mid": [me.mid],
                "runout_date": [f.runout_date],
                "cap_bound_date": [f.cap_bound_date],
            },
            schema_overrides={"runout_date": pl.Date, "cap_bound_date": pl.Date},
        )
        future = f.daily.select("date", credits="credits_mid")
        cap_bound_org = orgs[0] if cap_bound else None
    else:
        history = _histories(con, orgs, at)
        total = history.group_by("date").agg(pl.col("credits").sum()).sort("date")
        me = forecast_mod.month_end(total, at)
        head = head_job.result()
        balance = dict(zip(head["org"], head["balance_credits"], strict=True))
        month_first = as_of.replace(day=1)
        mtd = dict(
            history.filter(pl.col("date") >= month_first)
            .group_by("org")
            .agg(pl.col("credits").sum())
            .iter_rows()
        )
        series = _dense_series(history, orgs, at.date())
        caps = dict(zip(head["org"], head["cap_credits"], strict=True))
        bought = bought_job.result()
        past_buys = {
            org: frame.sort("date")["purchases"].fill_null(0).to_numpy()
            for (org,), frame in bought.group_by("org")
        }
        outlooks = {
            org: _org_outlook(
                *series[org],
                int(mtd.get(org, 0)),
                at,
                balance.get(org),
                caps.get(org),
                past_buys.get(org, np.zeros(0)),
            )
            for org in orgs
        }
        per_org = pl.DataFrame(
            {
                "org": orgs,
                "mtd_credits": [int(mtd.get(o, 0)) for o in orgs],
                "month_end_mid": [outlooks[o][0] for o in orgs],
                "runout_date": [outlooks[o][1] for o in orgs],
                "cap_bound_date": [outlooks[o][2] for o in orgs],
            },
            schema_overrides={"runout_date": pl.Date, "cap_bound_date": pl.Date},
        )
        future = pl.DataFrame(
            {"date": days, "credits": np.sum([o[3] for o in outlooks.values()], axis=0)}
        )
        bound = per_org.filter(pl.col("cap_bound_date").is_not_null()).sort("cap_bound_date")
        cap_bound = bound["cap_bound_date"][0] if bound.height else None
        cap_bound_org = bound["org"][0] if bound.height else None
    per_org = head.select("org", "balance_credits").join(per_org, on="org", how="right")
    per_org = per_org.select("org", pl.exclude("org"))
    window_start = as_of - timedelta(days=WINDOW_DAYS - 1)
    window_days = pl.DataFrame({"date": pl.date_range(window_start, as_of, "1d", eager=True)})
    if len(orgs) == 1:
        daily = spend_mod.spend_daily(con, orgs, window_start, as_of, usd)
    else:
        daily = history.filter(pl.col("date") >= window_start)
    actual = (
        window_days.join(daily.group_by("date").agg(pl.col("credits").sum()), on="date", how="left")
        .with_columns(pl.col("credits").fill_null(0))
        .sort("date")
    )
    runouts = per_org.filter(pl.col("runout_date").is_not_null()).sort("runout_date")

    def total_of(column: str) -> int | None:
        return None if head.is_empty() else int(head[column].sum())

    def latest(column: str) -> datetime | None:  # None when any org has none
        if head.is_empty() or head[column].null_count():
            return None
        return head[column].max()

    balance_total = total_of("balance_credits")
    return Overview(
        scope=scope,
        status=status,
        balance_credits=balance_total,
        balance_usd=None if balance_total is None else round(balance_total * usd, 2),
        cap_credits=total_of("cap_credits"),
        purchases_30d_credits=total_of("purchases_30d_credits"),
        headroom_credits=total_of("headroom_credits"),
        mtd_credits=me.month_to_date,
        mtd_usd=round(me.month_to_date * usd, 2),
        budget_credits=scope_budget(settings, scope),
        month_end_low=me.low,
        month_end_mid=me.mid,
        month_end_high=me.high,
        runout_date=runouts["runout_date"][0] if runouts.height else None,
        runout_org=runouts["org"][0] if runouts.height else None,
        cap_bound_date=cap_bound,
        cap_bound_org=cap_bound_org,
        per_org=per_org,
        open_alerts=alerts_job.result(),
        window=_window(actual, future, as_of, me.low, me.mid, me.high, me.month_to_date),
        credit_usd=usd,
        purchases_observed_days=0 if head.is_empty() else int(head["observed_days"].min()),
        purchases_observed_since=latest("purchases_observed_since"),
        balances_observed_since=latest("balances_observed_since"),
    )


# --- planner -------------------------------------------------------------------------

# The planner's editable columns: the plan fields without free text, label first, date last.
EDIT_COLUMNS = (
    "label",
    *(f for f in plan_mod.PLAN_FIELDS if f not in ("label", "text", "date")),
    "date",
)


@dataclass(frozen=True)
class PlannerData:
    """A plan priced live: either ``errors`` (nothing priced) or the priced rows and totals."""

    errors: tuple[str, ...] = ()
    priced: pl.DataFrame | None = None
    summary: pricing_mod.PlanSummary | None = None
    cheaper: pl.DataFrame | None = None  # rows whose cheapest alternative saves credits


@functools.lru_cache(maxsize=4)
def _rates(path: Path) -> rates_mod.RateTable:
    return rates_mod.load_rates(path)


def rate_table(settings: Settings) -> rates_mod.RateTable:
    """The configured rate file (``rates = ...``), else the shipped rate table."""
    return _rates(rates_mod.resolve_rates_path(None, settings.rates_path))


def plan_rows_from_file(settings: Settings, name: str, data: bytes) -> list[dict]:
    """Rows of an uploaded plan file, checked like ``runway-costs price`` checks a file.

    Raises ``PlanError`` listing every problem with the file's own line numbers.
    """
    suffix = Path(name).suffix.lower() if Path(name).suffix.lower() in (".csv", ".json") else ""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{Path(name).stem or 'plan'}{suffix}"
        path.write_bytes(data)
        try:
            frame = plan_mod.read_plan(path, rate_table(settings))
        except plan_mod.PlanError as exc:  # name the upload, not the temporary copy
            raise plan_mod.PlanError(
                name, exc.issues, json_rows=exc.json_rows, omitted=exc.total - len(exc.issues)
            ) from None
    return frame.select(EDIT_COLUMNS).to_dicts()


def clean_records(records: list[dict]) -> list[dict]:
    """Drop empty cells (None, NaN, blank) and fully empty rows from edited table rows."""
    out = []
    for rec in records:
        row = {}
        for key, value in rec.items():
            if value is None or (isinstance(value, float) and value != value):
                continue
            if isinstance(value, str) and not value.strip():
                continue
            row[key] = value.isoformat() if isinstance(value, date) else value
        if row:
            out.append(row)
    return out


def price_records(settings: Settings, records: list[dict], on: date) -> PlannerData:
    """Validate and price table rows (``analytics.plan`` + ``analytics.pricing``) at the
    prices in effect ``on``."""
    rates = rate_table(settings)
    rows = clean_records(records)
    if not rows:
        return PlannerData(errors=("the plan has no rows: add a row or upload a plan file",))
    try:
        plan = plan_mod.plan_from_records(rows, rates, source="the table")
    except plan_mod.PlanError as exc:
        return PlannerData(errors=tuple(exc.lines()))
    priced = pricing_mod.price_plan(plan, rates, on)
    cheaper = compare_mod.cheapest(priced, compare_mod.alternatives(plan, rates, on)).filter(
        pl.col("saving_credits") > 0
    )
    return PlannerData(priced=priced, summary=pricing_mod.summarize(priced), cheaper=cheaper)


def plan_feasibility(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    records_json: str,
    org: str,
    as_of: datetime,
) -> feasibility_mod.Feasibility | None:
    """Feasibility of the plan (rows as JSON) against ``org``'s latest snapshot at ``as_of``."""
    data = price_records(settings, json.loads(records_json), as_of.date())
    if data.priced is None:
        return None
    try:
        return feasibility_mod.feasibility_for_org(
            _cursor(con), org, data.priced, rate_table(settings), as_of=as_of
        )
    except feasibility_mod.FeasibilityError:
        return None


def tier_feasibility(
    settings: Settings, records: list[dict], tier: int, on: date
) -> feasibility_mod.Feasibility | None:
    """Feasibility of the plan at a usage tier (no database needed), at ``on``'s prices."""
    data = price_records(settings, records, on)
    if data.priced is None:
        return None
    return feasibility_mod.feasibility_for_tier(
        tiertable_mod.load_tiers(), tier, data.priced, rate_table(settings)
    )


# --- alerts --------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertsData:
    """Open and past alerts of the scope, and the rules in force (no channel URL)."""

    scope: Scope
    open: pl.DataFrame  # alert_state rows with status 'open', most severe first
    history: pl.DataFrame  # announced events, newest first, with delivery counts
    rules: pl.DataFrame  # rule, setting, value
    budgets: pl.DataFrame  # org, model, monthly_credits
    channels: tuple[str, ...]  # e.g. ("json#1", "mailto#2"): labels, never URLs


def alert_rules(settings: Settings) -> pl.DataFrame:
    """Every threshold of ``[alerts.thresholds]`` as (rule, setting, value) rows."""
    t = settings.alerts.thresholds
    rows = [
        ("cap_forecast", "warning at share of 30-day cap", t.cap_forecast_warn),
        ("cap_forecast", "critical at share of 30-day cap", t.cap_forecast_critical),
        ("cap_used", "levels (info, warning, critical)", ", ".join(map(str, t.cap_used_levels))),
        ("budget_used", "warning at share of budget", t.budget_used_warn),
        ("budget_used", "critical at share of budget", t.budget_used_critical),
        ("runout", "warning when run-out within (days)", t.runout_warn_days),
        ("runout", "critical when run-out within (days)", t.runout_critical_days),
        ("daily_generations", "warning at share of daily limit", t.daily_generations_ratio),
        ("spend_anomaly", "robust SDs above the 28-day median", t.anomaly_mads),
        ("spend_anomaly", "and at least this many credits above it", t.anomaly_min_credits),
        ("collection_stale", "no successful collection for (hours)", t.stale_hours),
    ]
    return pl.DataFrame(
        {
            "rule": [r[0] for r in rows],
            "setting": [r[1] for r in rows],
            "value": [str(r[2]) for r in rows],
        }
    )


def channel_labels(settings: Settings) -> tuple[str, ...]:
    return tuple(notify_mod.channel_label(u, i + 1) for i, u in enumerate(settings.alerts.urls))


def alerts(con: duckdb.DuckDBPyConnection, settings: Settings, scope: Scope) -> AlertsData:
    in_scope = pl.col("org").is_in(scope.org_list)
    budgets = pl.DataFrame(
        {
            "org": [b.org for b in settings.budgets],
            "model": [b.model or "(all models)" for b in settings.budgets],
            "monthly_credits": [b.monthly_credits(settings.credit_usd) for b in settings.budgets],
        },
        schema={"org": pl.String, "model": pl.String, "monthly_credits": pl.Int64},
    ).filter(in_scope)
    return AlertsData(
        scope=scope,
        open=alert_store_mod.open_alerts(con).filter(in_scope),
        history=alert_store_mod.alert_history(con).filter(in_scope),
        rules=alert_rules(settings),
        budgets=budgets,
        channels=channel_labels(settings),
    )


def open_alert_count(con: duckdb.DuckDBPyConnection, scope: Scope) -> int:
    return alert_store_mod.open_alerts(con).filter(pl.col("org").is_in(scope.org_list)).height


@dataclass(frozen=True)
class ChannelCheck:
    channel: str  # label, never the URL
    ok: bool
    error: str | None  # redacted by analytics.notify


def send_test_notification(settings: Settings) -> list[ChannelCheck]:
    """Send one test notice to every configured channel (through ``analytics.notify``)."""
    out = []
    for i, url in enumerate(settings.alerts.urls):
        delivery = notify_mod.deliver(
            url,
            "[TEST] runway-costs",
            "A test notification from the runway-costs dashboard: this channel works.",
            "info",
            attempts=settings.alerts.delivery_attempts,
        )
        out.append(ChannelCheck(notify_mod.channel_label(url, i + 1), delivery.ok, delivery.error))
    return out
