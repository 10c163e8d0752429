"""Purchases reconstructed from balances and spend, and 30-day cap headroom, by hand."""

from __future__ import annotations

from datetime import date, datetime

from analytics.purchases import org_state, purchase_headroom, purchases_daily


def test_purchases_are_balance_rises_spending_does_not_explain(acme_db):
    frame = purchases_daily(acme_db, ["acme"], date(2026, 10, 31), date(2026, 11, 5))
    assert frame.select("date", "balance_end", "spend", "purchases").rows() == [
        # 10-30 was never observed, so 10-31's purchases are unknown.
        (date(2026, 10, 31), 5000, 70, None),
        (date(2026, 11, 1), 4700, 300, 0),  # 4700 - 5000 + 300
        (date(2026, 11, 2), 6550, 150, 2000),  # 6550 - 4700 + 150
        (date(2026, 11, 3), 6170, 380, 0),  # 6170 - 6550 + 380
        (date(2026, 11, 4), 6170, 0, 0),  # no change row, but observed by a run
        (date(2026, 11, 5), 9120, 50, 3000),  # 9120 - 6170 + 50
    ]


def test_unobserved_days_have_unknown_balance(acme_db):
    frame = purchases_daily(acme_db, ["acme"], date(2026, 11, 6), date(2026, 11, 7))
    assert frame.select("balance_end", "purchases").rows() == [(None, None), (None, None)]


def test_headroom_under_the_30_day_cap(acme_db):
    frame = purchase_headroom(acme_db, date(2026, 11, 5), ["acme"])
    row = frame.row(0, named=True)
    assert row["balance_credits"] == 9120
    assert row["cap_credits"] == 10_000
    assert row["purchases_30d_credits"] == 5000
    assert row["headroom_credits"] == 5000
    assert row["cap_used_ratio"] == 0.5
    assert row["observed_days"] == 5
    assert row["headroom_usd"] == 50.0


def test_org_state_is_the_step_value_at_a_time(acme_db):
    frame = org_state(acme_db, datetime(2026, 11, 2, 11, 59), ["acme", "beta"])
    assert frame.select("org", "balance_credits", "cap_credits").rows() == [("acme", 4700, 10_000)]
