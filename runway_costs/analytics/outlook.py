"""Stored outlooks: each organization's forecast computed once per collection cycle.

Fitting every organization's forecast is the expensive part of ``forecast --json``, the
alert rules and the Overview page (about a hundred small model fits per organization for
the interval). The data changes only when a cycle writes, so the cycle computes it once:
``outlook_step(settings)`` is the collector's after-write step (``run_cycle(...,
after_write=...)``), run inside the cycle's write session after every organization is
committed and before the one publish. It replaces ``org_outlooks`` (one row per
organization: ``analytics.forecast.OrgForecast``'s figures, its forecast daily spend, its
net spend over the 30-day window, its last successful collection and its interval
ratios), ``outlook_limits`` (``limits_now``'s rows with a limit), ``outlook_rollup``
(the month end of all their summed spend, for the all-organizations Overview) and the
Limits page's figures (``outlook_limit_now``: the "now" table and the limits in force;
``outlook_tiers``: the tier facts) in one transaction (``analytics/outlook_schema.sql``),
so readers see them with the data they describe. What the Limits figures need from
history is kept for the next cycle so that no cycle reads all of it: each org's cap run a
day behind (``outlook_tiers.kept_*``: the next cycle reads only the snapshots after it)
and the rows in force before the 30-day window (``outlook_limit_anchors``: the next cycle
reads only the ``model_daily`` days since). The interval's past-origin ratios depend only
on the complete days, the last of them and the days left in the month
(``forecast.interval_key``): a later cycle the same day that changed none of those days
(a snapshot cycle) reuses them instead of refitting.

Readers use them only when they describe the latest cycle: computed at or after every
stored collection run, on the same UTC day as the instant asked about, at or before it,
and for every organization asked about (``stored_outlooks``); otherwise (an ``--as-of``
in the past, a database from before this table, a failed step, a new day) they compute
as before. The figures are then those at the cycle's instant (``as_of`` says which).

Public API:

- ``ensure_outlook_schema(con)``, ``has_outlooks(con) -> bool``
- ``compute_outlooks(con, settings, at) -> Outlooks`` (reads only) and
  ``store_outlooks(con, outlooks, seconds)``; ``outlook_step(settings)`` does both, timed
- ``stored_outlooks(con, settings, orgs, at=None, daily=True) -> list[OrgForecast] | None``
- ``stored_rollup(con, orgs, at=None) -> Rollup | None``
- ``stored_limit_page(con, orgs, day) -> LimitPage | None``: the Limits page's "now"
  table, limits in force and tier facts, when current for the page's day
- ``stored_orgs(con, at=None)``, ``stored_spend(con, orgs, at=None)`` (net spend per org
  and day over the 30-day window), ``stored_limits(con, orgs, at=None)`` (``limits_now``'s
  rows with a limit), ``stored_last_success(con, orgs, at=None)``: what the alert rules
  read besides the forecasts
"""

from __future__ import annotations

import time as timer
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import cast

import duckdb
import numpy as np
import polars as pl

from runway_costs.analytics.forecast import (
    HORIZON_DAYS,
    MonthEnd,
    OrgForecast,
    RatioSummary,
    forecast_orgs_with_history,
    month_end,
)
from runway_costs.analytics.limits import (
    NOW_COLUMNS,
    LimitAnchors,
    limit_anchors,
    limit_summary,
    limits_now,
)
from runway_costs.analytics.orgs import orgs_with_data
from runway_costs.analytics.spend import query
from runway_costs.analytics.tiers import LIMIT_COLUMNS, CapRuns, cap_runs, tier_facts
from runway_costs.core.config import Settings
from runway_costs.core.windows import window_start

__all__ = [
    "Outlooks",
    "Rollup",
    "compute_outlooks",
    "ensure_outlook_schema",
    "has_outlooks",
    "outlook_step",
    "store_outlooks",
    "LimitPage",
    "stored_last_success",
    "stored_limit_page",
    "stored_limits",
    "stored_orgs",
    "stored_outlooks",
    "stored_rollup",
    "stored_spend",
]

