"""Entrypoint (`streamlit run dashboard/app.py`): password gate, sidebar, navigation.

The sidebar widgets live here, not in the pages, so the organization and date range a
reviewer picks persist while moving between pages.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from runway_costs.core.config import ConfigError
from runway_costs.dashboard import auth, ui
from runway_costs.dashboard.context import get_settings

HERE = Path(__file__).resolve().parent
# Not "pages/": a folder of that name would turn on Streamlit's older file-based
# multipage mode next to st.navigation (AppTest then runs pages without the sidebar).
PAGE_DIR = HERE / "app_pages"
PAGES = [
    st.Page(PAGE_DIR / "overview.py", title="Overview", url_path="overview", default=True),
    st.Page(PAGE_DIR / "spend.py", title="Spend", url_path="spend"),
    st.Page(PAGE_DIR / "limits.py", title="Limits", url_path="limits"),
    st.Page(PAGE_DIR / "planner.py", title="Planner", url_path="planner"),
    st.Page(PAGE_DIR / "alerts.py", title="Alerts", url_path="alerts"),
]

st.set_page_config(page_title="Runway costs", layout="wide")
auth.gate()
try:
    get_settings()
except ConfigError as exc:
    st.error(f"The configuration cannot be used: {ui.md(exc)}")
    st.stop()

page = st.navigation(PAGES)
ui.sidebar_selection()
ui.show_reader_note()
page.run()
