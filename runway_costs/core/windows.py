"""The rolling 30-day window: the API's purchase cap counts credits bought over it, and
"last 30 days" figures (spend, purchases) use the same span. And how far back the API
serves usage.

Windows are inclusive UTC dates: the window ending on ``as_of`` is
``window_start(as_of) .. as_of``, ``PURCHASE_WINDOW_DAYS`` days in all.
"""

from __future__ import annotations

from datetime import date, timedelta

__all__ = ["PURCHASE_WINDOW_DAYS", "USAGE_HISTORY_DAYS", "window_start"]

PURCHASE_WINDOW_DAYS = 30  # the API's rolling purchase-cap window (maxMonthlyCreditSpend)
# How far back the usage endpoint serves (and revises) a day: the collector's backfill and
# the oldest day a usage window can touch (collector.cycle, collector.archive).
USAGE_HISTORY_DAYS = 90


def window_start(as_of: date, days: int = PURCHASE_WINDOW_DAYS) -> date:
    """First day of the rolling ``days``-day window ending on ``as_of``, both inclusive."""
    return as_of - timedelta(days=days - 1)
