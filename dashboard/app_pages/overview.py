"""Overview: balance, spend against budget and cap, forecast, run-out, alerts, freshness."""

from __future__ import annotations

import streamlit as st

from analytics import views
from dashboard import charts, ui


def render() -> None:
    sel = ui.require_selection()
    st.title("Overview")
    data = ui.load(views.overview, sel.scope, ui.now_minute())
    status = data.status
    st.caption(f"{sel.scope.label} · as of {status.as_of} (UTC)")
    ui.freshness(status)

    a, b, c = st.columns(3)
    a.metric("Balance", ui.credits(data.balance_credits))
    a.metric("Balance (USD)", ui.usd(data.balance_usd))
    budget = "no budget set" if data.budget_credits is None else ui.credits(data.budget_credits)
    b.metric("Month-to-date spend", ui.credits(data.mtd_credits))
    b.metric("Monthly budget", budget, help="organization-wide [[budgets]] in the config")
    if data.budget_used is not None:
        b.progress(min(data.budget_used, 1.0), text=f"{data.budget_used:.0%} of budget used")
    c.metric("30-day purchase cap", ui.credits(data.cap_credits))
    c.metric("Bought in the last 30 days", ui.credits(data.purchases_30d_credits))
    c.metric("Left to buy under the cap", ui.credits(data.headroom_credits))

    st.altair_chart(
        charts.cumulative_window(data.window, data.cap_credits, sel.scope), width="stretch"
    )


render()
