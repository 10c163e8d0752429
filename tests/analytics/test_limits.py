"""Rate-limit use from hand-written model snapshots (step functions)."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from runway_costs.analytics.limits import (
    PEAK_SHARE,
    limit_rollup_kept,
    limit_use,
    limits_by_day,
    limits_now,
    org_limit_history,
)
from runway_costs.collector.store import rebuild_model_daily
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


def _with_old_history(path, old: bool, rollup: bool):
    """gen4.5 (limit 200) and veo3.1 (limit 50); ``old`` adds rows superseded months before
    the 30-day window (hits and highs that must not count); ``rollup``: model_daily built
    as the collector keeps it, else the table is dropped (a database from before it)."""
    con = new_db(path)
    rows = [
        ("gen4.5", datetime(2026, 9, 30), 190, 200),  # last row before the window's day
        ("gen4.5", datetime(2026, 10, 2, 6), 120, 200),  # in force when the window opens
        ("gen4.5", datetime(2026, 10, 10), 200, 200),  # hit (after 120), high 24 h
        ("gen4.5", datetime(2026, 10, 11), 100, 200),
        ("gen4.5", datetime(2026, 11, 1, 6), 200, 200),  # hit (after 100), high 2 h
        ("gen4.5", datetime(2026, 11, 1, 8), 50, 200),
        ("veo3.1", datetime(2026, 9, 1), 40, 50),  # 80%: high all 30 days, no hit
    ]
    if old:
        rows += [
            ("gen4.5", datetime(2026, 6, 1), 200, 200),
            ("gen4.5", datetime(2026, 7, 1), 10, 200),
            ("gen4.5", datetime(2026, 8, 1), 200, 200),
            ("veo3.1", datetime(2026, 5, 1), 50, 50),
            ("veo3.1", datetime(2026, 5, 1, 1), 90, 100),
        ]
    for model, at, gens, lim in rows:
        add_model(con, "acme", at, model, gens, lim, conc=3)
    if rollup:
        rebuild_model_daily(con)
    else:
        con.execute("DROP TABLE model_daily")
    return con


@pytest.mark.parametrize("rollup", [True, False], ids=["model_daily", "no_model_daily"])
@pytest.mark.parametrize("old", [True, False], ids=["old_history", "window_only"])
def test_history_older_than_30_days_does_not_change_the_answer(tmp_path, old, rollup):
    con = _with_old_history(tmp_path / "old.duckdb", old, rollup)
    as_of = datetime(2026, 11, 1, 18)  # 30 days back: 10-02 18:00; 7 days: 10-25 18:00
    rows = {r["model"]: r for r in limit_use(con, as_of, ["acme"]).iter_rows(named=True)}
    gen = rows["gen4.5"]
    assert (gen["daily_generations"], gen["max_daily_generations"], gen["usage_ratio"]) == (
        50,
        200,
        0.25,
    )
    assert (gen["max_concurrent_generations"], gen["observed_at"]) == (
        3,
        datetime(2026, 11, 1, 8),
    )
    # in force from 10-25 18:00: 100 (10-11), 200, 50; from 10-02 18:00: 120 too
    assert (gen["peak_7d"], gen["peak_30d"]) == (200, 200)
    # the 190 of 09-30 ended at 10-02 06:00, before the window: only 24 h + 2 h at 80%+
    assert (gen["hours_high_7d"], gen["hours_high_30d"]) == (2.0, 26.0)
    assert (gen["limit_hits_7d"], gen["limit_hits_30d"]) == (1, 2)
    veo = rows["veo3.1"]
    assert (veo["daily_generations"], veo["max_daily_generations"], veo["usage_ratio"]) == (
        40,
        50,
        0.8,
    )
    assert (veo["peak_7d"], veo["peak_30d"], veo["observed_at"]) == (40, 40, datetime(2026, 9, 1))
    assert (veo["hours_high_7d"], veo["hours_high_30d"]) == (168.0, 720.0)
    assert (veo["limit_hits_7d"], veo["limit_hits_30d"]) == (0, 0)
    # the alert rules' cheap read: the same "now" columns
    now = limits_now(con, as_of, ["acme"])
    assert now.columns == [
        "org",
        "model",
        "daily_generations",
        "max_daily_generations",
        "usage_ratio",
        "max_concurrent_generations",
        "observed_at",
    ]
    assert now.rows() == [
        ("acme", "gen4.5", 50, 200, 0.25, 3, datetime(2026, 11, 1, 8)),
        ("acme", "veo3.1", 40, 50, 0.8, 3, datetime(2026, 9, 1)),
    ]


def test_limits_now_takes_rows_of_as_of_day_up_to_as_of(tmp_path):
    con = new_db(tmp_path / "now.duckdb")
    add_model(con, "acme", datetime(2026, 10, 31, 23), "gen4.5", 150, 200)
    add_model(con, "acme", datetime(2026, 11, 1, 9), "gen4.5", 190, 200)
    add_model(con, "acme", datetime(2026, 11, 1, 20), "gen4.5", 30, 200)  # after as_of
    add_model(con, "beta", datetime(2026, 11, 1, 9), "gen4.5", 10, 200)  # not asked for
    rebuild_model_daily(con)
    assert limits_now(con, datetime(2026, 11, 1, 12), ["acme"]).rows() == [
        ("acme", "gen4.5", 190, 200, 0.95, 2, datetime(2026, 11, 1, 9))
    ]
    assert limits_now(con, datetime(2026, 11, 1, 8), ["acme"]).rows() == [
        ("acme", "gen4.5", 150, 200, 0.75, 2, datetime(2026, 10, 31, 23))
    ]


# --- the all-organizations history from the collector's roll-up ----------------------


def old_way(con, orgs, start, as_of):
    """The history as computed before the roll-up: every (org, model) carried over every
    day (``limits_by_day``), the busiest model's share per org and day."""
    return (
        limits_by_day(con, orgs, start, as_of, all_orgs=True)
        .with_columns(used=PEAK_SHARE)
        .group_by("org", "date")
        .agg(pl.col("used").max())
        .sort("org", "date")
    )


