"""What time it is, as an input.

Every component that needs "now" takes a ``Clock`` (or an ``as_of``) from its caller, so a
test, a backfill or a what-if runs at any instant it chooses. The system clock is read in
exactly one place, ``system_clock`` below, and only the edges pass it in: the CLI
(``cli.common.clock_from``), the scheduler (``collector.scheduler.run_scheduler``), the
dashboard's entry (``dashboard.context.now``) and the sandbox server when not frozen.

Convention: naive UTC datetimes everywhere (DuckDB stores them so).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

Clock = Callable[[], datetime]

# Pins the clock of a whole process (CLI, scheduler, dashboard server, demo): tests and
# reproducible reports set it; a real deployment leaves it unset.
NOW_ENV = "RUNWAY_COSTS_NOW"

# The range of instants the product accepts from a user (--as-of, --now): wide enough for
# any real use, narrow enough that date arithmetic a year either side cannot overflow.
EARLIEST = datetime(1970, 1, 1)
LATEST = datetime(9000, 1, 1)


def system_clock() -> datetime:
    """Now, naive UTC. The product's only read of the system clock."""
    return datetime.now(UTC).replace(tzinfo=None)


def fixed_clock(at: datetime) -> Clock:
    """A clock that always says ``at`` (naive UTC; an aware value is converted)."""
    instant = to_naive_utc(at)
    return lambda: instant


def to_naive_utc(at: datetime) -> datetime:
    """``at`` in the project's convention: naive means UTC already, aware is converted."""
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


class ClockError(ValueError):
    """A pinned instant that is not an ISO timestamp or is out of range."""


def parse_instant(value: str, what: str) -> datetime:
    """An ISO date or timestamp (``Z`` or an offset allowed) as naive UTC, within
    [EARLIEST, LATEST]; anything else raises ClockError naming ``what``."""
    try:
        parsed = to_naive_utc(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        raise ClockError(
            f"{what}: {value!r} is not an ISO date or time (e.g. 2026-11-24T12:00)"
        ) from None
    if not EARLIEST <= parsed <= LATEST:
        raise ClockError(
            f"{what}: {value!r} is out of range ({EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d})"
        )
    return parsed


def clock_from_env(env: Mapping[str, str] | None = None) -> Clock:
    """The edge's clock: pinned by ``RUNWAY_COSTS_NOW`` when set, else the system clock."""
    value = (os.environ if env is None else env).get(NOW_ENV, "").strip()
    return fixed_clock(parse_instant(value, NOW_ENV)) if value else system_clock
