"""How good is the month-end forecast? Replay it on the stored history.

For every organization and every calendar month wholly inside its stored history, the
forecast is made as it would have been at the end of days 7, 14 and 21 (only the days up
to then are visible, and no more of them than ``forecast`` itself reads), and compared
with what the month really came to. The naive baseline is month-to-date / days elapsed *
days in the month. Both are scored by mean absolute percentage error (months whose actual
total is not positive are skipped: a percentage of zero means nothing), and the forecast's
80% interval by its coverage: the share of forecasts whose interval held the actual total
(nominal 0.80), overall and per origin day.

Shaped histories: ``shaped_history(shape, seed)`` makes a deterministic synthetic daily
spend history of one of ``SHAPES`` (growth, decline, bursts, month-end crunch, a step
change, heavy noise). The interval's widening (``forecast.INTERVAL_WIDEN``) was calibrated
on ``TRAINING_SEEDS`` and is checked on ``HELD_BACK_SEEDS`` (never used to calibrate):
``backtest_shaped(seeds)`` scores the method on every shape for those seeds.

Public API:

- ``backtest(con, orgs=None, origins=(7, 14, 21), as_of=None) -> Backtest``
- ``backtest_history(history, org, last, origins=(7, 14, 21), widen=None) -> Backtest``
  for one (date, credits) frame whose last whole day is ``last``
- ``Backtest.rows``: org, month, origin_day, actual, forecast, low, high, naive,
  ape_forecast, ape_naive, covered; ``Backtest.mape_forecast`` / ``mape_naive`` /
  ``coverage`` (fractions, None without rows), ``by_origin()`` (per origin day)
- ``SHAPES``, ``TRAINING_SEEDS``, ``HELD_BACK_SEEDS``, ``shaped_history(shape, seed)``,
  ``backtest_shaped(seeds, widen=None) -> Backtest`` (org = ``"<shape>-<seed>"``)
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import cast

import duckdb
import numpy as np
import polars as pl

from runway_costs.analytics.forecast import FIT_WINDOW_DAYS, month_end
from runway_costs.analytics.orgs import orgs_with_data
from runway_costs.analytics.spend import query

__all__ = [
    "Backtest",
    "HELD_BACK_SEEDS",
    "SHAPES",
    "TRAINING_SEEDS",
    "backtest",
    "backtest_history",
    "backtest_shaped",
    "calibrate_widen",
    "shaped_history",
]

ORIGINS = (7, 14, 21)


@dataclass(frozen=True)
class Backtest:
    rows: pl.DataFrame

    def _mean(self, column: str) -> float | None:
        return None if self.rows.is_empty() else cast(float, self.rows[column].mean())

    @property
    def mape_forecast(self) -> float | None:
        return self._mean("ape_forecast")

    @property
    def mape_naive(self) -> float | None:
        return self._mean("ape_naive")

    @property
    def coverage(self) -> float | None:
        """Share of forecasts whose 80% interval held the actual month total."""
        return self._mean("covered")

    def by_origin(self) -> pl.DataFrame:
        """Per origin day: forecasts, MAPE (forecast, naive) and the interval's coverage."""
        return (
            self.rows.group_by("origin_day")
            .agg(
                forecasts=pl.len(),
                mape_forecast=pl.col("ape_forecast").mean(),
                mape_naive=pl.col("ape_naive").mean(),
                coverage=pl.col("covered").cast(pl.Float64).mean(),
            )
            .sort("origin_day")
        )


_SCHEMA = {
    "org": pl.String,
    "month": pl.Date,
    "origin_day": pl.Int64,
    "actual": pl.Int64,
    "forecast": pl.Int64,
    "low": pl.Int64,
    "high": pl.Int64,
    "naive": pl.Int64,
}


def _months(first: date, last: date) -> list[date]:
    """First days of the months that lie wholly within [first, last]."""
    month = first.replace(day=1)
    if month < first:
        month = (month + timedelta(days=32)).replace(day=1)
    out: list[date] = []
    while True:
        end = month.replace(day=calendar.monthrange(month.year, month.month)[1])
        if end > last:
            return out
        out.append(month)
        month = end + timedelta(days=1)


def _records(
    history: pl.DataFrame,
    org: str,
    last: date,
    origins: Sequence[int],
    widen: float | None,
    warmup: int = 0,
) -> list[tuple]:
    records = []
    first = cast(date, history["date"].min()) + timedelta(days=warmup)
    for month in _months(first, last):
        dim = calendar.monthrange(month.year, month.month)[1]
        in_month = history.filter(
            (pl.col("date") >= month) & (pl.col("date") < month + timedelta(days=dim))
        )
        actual = int(in_month["credits"].sum())
        for k in origins:
            cutoff = datetime.combine(month + timedelta(days=k), time())
            mtd = int(in_month.filter(pl.col("date") < cutoff.date())["credits"].sum())
            # What `forecast` itself would read at the cutoff: FIT_WINDOW_DAYS back.
            visible = history.filter(
                (pl.col("date") < cutoff.date())
                & (pl.col("date") > cutoff.date() - timedelta(days=FIT_WINDOW_DAYS))
            )
            me = month_end(visible, cutoff, widen=widen)
            records.append((org, month, k, actual, me.mid, me.low, me.high, round(mtd / k * dim)))
    return records


def _scored(records: list[tuple]) -> Backtest:
    rows = pl.DataFrame(records, schema=_SCHEMA, orient="row").filter(pl.col("actual") > 0)
    rows = rows.with_columns(
        ape_forecast=(pl.col("forecast") - pl.col("actual")).abs() / pl.col("actual"),
        ape_naive=(pl.col("naive") - pl.col("actual")).abs() / pl.col("actual"),
        covered=(pl.col("low") <= pl.col("actual")) & (pl.col("actual") <= pl.col("high")),
    )
    return Backtest(rows)