SCHEMA = Path(__file__).with_name("outlook_schema.sql")


@dataclass(frozen=True)
class Rollup:
    """Every stored organization together: the month end of their summed spend (with its
    interval), their summed net spend per day over the 30-day window (oldest first) and
    their summed forecast daily spend from the instant's day."""

    as_of: datetime
    orgs: tuple[str, ...]
    month_end: MonthEnd
    actual: pl.DataFrame  # date, credits
    future: pl.DataFrame  # date, credits
    seconds: float = 0.0


@dataclass(frozen=True)
class Outlooks:
    """What a cycle stores: the forecasts, each org's 30-day net spend, the roll-up."""

    forecasts: list[OrgForecast]
    actual: dict[str, list[int]]  # org -> net spend per day of the 30-day window
    rollup: Rollup
    limits: pl.DataFrame  # org, model, daily_generations, max_daily_generations, usage_ratio
    last_success: dict[str, datetime]  # org -> its last successful collection (absent: never)
    # org -> (interval key, ratio summary): reused by the next cycle when the key holds
    intervals: dict[str, tuple[str, RatioSummary]] = field(default_factory=dict)
    # the Limits page's figures at the instant (``LimitPage``), and each org's cap run a
    # day behind, from which the next cycle reads only the snapshots after it
    limit_page: LimitPage | None = None
    kept_runs: CapRuns | None = None
    anchors: LimitAnchors | None = None  # the "now" table's rows in force before its window


@dataclass(frozen=True)
class LimitPage:
    """What the Limits page computes for its organizations at an instant, stored by the
    cycle: the "now" table (``limit_summary``'s first frame), the limits in force
    (``limits_at``: org, model and the two limits, what the tier is matched on) and the
    tier facts (``tier_facts``)."""

    current: pl.DataFrame
    in_force: pl.DataFrame
    facts: pl.DataFrame


# A stored cap run is kept this far behind the cycle's instant: a cycle whose clock was
# set back by less still finds its snapshots after it; one set back further (its instant
# before the kept one) reads all history once.
KEEP_BEHIND = timedelta(days=1)


def ensure_outlook_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SCHEMA.read_text(encoding="utf-8"))


def has_outlooks(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'outlook_rollup'"
    ).fetchall()[0]
    return bool(row and row[0])


