"""The Alerts page: open alerts, their history with deliveries, budgets, and the rules
in force (channels by label, never by URL)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from runway_costs.analytics import alert_store as alert_store_mod
from runway_costs.analytics import notify as notify_mod
from runway_costs.core.config import Settings
from runway_costs.dashboard.views.common import Scope


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
