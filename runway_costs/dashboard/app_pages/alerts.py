"""Alerts: open and past alerts, the rules in force, and a test notification button."""

from __future__ import annotations

import streamlit as st

from runway_costs.dashboard import ui, views
from runway_costs.dashboard.context import get_settings


def render() -> None:
    sel = ui.require_selection()
    st.title("Alerts")
    data = ui.load(views.alerts, sel.scope)
    st.caption(f"{ui.md(sel.scope.label)} · checked after every scheduled collection")

    st.subheader(f"Open ({data.open.height})")
    if data.open.is_empty():
        st.success("No open alerts.")
    else:
        for row in data.open.iter_rows(named=True):
            target = f" ({ui.md(row['target'])})" if row["target"] else ""
            text = (
                f"**{ui.md(row['org'])}** · {ui.md(row['rule'])}{target}: {ui.md(row['message'])}"
            )
            {"critical": st.error, "warning": st.warning}.get(row["severity"], st.info)(text)
        with st.expander("Open alerts as a table"):
            ui.table(
                data.open.select(
                    "severity",
                    "org",
                    "rule",
                    "target",
                    "message",
                    "first_fired_at",
                    "last_seen_at",
                ),
                "open_alerts",
            )
    st.subheader("History")
    if data.history.is_empty():
        st.write("No alert has been announced yet.")
    else:
        ui.table(
            data.history.select(
                "event_at",
                "status",
                "severity",
                "org",
                "rule",
                "target",
                "message",
                "delivered",
                "undelivered",
            ),
            "alert_history",
        )

    st.subheader("Rules in force")
    ui.table(data.rules, "alert_rules")
    if data.budgets.is_empty():
        st.caption("No [[budgets]] configured for this selection.")
    else:
        st.write("Monthly budgets")
        ui.table(data.budgets, "alert_budgets")

    st.subheader("Channels")
    if not data.channels:
        st.info("No alert channels configured: add Apprise URLs to [alerts] urls in the config.")
        return
    st.write("Configured: " + ", ".join(ui.md(c) for c in data.channels))
    if st.button("Send a test notification", key="test_notification"):
        with st.spinner("Sending..."):
            settings = get_settings()
            results = views.send_test_notification(
                settings.alerts.urls,
                settings.alerts.delivery_attempts,
                settings.alerts.delivery_timeout_seconds,
            )
        for r in results:
            if r.ok:
                st.success(f"{ui.md(r.channel)}: delivered")
            else:
                st.error(f"{ui.md(r.channel)}: not delivered ({ui.md(r.error)})")


render()
