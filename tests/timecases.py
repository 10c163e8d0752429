"""The instants every date-dependent test runs at: where calendars bite.

Month ends (30 and 31 days) at their last minute, a first of the month at midnight, the
end of February in a common and a leap year, New Year's Eve into New Year's Day, and an
ordinary mid-month weekday. Each case carries its calendar facts written out by hand, so
the tests never derive an expectation with the code they check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pytest


@dataclass(frozen=True)
class Instant:
    label: str
    at: datetime  # naive UTC
    days_in_month: int
    backfill_start: date  # at.date() - 90 days: the oldest day the API serves
    window_start: date  # at.date() - 29 days: first day of the rolling 30-day window

    @property
    def minutes_elapsed(self) -> int:
        """Minutes of the UTC day gone by at ``at``."""
        return self.at.hour * 60 + self.at.minute


INSTANTS = (
    Instant("30-day month, last minute", datetime(2027, 4, 30, 23, 59), 30,
            date(2027, 1, 30), date(2027, 4, 1)),
    Instant("31-day month, last minute", datetime(2027, 1, 31, 23, 59), 31,
            date(2026, 11, 2), date(2027, 1, 2)),
    Instant("first of the month, midnight", datetime(2027, 3, 1, 0, 0), 31,
            date(2026, 12, 1), date(2027, 1, 31)),
    Instant("28 February 2027", datetime(2027, 2, 28, 12, 0), 28,
            date(2026, 11, 30), date(2027, 1, 30)),
    Instant("28 February 2028 (leap year), last minute", datetime(2028, 2, 28, 23, 59), 29,
            date(2027, 11, 30), date(2028, 1, 30)),
    Instant("29 February 2028", datetime(2028, 2, 29, 12, 0), 29,
            date(2027, 12, 1), date(2028, 1, 31)),
    Instant("New Year's Eve, last minute", datetime(2026, 12, 31, 23, 59), 31,
            date(2026, 10, 2), date(2026, 12, 2)),
    Instant("New Year's Day, midnight", datetime(2027, 1, 1, 0, 0), 31,
            date(2026, 10, 3), date(2026, 12, 3)),
    Instant("mid-month Wednesday", datetime(2027, 3, 17, 10, 0), 31,
            date(2026, 12, 17), date(2027, 2, 16)),
)  # fmt: skip


def each_instant() -> pytest.MarkDecorator:
    """``@each_instant()``: run the test once per instant, named by its label."""
    return pytest.mark.parametrize("instant", INSTANTS, ids=[i.label for i in INSTANTS])
