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

The rules are declared once, in ``RULES`` (name, title, period, what it watches, its
thresholds): the evaluation below, alert titles, the CLI, the dashboard's rules table and
the README's thresholds block (a test compares them) all read it. The thresholds' default
values live in ``AlertThresholds`` (core cannot import analytics); each ``Threshold``
names its setting there and reads the default from it, and a test checks that every
setting belongs to exactly one rule.

- ``Severity`` (info < warning < critical; ``.rank``), ``Status`` (fired, ongoing,
  resolved, superseded): ``StrEnum`` s, so stored and JSON values are the same strings.
- ``SEVERITY_RANK``: {"info": 1, "warning": 2, "critical": 3}
- ``RULES`` (tuple of ``Rule``), ``RULES_BY_NAME``, ``rule_title(name) -> str``,
  ``rules_table(thresholds) -> pl.DataFrame`` (rule, setting, value: the rules in force)
- ``Condition`` (org, rule, target, key, severity, value, threshold, message)
- ``Alert`` (a condition with its status; ``analytics.alerts`` decides it)
- ``evaluate_org(con, settings, org, as_of, budgets=None, limits=None) -> list[Condition]``
- ``evaluate_rules(con, settings, orgs, as_of) -> list[Condition]``
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

import duckdb
import numpy as np
import polars as pl

from runway_costs.analytics.budgets import budget_status
from runway_costs.analytics.forecast import OrgForecast, forecast_org, forecast_orgs
from runway_costs.analytics.limits import limits_now
from runway_costs.analytics.spend import spend_daily
from runway_costs.core.config import AlertThresholds, Settings
from runway_costs.core.money import usd

__all__ = [
    "RULES",
    "RULES_BY_NAME",
    "SEVERITY_RANK",
    "Alert",
    "Condition",
    "Rule",
    "Severity",
    "Status",
    "Threshold",
    "evaluate_org",
    "evaluate_rules",
    "rule_title",
    "rules_table",
]

ANOMALY_NORM_DAYS = 28


class Severity(StrEnum):
    """How bad a condition is; members compare as their stored strings."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self]


SEVERITY_RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}


class Status(StrEnum):
    """What one check decides about an alert (``alert_events`` / JSON values)."""

    FIRED = "fired"  # announced (new, re-opened, or its severity rose)
    ONGOING = "ongoing"  # still holds, already announced: silent
    RESOLVED = "resolved"  # no longer holds: announced
    SUPERSEDED = "superseded"  # the same condition moved to a new period: closed silently


@dataclass(frozen=True)
class Threshold:
    """One ``[alerts.thresholds]`` setting of a rule, with how the rules table labels it."""

    setting: str  # the AlertThresholds field
    label: str

    @property
    def default(self) -> object:
        return AlertThresholds.model_fields[self.setting].default

    def value(self, thresholds: AlertThresholds) -> object:
        return getattr(thresholds, self.setting)


@dataclass(frozen=True)
class Rule:
    name: str
    title: str  # in notices: "[WARNING] acme: <title>"
    period: str  # what it fires once per
    watches: str
    thresholds: tuple[Threshold, ...]


RULES: tuple[Rule, ...] = (
    Rule(
        "cap_forecast",
        "30-day purchase cap forecast to be reached",
        "month",
        "purchases needed within a 30-day window during the next 30 days, at the forecast "
        "rate, against the 30-day purchase cap",
        (
            Threshold("cap_forecast_warn", "warning at share of 30-day cap"),
            Threshold("cap_forecast_critical", "critical at share of 30-day cap"),
        ),
    ),
    Rule(
        "cap_used",
        "30-day purchase cap used",
        "month",
        "purchases of the last 30 days against the 30-day purchase cap",
        (Threshold("cap_used_levels", "levels (info, warning, critical)"),),
    ),
    Rule(
        "budget_used",
        "budget used",
        "month, per budget",
        "month-to-date spend against a budget",
        (
            Threshold("budget_used_warn", "warning at share of budget"),
            Threshold("budget_used_critical", "critical at share of budget"),
        ),
    ),
    Rule(
        "budget_forecast",
        "budget forecast to be exceeded",
        "month, per budget",
        "the month-end spend forecast against a budget",
        (Threshold("budget_forecast_ratio", "warning at month-end forecast share of budget"),),
    ),
    Rule(
        "runout",
        "balance running out",
        "month",
        "days until the balance runs out at the forecast rate if nothing is bought",
        (
            Threshold("runout_warn_days", "warning when run-out within (days)"),
            Threshold("runout_critical_days", "critical when run-out within (days)"),
        ),
    ),
    Rule(
        "daily_generations",
        "daily generation limit",
        "day, per model",
        "rolling-24h generations against the model's daily limit (critical at 100%: HTTP 429)",
        (Threshold("daily_generations_ratio", "warning at share of daily limit"),),
    ),
    Rule(
        "spend_anomaly",
        "unusual spend",
        "the day",
        f"yesterday's, or today's spend so far, against the {ANOMALY_NORM_DAYS} days before",
        (
            Threshold("anomaly_mads", f"robust SDs above the {ANOMALY_NORM_DAYS}-day median"),
            Threshold("anomaly_min_credits", "and at least this many credits above it"),
        ),
    ),
    Rule(
        "collection_stale",
        "collection stale",
        "last success",
        "time since the last successful collection",
        (Threshold("stale_hours", "no successful collection for (hours)"),),
    ),
)
RULES_BY_NAME = {r.name: r for r in RULES}


def rule_title(name: str) -> str:
    """The rule's title for notices (its name when it is not declared)."""
    rule = RULES_BY_NAME.get(name)
    return rule.title if rule else name


