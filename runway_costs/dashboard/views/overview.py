"""The Overview page: balance, month-to-date and month-end forecast, run-out and cap-bound
dates, 30-day purchases against the cap, and the cumulative spend chart's data.

The latest cycle's stored outlooks (``analytics.outlook``) when they describe the scope's
last collection: one organization, or every organization the cycle computed (their
stored roll-up holds the month end of their summed spend). Otherwise computed on load:
one organization with ``analytics.forecast.forecast_org`` as is; several with one
batched read (``analytics.forecast.forecast_many``) and the month-end interval of their
summed spend.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import cast

import duckdb
import polars as pl

from runway_costs.analytics import forecast as forecast_mod
from runway_costs.analytics import outlook as outlook_mod
from runway_costs.analytics import purchases as purchases_mod
from runway_costs.analytics import spend as spend_mod
from runway_costs.analytics.tags import with_tag
from runway_costs.core import money
from runway_costs.core.config import Settings
from runway_costs.core.money import CREDIT_USD
from runway_costs.core.windows import window_start
from runway_costs.dashboard.views.alerts import open_alert_count
from runway_costs.dashboard.views.common import CollectionStatus, Scope, collection_status, cursor


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
    credit_usd: float = CREDIT_USD
    # purchases_30d_credits covers only the days whose purchases are known: the fewest of
    # any org of the scope, from the latest first known day, balances since the latest start
    purchases_observed_days: int = 0
    purchases_observed_since: datetime | None = None
    balances_observed_since: datetime | None = None

    @property
    def purchases_window(self) -> purchases_mod.PurchasesWindow:
        """The span the bought figure covers ("since ... UTC"; analytics.purchases)."""
        return purchases_mod.PurchasesWindow.of(
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
        return None if credits is None else money.usd(credits, self.credit_usd)

    @property
    def headroom_text(self) -> str:
        """ "Left to buy under the cap": the figure only when every bought day is known,
        else "at most N" or "unknown" (never a cap minus an assumed zero, unsaid)."""
        window = self.purchases_window
        if not window.known:
            return "unknown"
        return window.headroom_text(self.headroom_credits)

    @property
    def purchases_assumption(self) -> str | None:
        """The line the headroom and cap-bound figures carry while purchases are unknown
        or partial (analytics.purchases.PurchasesWindow.assumption)."""
        return self.purchases_window.assumption


def overview_groups(data: Overview, settings: Settings, tag_key: str) -> pl.DataFrame:
    """The per-organization figures rolled up by tag ``tag_key`` (the config's tags now):
    group, orgs, balance, month to date, month-end forecast (sum of the organizations'),
    the tag's organization-wide budget, the earliest run-out and cap-bound dates."""
    tagged = with_tag(data.per_org, settings, tag_key)
    grouped = (
        tagged.group_by("group")
        .agg(
            orgs=pl.col("org").sort().str.join(", "),
            balance_credits=pl.col("balance_credits").sum(),
            mtd_credits=pl.col("mtd_credits").sum(),
            month_end_mid=pl.col("month_end_mid").sum(),
            runout_date=pl.col("runout_date").min(),
            cap_bound_date=pl.col("cap_bound_date").min(),
        )
        .sort("group")
    )
    budgets = {
        value: sum(
            b.monthly_credits(settings.credit_usd)
            for b in settings.budgets
            if b.tag_pair == (tag_key, value) and b.model is None
        )
        or None
        for value in grouped["group"].to_list()
    }
    return grouped.with_columns(
        budget_credits=pl.col("group").replace_strict(budgets, return_dtype=pl.Int64)
    ).rename({"group": tag_key})


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


@dataclass(frozen=True)
class _Figures:
    """What the page derives from the forecasts, however they were obtained."""

    month_end: forecast_mod.MonthEnd
    per_org: pl.DataFrame  # org, mtd_credits, month_end_mid, runout_date, cap_bound_date
    future: pl.DataFrame  # date, credits
    actual: pl.DataFrame  # date, credits: the 30-day window, zero-filled
    head: pl.DataFrame  # purchase_headroom's columns the page reads
    cap_bound: date | None
    cap_bound_org: str | None


def _stored(
    con: duckdb.DuckDBPyConnection, settings: Settings, orgs: list[str], day: date
) -> _Figures | None:
    """The figures from the latest cycle's stored outlooks, when they describe the scope's
    last collection (its day, nothing collected since) and hold its organizations: one,
    or every one the cycle computed (their roll-up); None otherwise."""
    # several orgs: their summed forecast is the roll-up's, no daily series each
    stored = outlook_mod.stored_outlooks(con, settings, orgs, daily=len(orgs) == 1)
    if stored is None or stored[0].as_of.date() != day:
        return None
    if len(orgs) == 1:
        f = stored[0]
        me, future = f.month_end, f.daily.select("date", credits="credits_mid")
        actual = outlook_mod.stored_spend(con, orgs)
        if actual is None:
            return None
        actual = actual.drop("org")
    else:
        rollup = outlook_mod.stored_rollup(con, orgs)
        if rollup is None:
            return None
        me, future, actual = rollup.month_end, rollup.future, rollup.actual
    per_org = pl.DataFrame(
        {
            "org": [f.org for f in stored],
            # as computed: one org's spend summary, several orgs' month-end figure
            "mtd_credits": [
                f.spend_mtd_credits if len(orgs) == 1 else f.month_end.month_to_date for f in stored
            ],
            "month_end_mid": [f.month_end.mid for f in stored],
            "runout_date": [f.runout_date for f in stored],
            "cap_bound_date": [f.cap_bound_date for f in stored],
        },
        schema_overrides={"runout_date": pl.Date, "cap_bound_date": pl.Date},
    )
    known = [f for f in stored if f.balance_credits is not None]  # purchase_headroom's rows
    head = pl.DataFrame(
        {
            "org": [f.org for f in known],
            "balance_credits": [f.balance_credits for f in known],
            "cap_credits": [f.cap_credits for f in known],
            "purchases_30d_credits": [f.purchases_30d_credits for f in known],
            "observed_days": [f.purchases_observed_days for f in known],
            "purchases_observed_since": [f.purchases_observed_since for f in known],
            "balances_observed_since": [f.balances_observed_since for f in known],
        },
        schema={
            "org": pl.String,
            "balance_credits": pl.Int64,
            "cap_credits": pl.Int64,
            "purchases_30d_credits": pl.Int64,
            "observed_days": pl.Int64,
            "purchases_observed_since": pl.Datetime("us"),
            "balances_observed_since": pl.Datetime("us"),
        },
    ).with_columns(
        headroom_credits=(pl.col("cap_credits") - pl.col("purchases_30d_credits")).clip(
            lower_bound=0
        )
    )
    bound = per_org.filter(pl.col("cap_bound_date").is_not_null()).sort("cap_bound_date")
    return _Figures(
        me,
        per_org,
        future,
        actual,
        head,
        bound["cap_bound_date"][0] if bound.height else None,
        bound["org"][0] if bound.height else None,
    )


def overview(
    con: duckdb.DuckDBPyConnection, settings: Settings, scope: Scope, now: datetime
) -> Overview:
    """The latest cycle's stored outlooks when they describe the scope's last collection
    (``_stored``); else one organization: ``analytics.forecast.forecast_org`` as is, and
    several: one batched read, the month-end interval of their summed spend, and each
    one's run-out date."""
    status = collection_status(con, settings, scope, now)
    as_of, orgs = status.as_of, scope.org_list
    stored = _stored(cursor(con), settings, orgs, as_of)
    figures = stored if stored is not None else _computed(con, settings, orgs, status)
    return _overview(scope, status, settings, figures, open_alert_count(cursor(con), scope))


def _computed(
    con: duckdb.DuckDBPyConnection, settings: Settings, orgs: list[str], status: CollectionStatus
) -> _Figures:
    """The figures fitted on load (no current stored outlook for the scope)."""
    as_of, usd = status.as_of, settings.credit_usd
    at = as_of_time(status)
    pool = ThreadPoolExecutor(max_workers=2)  # these queries run while the forecast fits
    head_job = pool.submit(purchases_mod.purchase_headroom, cursor(con), as_of, orgs, usd)
    bought_job = (  # several orgs: their past purchases feed each cap-bound date
        pool.submit(purchases_mod.purchases_daily, cursor(con), orgs, window_start(as_of), as_of)
        if len(orgs) > 1
        else None
    )
    pool.shutdown(wait=False)
    if len(orgs) == 1:
        f = forecast_mod.forecast_org(cursor(con), settings, orgs[0], at)
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
        head = head_job.result()
        assert bought_job is not None  # submitted above for several organizations
        bought = bought_job.result()
        many = forecast_mod.forecast_many(
            cursor(con),
            orgs,
            at,
            balances=dict(zip(head["org"], head["balance_credits"], strict=True)),
            caps=dict(zip(head["org"], head["cap_credits"], strict=True)),
            past_buys={
                org: frame.sort("date")["purchases"].fill_null(0).to_numpy()
                for (org,), frame in bought.group_by("org")
            },
        )
        me, per_org, future, history = many.month_end, many.per_org, many.future, many.history
        bound = per_org.filter(pl.col("cap_bound_date").is_not_null()).sort("cap_bound_date")
        cap_bound = bound["cap_bound_date"][0] if bound.height else None
        cap_bound_org = bound["org"][0] if bound.height else None
    first = window_start(as_of)
    window_days = pl.DataFrame({"date": pl.date_range(first, as_of, "1d", eager=True)})
    if len(orgs) == 1:
        daily = spend_mod.spend_daily(con, orgs, first, as_of, usd)
    else:
        daily = history.filter(pl.col("date") >= first)
    actual = (
        window_days.join(daily.group_by("date").agg(pl.col("credits").sum()), on="date", how="left")
        .with_columns(pl.col("credits").fill_null(0))
        .sort("date")
    )
    return _Figures(me, per_org, future, actual, head, cap_bound, cap_bound_org)


def _overview(
    scope: Scope,
    status: CollectionStatus,
    settings: Settings,
    figures: _Figures,
    open_alerts: int,
) -> Overview:
    as_of, usd = status.as_of, settings.credit_usd
    me, head = figures.month_end, figures.head
    per_org = head.select("org", "balance_credits").join(figures.per_org, on="org", how="right")
    per_org = per_org.select("org", pl.exclude("org"))
    runouts = per_org.filter(pl.col("runout_date").is_not_null()).sort("runout_date")

    def total_of(column: str) -> int | None:
        return None if head.is_empty() else int(head[column].sum())

    def latest(column: str) -> datetime | None:  # None when any org has none
        if head.is_empty() or head[column].null_count():
            return None
        return cast(datetime, head[column].max())

    balance_total = total_of("balance_credits")
    return Overview(
        scope=scope,
        status=status,
        balance_credits=balance_total,
        balance_usd=None if balance_total is None else money.usd(balance_total, usd),
        cap_credits=total_of("cap_credits"),
        purchases_30d_credits=total_of("purchases_30d_credits"),
        headroom_credits=total_of("headroom_credits"),
        mtd_credits=me.month_to_date,
        mtd_usd=money.usd(me.month_to_date, usd),
        budget_credits=scope_budget(settings, scope),
        month_end_low=me.low,
        month_end_mid=me.mid,
        month_end_high=me.high,
        runout_date=runouts["runout_date"][0] if runouts.height else None,
        runout_org=runouts["org"][0] if runouts.height else None,
        cap_bound_date=figures.cap_bound,
        cap_bound_org=figures.cap_bound_org,
        per_org=per_org,
        open_alerts=open_alerts,
        window=_window(
            figures.actual, figures.future, as_of, me.low, me.mid, me.high, me.month_to_date
        ),
        credit_usd=usd,
        purchases_observed_days=0 if head.is_empty() else cast(int, head["observed_days"].min()),
        purchases_observed_since=latest("purchases_observed_since"),
        balances_observed_since=latest("balances_observed_since"),
    )
