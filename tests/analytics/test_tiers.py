"""Tier detection and progress on hand-written snapshots and the repo's tier table."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from analytics.tiers import detect_tier, tier_progress
from analytics.tiertable import load_tiers
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