def rules_table(thresholds: AlertThresholds) -> pl.DataFrame:
    """The rules in force: one (rule, setting, value) row per threshold, as text."""

    def text(v: object) -> str:
        return ", ".join(map(str, v)) if isinstance(v, tuple | list) else str(v)

    rows = [(r.name, t.label, text(t.value(thresholds))) for r in RULES for t in r.thresholds]
    return pl.DataFrame(
        {
            "rule": [r[0] for r in rows],
            "setting": [r[1] for r in rows],
            "value": [r[2] for r in rows],
        },
        schema={"rule": pl.String, "setting": pl.String, "value": pl.String},
    )


@dataclass(frozen=True, slots=True)
class Condition:
    """A firing condition. ``target`` separates instances of a rule within an org (a
    model, a budget); ``key`` is the period it belongs to (it fires once per key)."""

    org: str
    rule: str
    target: str
    key: str
    severity: Severity
    value: float
    threshold: float
    message: str

    def __post_init__(self) -> None:
        if self.rule not in RULES_BY_NAME:  # every rule is declared in RULES
            raise ValueError(f"undeclared alert rule {self.rule!r}")


@dataclass(frozen=True, slots=True)
class Alert:
    """A condition with what a check decided about it (``analytics.alerts``); the stored
    columns are ``analytics.alert_store``'s. Values read back from the database are plain
    strings, equal to the ``Severity`` / ``Status`` members."""

    org: str
    rule: str
    target: str
    key: str
    severity: str  # a Severity
    status: str  # a Status (superseded is internal, never shown)
    value: float | None
    threshold: float | None
    message: str
    notified_severity: str = ""

    @property
    def title(self) -> str:
        target = f" ({self.target})" if self.target else ""
        label = "RESOLVED" if self.status == Status.RESOLVED else self.severity.upper()
        return f"[{label}] {self.org}: {rule_title(self.rule)}{target}"

    def to_json(self) -> dict:
        return {
            "org": self.org,
            "rule": self.rule,
            "target": self.target or None,
            "severity": self.severity,
            "status": self.status,
            "key": self.key,
            "message": self.message,
            "value": self.value,
            "threshold": self.threshold,
        }


def _c(n: float | int | None) -> str:
    """Credits for a sentence: 12,345 credits (USD 123.45)."""
    return "unknown" if n is None else f"{round(n):,} credits"