def _orgs(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """Configured organizations, else every organization in the database (as the CLI and
    the alerts pick them)."""
    return [o.name for o in settings.orgs] if settings.orgs else orgs_with_data(con)


def _window_days(at: datetime) -> pl.Series:
    today = at.date()
    return pl.date_range(window_start(today), today, "1d", eager=True)


def compute_outlooks(con: duckdb.DuckDBPyConnection, settings: Settings, at: datetime) -> Outlooks:
    """Every organization's outlook at ``at`` (``forecast_orgs``) and their roll-up, from
    one read of each kind."""
    names = _orgs(con, settings)
    # The last cycle's interval summaries: an org whose complete days are unchanged (a
    # snapshot cycle the same day) reuses its own instead of refitting its past origins.
    forecasts, history, intervals = forecast_orgs_with_history(
        con, settings, names, at, _earlier_intervals(con)
    )
    days = pl.DataFrame({"date": _window_days(at)})
    recent = history.filter(pl.col("date") >= days["date"][0])
    per_org = recent.partition_by("org", as_dict=True)
    empty = [0] * days.height
    actual = {
        org: (
            days.join(per_org[(org,)].drop("org"), on="date", how="left")
            .fill_null(0)["credits"]
            .to_list()
            if (org,) in per_org
            else empty
        )
        for org in names
    }
    # The all-organizations figures as the Overview computes them (forecast_many): the
    # month end of the summed spend, the summed window and the summed forecast.
    total = history.group_by("date").agg(pl.col("credits").sum()).sort("date")
    summed = (
        days.join(recent.group_by("date").agg(pl.col("credits").sum()), on="date", how="left")
        .fill_null(0)
        .sort("date")
    )
    future_days = pl.date_range(
        at.date(), at.date() + timedelta(days=HORIZON_DAYS - 1), "1d", eager=True
    )
    future = (
        np.sum([f.daily["credits_mid"].to_numpy() for f in forecasts], axis=0)
        if forecasts
        else np.zeros(HORIZON_DAYS)
    )
    rollup = Rollup(
        as_of=at,
        orgs=tuple(names),
        month_end=month_end(total, at),
        actual=summed,
        future=pl.DataFrame({"date": future_days, "credits": future}),
    )
    in_force = limits_now(con, at, names)  # every (org, model)'s row in force at ``at``
    limits = in_force.filter(pl.col("usage_ratio").is_not_null())
    last_success = dict(
        con.execute(
            "SELECT org, max(finished_at) FROM collection_runs WHERE status = 'ok' "
            "AND finished_at <= $at AND org IN (SELECT unnest($orgs::VARCHAR[])) GROUP BY org",
            {"at": at, "orgs": names},
        ).fetchall()
    )
    page, kept, anchors = _limit_page(con, names, at, in_force)
    return Outlooks(
        forecasts,
        actual,
        rollup,
        limits.select(_LIMIT_COLUMNS),
        last_success,
        intervals,
        page,
        kept,
        anchors,
    )


def _limit_page(
    con: duckdb.DuckDBPyConnection, names: list[str], at: datetime, now: pl.DataFrame
) -> tuple[LimitPage, CapRuns, LimitAnchors]:
    """The Limits page's figures at ``at`` as the page computes them for ``names``, each
    org's cap run at the new kept instant, and the rows in force before the "now" table's
    window; ``now`` is ``limits_now``'s rows at ``at``. The runs and the rows in force start
    from the last cycle's and read only what came after them (all history only the first
    time, for an org not kept, or when ``at`` is before the kept instant: a clock set
    back), so no read here grows with history."""
    runs, anchors = _earlier_runs(con), _earlier_anchors(con)
    if runs is not None and runs.at > at:
        runs = None
    keep_at = at - KEEP_BEHIND if runs is None else max(runs.at, at - KEEP_BEHIND)
    kept = cap_runs(con, keep_at, names, runs)
    facts = tier_facts(con, at, names, kept)
    first = at.date() - timedelta(days=29)  # limit_summary's window
    if anchors is not None and anchors.before > first:
        anchors = None
    anchors = limit_anchors(con, names, first, anchors)
    current, _ = limit_summary(con, names, at.date(), all_orgs=True, anchors=anchors)
    # the limits in force at ``at`` (what the page's limits_at gives): limits_now's, the
    # row in force per (org, model), already read for the alert rule
    in_force = now.select("org", "model", *LIMIT_COLUMNS)
    return LimitPage(current, in_force, facts), kept, anchors


def _earlier_runs(con: duckdb.DuckDBPyConnection) -> CapRuns | None:
    """The cap runs the last cycle kept (none from an older layout, or none stored)."""
    try:
        rows = query(
            con,
            "SELECT org, kept_at, kept_cap AS cap_credits, kept_since AS cap_since, "
            "kept_first AS since_first_snapshot FROM outlook_tiers",
            {},
        )
    except duckdb.Error:
        return None
    if rows.is_empty():
        return None
    return CapRuns(cast(datetime, rows["kept_at"][0]), rows.drop("kept_at"))


def _earlier_anchors(con: duckdb.DuckDBPyConnection) -> LimitAnchors | None:
    """The rows in force before the last cycle's window, and the orgs they are kept for
    (none from an older layout, or none stored)."""
    try:
        held = con.execute(
            "SELECT org, anchors_before FROM outlook_tiers WHERE anchors_before IS NOT NULL"
        ).fetchall()
        rows = query(con, f"SELECT {', '.join(_ANCHOR_SCHEMA)} FROM outlook_limit_anchors", {})
    except duckdb.Error:
        return None
    if not held:
        return None
    return LimitAnchors(held[0][1], rows.cast(_ANCHOR_SCHEMA), frozenset(o for o, _ in held))


def _earlier_intervals(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, RatioSummary]]:
    """The stored outlooks' interval keys and ratio summaries (none from an older layout)."""
    try:
        rows = con.execute(
            "SELECT org, interval_key, ratio_count, ratio_lo, ratio_hi FROM org_outlooks "
            "WHERE interval_key IS NOT NULL"
        ).fetchall()
    except duckdb.Error:  # no table yet, or one without these columns
        return {}
    return {org: (key, (count, lo, hi)) for org, key, count, lo, hi in rows}


