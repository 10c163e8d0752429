"""Tier detection and progress on hand-written snapshots and the repo's tier table."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from runway_costs.analytics.tiers import detect_tier, tier_progress, tier_progress_many
from runway_costs.analytics.tiertable import load_tiers
from runway_costs.collector.store import rebuild_model_daily
from runway_costs.core.config import Settings
from runway_costs.dashboard import views
from tests.analytics.conftest import add_model, add_snapshot, add_usage, new_db


def test_tier_from_cap_then_progress_toward_the_next(tmp_path):
    con = new_db(tmp_path / "t.duckdb")
    add_snapshot(con, "acme", datetime(2026, 11, 1), 5000, cap=10_000)
    add_snapshot(con, "acme", datetime(2026, 11, 2), 9000, cap=50_000)  # became tier 2
    add_snapshot(con, "acme", datetime(2026, 11, 3), 8000, cap=50_000)
    add_usage(con, "acme", date(2026, 11, 2), "gen4.5", 3000)
    add_usage(con, "acme", date(2026, 11, 4), "gen4.5", 1000)  # after as_of: not counted
    progress = tier_progress(con, load_tiers(), datetime(2026, 11, 5, 12), "acme")
    assert (progress.tier, progress.matched_by, progress.cap_credits) == (2, "cap", 50_000)
    # Tier 3 needs 7 days at tier 2 and USD 100 spent.
    assert (progress.next_tier, progress.next_unlock_days) == (3, 7)
    assert progress.next_unlock_spend_usd == 100
    assert progress.next_cap_credits == 200_000
    assert progress.days_at_tier == 3.5  # since 11-02 00:00
    assert progress.since_first_snapshot is False
    assert progress.spend_usd == 40.0  # 3,000 credits
    assert progress.days_progress == 0.5
    assert progress.spend_progress == 0.4
    assert progress.eligible is False


def test_tier_from_limits_when_the_cap_is_not_in_the_table(tmp_path):
    con = new_db(tmp_path / "t.duckdb")
    add_snapshot(con, "odd", datetime(2026, 11, 1), 100, cap=12_345)
    add_model(con, "odd", datetime(2026, 11, 1), "gen4.5", 0, 1500, conc=5)
    add_model(con, "odd", datetime(2026, 11, 1), "veo3.1", 0, 1000, conc=5)
    progress = tier_progress(con, load_tiers(), datetime(2026, 11, 2), "odd")
    assert (progress.tier, progress.matched_by, progress.next_tier) == (3, "limits", 4)
    assert progress.since_first_snapshot is True
    assert progress.days_at_tier == 1.0


def test_unknown_tier_and_top_tier():
    table = load_tiers()
    empty = pl.DataFrame(
        schema={"max_concurrent_generations": pl.Int64, "max_daily_generations": pl.Int64}
    )
    assert detect_tier(table, 777, empty) == (None, None)
    assert detect_tier(table, 10_000_000, empty) == (5, "cap")


def test_no_snapshot_means_no_tier(tmp_path):
    con = new_db(tmp_path / "t.duckdb")
    progress = tier_progress(con, load_tiers(), datetime(2026, 11, 2), "nobody")
    assert (progress.tier, progress.next_tier, progress.days_progress) == (None, None, None)
    assert progress.spend_usd == 0.0


def test_several_orgs_at_once_in_the_order_asked(tmp_path):
    """One call for three orgs gives what three single-org calls give, in the asked order."""
    con = new_db(tmp_path / "t.duckdb")
    add_snapshot(con, "acme", datetime(2026, 11, 1), 5000, cap=10_000)
    add_snapshot(con, "acme", datetime(2026, 11, 2), 9000, cap=50_000)
    add_usage(con, "acme", date(2026, 11, 2), "gen4.5", 3000)
    add_snapshot(con, "odd", datetime(2026, 11, 1), 100, cap=12_345)
    add_model(con, "odd", datetime(2026, 11, 1), "gen4.5", 0, 1500, conc=5)
    add_model(con, "odd", datetime(2026, 11, 1), "veo3.1", 0, 1000, conc=5)
    add_model(con, "odd", datetime(2026, 11, 1), "kling", 0, 60, conc=1)  # tier 1's ranges
    many = tier_progress_many(
        con, load_tiers(), datetime(2026, 11, 5, 12), ["odd", "nobody", "acme"]
    )
    assert [p.org for p in many] == ["odd", "nobody", "acme"]
    odd, nobody, acme = many
    assert (odd.tier, odd.matched_by, odd.days_at_tier) == (3, "limits", 4.5)  # 2 fits beat 1
    assert (nobody.tier, nobody.matched_by, nobody.cap_credits) == (None, None, None)
    assert (acme.tier, acme.matched_by, acme.days_at_tier, acme.spend_usd) == (2, "cap", 3.5, 30.0)
    assert tier_progress_many(con, load_tiers(), datetime(2026, 11, 5), []) == []


def test_limits_rows_after_as_of_do_not_count(tmp_path):
    """Limits that changed later on the same day (here to tier 4's) are not yet in force."""
    con = new_db(tmp_path / "t.duckdb")
    add_snapshot(con, "odd", datetime(2026, 11, 1), 100, cap=12_345)
    add_model(con, "odd", datetime(2026, 11, 1), "gen4.5", 0, 1500, conc=5)
    add_model(con, "odd", datetime(2026, 11, 2, 15), "gen4.5", 0, 6000, conc=10)
    table = load_tiers()
    assert tier_progress(con, table, datetime(2026, 11, 2, 12), "odd").tier == 3
    assert tier_progress(con, table, datetime(2026, 11, 2, 16), "odd").tier == 4
    rebuild_model_daily(con)  # rows written by hand: derive the day rollup as the collector would
    con.close()
    with views.reader(tmp_path / "t.duckdb") as ro:
        scope = views.Scope(("odd",))
        noon = views.limits(ro, Settings(), scope, date(2026, 11, 1), datetime(2026, 11, 2, 12))
        later = views.limits(ro, Settings(), scope, date(2026, 11, 1), datetime(2026, 11, 2, 16))
    assert noon.tiers["tier"].to_list() == [3]
    assert later.tiers["tier"].to_list() == [4]
    # The day rows still show the day's end (the dashboard reads at the last collection).
    assert noon.current["max_daily_generations"].to_list() == [6000]


def test_a_model_that_left_the_tier_is_not_matched(tmp_path):
    """Its latest row has NULL limits: the older limits must not be used for matching."""
    con = new_db(tmp_path / "t.duckdb")
    add_snapshot(con, "odd", datetime(2026, 11, 1), 100, cap=12_345)
    add_model(con, "odd", datetime(2026, 11, 1), "gen4.5", 0, 1500, conc=5)
    add_model(con, "odd", datetime(2026, 11, 1), "veo3.1", 0, 60, conc=1)
    add_model(con, "odd", datetime(2026, 11, 1), "kling", 0, 70, conc=1)
    con.execute(
        "INSERT INTO model_snapshots VALUES ('odd', '2026-11-02 01:00', 'kling', NULL, NULL, 0)"
    )
    # Tier 3 fits gen4.5 and gen4, tier 1 only veo3.1. Were kling's older limits used, tier 1
    # would tie at 2 and win (it comes first in the table).
    add_model(con, "odd", datetime(2026, 11, 1), "gen4", 0, 1200, conc=5)
    progress = tier_progress(con, load_tiers(), datetime(2026, 11, 2, 12), "odd")
    assert (progress.tier, progress.matched_by) == (3, "limits")
    rebuild_model_daily(con)  # rows written by hand: derive the day rollup as the collector would
    con.close()
    with views.reader(tmp_path / "t.duckdb") as ro:
        data = views.limits(
            ro, Settings(), views.Scope(("odd",)), date(2026, 11, 1), datetime(2026, 11, 3, 12)
        )
    assert data.tiers["tier"].to_list() == [3]


@pytest.mark.parametrize("rollup", ["model_daily", "dropped"])
def test_limits_days_from_the_rollup_or_from_snapshots_before_it_existed(tmp_path, rollup):
    """A database not written since model_daily was added still shows the same days."""
    con = new_db(tmp_path / "t.duckdb")
    add_snapshot(con, "odd", datetime(2026, 11, 1), 100, cap=12_345)
    add_model(con, "odd", datetime(2026, 11, 1), "gen4.5", 10, 1500, conc=5)
    add_model(con, "odd", datetime(2026, 11, 1, 18), "gen4.5", 90, 1500, conc=5)
    con.execute(  # left the tier on 11-02
        "INSERT INTO model_snapshots VALUES ('odd', '2026-11-02 06:00', 'gen4.5', NULL, NULL, 40)"
    )
    rebuild_model_daily(con)
    if rollup == "dropped":
        con.execute("DROP TABLE model_daily")
    con.close()
    with views.reader(tmp_path / "t.duckdb") as ro:
        data = views.limits(
            ro, Settings(), views.Scope(("odd",)), date(2026, 11, 1), datetime(2026, 11, 2, 12)
        )
    now = data.current.row(0, named=True)
    assert (now["daily_generations"], now["max_daily_generations"], now["peak_7d"]) == (
        40,
        None,
        90,
    )
    # 11-01: peak 90 of 1,500; 11-02: no limit, so no share
    assert data.history.select("date", "used").rows() == [
        (date(2026, 11, 1), 0.06),
        (date(2026, 11, 2), None),
    ]
