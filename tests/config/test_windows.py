"""The rolling 30-day window has one home: ``core.windows``."""

from __future__ import annotations

from datetime import date

from runway_costs.core.windows import PURCHASE_WINDOW_DAYS, window_start


def test_window_ends_on_as_of_inclusive() -> None:
    assert PURCHASE_WINDOW_DAYS == 30
    assert window_start(date(2026, 11, 30)) == date(2026, 11, 1)
    assert window_start(date(2026, 3, 1)) == date(2026, 1, 31)  # across February
    assert window_start(date(2026, 11, 30), days=1) == date(2026, 11, 30)
    assert (date(2026, 11, 30) - window_start(date(2026, 11, 30))).days + 1 == 30
