"""Figures derived from "bought, last 30 days" say when that figure is unknown or partial."""

from __future__ import annotations

from datetime import datetime

from runway_costs.analytics.purchases import PurchasesWindow


def test_whole_window_gives_the_bare_figure():
    window = PurchasesWindow.of(30, datetime(2026, 10, 26), datetime(2026, 10, 1))
    assert window.headroom_text(260_000) == "260,000"
    assert window.assumption is None


def test_partial_window_is_an_upper_bound_and_says_since_when():
    window = PurchasesWindow.of(3, datetime(2026, 11, 22), datetime(2026, 11, 21, 9))
    assert window.headroom_text(258_000) == "at most 258,000"
    assert window.assumption == (
        "purchases before 2026-11-22 00:00 UTC are unknown and counted as none, "
        "so this is a best case"
    )


def test_unknown_window_says_why():
    window = PurchasesWindow.of(0, None, datetime(2026, 11, 24, 12))
    assert window.headroom_text(260_000) == "at most 260,000"
    assert window.assumption == (
        "purchases in the last 30 days are unknown (balances collected only since "
        "2026-11-24 12:00 UTC): counted as none, so this is a best case"
    )
