"""The credit price has one home: ``core.money``."""

from __future__ import annotations

import polars as pl

from runway_costs.analytics.rates import load_rates
from runway_costs.core import money
from runway_costs.core.config import Budget, Settings


def test_shipped_rate_table_states_the_published_price() -> None:
    assert load_rates().credit_usd == money.CREDIT_USD


def test_settings_and_budgets_default_to_the_published_price() -> None:
    assert Settings().credit_usd == money.CREDIT_USD
    assert Budget(org="a", usd=12.0).monthly_credits() == round(12.0 / money.CREDIT_USD)


def test_usd_rounds_numbers_and_columns_to_cents_alike() -> None:
    assert money.usd(12345, 0.01) == 123.45
    assert money.usd(1, 0.004) == 0.0
    frame = pl.DataFrame({"credits": [12345, -7, 1]}).select(usd=money.usd(pl.col("credits"), 0.01))
    assert frame["usd"].to_list() == [123.45, -0.07, 0.01]
