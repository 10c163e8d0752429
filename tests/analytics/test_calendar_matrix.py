"""Date arithmetic at the instants of ``tests.timecases``: month lengths, leap years, the
last minute of a month and the first of the next, the 90-day backfill and 30-day window."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from runway_costs.analytics.forecast import month_end
from runway_costs.collector.cycle import plan_usage
from tests.timecases import Instant, each_instant

DAILY = 1440  # one credit per minute: today's partial figure is the minutes elapsed


def flat_history(instant: Instant) -> pl.DataFrame:
    """Ten weeks of 1,440 credits a day before ``instant`` and today's partial figure."""
    today = instant.at.date()
    days = [today - timedelta(days=n) for n in range(70, 0, -1)]
    return pl.DataFrame(
        {
            "date": [*days, today],
            "credits": [DAILY] * len(days) + [instant.minutes_elapsed],
        },
        schema={"date": pl.Date, "credits": pl.Int64},
    )


@each_instant()
def test_month_end_of_a_flat_history_is_a_whole_month(instant: Instant) -> None:
    """Spending 1,440 a day, the month ends at 1,440 x its length (28, 29, 30 or 31 days),
    and month-to-date is the whole days of this month plus the minutes elapsed today."""
    got = month_end(flat_history(instant), instant.at)
    assert got.month_to_date == (instant.at.day - 1) * DAILY + instant.minutes_elapsed
    assert got.mid == instant.days_in_month * DAILY
    assert got.low == got.mid == got.high  # no noise: no spread


@each_instant()
def test_first_backfill_reaches_back_90_days_and_includes_today(instant: Instant) -> None:
    today = instant.at.date()
    assert plan_usage(today, None, 3) == (instant.backfill_start, today + timedelta(days=1))
    # a later cycle re-reads the last three days, across the month or year boundary
    assert plan_usage(today, today, 3) == (today - timedelta(days=2), today + timedelta(days=1))


def test_the_matrix_covers_the_cases_the_calendar_is_hard_on() -> None:
    """The matrix itself: the edges the product promises to handle are all in it."""
    from tests.timecases import INSTANTS

    ats = [i.at for i in INSTANTS]
    assert any(a.day == 30 and a.month == 4 and (a.hour, a.minute) == (23, 59) for a in ats)
    assert any(a.day == 31 and (a.hour, a.minute) == (23, 59) for a in ats)
    assert any(a.day == 1 and (a.hour, a.minute) == (0, 0) for a in ats)
    assert {date(2027, 2, 28), date(2028, 2, 28), date(2028, 2, 29)} <= {a.date() for a in ats}
    assert {date(2026, 12, 31), date(2027, 1, 1)} <= {a.date() for a in ats}
    assert any(10 <= a.day <= 20 and a.weekday() < 5 for a in ats)