def hand_seeded(path):
    con = new_db(path)
    # acme gen4.5, limit 200: 150 in force at 00:00 on 11-02 (above that day's own 100),
    # no row on 11-03 (carried), 210 then 120 on 11-04, no row on 11-05 (carried)
    for at, gens in [
        (datetime(2026, 10, 30, 10), 150),
        (datetime(2026, 11, 2, 9), 100),
        (datetime(2026, 11, 4, 6), 210),
        (datetime(2026, 11, 4, 20), 120),
    ]:
        add_model(con, "acme", at, "gen4.5", gens, 200)
    add_model(con, "acme", datetime(2026, 11, 3, 8), "veo3.1", 500, 0)  # limit 0: no share
    con.execute(  # limits NULL: no share
        "INSERT INTO model_snapshots VALUES ('acme', '2026-11-02 12:00', 'kling3.0_pro', "
        "NULL, NULL, 5), ('beta', '2026-11-03 10:00', 'kling3.0_pro', NULL, NULL, 7)"
    )
    add_model(con, "acme", datetime(2026, 11, 5, 3), "aleph", 90, 100)  # first row 11-05
    add_model(con, "gamma", datetime(2026, 10, 20), "gen4.5", 180, 200)  # only before
    rebuild_model_daily(con)  # model_daily and the limit roll-up, as the migration does
    return con


def test_all_orgs_history_from_the_rollup_hand_values(tmp_path):
    con = hand_seeded(tmp_path / "limits.duckdb")
    assert limit_rollup_kept(con)
    got = org_limit_history(con, ["acme", "beta", "gamma"], date(2026, 11, 2), date(2026, 11, 5))
    d = [date(2026, 11, n) for n in (2, 3, 4, 5)]
    assert got.sort("org", "date").rows() == [
        ("acme", d[0], 0.75),  # 150 at 00:00 / 200
        ("acme", d[1], 0.5),  # gen4.5 carried 100 / 200; veo3.1 limit 0, kling NULL
        ("acme", d[2], 1.05),  # 210 / 200
        ("acme", d[3], 0.9),  # aleph 90 / 100 above gen4.5's carried 120 / 200
        ("beta", d[1], None),  # no model with a limit; nothing before its first row
        ("beta", d[2], None),
        ("beta", d[3], None),
        ("gamma", d[0], 0.9),  # carried from 10-20
        ("gamma", d[1], 0.9),
        ("gamma", d[2], 0.9),
        ("gamma", d[3], 0.9),
    ]
    old = old_way(con, ["acme", "beta", "gamma"], date(2026, 11, 2), date(2026, 11, 5))
    assert got.sort("org", "date").equals(old.select("org", "date", "used"))
    # one org, and a window starting on a carried day
    one = org_limit_history(con, ["acme"], date(2026, 11, 3), date(2026, 11, 5))
    assert one.sort("date")["used"].to_list() == [0.5, 1.05, 0.9]
