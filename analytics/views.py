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
    limits(con, settings, scope, start, as_of) -> LimitsData
    planner(...) / alerts(...)                                  # see their docstrings
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from analytics import purchases as purchases_mod
from analytics import spend as spend_mod
from analytics.db import DatabaseBusyError, NoDataError, connect_reader
from runway_costs.config import Settings

WINDOW_DAYS = 30  # the API's rolling purchase-cap window


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


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> pl.DataFrame:
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
    # org, model, daily_generations, max_daily_generations, used (ratio or null),
    # max_concurrent_generations, taken_at
    history: pl.DataFrame  # org, model, date, daily_generations, max_daily_generations


def limits(
    con: duckdb.DuckDBPyConnection, settings: Settings, scope: Scope, start: date, as_of: date
) -> LimitsData:
    """Latest model snapshot per (org, model) and the end-of-day value for each day.

    model_snapshots holds a row only when something changed, so a day's value is the
    latest row at or before that day's end (an ASOF join), not only that day's rows.
    """
    params = {"orgs": scope.org_list, "end": as_of + timedelta(days=1)}
    current = _frame(
        con,
        """
        SELECT org, model,
               arg_max(daily_generations, taken_at) AS daily_generations,
               arg_max(max_daily_generations, taken_at) AS max_daily_generations,
               arg_max(max_concurrent_generations, taken_at) AS max_concurrent_generations,
               max(taken_at) AS taken_at
        FROM model_snapshots
        WHERE list_contains($orgs, org) AND taken_at < $end
        GROUP BY org, model
        ORDER BY org, model
        """,
        params,
    ).with_columns((pl.col("daily_generations") / pl.col("max_daily_generations")).alias("used"))
    history = _frame(
        con,
        """
        WITH keys AS (SELECT DISTINCT org, model FROM model_snapshots
                      WHERE list_contains($orgs, org)),
             days AS (SELECT unnest(range($start::DATE, $end::DATE, INTERVAL 1 DAY))::DATE
                      AS date),
             grid AS (SELECT org, model, date, date + INTERVAL 1 DAY AS day_end
                      FROM keys CROSS JOIN days)
        SELECT g.org, g.model, g.date, s.daily_generations, s.max_daily_generations
        FROM grid g ASOF JOIN model_snapshots s
          ON g.org = s.org AND g.model = s.model AND g.day_end > s.taken_at
        ORDER BY g.org, g.model, g.date
        """,
        {**params, "start": start},
    )
    return LimitsData(scope=scope, as_of=as_of, current=current, history=history)


# --- overview ------------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    """The at-a-glance figures for the scope, as of its last collection."""

    scope: Scope
    status: CollectionStatus
    balance_credits: int | None
    balance_usd: float | None
    cap_credits: int | None  # sum of the orgs' 30-day purchase caps
    purchases_30d_credits: int | None  # reconstructed purchases in the 30-day window
    headroom_credits: int | None  # what may still be bought in the window
    mtd_credits: int
    mtd_usd: float
    rolling_30d_credits: int
    budget_credits: int | None  # sum of the scope's organization-wide monthly budgets
    window: pl.DataFrame  # date, kind ("actual"), cumulative, low, high

    @property
    def budget_used(self) -> float | None:
        if not self.budget_credits:
            return None
        return self.mtd_credits / self.budget_credits


def scope_budget(settings: Settings, scope: Scope) -> int | None:
    """Monthly credits budgeted for the scope's organizations as a whole (not per model)."""
    found = [
        b.monthly_credits(settings.credit_usd)
        for b in settings.budgets
        if b.org in scope.orgs and b.model is None
    ]
    return sum(found) if found else None


def overview(
    con: duckdb.DuckDBPyConnection, settings: Settings, scope: Scope, now: datetime
) -> Overview:
    status = collection_status(con, settings, scope, now)
    as_of, orgs, usd = status.as_of, scope.org_list, settings.credit_usd
    head = purchases_mod.purchase_headroom(con, as_of, orgs, usd)
    summary = spend_mod.spend_summary(con, as_of, orgs, usd)
    window_start = as_of - timedelta(days=WINDOW_DAYS - 1)
    daily = (
        spend_mod.spend_daily(con, orgs, window_start, as_of, usd)
        .group_by("date")
        .agg(pl.col("credits").sum())
        .sort("date")
    )
    window = daily.select(
        "date",
        kind=pl.lit("actual"),
        cumulative=pl.col("credits").cum_sum(),
        low=pl.lit(None, pl.Int64),
        high=pl.lit(None, pl.Int64),
    )

    def total(frame: pl.DataFrame, column: str) -> int | None:
        return None if frame.is_empty() else int(frame[column].sum())

    balance = total(head, "balance_credits")
    return Overview(
        scope=scope,
        status=status,
        balance_credits=balance,
        balance_usd=None if balance is None else round(balance * usd, 2),
        cap_credits=total(head, "cap_credits"),
        purchases_30d_credits=total(head, "purchases_30d_credits"),
        headroom_credits=total(head, "headroom_credits"),
        mtd_credits=int(summary["mtd_credits"].sum()),
        mtd_usd=round(int(summary["mtd_credits"].sum()) * usd, 2),
        rolling_30d_credits=int(summary["rolling_30d_credits"].sum()),
        budget_credits=scope_budget(settings, scope),
        window=window,
    )
