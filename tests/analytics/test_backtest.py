"""The backtest: structure by hand, the method beating the naive baseline on the
sandbox's histories collected over real HTTP, and the 80% interval's coverage on the
held-back shaped histories (calibrated on the training ones only)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from typer.testing import CliRunner

from runway_costs.analytics.backtest import (
    HELD_BACK_SEEDS,
    SHAPES,
    TRAINING_SEEDS,
    backtest,
    backtest_shaped,
    calibrate_widen,
    shaped_history,
)
from runway_costs.analytics.db import connect_reader
from runway_costs.cli.main import app
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
    assert result.rows["low"].to_list() == result.rows["forecast"].to_list()  # no spread
    assert result.rows["high"].to_list() == result.rows["forecast"].to_list()
    assert result.coverage == 1.0
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
    # Before the interval was recalibrated (issue #14) this backtest scored MAPE 5.491%
    # (naive 9.12%) and its interval held 8 of 18 actuals (44%). The mid is unchanged:
    assert result.mape_forecast <= 0.05491
    # These forecasts have two to eight weeks of history; widened, and with the model's
    # spread as the floor while past origins are few, the interval holds 16 of 18 (89%).
    assert 0.75 <= result.coverage <= 0.90
    assert result.rows["covered"].sum() == 16
    per_day = result.by_origin()
    assert per_day["origin_day"].to_list() == [7, 14, 21]
    assert per_day["forecasts"].to_list() == [6, 6, 6]
    print(
        f"MAPE forecast {result.mape_forecast:.2%} naive {result.mape_naive:.2%} "
        f"coverage {result.coverage:.0%}"
    )
    # The CLI reports the same, coverage beside MAPE, overall and per origin day.
    out = CliRunner().invoke(app, ["forecast", "backtest", "--json", "--db", str(tmp_db)])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["mape_forecast"] == round(result.mape_forecast, 4)
    assert report["interval_coverage"] == round(16 / 18, 4)
    assert report["interval_nominal"] == 0.8
    assert [d["origin_day"] for d in report["by_origin_day"]] == [7, 14, 21]
    assert sum(d["interval_coverage"] * d["forecasts"] for d in report["by_origin_day"]) == (
        pytest.approx(16, abs=0.01)
    )
    first = report["forecasts"][0]
    assert first["low"] <= first["forecast"] <= first["high"]
    assert isinstance(first["covered"], bool)
    table = CliRunner().invoke(app, ["forecast", "backtest", "--db", str(tmp_db)])
    assert "80% interval: held the actual month total in 89% of them" in table.stdout


def test_shaped_histories_are_deterministic_and_shaped():
    assert set(TRAINING_SEEDS).isdisjoint(HELD_BACK_SEEDS)
    for shape in SHAPES:
        one, two = shaped_history(shape, 1), shaped_history(shape, 1)
        assert one.equals(two)
        assert not one.equals(shaped_history(shape, 2))
        assert one.height == 213 and one["date"].min() == date(2025, 1, 6)
    growth = shaped_history("growth", 1)["credits"].to_numpy()
    assert growth[-28:].sum() > 1.5 * growth[:28].sum()
    decline = shaped_history("decline", 1)["credits"].to_numpy()
    assert decline[-28:].sum() < 0.75 * decline[:28].sum()
    with pytest.raises(ValueError, match="unknown shape"):
        shaped_history("sideways", 1)
    with pytest.raises(ValueError, match="training seeds"):
        calibrate_widen(HELD_BACK_SEEDS)


def test_interval_coverage_on_held_back_shaped_histories():
    """Unwidened (as before issue #14) the interval held about 72% of the held-back
    month ends; widened by INTERVAL_WIDEN (chosen on TRAINING_SEEDS) it holds 75-90%, and
    the mid forecast is the same either way."""
    result = backtest_shaped(HELD_BACK_SEEDS)
    # 6 shapes x 6 seeds x June and July (after the fit window) x days 7, 14, 21.
    assert result.rows.height == 216
    assert 0.75 <= result.coverage <= 0.90
    assert result.mape_forecast < result.mape_naive
    assert result.mape_forecast <= 0.0887  # the mid's MAPE here before the change
    for row in result.by_origin().iter_rows(named=True):
        assert row["coverage"] >= 0.65, row
    print(result.by_origin())
