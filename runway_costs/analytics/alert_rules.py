"""The alert rules: which conditions hold for an organization right now.

Each rule returns the conditions that are *firing*, each with a severity, the numbers
behind it and a sentence a finance reader understands. What was already notified, and
what has cleared, is ``analytics.alerts``' business. Thresholds come from
``[alerts.thresholds]`` (``runway_costs.core.config.AlertThresholds``, defaults in brackets):

- ``cap_forecast`` (period: month): purchases needed within a 30-day window during the next
  30 days, at the forecast rate, reach 80% (warning) / 100% (critical) of the 30-day cap.
- ``cap_used`` (month): purchases of the last 30 days reach 50% (info) / 80% (warning) /
  100% (critical) of the cap.
- ``budget_used`` (month, per budget): month-to-date spend reaches 80% / 100% of a budget.
- ``budget_forecast`` (month, per budget): the month-end forecast reaches 100% of a budget.
- ``runout`` (month): the balance runs out within 7 (warning) / 2 (critical) days at the
  forecast rate if nothing is bought.
- ``daily_generations`` (day, per model): rolling-24h generations reach 90% (warning) /
  100% (critical, creation answers 429) of the model's daily limit.
- ``spend_anomaly`` (the day): yesterday, or today so far, spent at least median + 5 robust
  SDs of the 28 days before it, and at least 100 credits more than that median.
- ``collection_stale`` (last success): no successful collection for 2 hours.

Public API:

- ``Condition`` (org, rule, target, key, severity, value, threshold, message)
- ``SEVERITY_RANK``: {"info": 1, "warning": 2, "critical": 3}
- ``evaluate_org(con, settings, org, as_of, budgets=None, limits=None) -> list[Condition]``
- ``evaluate_rules(con, settings, orgs, as_of) -> list[Condition]``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import polars as pl

from runway_costs.analytics.budgets import budget_status
from runway_costs.analytics.forecast import OrgForecast, forecast_org
from runway_costs.analytics.limits import limit_use
from runway_costs.analytics.spend import spend_daily
from runway_costs.core.config import AlertThresholds, Settings

__all__ = ["SEVERITY_RANK", "Condition", "evaluate_org", "evaluate_rules"]

SEVERITY_RANK = {"info": 1, "warning": 2, "critical": 3}
ANOMALY_NORM_DAYS = 28


@dataclass(frozen=True, slots=True)
class Condition:
    """A firing condition. ``target`` separates instances of a rule within an org (a
    model, a budget); ``key`` is the period it belongs to (it fires once per key)."""

    org: str
    rule: str
    target: str
    key: str
    severity: str
    value: float
    threshold: float
    message: str


def _c(n: float | int | None) -> str:
    """Credits for a sentence: 12,345 credits (USD 123.45)."""
    return "unknown" if n is None else f"{round(n):,} credits"


def _cu(n: float | int, credit_usd: float) -> str:
    return f"{round(n):,} credits (USD {n * credit_usd:,.2f})"


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _level(value: float, levels: Sequence[tuple[float, str]]) -> tuple[str, float] | None:
    """The highest (threshold, severity) that ``value`` reaches, if any."""
    hit = [(t, s) for t, s in levels if value >= t]
    if not hit:
        return None
    t, s = max(hit, key=lambda ts: ts[0])
    return s, t


def _cap_rules(fc: OrgForecast, th: AlertThresholds, month: str, usd: float) -> list[Condition]:
    out: list[Condition] = []
    cap = fc.cap_credits
    if not cap:
        return out
    used = fc.purchases_30d_credits / cap
    levels = [
        (th.cap_used_levels[0], "info"),
        (th.cap_used_levels[1], "warning"),
        (th.cap_used_levels[2], "critical"),
    ]
    hit = _level(used, levels)
    if hit:
        sev, t = hit
        out.append(
            Condition(
                fc.org,
                "cap_used",
                "",
                month,
                sev,
                round(used, 4),
                t,
                f"{fc.org} has bought {_cu(fc.purchases_30d_credits, usd)} in the last 30 days, "
                f"{_pct(used)} of its 30-day purchase cap of {_cu(cap, usd)}; "
                f"{_cu(max(cap - fc.purchases_30d_credits, 0), usd)} can still be bought.",
            )
        )
    if fc.cap_peak_30d_credits is not None:
        peak = fc.cap_peak_30d_credits / cap
        hit = _level(
            peak, [(th.cap_forecast_warn, "warning"), (th.cap_forecast_critical, "critical")]
        )
        if hit:
            sev, t = hit
            when = (
                f"buying enough to keep spending would exceed the cap on {fc.cap_bound_date}"
                if fc.cap_bound_date
                else "the cap is not exceeded in the next 30 days"
            )
            out.append(
                Condition(
                    fc.org,
                    "cap_forecast",
                    "",
                    month,
                    sev,
                    round(peak, 4),
                    t,
                    f"At its forecast rate of {_c(fc.daily_rate_credits)} a day, {fc.org} will "
                    f"need to buy {_cu(fc.cap_peak_30d_credits, usd)} within a 30-day window, "
                    f"{_pct(peak)} of its 30-day purchase cap of {_cu(cap, usd)}; {when}.",
                )
            )
    return out


def _runout_rule(fc: OrgForecast, th: AlertThresholds, month: str, usd: float) -> list[Condition]:
    if fc.runout_date is None or fc.balance_credits is None:
        return []
    days = (fc.runout_date - fc.as_of.date()).days
    if days <= th.runout_critical_days:
        sev, t = "critical", th.runout_critical_days
    elif days <= th.runout_warn_days:
        sev, t = "warning", th.runout_warn_days
    else:
        return []
    return [
        Condition(
            fc.org,
            "runout",
            "",
            month,
            sev,
            float(days),
            float(t),
            f"{fc.org} has a balance of {_cu(fc.balance_credits, usd)}; at its forecast rate "
            f"of {_c(fc.daily_rate_credits)} a day it runs out on {fc.runout_date} "
            f"(in {days} day{'s' if days != 1 else ''}) unless credits are bought.",
        )
    ]


def _budget_rules(
    budgets: pl.DataFrame, org: str, th: AlertThresholds, month: str, usd: float
) -> list[Condition]:
    out: list[Condition] = []
    for b in budgets.filter(pl.col("org") == org).iter_rows(named=True):  # config lines
        target = b["model"] or ""
        scope = f"{org}'s {b['model']} spend" if b["model"] else f"{org}'s spend"
        budget = f"{month} budget of {_cu(b['budget_credits'], usd)}"
        hit = _level(
            b["used_ratio"],
            [(th.budget_used_warn, "warning"), (th.budget_used_critical, "critical")],
        )
        if hit:
            sev, t = hit
            out.append(
                Condition(
                    org,
                    "budget_used",
                    target,
                    month,
                    sev,
                    round(b["used_ratio"], 4),
                    t,
                    f"{scope} so far this month is {_cu(b['spent_mtd_credits'], usd)}, "
                    f"{_pct(b['used_ratio'])} of its {budget}.",
                )
            )
        if b["forecast_ratio"] >= th.budget_forecast_ratio:
            out.append(
                Condition(
                    org,
                    "budget_forecast",
                    target,
                    month,
                    "warning",
                    round(b["forecast_ratio"], 4),
                    th.budget_forecast_ratio,
                    f"{scope} is forecast to reach {_cu(b['forecast_mid'], usd)} by month end "
                    f"(80% range {_c(b['forecast_low'])} to {_c(b['forecast_high'])}), "
                    f"{_pct(b['forecast_ratio'])} of its {budget}.",
                )
            )
    return out


def _generation_rules(
    limits: pl.DataFrame, org: str, th: AlertThresholds, day: date
) -> list[Condition]:
    out: list[Condition] = []
    rows = limits.filter((pl.col("org") == org) & pl.col("usage_ratio").is_not_null())
    for r in rows.iter_rows(named=True):  # one row per model
        hit = _level(r["usage_ratio"], [(th.daily_generations_ratio, "warning"), (1.0, "critical")])
        if not hit:
            continue
        sev, t = hit
        tail = (
            "new generations are refused (HTTP 429) until the rolling window frees up"
            if sev == "critical"
            else "new generations will be refused once it is reached"
        )
        out.append(
            Condition(
                org,
                "daily_generations",
                r["model"],
                f"{r['model']}:{day}",
                sev,
                round(r["usage_ratio"], 4),
                t,
                f"{org} has started {r['daily_generations']:,} {r['model']} generations in the "
                f"last 24 hours, {_pct(r['usage_ratio'])} of its daily limit of "
                f"{r['max_daily_generations']:,}; {tail}.",
            )
        )
    return out


def _anomaly_rule(
    con: duckdb.DuckDBPyConnection, org: str, th: AlertThresholds, today: date, usd: float
) -> list[Condition]:
    daily = spend_daily(con, [org], today - timedelta(days=ANOMALY_NORM_DAYS + 1), today)
    values = daily["credits"].to_numpy().astype(float)
    if len(values) < ANOMALY_NORM_DAYS + 2:
        return []
    found: list[Condition] = []
    for offset in (1, 0):  # yesterday (complete), then today so far
        end = len(values) - 1 - offset
        norm = values[end - ANOMALY_NORM_DAYS : end]
        med = float(np.median(norm))
        spread = 1.4826 * float(np.median(np.abs(norm - med)))
        limit = med + max(th.anomaly_mads * max(spread, 0.1 * abs(med)), th.anomaly_min_credits)
        day = today - timedelta(days=offset)
        if values[end] >= limit:
            which = "so far today" if offset == 0 else f"on {day}"
            found.append(
                Condition(
                    org,
                    "spend_anomaly",
                    "",
                    str(day),
                    "warning",
                    float(values[end]),
                    round(limit),
                    f"{org} spent {_cu(values[end], usd)} {which}, far above its usual "
                    f"{_c(med)} a day over the previous {ANOMALY_NORM_DAYS} days "
                    f"(alert level {_c(limit)}).",
                )
            )
    return found[-1:]  # the most recent anomalous day


def _stale_rule(
    con: duckdb.DuckDBPyConnection, org: str, th: AlertThresholds, as_of: datetime
) -> list[Condition]:
    row = con.execute(
        "SELECT max(finished_at) FROM collection_runs WHERE org = ? AND status = 'ok' "
        "AND finished_at <= ?",
        [org, as_of],
    ).fetchall()[0]
    last = row[0] if row else None
    hours = None if last is None else (as_of - last).total_seconds() / 3600
    if hours is not None and hours < th.stale_hours:
        return []
    since = (
        "has never been collected successfully"
        if last is None
        else (
            f"was last collected successfully at {last:%Y-%m-%d %H:%M} UTC, {hours:.1f} hours ago"
        )
    )
    return [
        Condition(
            org,
            "collection_stale",
            "",
            "never" if last is None else last.isoformat(timespec="seconds"),
            "warning",
            round(hours, 2) if hours is not None else float("inf"),
            th.stale_hours,
            f"{org} {since}; figures and alerts for it are out of date.",
        )
    ]


def evaluate_org(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    org: str,
    as_of: datetime,
    budgets: pl.DataFrame | None = None,
    limits: pl.DataFrame | None = None,
) -> list[Condition]:
    """Every firing condition of one organization at ``as_of`` (naive UTC)."""
    th = settings.alerts.thresholds
    usd = settings.credit_usd
    month = f"{as_of:%Y-%m}"
    budgets = budget_status(con, settings, as_of) if budgets is None else budgets
    limits = limit_use(con, as_of, [org]) if limits is None else limits
    fc = forecast_org(con, settings, org, as_of)
    return [
        *_cap_rules(fc, th, month, usd),
        *_budget_rules(budgets, org, th, month, usd),
        *_runout_rule(fc, th, month, usd),
        *_generation_rules(limits, org, th, as_of.date()),
        *_anomaly_rule(con, org, th, as_of.date(), usd),
        *_stale_rule(con, org, th, as_of),
    ]


def evaluate_rules(
    con: duckdb.DuckDBPyConnection, settings: Settings, orgs: Sequence[str], as_of: datetime
) -> list[Condition]:
    """Firing conditions of every organization in ``orgs``."""
    budgets = budget_status(con, settings, as_of)
    limits = limit_use(con, as_of, orgs)
    out: list[Condition] = []
    for org in orgs:
        out += evaluate_org(con, settings, org, as_of, budgets, limits)
    return out
