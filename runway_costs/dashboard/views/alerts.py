"""The Alerts page: open alerts, their history with deliveries, budgets, and the rules
in force (channels by label, never by URL)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from runway_costs.analytics import alert_rules as alert_rules_mod
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
    """Every rule's thresholds in force as (rule, setting, value) rows, from the one
    declaration of the rules (``analytics.alert_rules.RULES``)."""
    return alert_rules_mod.rules_table(settings.alerts.thresholds)


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
        # one org: its own latest events, not the latest of all orgs that are its
        history=alert_store_mod.alert_history(
            con, scope.orgs[0] if len(scope.orgs) == 1 else None
        ).filter(in_scope),
        rules=alert_rules(settings),
        budgets=budgets,
        channels=channel_labels(settings),
    )


def open_alert_count(con: duckdb.DuckDBPyConnection, scope: Scope) -> int:
    return alert_store_mod.open_alerts(con).filter(pl.col("org").is_in(scope.org_list)).height
