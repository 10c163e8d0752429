"""Overview: balance, spend against budget and cap, forecast, run-out, alerts, freshness."""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from runway_costs.dashboard import charts, ui, views
from runway_costs.dashboard.context import get_settings


def render() -> None:
    sel = ui.require_selection()
    st.title("Overview")
    data = ui.load(views.overview, sel.scope, ui.now_minute())
    status = data.status
    st.caption(f"{ui.md(sel.scope.label)} · as of {status.as_of} (UTC)")
    ui.freshness(status)

    a, b, c, d = st.columns(4)
    a.metric("Balance (credits)", ui.num(data.balance_credits))
    a.metric("Balance (USD)", ui.num(data.balance_usd, 2))
    b.metric("Month-to-date spend (credits)", ui.num(data.mtd_credits))
    b.metric(
        "Monthly budget (credits)",
        "not set" if data.budget_credits is None else ui.num(data.budget_credits),
        help="organization-wide [[budgets]] in the config",
    )
    if data.budget_used is not None:
        b.progress(min(data.budget_used, 1.0), text=f"{data.budget_used:.0%} of budget used")
    c.metric(
        "Month-end forecast (credits)",
        ui.num(data.month_end_mid),
        help="net spend of the whole calendar month, with its 80% interval",
    )
    c.caption(
        f"80% interval: {data.month_end_low:,} to {data.month_end_high:,} credits "
        f"(USD {data.usd(data.month_end_low):,.2f} to {data.usd(data.month_end_high):,.2f})"
    )
    c.metric("Month-end forecast (USD)", ui.num(data.usd(data.month_end_mid), 2))
    d.metric("30-day purchase cap (credits)", ui.num(data.cap_credits))
    _bought(d, data)
    d.metric(
        "Left to buy under the cap",
        data.headroom_text,
        help="the 30-day purchase cap minus what was bought in the window",
    )
    if data.purchases_assumption:
        most = (
            f"At most {data.headroom_credits:,} (the whole cap): "
            if not data.purchases_window.known and data.headroom_credits is not None
            else ""
        )
        d.caption(f"⚠️ {most}{ui.md(data.purchases_assumption)}.")

    e, f, g = st.columns(3)
    runout = (
        f"not within {views.HORIZON_DAYS} days"
        if data.runout_date is None
        else str(data.runout_date)
    )
    if data.runout_org and len(sel.scope.orgs) > 1:
        runout += f" ({ui.md(data.runout_org)})"
    e.metric("Run-out date (no purchases)", runout)
    if data.cap_bound_date is None:
        capped = f"not within {views.HORIZON_DAYS} days"
    else:
        capped = str(data.cap_bound_date)
        if data.cap_bound_org and len(sel.scope.orgs) > 1:
            capped += f" ({ui.md(data.cap_bound_org)})"
    f.metric(
        "30-day cap binds",
        capped,
        help="the first day the credits needed to keep spending at the forecast rate "
        "would exceed the 30-day purchase cap (buying only what the balance lacks)",
    )
    if data.purchases_assumption and data.cap_bound_date is not None:
        f.caption(f"⚠️ {ui.md(data.purchases_assumption)}: the cap may bind sooner.")
    elif data.purchases_assumption:
        f.caption(f"⚠️ {ui.md(data.purchases_assumption)}.")
    g.metric("Open alerts", str(data.open_alerts))
    if data.open_alerts:
        g.page_link("app_pages/alerts.py", label="See the alerts")

    st.altair_chart(
        charts.cumulative_window(data.window, data.cap_credits, sel.scope), width="stretch"
    )
    if len(sel.scope.orgs) > 1:
        settings = get_settings()
        keys = settings.tag_keys()
        choice = st.selectbox(
            "Group by",
            ["org", *keys],
            format_func=lambda v: "organization" if v == "org" else f"tag: {v}",
            key="overview_group_by",
            help="tags come from [[orgs]] in the config",
        )
        if choice == "org":
            st.subheader("Per organization")
            ui.table(data.per_org, "overview_orgs")
        else:
            st.subheader(f"Per {ui.md(choice)}")
            ui.table(views.overview_groups(data, settings, choice), "overview_groups")


def _bought(col: DeltaGenerator, data: views.Overview) -> None:
    """Reconstructed purchases with the window they cover: before collection began, or on
    days it missed, nothing is known, so a partial window must not read as a bare 0."""
    window = data.purchases_window
    help_ = (
        "Reconstructed from observed balances and spend (the API reports no purchases); "
        "a day's purchases need the balance at the end of the day before."
    )
    if not window.known:
        col.metric("Bought, last 30 days (credits)", "unknown", help=help_)
        col.caption(f"Nothing known yet: {window.reason}.")
    elif not window.complete:
        col.metric("Bought, last 30 days (credits)", ui.num(data.purchases_30d_credits), help=help_)
        col.caption(f"Only {window.text}; earlier purchases are unknown.")
    else:
        col.metric("Bought, last 30 days (credits)", ui.num(data.purchases_30d_credits), help=help_)


render()
