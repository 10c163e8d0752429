"""Spend: per day stacked by model, organization, tag or API key; per month, per model,
per API key; restated months; tables downloadable."""

from __future__ import annotations

import streamlit as st

from runway_costs.dashboard import charts, ui, views
from runway_costs.dashboard.context import get_settings
from runway_costs.dashboard.views.spend import NO_KEY_USAGE, group_choices


def render() -> None:
    sel = ui.require_selection()
    st.title("Spend")
    choices = group_choices(get_settings())
    group_by = st.selectbox(
        "Group by",
        list(choices),
        format_func=lambda v: choices[v],
        key="spend_group_by",
        help="tags come from [[orgs]] in the config and apply to the whole history",
    )
    data = ui.load(views.spend, sel.scope, sel.start, sel.end, 6, group_by)
    st.caption(f"{ui.md(sel.scope.label)} · {sel.start} to {sel.end} (UTC days, net of refunds)")
    for line in data.restated_lines:
        st.warning(ui.md(line), icon="✏️")
    if data.row_count == 0:
        st.info(
            f"No usage recorded for {ui.md(sel.scope.label)} between {sel.start} and {sel.end}."
        )
        return
    a, b = st.columns(2)
    a.metric("Spend in range (credits)", f"{data.total_credits:,}")
    b.metric("Spend in range (USD)", ui.usd(data.total_usd))
    title = data.grouping.title
    if data.grouping.kind == "key" and data.keys.is_empty():
        st.info(NO_KEY_USAGE)
    else:
        st.altair_chart(
            charts.stacked_daily(data.daily_by_group, sel.scope, "group", title), width="stretch"
        )
    left, right = st.columns(2)
    left.altair_chart(charts.monthly_bars(data.monthly, sel.scope), width="stretch")
    right.altair_chart(charts.model_bars(data.by_model, sel.scope), width="stretch")

    if data.grouping.kind not in ("model", "key"):
        st.subheader(f"Per {title}")
        ui.table(data.by_group.rename({"group": title}), "group_table")
        ui.download_buttons(data.by_group, f"spend-per-{data.grouping.label}", "by_group")
    st.subheader("Per month")
    ui.table(data.monthly, "monthly_table")
    ui.download_buttons(data.monthly, "spend-per-month", "monthly")
    st.subheader("Per model")
    ui.table(data.by_model, "model_table")
    ui.download_buttons(data.by_model, "spend-per-model", "by_model")
    st.subheader("Per API key")
    if data.keys.is_empty():
        st.caption(NO_KEY_USAGE)
    else:
        ui.table(data.keys, "key_table")
        ui.download_buttons(data.keys, "spend-per-api-key", "by_key")
    st.subheader("Per organization, day and model")
    if data.rows_cut:
        st.caption(
            f"The first {data.rows.height:,} of {data.row_count:,} rows (by organization, "
            "day and model); the totals above cover them all. Every row: "
            "`runway-costs export usage`, or a narrower selection."
        )
    ui.table(data.rows, "rows_table")
    ui.download_buttons(data.rows, "spend-rows", "rows")


render()
