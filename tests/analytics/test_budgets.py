"""Budgets from the config against month-to-date spend and the month-end forecast."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from runway_costs.analytics.budgets import budget_status
from runway_costs.core.config import Budget, Settings
from tests.analytics.conftest import add_usage, new_db


def test_org_and_model_budgets_in_credits_and_usd(tmp_path):
    con = new_db(tmp_path / "b.duckdb")
    for i in range(56):  # 21 Sep .. 15 Nov: gen4.5 60 a day, veo3.1 40 a day
        day = date(2026, 11, 15) - timedelta(days=i)
        add_usage(con, "acme", day, "gen4.5", 60)
        add_usage(con, "acme", day, "veo3.1", 40)
    settings = Settings(
        budgets=(
            Budget(org="acme", usd=25.0),  # 2,500 credits
            Budget(org="acme", model="veo3.1", credits=1000),
        )
    )
    frame = budget_status(con, settings, datetime(2026, 11, 16))
    cols = ["org", "model", "month", "budget_credits", "spent_mtd_credits", "forecast_mid"]
    assert frame.select(cols).rows() == [
        # 15 days at 100 so far, 15 more to come.
        ("acme", None, date(2026, 11, 1), 2500, 1500, 3000),
        ("acme", "veo3.1", date(2026, 11, 1), 1000, 600, 1200),
    ]
    assert frame["used_ratio"].to_list() == [0.6, 0.6]
    assert frame["forecast_ratio"].to_list() == [1.2, 1.2]
    assert frame["budget_usd"].to_list() == [25.0, 10.0]
    assert frame["forecast_mid_usd"].to_list() == [30.0, 12.0]


def test_no_budgets_gives_an_empty_frame(tmp_path):
    con = new_db(tmp_path / "b.duckdb")
    frame = budget_status(con, Settings(), datetime(2026, 11, 16))
    assert frame.height == 0 and "forecast_ratio" in frame.columns
