"""The month-end forecast, run-out and cap-bound dates on hand-made histories."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from runway_costs.analytics.forecast import DailyModel, forecast_org, month_end
from runway_costs.core.config import Settings
from tests.analytics.conftest import add_run, add_snapshot, add_usage, new_db

SUNDAY = date(2026, 11, 15)


def weekly_history(days: int = 56) -> pl.DataFrame:
    """Mon-Fri 120 credits, Sat-Sun 40, for ``days`` days ending Sunday 15 November."""
    dates = [SUNDAY - timedelta(days=i) for i in range(days - 1, -1, -1)]
    return pl.DataFrame({"date": dates, "credits": [120 if d.weekday() < 5 else 40 for d in dates]})


def test_weekday_pattern_carries_into_the_rest_of_the_month():
    me = month_end(weekly_history(), datetime(2026, 11, 16))
    # 1-15 Nov: 10 weekdays and 5 weekend days = 1,400; 16-30 Nov: 11 weekdays and 4
    # weekend days = 1,480. (The naive baseline would say 1,400 / 15 * 30 = 2,800.)
    assert me.month_to_date == 1400
    assert me.mid == 2880
    assert me.low <= 2880 <= me.high


def test_today_partial_is_kept_and_the_rest_of_the_day_forecast():
    history = pl.concat(
        [weekly_history(), pl.DataFrame({"date": [date(2026, 11, 16)], "credits": [100]})]
    )
    me = month_end(history, datetime(2026, 11, 16, 12))
    # Monday so far 100, half a Monday (60) still to come, then 17-30 Nov = 1,480 - 120.
    assert me.month_to_date == 1500
    assert me.mid == 1400 + 100 + 60 + 1360


def test_trend_is_followed_and_damped():
    values = np.array([100 + 10 * t for t in range(56)], dtype=float)
    model = DailyModel.fit(values, SUNDAY)
    assert [round(f, 9) for f in model.factors] == [1.0] * 7
    assert round(model.slope, 6) == 10.0
    assert round(model.level, 6) == 650.0  # the last day's value
    # 650 + 10 * 0.9, then 650 + 10 * (0.9 + 0.81)
    assert [round(v, 6) for v in model.predict(date(2026, 11, 16), 2)] == [659.0, 667.1]


def test_flat_noise_has_no_trend():
    rng = np.random.default_rng(3)
    values = 1000 * rng.lognormal(0, 0.2, 56)
    assert DailyModel.fit(values, SUNDAY).slope == 0.0


def test_runout_and_cap_bound_dates(tmp_path):
    con = new_db(tmp_path / "f.duckdb")
    for i in range(56):  # 100 credits every day, 21 Sep .. 15 Nov
        add_usage(con, "acme", SUNDAY - timedelta(days=i), "gen4.5", 100)
    # Observed every evening 9-15 Nov; top-ups of 1,000 on 10 Nov and 200 on 15 Nov.
    for day, balance in [(9, 400), (10, 1300), (11, 1200), (12, 1100), (13, 1000), (14, 900)]:
        add_snapshot(con, "acme", datetime(2026, 11, day, 23), balance, cap=2000)
        add_run(con, "acme", datetime(2026, 11, day, 23, 30))
    add_snapshot(con, "acme", datetime(2026, 11, 15, 23), 1000, cap=2000)
    add_run(con, "acme", datetime(2026, 11, 15, 23, 30))

    fc = forecast_org(con, Settings(), "acme", datetime(2026, 11, 16))
    assert (fc.balance_credits, fc.cap_credits) == (1000, 2000)
    assert fc.purchases_30d_credits == 1200
    assert (fc.spend_mtd_credits, fc.spend_30d_credits, fc.daily_rate_credits) == (1500, 2900, 100)
    me = fc.month_end
    assert (me.low, me.mid, me.high) == (3000, 3000, 3000)
    # 1,000 credits at 100 a day last through 25 Nov.
    assert fc.runout_date == date(2026, 11, 25)
    # Then 100 a day must be bought: 1,200 already bought in the window + 9 days * 100
    # passes 2,000 on 4 Dec (the 10 Nov top-up leaves the window only on 10 Dec).
    assert fc.cap_bound_date == date(2026, 12, 4)
    assert fc.cap_peak_30d_credits == 2600  # window ending 9 Dec: 1,200 + 14 * 100
    out = fc.to_json()
    assert out["month_end_forecast"] == {"low": 3000, "mid": 3000, "high": 3000}
    assert out["runout_date"] == "2026-11-25"
    assert out["cap_bound_date"] == "2026-12-04"
    assert out["as_of"] == "2026-11-16T00:00:00Z"
    assert out["balance_usd"] == 10.0
    assert fc.daily["credits_mid"][:3].to_list() == [100.0, 100.0, 100.0]


def test_no_balance_means_no_dates(tmp_path):
    con = new_db(tmp_path / "f.duckdb")
    add_usage(con, "acme", date(2026, 11, 14), "gen4.5", 100)
    fc = forecast_org(con, Settings(), "acme", datetime(2026, 11, 16))
    assert (fc.balance_credits, fc.runout_date, fc.cap_bound_date) == (None, None, None)
    assert fc.to_json()["cap_bound_date"] is None


def test_medians_by_weekday_match_hand_values_including_even_counts_and_missing_days():
    from runway_costs.analytics.forecast import _medians_by_weekday

    values = np.array([5.0, 1.0, 3.0, 2.0, 8.0, 4.0, 7.0])
    weekdays = np.array([0, 0, 0, 2, 2, 2, 2])
    # Monday: median of 1, 3, 5 = 3; Wednesday: median of 2, 4, 7, 8 = (4 + 7) / 2 = 5.5;
    # other weekdays have no value and get 1.0.
    assert _medians_by_weekday(values, weekdays).tolist() == [3.0, 1.0, 5.5, 1.0, 1.0, 1.0, 1.0]


def test_sparse_spend_has_no_weekday_pattern_and_a_finite_forecast():
    # 500 credits every tenth day over 8 weeks (21 Sep, 1, 11, 21, 31 Oct, 10 Nov): every
    # weekday's median ratio to its 7-day mean is 0, so
    # no weekday pattern can be told (this used to divide by a zero mean: NaN, then a
    # crash). The level is the mean, 6 x 500 / 56 a day, with no trend (most pairs of
    # days are both zero).
    values = np.zeros(56)
    values[::10] = 500.0
    model = DailyModel.fit(values, SUNDAY)
    assert model.factors == (1.0,) * 7
    assert model.slope == 0.0
    assert round(model.level, 6) == round(3000 / 56, 6)
    dates = [SUNDAY - timedelta(days=55 - i) for i in range(56)]
    history = pl.DataFrame({"date": dates, "credits": [int(v) for v in values]})
    me = month_end(history, datetime(2026, 11, 16))
    # Index 50 is 10 Nov: 500 so far this month; 16-30 Nov: 15 x 3000 / 56 = 803.6 to come.
    assert me.month_to_date == 500
    assert me.mid == 1304
    assert me.low <= me.mid <= me.high
