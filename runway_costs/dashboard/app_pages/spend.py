"""Spend: per day stacked by model, per month, per model; tables downloadable."""

from __future__ import annotations

import streamlit as st

from runway_costs.dashboard import charts, ui, views


def render() -> None:
    sel = ui.require_selection()
    st.title("Spend")
    data = ui.load(views.spend, sel.scope, sel.start, sel.end)
    st.caption(f"{ui.md(sel.scope.label)} · {sel.start} to {sel.end} (UTC days, net of refunds)")
    if data.rows.is_empty():
        st.info(
            f"No usage recorded for {ui.md(sel.scope.label)} between {sel.start} and {sel.end}."
        )
        return
    total = data.total_credits
    usd = float(data.rows["usd"].sum())
    a, b = st.columns(2)
    a.metric("Spend in range (credits)", f"{total:,}")
    b.metric("Spend in range (USD)", ui.usd(usd))
    st.altair_chart(charts.stacked_daily(data.daily, sel.scope), width="stretch")
    left, right = st.columns(2)
    left.altair_chart(charts.monthly_bars(data.monthly, sel.scope), width="stretch")
    right.altair_chart(charts.model_bars(data.by_model, sel.scope), width="stretch")

    st.subheader("Per month")
    ui.table(data.monthly, "monthly_table")
    ui.download_buttons(data.monthly, "spend-per-month", "monthly")
    st.subheader("Per model")
    ui.table(data.by_model, "model_table")
    ui.download_buttons(data.by_model, "spend-per-model", "by_model")
    st.subheader("Per organization, day and model")
    ui.table(data.rows, "rows_table")
    ui.download_buttons(data.rows, "spend-rows", "rows")


render()
