"""The backtest: structure by hand, and the method beating the naive baseline on the
sandbox's histories collected over real HTTP."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from runway_costs.analytics.backtest import backtest
from runway_costs.analytics.db import connect_reader
from runway_costs.collector.cycle import run_cycle_sync
from tests.analytics.conftest import add_usage, new_db
from tests.collector.support import settings_for
from tests.conftest import SANDBOX_CLOCK


def test_constant_spend_is_forecast_exactly(tmp_path):
    con = new_db(tmp_path / "b.duckdb")
    day = date(2026, 8, 1)
    while day <= date(2026, 10, 31):
        add_usage(con, "flat", day, "gen4.5", 100)
        day += timedelta(days=1)
    result = backtest(con, as_of=date(2026, 11, 1))
    assert result.rows.select("month", "origin_day", "actual", "forecast", "naive").rows() == [
        (date(2026, 8, 1), 7, 3100, 3100, 3100),
        (date(2026, 8, 1), 14, 3100, 3100, 3100),
        (date(2026, 8, 1), 21, 3100, 3100, 3100),
        (date(2026, 9, 1), 7, 3000, 3000, 3000),
        (date(2026, 9, 1), 14, 3000, 3000, 3000),
        (date(2026, 9, 1), 21, 3000, 3000, 3000),
        (date(2026, 10, 1), 7, 3100, 3100, 3100),
        (date(2026, 10, 1), 14, 3100, 3100, 3100),
        (date(2026, 10, 1), 21, 3100, 3100, 3100),
    ]
    assert (result.mape_forecast, result.mape_naive) == (0.0, 0.0)


def test_partial_months_and_today_are_left_out(tmp_path):
    con = new_db(tmp_path / "b.duckdb")
    add_usage(con, "x", date(2026, 9, 2), "gen4.5", 50)  # September starts late: left out
    add_usage(con, "x", date(2026, 10, 31), "gen4.5", 50)
    add_usage(con, "x", date(2026, 11, 1), "gen4.5", 50)  # "today": October is whole
    rows = backtest(con).rows
    assert rows["month"].unique().to_list() == [date(2026, 10, 1)]


@pytest.mark.integration
def test_method_beats_naive_baseline_on_sandbox_history(sandbox, tmp_db):
    run_cycle_sync(settings_for(sandbox, tmp_db), clock=SANDBOX_CLOCK)
    with connect_reader(tmp_db) as con:
        result = backtest(con)
    # 3 orgs x September and October (history starts 26 Aug) x days 7, 14, 21.
    assert result.rows.height == 18
    assert result.mape_forecast < result.mape_naive
    print(f"MAPE forecast {result.mape_forecast:.2%} naive {result.mape_naive:.2%}")
