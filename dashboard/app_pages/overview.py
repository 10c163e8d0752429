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

    a, b, c, d = st.columns(4)
    a.metric("Balance", ui.credits(data.balance_credits))
    a.metric("Balance (USD)", ui.usd(data.balance_usd))
    budget = "no budget set" if data.budget_credits is None else ui.credits(data.budget_credits)
    b.metric("Month-to-date spend", ui.credits(data.mtd_credits))
    b.metric("Monthly budget", budget, help="organization-wide [[budgets]] in the config")
    if data.budget_used is not None:
        b.progress(min(data.budget_used, 1.0), text=f"{data.budget_used:.0%} of budget used")
    c.metric(
        "Month-end forecast",
        ui.credits(data.month_end_mid),
        help="80% interval below; net spend of the whole calendar month",
    )
    c.metric(
        "Month-end 80% interval",
        f"{data.month_end_low:,} to {data.month_end_high:,} credits",
    )
    c.metric("Month-end forecast (USD)", ui.usd(data.usd(data.month_end_mid)))
    d.metric("30-day purchase cap", ui.credits(data.cap_credits))
    d.metric("Bought in the last 30 days", ui.credits(data.purchases_30d_credits))
    d.metric("Left to buy under the cap", ui.credits(data.headroom_credits))

    e, f, g = st.columns(3)  # g: open alerts (below)
    runout = (
        f"not within {views.HORIZON_DAYS} days"
        if data.runout_date is None
        else str(data.runout_date)
    )
    if data.runout_org and len(sel.scope.orgs) > 1:
        runout += f" ({data.runout_org})"
    e.metric("Run-out date (no purchases)", runout)
    capped = (
        f"not within {views.HORIZON_DAYS} days"
        if data.cap_bound_date is None
        else str(data.cap_bound_date)
    )
    f.metric("30-day cap reached", capped)

    st.altair_chart(
        charts.cumulative_window(data.window, data.cap_credits, sel.scope), width="stretch"
    )
    if len(sel.scope.orgs) > 1:
        st.subheader("Per organization")
        st.dataframe(data.per_org, hide_index=True, key="overview_orgs")


render()