def _cu(n: float | int, credit_usd: float) -> str:
    return f"{round(n):,} credits (USD {usd(n, credit_usd):,.2f})"


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _level(value: float, levels: Sequence[tuple[float, Severity]]) -> tuple[Severity, float] | None:
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
        (th.cap_used_levels[0], Severity.INFO),
        (th.cap_used_levels[1], Severity.WARNING),
        (th.cap_used_levels[2], Severity.CRITICAL),
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
            peak,
            [
                (th.cap_forecast_warn, Severity.WARNING),
                (th.cap_forecast_critical, Severity.CRITICAL),
            ],
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
        sev, t = Severity.CRITICAL, th.runout_critical_days
    elif days <= th.runout_warn_days:
        sev, t = Severity.WARNING, th.runout_warn_days
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
            [(th.budget_used_warn, Severity.WARNING), (th.budget_used_critical, Severity.CRITICAL)],
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
                    Severity.WARNING,
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
        hit = _level(
            r["usage_ratio"],
            [(th.daily_generations_ratio, Severity.WARNING), (1.0, Severity.CRITICAL)],
        )
        if not hit:
            continue
        sev, t = hit
        tail = (
            "new generations are refused (HTTP 429) until the rolling window frees up"
            if sev == Severity.CRITICAL
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
    return _anomaly(org, daily["credits"].to_numpy().astype(float), th, today, usd)


def _anomaly(
    org: str, values: np.ndarray, th: AlertThresholds, today: date, usd: float
) -> list[Condition]:
    """The anomaly rule on one org's daily spend (oldest first, ending today)."""
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
                    Severity.WARNING,
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
    return _stale(org, _last_successes(con, [org], as_of).get(org), th, as_of)


def _last_successes(
    con: duckdb.DuckDBPyConnection, orgs: Sequence[str], as_of: datetime
) -> dict[str, datetime]:
    """Each org's last successful collection at or before ``as_of`` (absent: never)."""
    rows = con.execute(
        "SELECT org, max(finished_at) FROM collection_runs WHERE status = 'ok' "
        "AND finished_at <= $as_of AND org IN (SELECT unnest($orgs::VARCHAR[])) GROUP BY org",
        {"as_of": as_of, "orgs": list(orgs)},
    ).fetchall()
    return {org: last for org, last in rows}


def _stale(
    org: str, last: datetime | None, th: AlertThresholds, as_of: datetime
) -> list[Condition]:
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
            Severity.WARNING,
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
    limits = limits_now(con, as_of, [org]) if limits is None else limits
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
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    orgs: Sequence[str],
    as_of: datetime,
    forecasts: Sequence[OrgForecast] | None = None,
    limits: pl.DataFrame | None = None,
    spend: pl.DataFrame | None = None,
    last_success: Mapping[str, datetime] | None = None,
) -> list[Condition]:
    """Firing conditions of every organization in ``orgs``: ``evaluate_org``'s, from one
    read per rule family for all of them (forecasts, budgets, limits now, daily spend,
    last successes), then the rules per organization in memory. ``forecasts`` (one per
    org of ``orgs``), ``limits`` (``limits_now``'s rows) and ``spend`` (net credits per
    org and day, the last 30 days) and ``last_success`` (per org): when already at hand
    (the cycle's stored outlooks, ``analytics.outlook``); read at ``as_of`` otherwise."""
    names = list(orgs)
    unique = list(dict.fromkeys(names))
    th = settings.alerts.thresholds
    usd = settings.credit_usd
    month = f"{as_of:%Y-%m}"
    today = as_of.date()
    budgets = budget_status(con, settings, as_of)
    limits = limits_now(con, as_of, unique) if limits is None else limits
    # only rows that reach a level can fire (the rule is unchanged for the others: none)
    lowest = min(th.daily_generations_ratio, 1.0)
    limits_of = limits.filter(pl.col("usage_ratio") >= lowest).partition_by("org", as_dict=True)
    if forecasts is None:
        forecasts = forecast_orgs(con, settings, names, as_of)
    forecast_of = dict(zip(names, forecasts, strict=True))
    if spend is None:
        spend = spend_daily(con, unique, today - timedelta(days=ANOMALY_NORM_DAYS + 1), today)
    spend_of = {
        key[0]: frame["credits"].to_numpy().astype(float)
        for key, frame in spend.partition_by("org", as_dict=True, maintain_order=True).items()
    }
    last_ok = _last_successes(con, names, as_of) if last_success is None else last_success
    # per org (an org without a budget line fires none; a tag budget's org is NULL)
    budgets_of = budgets.partition_by("org", as_dict=True)
    out: list[Condition] = []
    for org in names:  # in evaluate_org's order
        fc = forecast_of[org]
        at_limit = limits_of.get((org,))
        budgeted = budgets_of.get((org,))
        out += [
            *_cap_rules(fc, th, month, usd),
            *(_budget_rules(budgeted, org, th, month, usd) if budgeted is not None else []),
            *_runout_rule(fc, th, month, usd),
            *(_generation_rules(at_limit, org, th, today) if at_limit is not None else []),
            *_anomaly(org, spend_of.get(org, np.zeros(0)), th, today, usd),
            *_stale(org, last_ok.get(org), th, as_of),
        ]
    return out
