"""Purchases reconstructed from balances and spend, and 30-day cap headroom, by hand."""

from __future__ import annotations

from datetime import date, datetime

from runway_costs.analytics.purchases import (
    PurchasesWindow,
    describe_purchases,
    org_state,
    purchase_headroom,
    purchases_daily,
)
from tests.analytics.conftest import add_run, add_snapshot, new_db


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
    # Runs from 10-31 23:00: 10-31's own purchases need 10-30's balance, so 11-01 is first.
    assert row["purchases_observed_since"] == datetime(2026, 11, 1)
    assert row["balances_observed_since"] == datetime(2026, 10, 31, 23)


def test_a_partial_window_says_since_when_never_a_bare_zero():
    since = datetime(2026, 11, 25)
    began = datetime(2026, 11, 24, 2, 11)
    assert (
        describe_purchases(0, 1, since, began)
        == "0 since 2026-11-25 00:00 UTC (1 of 30 days known)"
    )
    assert describe_purchases(1200, 30, datetime(2026, 10, 27), began) == "1,200"
    assert describe_purchases(0, 0, None, began) == (
        "unknown: balances collected only since 2026-11-24 02:11 UTC"
    )
    assert describe_purchases(0, 0, None, None) == "unknown: no balance collected yet"
    assert PurchasesWindow.of(30, datetime(2026, 10, 27)).text == "in the last 30 days"
    assert (
        PurchasesWindow.of(2, date(2026, 11, 25)).text
        == "since 2026-11-25 00:00 UTC (2 of 30 days known)"
    )


def test_the_window_is_a_value_not_a_sentence_to_parse():
    began = datetime(2026, 11, 24, 2, 11)
    full = PurchasesWindow.of(30, datetime(2026, 10, 27), began)
    assert (full.known, full.complete, full.reason) == (True, True, None)
    part = PurchasesWindow.of(2, date(2026, 11, 25), began)
    assert (part.known, part.complete, part.days) == (True, False, 2)
    assert part.since == datetime(2026, 11, 25)
    none = PurchasesWindow.of(0, None, began)
    assert (none.known, none.complete) == (False, False)
    assert none.reason == "balances collected only since 2026-11-24 02:11 UTC"
    assert none.text == f"unknown: {none.reason}"
    assert PurchasesWindow.of(0, None).reason == "no balance collected yet"


def test_headroom_right_after_the_first_collection(tmp_path):
    con = new_db(tmp_path / "first.duckdb")
    add_snapshot(con, "acme", datetime(2026, 11, 24, 2, 10), 7000)
    add_run(con, "acme", datetime(2026, 11, 24, 2, 11))
    row = purchase_headroom(con, date(2026, 11, 24), ["acme"]).row(0, named=True)
    assert (row["purchases_30d_credits"], row["observed_days"]) == (0, 0)
    assert row["purchases_observed_since"] is None
    assert row["balances_observed_since"] == datetime(2026, 11, 24, 2, 11)


def test_org_state_is_the_step_value_at_a_time(acme_db):
    frame = org_state(acme_db, datetime(2026, 11, 2, 11, 59), ["acme", "beta"])
    assert frame.select("org", "balance_credits", "cap_credits").rows() == [("acme", 4700, 10_000)]