def store_outlooks(con: duckdb.DuckDBPyConnection, outlooks: Outlooks, seconds: float) -> None:
    """Replace the stored outlooks with ``outlooks`` in one transaction (writer's side):
    the tables are dropped and created again from ``outlook_schema.sql`` (they hold one
    cycle's rows, so a changed layout needs no migration)."""
    rows = pl.DataFrame(
        [
            {
                "org": f.org,
                "as_of": f.as_of,
                "balance_credits": f.balance_credits,
                "cap_credits": f.cap_credits,
                "spend_today_credits": f.spend_today_credits,
                "spend_mtd_credits": f.spend_mtd_credits,
                "spend_30d_credits": f.spend_30d_credits,
                "purchases_30d_credits": f.purchases_30d_credits,
                "month_to_date": f.month_end.month_to_date,
                "month_end_low": f.month_end.low,
                "month_end_mid": f.month_end.mid,
                "month_end_high": f.month_end.high,
                "daily_rate_credits": f.daily_rate_credits,
                "runout_date": f.runout_date,
                "cap_bound_date": f.cap_bound_date,
                "cap_peak_30d_credits": f.cap_peak_30d_credits,
                "purchases_observed_days": f.purchases_observed_days,
                "purchases_observed_since": f.purchases_observed_since,
                "balances_observed_since": f.balances_observed_since,
                "daily_mid": f.daily["credits_mid"].to_list(),
                "actual_30d": outlooks.actual[f.org],
                "last_success": outlooks.last_success.get(f.org),
                "interval_key": outlooks.intervals.get(f.org, (None,))[0],
                "ratio_count": _summary_of(outlooks, f.org)[0],
                "ratio_lo": _summary_of(outlooks, f.org)[1],
                "ratio_hi": _summary_of(outlooks, f.org)[2],
            }
            for f in outlooks.forecasts
        ],
        schema=_ROW_SCHEMA,
    )
    r = outlooks.rollup
    rollup = pl.DataFrame(
        [
            {
                "as_of": r.as_of,
                "orgs": list(r.orgs),
                "month_to_date": r.month_end.month_to_date,
                "month_end_low": r.month_end.low,
                "month_end_mid": r.month_end.mid,
                "month_end_high": r.month_end.high,
                "daily_mid": r.future["credits"].to_list(),
                "actual_30d": r.actual["credits"].to_list(),
                "seconds": seconds,
            }
        ],
        schema=_ROLLUP_SCHEMA,
    )
    page_now, page_tiers = _limit_page_rows(outlooks)
    anchors = (
        outlooks.anchors.rows.select(_ANCHOR_SCHEMA.names()).cast(_ANCHOR_SCHEMA)
        if outlooks.anchors is not None
        else pl.DataFrame(schema=_ANCHOR_SCHEMA)
    )
    con.execute("BEGIN TRANSACTION")
    try:
        for table in _TABLES:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        ensure_outlook_schema(con)
        con.register("_outlook_rows", rows.to_arrow())
        con.register("_outlook_rollup", rollup.to_arrow())
        con.register("_outlook_limits", outlooks.limits.to_arrow())
        con.register("_outlook_limit_now", page_now.to_arrow())
        con.register("_outlook_tiers", page_tiers.to_arrow())
        con.register("_outlook_limit_anchors", anchors.to_arrow())
        con.execute(
            f"INSERT INTO outlook_limit_anchors SELECT {', '.join(_ANCHOR_SCHEMA)} "
            "FROM _outlook_limit_anchors"
        )
        con.execute(
            f"INSERT INTO outlook_limit_now SELECT {', '.join(_NOW_SCHEMA)} FROM _outlook_limit_now"
        )
        con.execute(
            f"INSERT INTO outlook_tiers SELECT {', '.join(_TIERS_SCHEMA)} FROM _outlook_tiers"
        )
        con.execute(
            f"INSERT INTO outlook_limits SELECT {', '.join(_LIMIT_COLUMNS)} FROM _outlook_limits"
        )
        con.execute(f"INSERT INTO org_outlooks SELECT {', '.join(_ROW_SCHEMA)} FROM _outlook_rows")
        con.execute(
            f"INSERT INTO outlook_rollup SELECT {', '.join(_ROLLUP_SCHEMA)} FROM _outlook_rollup"
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for name in _REGISTERED:
            con.unregister(name)


_TABLES = (
    "org_outlooks",
    "outlook_rollup",
    "outlook_limits",
    "outlook_limit_now",
    "outlook_tiers",
    "outlook_limit_anchors",
)
_REGISTERED = (
    "_outlook_rows",
    "_outlook_rollup",
    "_outlook_limits",
    "_outlook_limit_now",
    "_outlook_tiers",
    "_outlook_limit_anchors",
)


def _limit_page_rows(outlooks: Outlooks) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of ``outlook_limit_now`` (the "now" table and the limits in force, joined
    on (org, model) with a flag each) and ``outlook_tiers`` (the facts and the kept run)."""
    page, kept = outlooks.limit_page, outlooks.kept_runs
    if page is None or kept is None:
        return pl.DataFrame(schema=_NOW_SCHEMA), pl.DataFrame(schema=_TIERS_SCHEMA)
    now = page.current.select(NOW_COLUMNS).with_columns(in_now=pl.lit(True))
    force = page.in_force.select(
        "org",
        "model",
        force_concurrent="max_concurrent_generations",
        force_daily="max_daily_generations",
        in_force=pl.lit(True),
    )
    both = now.join(force, on=["org", "model"], how="full", coalesce=True).with_columns(
        pl.col("in_now", "in_force").fill_null(False)
    )
    tiers = page.facts.join(
        kept.rows.select(
            "org",
            kept_cap="cap_credits",
            kept_since="cap_since",
            kept_first="since_first_snapshot",
        ),
        on="org",
        how="left",
    ).with_columns(
        kept_at=pl.lit(kept.at, dtype=pl.Datetime("us")),
        anchors_before=pl.lit(
            outlooks.anchors.before if outlooks.anchors is not None else None, dtype=pl.Date
        ),
    )
    return both.select(_NOW_SCHEMA.names()).cast(_NOW_SCHEMA), tiers.select(
        _TIERS_SCHEMA.names()
    ).cast(_TIERS_SCHEMA)


def _summary_of(outlooks: Outlooks, org: str) -> tuple[int | None, float | None, float | None]:
    found = outlooks.intervals.get(org)
    return found[1] if found is not None else (None, None, None)


def outlook_step(settings: Settings) -> Callable[[duckdb.DuckDBPyConnection, datetime], None]:
    """The cycle's after-write step (``collector.cycle.run_cycle(after_write=...)``):
    compute every organization's outlook at the cycle's instant on the live connection
    and store it, before the snapshot is published."""

    def step(con: duckdb.DuckDBPyConnection, at: datetime) -> None:
        started = timer.perf_counter()
        outlooks = compute_outlooks(con, settings, at)
        store_outlooks(con, outlooks, timer.perf_counter() - started)

    return step


_LIMIT_COLUMNS = ("org", "model", "daily_generations", "max_daily_generations", "usage_ratio")
_NOW_SCHEMA = pl.Schema(
    {
        "org": pl.String(),
        "model": pl.String(),
        "in_now": pl.Boolean(),
        "daily_generations": pl.Int32(),
        "max_daily_generations": pl.Int32(),
        "max_concurrent_generations": pl.Int32(),
        "observed_at": pl.Datetime("us"),
        "peak_7d": pl.Int32(),
        "days_at_limit_30d": pl.UInt32(),
        "in_force": pl.Boolean(),
        "force_concurrent": pl.Int32(),
        "force_daily": pl.Int32(),
    }
)
_TIERS_SCHEMA = pl.Schema(
    {
        "org": pl.String(),
        "cap_credits": pl.Int64(),
        "cap_since": pl.Datetime("us"),
        "since_first_snapshot": pl.Boolean(),
        "spend_credits": pl.Int64(),
        "kept_at": pl.Datetime("us"),
        "kept_cap": pl.Int64(),
        "kept_since": pl.Datetime("us"),
        "kept_first": pl.Boolean(),
        "anchors_before": pl.Date(),
    }
)
_ANCHOR_SCHEMA = pl.Schema(
    {
        "org": pl.String(),
        "model": pl.String(),
        "date": pl.Date(),
        "gens_end": pl.Int32(),
        "lim": pl.Int32(),
        "conc": pl.Int32(),
        "last_taken_at": pl.Datetime("us"),
    }
)
_ROW_SCHEMA = pl.Schema(
    {
        "org": pl.String(),
        "as_of": pl.Datetime("us"),
        "balance_credits": pl.Int64(),
        "cap_credits": pl.Int64(),
        "spend_today_credits": pl.Int64(),
        "spend_mtd_credits": pl.Int64(),
        "spend_30d_credits": pl.Int64(),
        "purchases_30d_credits": pl.Int64(),
        "month_to_date": pl.Int64(),
        "month_end_low": pl.Int64(),
        "month_end_mid": pl.Int64(),
        "month_end_high": pl.Int64(),
        "daily_rate_credits": pl.Int64(),
        "runout_date": pl.Date(),
        "cap_bound_date": pl.Date(),
        "cap_peak_30d_credits": pl.Int64(),
        "purchases_observed_days": pl.Int32(),
        "purchases_observed_since": pl.Datetime("us"),
        "balances_observed_since": pl.Datetime("us"),
        "daily_mid": pl.List(pl.Float64()),
        "actual_30d": pl.List(pl.Int64()),
        "last_success": pl.Datetime("us"),
        "interval_key": pl.String(),
        "ratio_count": pl.Int32(),
        "ratio_lo": pl.Float64(),
        "ratio_hi": pl.Float64(),
    }
)
_ROLLUP_SCHEMA = pl.Schema(
    {
        "as_of": pl.Datetime("us"),
        "orgs": pl.List(pl.String()),
        "month_to_date": pl.Int64(),
        "month_end_low": pl.Int64(),
        "month_end_mid": pl.Int64(),
        "month_end_high": pl.Int64(),
        "daily_mid": pl.List(pl.Float64()),
        "actual_30d": pl.List(pl.Int64()),
        "seconds": pl.Float64(),
    }
)


def _current(con: duckdb.DuckDBPyConnection, at: datetime | None) -> datetime | None:
    """The stored outlooks' instant when they describe the latest cycle and may stand for
    ``at`` (None: now, whatever it is): computed at or after every stored collection
    run, on ``at``'s UTC day, at or before ``at``. None otherwise."""
    if not has_outlooks(con):
        return None
    row = con.execute(
        "SELECT (SELECT max(as_of) FROM outlook_rollup), "
        "(SELECT max(finished_at) FROM collection_runs)"
    ).fetchall()[0]
    stored, last_run = row
    if stored is None or (last_run is not None and last_run > stored):
        return None
    if at is not None and (stored > at or stored.date() != at.date()):
        return None
    return stored


def stored_outlooks(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    orgs: Sequence[str],
    at: datetime | None = None,
    daily: bool = True,
) -> list[OrgForecast] | None:
    """The stored forecasts of ``orgs`` (in that order), or None when they cannot stand
    for a forecast at ``at`` (see the module docstring) or an org of ``orgs`` has none.
    ``daily``: with each one's forecast daily spend (``OrgForecast.daily``; the JSON and
    the alert rules do without it)."""
    stored = _current(con, at)
    if stored is None:
        return None
    names = list(dict.fromkeys(orgs))
    columns = "*" if daily else "* EXCLUDE (daily_mid, actual_30d)"
    rows = query(
        con,
        f"SELECT {columns} FROM org_outlooks WHERE org IN (SELECT unnest($orgs::VARCHAR[]))",
        {"orgs": names},
    )
    by_org = {r["org"]: r for r in rows.iter_rows(named=True)}
    if any(org not in by_org for org in names):
        return None
    out = {org: _forecast(by_org[org], settings) for org in names}
    return [out[org] for org in orgs]


def _forecast(row: dict, settings: Settings) -> OrgForecast:
    as_of: datetime = row["as_of"]
    today: date = as_of.date()
    daily = pl.DataFrame()
    if "daily_mid" in row:
        days = pl.date_range(today, today + timedelta(days=HORIZON_DAYS - 1), "1d", eager=True)
        daily = pl.DataFrame(
            {"date": days, "credits_mid": pl.Series(row["daily_mid"], dtype=pl.Float64)}
        )
    return OrgForecast(
        org=row["org"],
        as_of=as_of,
        balance_credits=row["balance_credits"],
        cap_credits=row["cap_credits"],
        spend_today_credits=row["spend_today_credits"],
        spend_mtd_credits=row["spend_mtd_credits"],
        spend_30d_credits=row["spend_30d_credits"],
        purchases_30d_credits=row["purchases_30d_credits"],
        month_end=_month_end(row, as_of),
        daily_rate_credits=row["daily_rate_credits"],
        runout_date=row["runout_date"],
        cap_bound_date=row["cap_bound_date"],
        cap_peak_30d_credits=row["cap_peak_30d_credits"],
        credit_usd=settings.credit_usd,
        daily=daily,
        purchases_observed_days=row["purchases_observed_days"],
        purchases_observed_since=row["purchases_observed_since"],
        balances_observed_since=row["balances_observed_since"],
    )


def _month_end(row: dict, as_of: datetime) -> MonthEnd:
    """The month-end forecast of a stored outlook or roll-up row (same column names)."""
    return MonthEnd(
        as_of,
        row["month_to_date"],
        row["month_end_low"],
        row["month_end_mid"],
        row["month_end_high"],
    )


def stored_rollup(
    con: duckdb.DuckDBPyConnection, orgs: Sequence[str], at: datetime | None = None
) -> Rollup | None:
    """The stored roll-up when it covers exactly ``orgs`` and stands for ``at`` (see
    ``stored_outlooks``); None otherwise."""
    if _current(con, at) is None:
        return None
    row = query(con, "SELECT * FROM outlook_rollup", {}).row(0, named=True)
    if sorted(row["orgs"]) != sorted(orgs):
        return None
    as_of: datetime = row["as_of"]
    today = as_of.date()
    future_days = pl.date_range(today, today + timedelta(days=HORIZON_DAYS - 1), "1d", eager=True)
    return Rollup(
        as_of=as_of,
        orgs=tuple(row["orgs"]),
        month_end=_month_end(row, as_of),
        actual=pl.DataFrame(
            {"date": _window_days(as_of), "credits": pl.Series(row["actual_30d"], dtype=pl.Int64)}
        ),
        future=pl.DataFrame(
            {"date": future_days, "credits": pl.Series(row["daily_mid"], dtype=pl.Float64)}
        ),
        seconds=row["seconds"],
    )


def stored_orgs(con: duckdb.DuckDBPyConnection, at: datetime | None = None) -> list[str] | None:
    """The organizations the current outlooks were computed for (the configured ones, or
    every one in the database then: the same now, since nothing was collected since)."""
    if _current(con, at) is None:
        return None
    return list(con.execute("SELECT orgs FROM outlook_rollup").fetchall()[0][0])


def stored_spend(
    con: duckdb.DuckDBPyConnection, orgs: Sequence[str], at: datetime | None = None
) -> pl.DataFrame | None:
    """Net spend per org and day over the current outlooks' 30-day window (org, date,
    credits, zero-filled; ``spend.spend_daily``'s), or None (see ``stored_outlooks``)."""
    if _current(con, at) is None:
        return None
    rows = query(
        con,
        """
        SELECT org, as_of, actual_30d FROM org_outlooks
        WHERE org IN (SELECT unnest($orgs::VARCHAR[]))
        """,
        {"orgs": list(orgs)},
    )
    if rows.height != len(set(orgs)):
        return None
    start = window_start(cast(datetime, rows["as_of"][0]).date())
    return (
        rows.explode("actual_30d")
        .select(
            "org",
            date=pl.lit(start) + pl.duration(days=pl.int_range(pl.len()).over("org")),
            credits=pl.col("actual_30d").cast(pl.Int64),
        )
        .sort("org", "date")
    )


def stored_limits(
    con: duckdb.DuckDBPyConnection, orgs: Sequence[str], at: datetime | None = None
) -> pl.DataFrame | None:
    """``limits_now``'s rows with a daily limit at the current outlooks' instant (org,
    model, daily_generations, max_daily_generations, usage_ratio), or None."""
    if _current(con, at) is None:
        return None
    return query(
        con,
        f"""
        SELECT {", ".join(_LIMIT_COLUMNS)} FROM outlook_limits
        WHERE org IN (SELECT unnest($orgs::VARCHAR[])) ORDER BY org, model
        """,
        {"orgs": list(orgs)},
    )


def stored_last_success(
    con: duckdb.DuckDBPyConnection, orgs: Sequence[str], at: datetime | None = None
) -> dict[str, datetime] | None:
    """Each org's last successful collection (absent: never) as of the current outlooks
    (the same at any later instant: nothing was collected since), or None."""
    if _current(con, at) is None:
        return None
    rows = con.execute(
        "SELECT org, last_success FROM org_outlooks "
        "WHERE org IN (SELECT unnest($orgs::VARCHAR[])) AND last_success IS NOT NULL",
        {"orgs": list(orgs)},
    ).fetchall()
    return {org: last for org, last in rows}


def stored_limit_page(
    con: duckdb.DuckDBPyConnection, orgs: Sequence[str], day: date
) -> LimitPage | None:
    """The Limits page's figures for ``orgs`` from the latest cycle (``LimitPage``: the
    "now" table sorted by org and model, the limits in force, the tier facts in the order
    of ``orgs``), when they describe the page's last collection: the outlooks are current
    (nothing collected since), computed on ``day`` (the page's), and every org of ``orgs``
    was computed. The page's own figures at its instant are the same: the "now" table and
    the spend go by day, and no snapshot came after the cycle. None otherwise (an older
    snapshot or layout, a failed step, an ``--as-of``): the page computes them."""
    stored = _current(con, None)
    if stored is None or stored.date() != day:
        return None
    names = list(orgs)
    params = {"orgs": names}
    try:
        facts = query(
            con,
            """
            WITH o AS (SELECT unnest($orgs::VARCHAR[]) AS org,
                              generate_subscripts($orgs::VARCHAR[], 1) AS pos)
            SELECT t.org, t.cap_credits, t.cap_since, t.since_first_snapshot, t.spend_credits
            FROM o JOIN outlook_tiers t USING (org) ORDER BY o.pos
            """,
            params,
        )
        if facts.height != len(names):
            return None
        rows = query(
            con,
            "SELECT * FROM outlook_limit_now WHERE org IN (SELECT unnest($orgs::VARCHAR[]))",
            params,
        )
    except duckdb.CatalogException:  # a snapshot from before these tables
        return None
    rows = rows.cast(_NOW_SCHEMA)
    current = (
        rows.filter("in_now")
        .select(NOW_COLUMNS)
        .with_columns(
            usage_ratio=pl.when(pl.col("max_daily_generations") > 0).then(
                pl.col("daily_generations") / pl.col("max_daily_generations")
            )
        )
        .sort("org", "model")
    )
    in_force = rows.filter("in_force").select(
        "org",
        "model",
        max_concurrent_generations="force_concurrent",
        max_daily_generations="force_daily",
    )
    return LimitPage(current, in_force, facts)
