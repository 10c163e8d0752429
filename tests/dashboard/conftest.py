"""Fixtures for the dashboard tests: seeded databases and a fresh Streamlit AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.dashboard import seed

APP = Path(__file__).resolve().parents[2] / "runway_costs" / "dashboard" / "app.py"

CONFIG = """
[[budgets]]
org = "alpha"
credits = 2000

[[budgets]]
org = "beta"
usd = 30
"""


@pytest.fixture
def seeded_db(tmp_path: Path) -> Path:
    db = tmp_path / "seed.duckdb"
    seed.create(db)
    return db


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


@pytest.fixture
def app_for(monkeypatch: pytest.MonkeyPatch, config_file: Path):
    """Build an AppTest reading ``db`` with the test config (budgets alpha 2000, beta 3000)."""

    def make(db: Path, config: Path | None = config_file) -> AppTest:
        monkeypatch.setenv("RUNWAY_COSTS_DB", str(db))
        if config is None:
            monkeypatch.delenv("RUNWAY_COSTS_CONFIG", raising=False)
        else:
            monkeypatch.setenv("RUNWAY_COSTS_CONFIG", str(config))
        for var in ("RUNWAY_COSTS_DASHBOARD_AUTH", "RUNWAY_COSTS_DASHBOARD_PASSWORD"):
            monkeypatch.delenv(var, raising=False)
        st.cache_data.clear()
        st.cache_resource.clear()
        return AppTest.from_file(str(APP), default_timeout=30)

    return make
