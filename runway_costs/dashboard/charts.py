"""Altair charts; every title names the organizations the chart shows."""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl

from runway_costs.dashboard.views import Scope


def titled(what: str, scope: Scope) -> str:
    return f"{what}: {scope.label}"


def _bars(frame: pl.DataFrame, what: str, scope: Scope, **encoding: Any) -> alt.Chart:
    """A bar chart of ``frame`` with the given encodings, titled for its organizations."""
    chart = alt.Chart(frame.to_pandas(), title=titled(what, scope))
    return chart.mark_bar().encode(**encoding)


def stacked_daily(
    daily: pl.DataFrame, scope: Scope, column: str = "model", title: str = "model"
) -> alt.Chart:
    """Credits per day stacked by ``column`` (a model, an organization, a tag's value or
    an API key), named ``title`` in the chart title and legend."""
    return _bars(
        daily,
        f"Credits per day by {title}",
        scope,
        x=alt.X("date:T", title="day (UTC)"),
        y=alt.Y("sum(credits):Q", title="credits"),
        color=alt.Color(f"{column}:N", title=title),
        tooltip=["date:T", f"{column}:N", "credits:Q"],
    )


def monthly_bars(monthly: pl.DataFrame, scope: Scope) -> alt.Chart:
    return _bars(
        monthly,
        "Credits per month",
        scope,
        x=alt.X("yearmonth(month):O", title="month"),
        y=alt.Y("credits:Q", title="credits"),
        tooltip=["yearmonth(month):O", "credits:Q", "usd:Q"],
    )


def model_bars(by_model: pl.DataFrame, scope: Scope) -> alt.Chart:
    return _bars(
        by_model,
        "Credits per model",
        scope,
        y=alt.Y("model:N", sort="-x", title="model"),
        x=alt.X("credits:Q", title="credits"),
        tooltip=["model:N", "credits:Q", "usd:Q"],
    )


def generations_history(history: pl.DataFrame, scope: Scope) -> alt.Chart:
    """Peak share of the daily limit each day (1.0 = at the limit): per model for one
    organization, per organization's busiest model for several."""
    return (
        alt.Chart(
            history.to_pandas(),
            title=titled("Peak daily generations (rolling 24 h) as a share of the limit", scope),
        )
        .mark_line(point=True)
        .encode(
            x=alt.X("date:T", title="day (UTC)"),
            y=alt.Y("used:Q", title="share of daily limit", axis=alt.Axis(format="%")),
            color=alt.Color("series:N", title="series"),
            tooltip=["series:N", "date:T", alt.Tooltip("used:Q", format=".0%")],
        )
    )


def cumulative_window(window: pl.DataFrame, cap: int | None, scope: Scope) -> alt.LayerChart:
    """Cumulative spend in the 30-day window, forecast band, and the purchase-cap line."""
    frame = window.to_pandas()
    title = titled("Cumulative spend, last 30 days and forecast, vs 30-day cap", scope)
    base = alt.Chart(frame, title=title).encode(x=alt.X("date:T", title="day (UTC)"))
    layers = [
        base.transform_filter("datum.kind == 'forecast'")
        .mark_area(opacity=0.25)
        .encode(y=alt.Y("low:Q", title="credits"), y2="high:Q"),
        base.mark_line(point=True).encode(
            y="cumulative:Q",
            strokeDash=alt.StrokeDash("kind:N", title=""),
            tooltip=["date:T", "kind:N", "cumulative:Q", "low:Q", "high:Q"],
        ),
    ]
    if cap is not None:
        rule = alt.Chart(pl.DataFrame({"cap": [cap], "label": ["30-day purchase cap"]}).to_pandas())
        layers.append(rule.mark_rule(color="red", strokeDash=[6, 4]).encode(y="cap:Q"))
    return alt.LayerChart(layer=layers)