def backtest_history(
    history: pl.DataFrame,
    org: str,
    last: date,
    origins: Sequence[int] = ORIGINS,
    widen: float | None = None,
) -> Backtest:
    """Backtest one (date, credits) history whose last whole day is ``last``.
    ``widen``: the interval's widening (None: ``forecast.INTERVAL_WIDEN``)."""
    if history.is_empty():
        return _scored([])
    return _scored(_records(history, org, last, origins, widen))


def backtest(
    con: duckdb.DuckDBPyConnection,
    orgs: Sequence[str] | None = None,
    origins: Sequence[int] = ORIGINS,
    as_of: date | None = None,
) -> Backtest:
    """Score the month-end forecast against the naive baseline on every whole past month."""
    names = list(orgs) if orgs is not None else orgs_with_data(con)
    records: list[tuple] = []
    for org in names:  # per org and month: a few dozen forecasts, not a loop over rows
        history = query(
            con,
            """
            SELECT date, CAST(SUM(credits) AS BIGINT) AS credits FROM daily_usage
            WHERE org = $org GROUP BY date ORDER BY date
            """,
            {"org": org},
        )
        if history.is_empty():
            continue
        # The last stored day may be today's partial figure: it is not a whole day.
        last = (as_of or cast(date, history["date"].max())) - timedelta(days=1)
        records += _records(history, org, last, origins, None)
    return _scored(records)


# --- Shaped histories: the interval's training and held-back sets ---------------------

SHAPES = ("growth", "decline", "bursts", "month_end_crunch", "step_change", "heavy_noise")
TRAINING_SEEDS = tuple(range(100, 112))  # calibrate on these...
HELD_BACK_SEEDS = tuple(range(1, 7))  # ...check on these, never used to calibrate
SHAPED_FIRST = date(2025, 1, 6)  # a Monday
# Backtested months start after a whole fit window (FIT_WINDOW_DAYS) of history: June
# and July 2025, two of them per history.
SHAPED_DAYS = 213
_WEEKDAY = np.array([1.15, 1.2, 1.15, 1.1, 1.0, 0.7, 0.7])  # Monday..Sunday


def shaped_history(shape: str, seed: int, days: int = SHAPED_DAYS) -> pl.DataFrame:
    """A deterministic (date, credits) daily spend history of ``shape`` from ``seed``:
    a weekly rhythm and lognormal day-to-day noise around a level that the shape moves."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r} (known: {', '.join(SHAPES)})")
    rng = np.random.default_rng([SHAPES.index(shape), seed])
    t = np.arange(days, dtype=float)
    dates = [SHAPED_FIRST + timedelta(days=int(i)) for i in t]
    base = rng.uniform(500, 5000)
    sigma = rng.uniform(0.12, 0.3)
    level = np.full(days, base)
    if shape == "growth":
        level = base * np.exp(rng.uniform(0.003, 0.012) * t)
    elif shape == "decline":
        level = base * np.exp(-rng.uniform(0.003, 0.01) * t)
    elif shape == "bursts":
        burst_days = rng.random(days) < rng.uniform(0.03, 0.08)
        level = level * np.where(burst_days, rng.uniform(3, 8, days), 1.0)
    elif shape == "month_end_crunch":
        left = np.array([calendar.monthrange(d.year, d.month)[1] - d.day for d in dates])
        level = level * np.where(left < rng.integers(4, 8), rng.uniform(1.8, 3.0), 1.0)
    elif shape == "step_change":
        at = int(rng.integers(days // 3, days - 20))
        level = np.where(t >= at, base * rng.choice([0.4, 0.6, 1.7, 2.5]), base)
    elif shape == "heavy_noise":
        sigma = rng.uniform(0.5, 0.8)
    weekday = _WEEKDAY[[d.weekday() for d in dates]]
    noise = rng.lognormal(-(sigma**2) / 2, sigma, days)
    credits = np.round(level * weekday * noise).astype(np.int64)
    return pl.DataFrame({"date": dates, "credits": credits})


def backtest_shaped(
    seeds: Sequence[int], widen: float | None = None, origins: Sequence[int] = ORIGINS
) -> Backtest:
    """The backtest on every shape of ``SHAPES`` for each of ``seeds``."""
    last = SHAPED_FIRST + timedelta(days=SHAPED_DAYS - 1)
    records: list[tuple] = []
    for shape in SHAPES:
        for seed in seeds:
            history = shaped_history(shape, seed)
            name = f"{shape}-{seed}"
            records += _records(history, name, last, origins, widen, FIT_WINDOW_DAYS)
    return _scored(records)


def calibrate_widen(
    seeds: Sequence[int] = TRAINING_SEEDS,
    grid: Sequence[float] = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6),
    target: float = 0.80,
) -> tuple[float, dict[float, float]]:
    """The smallest widening of ``grid`` whose interval covers at least ``target`` of the
    shaped backtests on ``seeds`` (the training set), and the coverage of each. How
    ``forecast.INTERVAL_WIDEN`` was chosen; never run on ``HELD_BACK_SEEDS``."""
    if set(seeds) & set(HELD_BACK_SEEDS):
        raise ValueError("calibrate on the training seeds, not the held-back ones")
    coverage = {w: cast(float, backtest_shaped(seeds, widen=w).coverage) for w in grid}
    chosen = next((w for w in sorted(grid) if coverage[w] >= target), max(grid))
    return chosen, coverage
