"""Rate-limit use from hand-written model snapshots (step functions)."""

from __future__ import annotations

from datetime import datetime

from runway_costs.analytics.limits import limit_use
from tests.analytics.conftest import add_model, new_db


def test_now_peaks_hours_near_limit_and_hits(tmp_path):
    con = new_db(tmp_path / "limits.duckdb")
    # gen4.5, limit 200: 180 (90%) from 10-20 until 11-01, then a busy 1 November.
    for at, gens in [
        (datetime(2026, 10, 20), 180),
        (datetime(2026, 11, 1, 0), 100),
        (datetime(2026, 11, 1, 6), 170),  # 85%: high for 3 h
        (datetime(2026, 11, 1, 9), 200),  # limit reached (hit 1), 1 h
        (datetime(2026, 11, 1, 10), 150),
        (datetime(2026, 11, 1, 12), 190),  # 95%: 2 h
        (datetime(2026, 11, 1, 14), 200),  # hit 2, 1 h
        (datetime(2026, 11, 1, 15), 50),
    ]:
        add_model(con, "acme", at, "gen4.5", gens, 200, conc=2)
    add_model(con, "acme", datetime(2026, 10, 10), "veo3.1", 10, 50, conc=1)
    con.execute(
        "INSERT INTO model_snapshots VALUES ('acme', '2026-10-30', 'kling3.0_pro', NULL, NULL, 5)"
    )
    frame = limit_use(con, datetime(2026, 11, 1, 18), ["acme"])
    rows = {r["model"]: r for r in frame.iter_rows(named=True)}
    gen = rows["gen4.5"]
    assert (gen["daily_generations"], gen["max_daily_generations"]) == (50, 200)
    assert gen["usage_ratio"] == 0.25
    assert gen["max_concurrent_generations"] == 2
    assert (gen["peak_7d"], gen["peak_30d"]) == (200, 200)
    # 7 days back is 10-25 18:00: the 90% row counts from there to 11-01 00:00 (150 h),
    # plus 3 + 1 + 2 + 1 h on 1 November. Over 30 days it counts from 10-20 (288 h).
    assert gen["hours_high_7d"] == 157.0
    assert gen["hours_high_30d"] == 295.0
    assert (gen["limit_hits_7d"], gen["limit_hits_30d"]) == (2, 2)
    assert gen["observed_at"] == datetime(2026, 11, 1, 15)

    veo = rows["veo3.1"]
    assert (veo["daily_generations"], veo["usage_ratio"], veo["peak_7d"]) == (10, 0.2, 10)
    assert (veo["hours_high_30d"], veo["limit_hits_30d"], veo["max_concurrent_generations"]) == (
        0.0,
        0,
        1,
    )
    kling = rows["kling3.0_pro"]
    assert kling["usage_ratio"] is None and kling["max_daily_generations"] is None
    assert kling["peak_30d"] == 5


def test_rows_after_as_of_are_ignored(tmp_path):
    con = new_db(tmp_path / "limits.duckdb")
    add_model(con, "acme", datetime(2026, 11, 1), "gen4.5", 190, 200)
    add_model(con, "acme", datetime(2026, 11, 3), "gen4.5", 200, 200)
    frame = limit_use(con, datetime(2026, 11, 2), ["acme"])
    assert frame.select("daily_generations", "hours_high_7d", "limit_hits_7d").row(0) == (
        190,
        24.0,
        0,
    )
