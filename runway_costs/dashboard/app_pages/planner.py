"""Planner: upload a plan file or edit rows; rows priced live with ranges, totals,
feasibility against the selected organization (or a tier), and cheaper alternatives."""

from __future__ import annotations

import hashlib
import json

import polars as pl
import streamlit as st

from runway_costs.analytics.feasibility import Feasibility
from runway_costs.analytics.plan import PlanError
from runway_costs.core.config import Settings
from runway_costs.core.files import package_data
from runway_costs.dashboard import ui, views
from runway_costs.dashboard.context import get_settings, selection

SAMPLE = package_data("sample-plan.csv")
EDITOR_CONFIG = {
    "label": st.column_config.TextColumn("label"),
    "model": st.column_config.TextColumn("model", required=True),
    "count": st.column_config.NumberColumn("count", min_value=1, step=1, required=True),
    "seconds": st.column_config.NumberColumn("seconds", min_value=0),
    "resolution": st.column_config.TextColumn("resolution"),
    "ratio": st.column_config.TextColumn("ratio"),
    "audio": st.column_config.CheckboxColumn("audio"),
    "characters": st.column_config.NumberColumn("characters", min_value=0, step=1),
    "endpoint": st.column_config.TextColumn("endpoint"),
    "date": st.column_config.TextColumn("date", help="YYYY-MM-DD: prices in force that day"),
}


def _starting_rows() -> tuple[str, list[dict]]:
    """Rows to edit: the uploaded file's, else the sample plan's. Stops on a bad file."""
    settings = get_settings()
    upload = st.file_uploader("Plan file (CSV or JSON)", type=["csv", "json"], key="plan_file")
    if upload is None:
        name, data = SAMPLE.name, SAMPLE.read_bytes()
        st.caption(
            f"Starting from the sample plan ({ui.md(name)}); upload a file or edit the rows."
        )
    else:
        name, data = upload.name, upload.getvalue()
    try:
        rows = views.plan_rows_from_file(settings, name, data)
    except PlanError as exc:
        st.error(f"{ui.md(name)} cannot be priced ({exc.total} problem(s)); nothing was priced.")
        st.code("\n".join(exc.lines()), language=None)
        st.stop()
    return hashlib.sha256(data).hexdigest()[:12], rows


def _editor(digest: str, rows: list[dict]) -> list[dict]:
    frame = pl.DataFrame(rows, schema=_schema(), strict=False)
    frame = frame.with_columns(pl.col("date").cast(pl.String))
    edited = st.data_editor(
        frame.to_pandas(),
        num_rows="dynamic",
        column_config=EDITOR_CONFIG,
        hide_index=True,
        key=f"plan_editor_{digest}",  # a new file starts a fresh edit state
    )
    return edited.to_dict("records")


def _schema() -> dict:
    return {
        "label": pl.String,
        "model": pl.String,
        "count": pl.Int64,
        "seconds": pl.Float64,
        "resolution": pl.String,
        "ratio": pl.String,
        "audio": pl.Boolean,
        "characters": pl.Int64,
        "endpoint": pl.String,
        "date": pl.Date,
    }


def render() -> None:
    st.title("Planner")
    settings = get_settings()
    digest, rows = _starting_rows()
    records = views.clean_records(_editor(digest, rows))
    data = views.price_records(settings, records, ui.now_minute().date())
    if data.errors:
        st.error("The table has problems; nothing was priced until they are fixed.")
        st.code("\n".join(data.errors), language=None)
        return
    assert data.priced is not None and data.summary is not None and data.cheaper is not None
    total = data.summary.total
    a, b, c = st.columns(3)
    a.metric("Plan total (credits)", f"{total.credits_min:,} to {total.credits_max:,}")
    b.metric("Plan total (USD)", f"USD {total.usd_min:,.2f} to {total.usd_max:,.2f}")
    c.metric("Rows without a price", f"{total.unpriced_rows} of {total.rows}")

    st.subheader("Priced rows")
    ui.table(
        data.priced.select(
            "line",
            "label",
            "model",
            "count",
            "seconds",
            "credits_min",
            "credits_max",
            "usd_min",
            "usd_max",
            "priced",
            "note",
        ),
        "priced_rows",
    )
    left, right = st.columns(2)
    left.subheader("By model")
    ui.table(data.summary.by_model, "by_model", left)
    right.subheader("By label")
    ui.table(data.summary.by_label, "by_label", right)

    st.subheader("Cheaper alternatives")
    if data.cheaper.is_empty():
        st.write("Every priced row already uses the cheapest model that can do its job.")
    else:
        ui.table(data.cheaper, "cheaper")

    _feasibility(settings, records)


def _feasibility(settings: Settings, records: list[dict]) -> None:
    st.subheader("Feasibility")
    sel = selection()
    if sel is not None and len(sel.scope.orgs) == 1:
        org = sel.scope.orgs[0]
        feas = ui.load(
            views.plan_feasibility, json.dumps(records, sort_keys=True), org, ui.now_minute()
        )
        if feas is None:
            st.info(f"No snapshot of {ui.md(org)} yet: its limits and balance are unknown.")
            return
    else:
        st.caption(
            "Pick one organization in the sidebar to check the plan against its balance "
            "and limits; until then, check it against a usage tier."
        )
        tier = st.selectbox("Usage tier", [1, 2, 3, 4, 5], key="plan_tier")
        feas = views.tier_feasibility(settings, records, tier, ui.now_minute().date())
        if feas is None:  # nothing priced: the table's problems are shown above
            return
    _show_feasibility(feas)


def _show_feasibility(feas: Feasibility) -> None:
    st.caption(f"Against {ui.md(feas.source)}")
    a, b, c = st.columns(3)
    balance = "unknown" if feas.balance is None else f"{feas.balance:,} credits"
    a.metric("Balance", balance)
    fits = {True: "yes", False: "no", None: "n/a"}[feas.fits_balance]
    a.metric("Plan maximum fits the balance", fits)
    b.metric("Credits to buy", f"{feas.missing_credits:,}")
    b.metric("Left under the 30-day cap", f"{feas.cap_available:,}")
    c.metric("Purchase fits the cap", "yes" if feas.fits_cap else "no")
    c.metric("Cap shortfall", f"{feas.cap_shortfall:,} credits")
    ui.table(feas.models, "feasibility_models")
    for note in feas.notes:
        st.caption(ui.md(note))


render()
