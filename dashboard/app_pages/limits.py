"""Limits: per model, rolling-24h generations against the daily limit, now and over time."""

from __future__ import annotations

import polars as pl
import streamlit as st

from analytics import views
from dashboard import charts, ui


def render() -> None:
    sel = ui.require_selection()
    st.title("Limits")
    status = ui.load(views.collection_status, sel.scope, ui.now_minute())
    data = ui.load(views.limits, sel.scope, sel.start, status.as_of)
    st.caption(f"{sel.scope.label} · limits as of the last collection on {status.as_of}")
    if data.current.is_empty():
        st.info(f"No tier or model limits collected yet for {sel.scope.label}.")
        return
    st.subheader("Now: daily generations against the limit")
    st.dataframe(
        data.current.select(
            "org",
            "model",
            "daily_generations",
            "max_daily_generations",
            (pl.col("used") * 100).round(1).alias("used %"),
            "max_concurrent_generations",
        ),
        hide_index=True,
        key="limits_now",
    )
    history = data.history.with_columns((pl.col("org") + " / " + pl.col("model")).alias("series"))
    st.altair_chart(charts.generations_history(history, sel.scope), width="stretch")


render()
