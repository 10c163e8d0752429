"""Spend measures on the hand-written acme/beta history (see conftest.build_acme)."""

from __future__ import annotations

from datetime import date

from runway_costs.analytics.spend import (
    spend_daily,
    spend_daily_by_model,
    spend_monthly,
    spend_summary,
    top_models,
)


def test_daily_spend_is_zero_filled_with_usd(acme_db):
    frame = spend_daily(acme_db, ["acme", "beta"], date(2026, 11, 1), date(2026, 11, 4))
    assert frame.rows() == [
        ("acme", date(2026, 11, 1), 300, 3.0),
        ("acme", date(2026, 11, 2), 150, 1.5),
        ("acme", date(2026, 11, 3), 380, 3.8),
        ("acme", date(2026, 11, 4), 0, 0.0),
        ("beta", date(2026, 11, 1), 0, 0.0),
        ("beta", date(2026, 11, 2), 0, 0.0),
        ("beta", date(2026, 11, 3), 10, 0.1),
        ("beta", date(2026, 11, 4), 0, 0.0),
    ]


def test_daily_by_model_keeps_negative_net_rows(acme_db):
    frame = spend_daily_by_model(acme_db, ["acme"], date(2026, 11, 3), date(2026, 11, 3))
    assert frame.select("model", "credits", "usd").rows() == [
        ("gen4.5", -20, -0.2),
        ("veo3.1", 400, 4.0),
    ]


def test_monthly_totals_per_org_and_model(acme_db):
    frame = spend_monthly(acme_db, None, date(2026, 10, 1), date(2026, 11, 30))
    assert frame.rows() == [
        ("acme", date(2026, 10, 1), 1070, 10.7),
        ("acme", date(2026, 11, 1), 880, 8.8),
        ("beta", date(2026, 11, 1), 10, 0.1),
    ]
    by_model = spend_monthly(
        acme_db, ["acme"], date(2026, 11, 1), date(2026, 11, 30), by_model=True
    )
    assert by_model.select("model", "credits").rows() == [("gen4.5", 280), ("veo3.1", 600)]


def test_summary_today_mtd_and_rolling_30_days(acme_db):
    frame = spend_summary(acme_db, date(2026, 11, 5), ["acme", "beta", "ghost"])
    assert frame.select(
        "org", "today_credits", "mtd_credits", "rolling_30d_credits", "rolling_30d_usd"
    ).rows() == [
        ("acme", 50, 880, 1950, 19.5),
        ("beta", 0, 10, 10, 0.1),
        ("ghost", 0, 0, 0, 0.0),
    ]
    # 10-15 falls out of the rolling window on 11-14: 1950 - 1000 - 50 (none on 11-14).
    later = spend_summary(acme_db, date(2026, 11, 14), ["acme"])
    assert later.select("today_credits", "mtd_credits", "rolling_30d_credits").row(0) == (
        0,
        880,
        950,
    )


def test_summary_by_model(acme_db):
    frame = spend_summary(acme_db, date(2026, 11, 5), ["acme"], by_model=True)
    assert frame.select("model", "today_credits", "mtd_credits", "rolling_30d_credits").rows() == [
        ("gen4.5", 50, 280, 350),
        ("veo3.1", 0, 600, 1600),
    ]


def test_top_models_rank_and_share(acme_db):
    frame = top_models(acme_db, date(2026, 10, 1), date(2026, 11, 5), ["acme"], n=1)
    assert frame.select("org", "rank", "model", "credits", "usd").rows() == [
        ("acme", 1, "veo3.1", 1600, 16.0)
    ]
    assert round(frame["share"][0], 4) == 0.8205  # 1600 / 1950
