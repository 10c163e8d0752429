"""What every page shares: the settings, the database path and the reviewer's selection.

Settings are loaded once per server process (``st.cache_resource``) from the same
environment variables the CLI reads; ``dashboard.serve`` sets them to the paths the
command resolved. The selection (organization and date range) lives in the sidebar of
the entrypoint, so it persists in session_state across pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import streamlit as st

from runway_costs.core.clock import clock_from_env
from runway_costs.core.config import Settings, load_settings
from runway_costs.dashboard.views import Scope

ALL_ORGS = "All organizations"
SELECTION_KEY = "selection"


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    """Settings for this server process; a ConfigError propagates to the page."""
    return load_settings()


def utc_now() -> datetime:
    """The dashboard's clock (naive UTC), read by every page through ``ui.now_minute``:
    the dashboard is an edge, so this is where it asks the system clock (or the instant
    RUNWAY_COSTS_NOW pins, passed down by ``runway-costs dashboard``)."""
    return clock_from_env()()


@dataclass(frozen=True)
class Selection:
    """The reviewer's choice in the sidebar, read by every page."""

    scope: Scope
    start: date
    end: date
    orgs_available: tuple[str, ...]


def selection() -> Selection | None:
    """The current selection, or None when there is nothing to select from yet."""
    return st.session_state.get(SELECTION_KEY)
