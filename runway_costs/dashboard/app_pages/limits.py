"""Limits: per model, rolling-24h generations against the daily limit, now and over time;
concurrency limits; the tier and what the next tier needs."""

from __future__ import annotations

import polars as pl
import streamlit as st

from runway_costs.dashboard import charts, ui, views


def render() -> None:
    sel = ui.require_selection()
    st.title("Limits")
    status = ui.load(views.collection_status, sel.scope, ui.now_minute())
    data = ui.load(views.limits, sel.scope, sel.start, views.as_of_time(status))
    st.caption(f"{ui.md(sel.scope.label)} · limits as of the last collection on {status.as_of}")
    if data.current.is_empty():
        st.info(f"No tier or model limits collected yet for {ui.md(sel.scope.label)}.")
        return

    st.subheader("Tier")
    for row in data.tiers.iter_rows(named=True):
        _tier(row)

    st.subheader("Now: daily generations (rolling 24 h) against the limit")
    ui.table(
        data.current.select(
            "org",
            "model",
            "daily_generations",
            "max_daily_generations",
            (pl.col("usage_ratio") * 100).round(1).alias("used %"),
            "max_concurrent_generations",
            "peak_7d",
            "days_at_limit_30d",
        ),
        "limits_now",
    )
    st.altair_chart(
        charts.generations_history(data.history.drop_nulls("used"), sel.scope), width="stretch"
    )


def _tier(row: dict) -> None:
    """One organization's tier and its progress toward the next (both conditions)."""
    org, tier = ui.md(row["org"]), row["tier"]
    if tier is None:
        st.write(f"**{org}**: tier unknown (no limits match the tier table).")
        return
    cap = f"{row['cap_credits']:,}" if row["cap_credits"] is not None else "n/a"
    st.write(f"**{org}**: tier {tier} (30-day purchase cap {cap} credits)")
    if row["next_tier"] is None:
        st.caption("Top tier.")
        return
    needs = (
        f"Tier {row['next_tier']} (cap {row['next_cap_credits']:,} credits) needs "
        f"{row['next_unlock_days']} days at tier {tier} and "
        f"USD {row['next_unlock_spend_usd']:,.2f} spent"
    )
    st.caption(needs + (": both met, the API raises the tier." if row["eligible"] else "."))
    if row["since_first_snapshot"]:
        st.caption("Days count from the first collection; the tier may be older.")
    left, right = st.columns(2)
    at_least = "at least " if row["since_first_snapshot"] else ""
    left.progress(
        row["days_progress"] or 0.0,
        text=f"days at tier {tier}: {at_least}{row['days_at_tier']:.1f} of "
        f"{row['next_unlock_days']}",
    )
    right.progress(
        row["spend_progress"] or 0.0,
        text=f"spent: USD {row['spend_usd']:,.2f} of {row['next_unlock_spend_usd']:,.2f}",
    )


render()
