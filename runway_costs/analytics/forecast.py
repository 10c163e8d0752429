"""Where the credits are going: month-end spend, run-out date and 30-day-cap date.

Method (small, dependency-free beyond numpy, and backtested in ``analytics.backtest``):

1. The daily net spend of the last ``HISTORY_DAYS`` complete days (zero-filled).
2. Weekday factors: the median ratio of each weekday to its centred 7-day mean (a trend is
   not a weekday effect), shrunk toward 1 while fewer than four weeks are known (spend has
   a weekly rhythm: weekends are quieter).
3. A level, the mean of the deseasonalized days (bursts are real spend, so they are kept),
   and a Theil-Sen trend over them (a burst or a refund day cannot tilt it), shrunk by its
   standard error so that a flat but noisy history gets a flat forecast, and damped
   (``TREND_DAMPING`` per day) so it never runs away.
4. Day ``d`` is forecast as ``(level + trend(d)) * factor[weekday(d)]``, never below 0.
5. The 80% interval of a sum of the next ``H`` days comes from the method's own errors:
   for every past origin with ``H`` known days after it, the ratio actual/forecast; its
   10th and 90th percentiles, their distance from 1 widened by ``INTERVAL_WIDEN``, scale
   the forecast. With too few origins, the in-sample residual spread (robust SD *
   sqrt(H), widened alike) is used instead, and it stays the band's floor until there
   are ``RELIABLE_ORIGINS`` past ratios (each 10% tail resting on three or more).
   Unwidened, the past origins' spread was too narrow: they overlap and share one
   regime, so the next month strays further (on the shaped histories of
   ``analytics.backtest`` the actual month end fell inside about 70% of the time).
   The past origins of every series forecast together are fitted at once (arrays of
   windows grouped by length, ``_fit_many``), with the same numbers as one fit each.
   ``INTERVAL_WIDEN`` is calibrated on the training set of shaped histories
   (``backtest.calibrate_widen``) and checked on a held-back set. The widening moves only
   the bounds: the mid forecast is unchanged.

Today is partial: the day's spend so far is kept and the rest of it is forecast at the
fraction of the UTC day still to come. Run-out: the first day the balance, minus the
forecast spend, reaches zero if nothing is bought. Cap-bound: buying just in time what
the forecast spending needs, the first day the purchases of a rolling 30-day window
(reconstructed past ones included) would exceed ``maxMonthlyCreditSpend``.

Public API:

- ``DailyModel.fit(values, last_day) -> DailyModel``; ``model.predict(start, days) -> ndarray``
- ``month_end(history, as_of, interval=True) -> MonthEnd`` from a (date, credits) frame
- ``month_end_forecast(con, org, as_of, model=None) -> MonthEnd`` (``model``: one model's
  spend, e.g. for a per-model budget); ``month_end_forecasts(con, orgs, ...)`` for many
- ``forecast_org(con, settings, org, as_of) -> OrgForecast``; ``OrgForecast.to_json()``
- ``forecast_orgs(con, settings, orgs, as_of) -> list[OrgForecast]``: ``forecast_org`` of
  many organizations from one read of each kind (history, balances, spend summaries,
  purchases) for all of them
- ``forecast_orgs_with_history(...)``: the same, and the history it fitted them on
- ``forecast_all(con, settings, as_of, orgs=None) -> list[OrgForecast]`` (``forecast_orgs``)
- ``forecast_many(con, orgs, as_of, balances, caps, past_buys) -> ManyForecast``: what
  ``forecast_org`` says of each organization's month end, run-out and cap-bound dates,
  for many organizations in one read, plus the month end of their summed spend
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import NamedTuple, cast

import duckdb
import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

from runway_costs.analytics.orgs import orgs_with_data
from runway_costs.analytics.purchases import (
    PurchasesWindow,
    balances_observed_since,
    describe_purchases,
    org_state,
    purchases_daily,
)
from runway_costs.analytics.spend import query, spend_summary
from runway_costs.core.config import Settings
from runway_costs.core.money import CREDIT_USD, usd
from runway_costs.core.windows import window_start

__all__ = [
    "DailyModel",
    "MonthEnd",
    "OrgForecast",
    "ManyForecast",
    "forecast_all",
    "forecast_many",
    "forecast_orgs",
    "forecast_orgs_with_history",
    "Batch",
    "RatioSummary",
    "forecast_org",
    "month_end",
    "month_end_forecast",
    "month_end_forecasts",
]

HISTORY_DAYS = 56  # eight weeks feed the weekday factors
MIN_TREND_DAYS = 14  # no trend from less than two weeks
TREND_SE_MULTIPLE = 2.0  # a trend smaller than ~2 standard errors is shrunk to nothing
MIN_ORIGINS = 8  # past origins needed before the interval uses empirical errors
RELIABLE_ORIGINS = 30  # from here each 10% tail rests on three or more past ratios
MIN_ORIGIN_HISTORY = 14  # days of history a past origin needs
TREND_DAMPING = 0.9  # per day: the trend adds at most ~9 days' worth of slope
HORIZON_DAYS = 180  # run-out and cap-bound dates are searched this far ahead
Z80 = 1.2816  # two-sided 80% normal quantile, for the fallback interval
INTERVAL_WIDEN = 1.3  # the spread of past errors, widened (backtest.calibrate_widen)
# Days of history read: HISTORY_DAYS for the fit plus the longest horizon (a month and a
# month) for the interval's past origins.
FIT_WINDOW_DAYS = HISTORY_DAYS + 62


def _days_in_month(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def _month_last(day: date) -> date:
    return day.replace(day=_days_in_month(day))


@dataclass(frozen=True, slots=True)
class DailyModel:
    """A fitted weekday-aware level-and-trend model of daily net spend."""

    last_day: date
    level: float  # deseasonalized spend per day at ``last_day``
    slope: float  # credits per day per day (Theil-Sen, before damping)
    factors: tuple[float, ...]  # Monday..Sunday, mean 1
    residual_sd: float  # robust SD of in-sample daily residuals

    @classmethod
    def fit(cls, values: np.ndarray, last_day: date) -> DailyModel:
        """Fit on complete days ending at ``last_day`` (oldest first)."""
        y = np.asarray(values, dtype=float)[-HISTORY_DAYS:]
        n = len(y)
        if n == 0:
            return cls(last_day, 0.0, 0.0, (1.0,) * 7, 0.0)
        first = last_day - timedelta(days=n - 1)
        fit = _fit_many(y[None, :], np.array([first.weekday()]), with_sd=True)
        return cls(
            last_day,
            float(fit.level[0]),
            float(fit.slope[0]),
            tuple(float(f) for f in fit.factors[0]),
            float(fit.residual_sd[0]),
        )

    def predict(self, start: date, days: int) -> np.ndarray:
        """Forecast spend for ``days`` consecutive days from ``start`` (after last_day)."""
        if days <= 0:
            return np.zeros(0)
        ahead = (start - self.last_day).days + np.arange(days)
        damped = TREND_DAMPING * (1 - TREND_DAMPING**ahead) / (1 - TREND_DAMPING)
        base = np.maximum(self.level + self.slope * damped, 0.0)
        weekdays = (np.arange(days) + start.weekday()) % 7
        return base * np.asarray(self.factors)[weekdays]


@dataclass(frozen=True, slots=True)
class _Fits:
    """``DailyModel.fit`` of many windows of one length at once (one row per window)."""

    level: np.ndarray  # (k,)
    slope: np.ndarray  # (k,)
    factors: np.ndarray  # (k, 7), Monday..Sunday
    residual_sd: np.ndarray  # (k,), zeros unless asked for


def _fit_many(y: np.ndarray, first_weekday: np.ndarray, with_sd: bool = False) -> _Fits:
    """The model of ``DailyModel.fit`` for each row of ``y`` (k windows of n complete
    days, oldest first; ``first_weekday``: the weekday of each row's first day), as array
    operations over all rows: the forecast interval refits about a hundred past origins
    per organization, for every organization. ``DailyModel.fit`` is this with one row,
    so both give the same numbers."""
    k, n = y.shape
    weekdays = (np.arange(n)[None, :] + first_weekday[:, None]) % 7
    factors = _weekday_factors_many(y, weekdays)
    z = y / np.take_along_axis(factors, weekdays, axis=1)
    t = np.arange(n, dtype=float)
    slope = _theil_sen_many(z) if n >= MIN_TREND_DAYS else np.zeros(k)
    resid_z = z - slope[:, None] * t
    resid_z -= np.median(resid_z, axis=1)[:, None]
    sigma = 1.4826 * np.median(np.abs(resid_z), axis=1)
    # Keep only the part of the trend the noise cannot explain (shrinkage by its standard
    # error): a flat history gets a flat forecast.
    se = sigma / float(np.sqrt(np.sum((t - t.mean()) ** 2))) if n > 1 else np.zeros(k)
    trending = slope != 0.0
    safe = np.where(trending, np.abs(slope), 1.0)
    # Python's float power, as the one-series fit always took it (numpy's square can
    # differ from it in the last bit)
    squared = np.array([r**2 for r in (TREND_SE_MULTIPLE * se / safe).tolist()])
    keep = np.maximum(0.0, 1 - squared)
    slope = np.where(trending, slope * keep, slope)
    level = np.mean(z, axis=1) + slope * (n - 1) / 2
    residual_sd = np.zeros(k)
    if with_sd:
        fitted = (level[:, None] - slope[:, None] * t[::-1]) * np.take_along_axis(
            factors, weekdays, axis=1
        )
        resid = y - fitted
        residual_sd = 1.4826 * np.median(np.abs(resid - np.median(resid, axis=1)[:, None]), axis=1)
    return _Fits(level, slope, factors, residual_sd)


def _weekday_factors_many(y: np.ndarray, weekdays: np.ndarray) -> np.ndarray:
    """Per row: the median ratio of each weekday to its centred 7-day mean (so a trend is
    not mistaken for a weekday effect), shrunk toward 1 while fewer than four weeks are
    known; all ones for fewer than two weeks or no spend."""
    k, n = y.shape
    if n < 14:
        return np.ones((k, 7))
    clipped = np.maximum(y, 0.0)
    # centred 7-day means (days 3..n-4), summed as np.convolve sums them
    centred = (sliding_window_view(clipped, 7, axis=1) * (np.ones(7) / 7)).sum(axis=-1)
    ok = centred > 0
    mid = clipped[:, 3 : n - 3]
    ratios = np.divide(mid, centred, out=np.zeros_like(mid), where=ok)
    rows = np.broadcast_to(np.arange(k)[:, None], ok.shape)
    medians = _medians_by_group(ratios[ok], rows[ok] * 7 + weekdays[:, 3 : n - 3][ok], k * 7)
    medians = medians.reshape(k, 7)
    # Sparse spend (a few days a month) has a median ratio of 0 on every weekday: no
    # weekday pattern can be told from it, so such a row keeps all ones (as no spend does)
    # instead of dividing by a zero mean.
    mean = medians.mean(axis=1)
    pattern = ok.any(axis=1) & (mean > 0)
    weight = min(1.0, n / 28)
    relative = np.divide(medians, mean[:, None], out=np.ones_like(medians), where=pattern[:, None])
    factors = np.maximum(1 + weight * (relative - 1), 0.05)
    factors = factors / factors.mean(axis=1)[:, None]
    return np.where(pattern[:, None], factors, 1.0)


def _medians_by_group(values: np.ndarray, groups: np.ndarray, count: int) -> np.ndarray:
    """np.median of ``values`` per group 0..count-1 (1.0 where a group has none), in one
    sort instead of one median call per group."""
    order = np.lexsort((values, groups))
    ordered = values[order]
    counts = np.bincount(groups, minlength=count)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has = counts > 0
    lo = starts + np.maximum(counts - 1, 0) // 2
    hi = starts + counts // 2
    out = np.ones(count)
    out[has] = (ordered[lo[has]] + ordered[hi[has]]) / 2
    return out


def _medians_by_weekday(values: np.ndarray, weekdays: np.ndarray) -> np.ndarray:
    """np.median of ``values`` per weekday 0..6 (1.0 where a weekday has none)."""
    return _medians_by_group(values, weekdays, 7)


def _theil_sen_many(z: np.ndarray) -> np.ndarray:
    """Per row, the median of pairwise slopes: a trend that a burst or a refund day
    cannot tilt. The slopes are laid out lag by lag (contiguous slices, not a gather of
    every pair); a median does not depend on their order."""
    k, n = z.shape
    slopes = np.empty((k, n * (n - 1) // 2))
    at = 0
    for lag in range(1, n):
        np.subtract(z[:, lag:], z[:, :-lag], out=slopes[:, at : at + n - lag])
        slopes[:, at : at + n - lag] /= lag
        at += n - lag
    return np.median(slopes, axis=1, overwrite_input=True)


@dataclass(frozen=True, slots=True)
class MonthEnd:
    """Month-end net spend forecast at ``as_of``, with its 80% interval."""

    as_of: datetime
    month_to_date: int  # spend so far this month, today's partial figure included
    low: int
    mid: int
    high: int


def _series(history: pl.DataFrame, today: date) -> tuple[np.ndarray, date, int]:
    """Complete days (zero-filled, oldest first) before ``today``, and today's partial."""
    if history.is_empty():
        return np.zeros(0), today - timedelta(days=1), 0
    hist = history.group_by("date").agg(pl.col("credits").sum())
    partial = int(hist.filter(pl.col("date") == today)["credits"].sum())
    past = hist.filter(pl.col("date") < today)
    if past.is_empty():
        return np.zeros(0), today - timedelta(days=1), partial
    first = cast(date, past["date"].min())
    last = today - timedelta(days=1)
    days = pl.DataFrame({"date": pl.date_range(first, last, "1d", eager=True)})
    filled = days.join(past, on="date", how="left").fill_null(0).sort("date")
    return filled["credits"].to_numpy().astype(float), last, partial


def _day_fraction(as_of: datetime) -> float:
    return (as_of - datetime.combine(as_of.date(), time())).total_seconds() / 86400


def _future(model: DailyModel, as_of: datetime, partial: int, days: int) -> np.ndarray:
    """Spend still to come from ``as_of``: the rest of today, then whole days."""
    today = as_of.date()
    pred = model.predict(today, days)
    if len(pred):
        pred[0] = pred[0] * (1 - _day_fraction(as_of))
    return pred


# Rows of past-origin windows fitted at once (bounds the Theil-Sen pair matrix: rows x
# HISTORY_DAYS * (HISTORY_DAYS - 1) / 2 doubles, ~12 MB at 1,024 rows).
_ORIGIN_CHUNK = 1024


def _origin_ratios(ys: Sequence[np.ndarray], last_day: date, horizon: int) -> list[np.ndarray]:
    """Per series (complete days ending at ``last_day``): for every past origin with
    ``MIN_ORIGIN_HISTORY`` days before it and ``horizon`` known days after it, the ratio
    actual / forecast of the sum of those days, where the forecast is positive.

    One model per origin (about a hundred per organization), fitted for all origins of all
    series at once, grouped by window length (``_fit_many``): the same numbers as one
    ``DailyModel.fit`` per origin."""
    lengths = np.array([len(y) for y in ys], dtype=np.int64)
    counts = np.maximum(lengths - horizon + 1 - MIN_ORIGIN_HISTORY, 0)
    if horizon <= 0 or not counts.sum():
        return [np.zeros(0) for _ in ys]
    flat = np.concatenate([np.asarray(y, dtype=float) for y in ys])
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    series = np.repeat(np.arange(len(ys)), counts)
    origin = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    origin += MIN_ORIGIN_HISTORY  # s: the origin's first day after its window
    width = np.minimum(origin, HISTORY_DAYS)  # the window DailyModel.fit keeps
    end = offsets[series] + origin  # flat index of day s
    behind = lengths[series] - origin  # days from the window's last day to last_day
    first_weekday = (last_day.weekday() - behind - (width - 1)) % 7
    ahead = np.arange(1, horizon + 1)
    damped = TREND_DAMPING * (1 - TREND_DAMPING**ahead) / (1 - TREND_DAMPING)
    actual = flat[end[:, None] + np.arange(horizon)].sum(axis=1)
    pred = np.zeros(len(origin))
    for n in np.unique(width):
        rows = np.flatnonzero(width == n)
        for chunk in np.array_split(rows, -(-len(rows) // _ORIGIN_CHUNK)):
            window = flat[(end[chunk] - n)[:, None] + np.arange(n)]
            fit = _fit_many(window, first_weekday[chunk])
            base = np.maximum(fit.level[:, None] + fit.slope[:, None] * damped, 0.0)
            days = (np.arange(horizon)[None, :] + (first_weekday[chunk] + n)[:, None]) % 7
            pred[chunk] = (base * np.take_along_axis(fit.factors, days, axis=1)).sum(axis=1)
    positive = pred > 0
    ratio = np.divide(actual, pred, out=np.zeros_like(pred), where=positive)
    kept = np.bincount(series[positive], minlength=len(ys))
    return np.split(ratio[positive], np.cumsum(kept)[:-1])


# What the interval keeps of the past origins' ratios: (count, 10th and 90th percentile);
# the percentiles are 0.0 when there are fewer than MIN_ORIGINS ratios (then unused).
RatioSummary = tuple[int, float, float]


def _ratio_summary(ratios: np.ndarray) -> RatioSummary:
    if len(ratios) < MIN_ORIGINS:
        return len(ratios), 0.0, 0.0
    lo, hi = np.quantile(ratios, [0.1, 0.9])
    return len(ratios), float(lo), float(hi)


def _interval(
    y: np.ndarray,
    last_day: date,
    horizon: int,
    mid_rest: float,
    widen: float | None = None,
    ratios: np.ndarray | None = None,
    summary: RatioSummary | None = None,
) -> tuple[float, float]:
    """80% bounds for the spend of the next ``horizon`` days (see the module docstring).
    ``ratios``: the past origins' actual/forecast ratios (``_origin_ratios``), when
    already computed for many series at once; ``summary``: what the bounds keep of them
    (``_ratio_summary``), when known from an earlier computation on the same days."""
    if horizon <= 0 or mid_rest <= 0:
        return mid_rest, mid_rest
    w = INTERVAL_WIDEN if widen is None else widen
    if summary is None:
        if ratios is None:
            ratios = _origin_ratios([y], last_day, horizon)[0]
        summary = _ratio_summary(ratios)
    count, lo, hi = summary
    if count < MIN_ORIGINS:
        return _model_interval(y, last_day, horizon, mid_rest, w)
    lo_r, hi_r = min(lo, 1.0), max(hi, 1.0)
    # Widened around 1 (the mid): past origins overlap and share their regime, so
    # their spread understates the next month's (calibrated, see INTERVAL_WIDEN).
    lo_r = max(1 - w * (1 - lo_r), min(lo_r, 0.0))
    low, high = mid_rest * lo_r, mid_rest * (1 + w * (hi_r - 1))
    if count < RELIABLE_ORIGINS:
        # Each 10% tail rests on fewer than three ratios (a few weeks of history, one
        # regime): they can all fall on one side of the mid and leave no band there. The
        # model's own spread is the floor of the band until the ratios are enough.
        m_low, m_high = _model_interval(y, last_day, horizon, mid_rest, w)
        low, high = min(low, m_low), max(high, m_high)
    return low, high


def _model_interval(
    y: np.ndarray, last_day: date, horizon: int, mid_rest: float, w: float
) -> tuple[float, float]:
    """80% bounds from the fitted model's residual spread (short histories)."""
    m = DailyModel.fit(y, last_day)
    # The sum of ``horizon`` days around a level estimated from ``n`` of them: the days'
    # own noise (horizon * sd^2) plus the level's error, which every day shares
    # (horizon^2 * sd^2 / n). A sum takes in bursts and refunds, so the plain SD of the
    # residuals counts here, not only the robust one.
    recent = y[-HISTORY_DAYS:]
    n = len(recent)
    ahead = np.arange(n - 1, -1, -1, dtype=float)
    weekdays = (np.arange(n) + (last_day - timedelta(days=n - 1)).weekday()) % 7
    fitted = (m.level - m.slope * ahead) * np.asarray(m.factors)[weekdays]
    sd = max(m.residual_sd, float(np.std(recent - fitted, ddof=1)) if n > 1 else 0.0)
    half = w * Z80 * sd * np.sqrt(horizon + horizon**2 / max(n, 1))
    return max(mid_rest - half, 0.0), mid_rest + half


@dataclass(frozen=True, slots=True)
class _Fitted:
    """One series prepared for its forecasts: complete days, today's partial, the model."""

    y: np.ndarray
    last_day: date
    partial: int
    mtd: int  # month to date, today's partial included
    model: DailyModel


def _fitted(history: pl.DataFrame, as_of: datetime) -> _Fitted:
    """One (date, credits) history prepared at ``as_of`` (``_fitted_many`` of one)."""
    return _fitted_many(history.with_columns(org=pl.lit("")), [""], as_of)[0]


def _fitted_many(history: pl.DataFrame, orgs: Sequence[str], as_of: datetime) -> list[_Fitted]:
    """Each org's (org, date, credits) history prepared at ``as_of``: its complete days
    (zero-filled from its first one to yesterday, oldest first; ``_series``), today's
    partial figure, month to date, and its model; rows after today are ignored. The
    models of all orgs are fitted together, grouped by window length (``_fit_many``)."""
    today = as_of.date()
    last_day = today - timedelta(days=1)
    code = {org: i for i, org in enumerate(orgs)}
    rows = (
        history.filter(pl.col("org").is_in(list(code)) & (pl.col("date") <= today))
        .group_by("org", "date")
        .agg(pl.col("credits").sum())
        .select(
            org=pl.col("org").replace_strict(code, return_dtype=pl.Int64),
            day=(pl.col("date") - pl.lit(today)).dt.total_days(),
            credits=pl.col("credits"),
        )
        .sort("org", "day")
    )
    org_of, day, credits = (rows[c].to_numpy() for c in ("org", "day", "credits"))
    month_back = -(today - today.replace(day=1)).days  # the month's first day, from today
    bounds = np.searchsorted(org_of, np.arange(len(orgs) + 1))
    prepared = []
    for i in range(len(orgs)):
        d, c = day[bounds[i] : bounds[i + 1]], credits[bounds[i] : bounds[i + 1]]
        past = d < 0
        y = np.zeros(-int(d[0]) if past.any() else 0)
        if past.any():
            y[d[past] - d[0]] = c[past]
        partial = int(c[~past].sum())
        mtd = int(c[(d >= month_back) & past].sum()) + partial
        prepared.append((y, partial, mtd))
    models = _models([y for y, _, _ in prepared], last_day)
    return [
        _Fitted(y, last_day, partial, mtd, model)
        for (y, partial, mtd), model in zip(prepared, models, strict=True)
    ]


def _models(ys: Sequence[np.ndarray], last_day: date) -> list[DailyModel]:
    """``DailyModel.fit(y, last_day)`` of every series, fitted together by window length."""
    windows = [np.asarray(y, dtype=float)[-HISTORY_DAYS:] for y in ys]
    models = [DailyModel(last_day, 0.0, 0.0, (1.0,) * 7, 0.0) for _ in ys]
    widths = np.array([len(w) for w in windows], dtype=np.int64)
    for n in np.unique(widths[widths > 0]):
        rows = np.flatnonzero(widths == n)
        first = (last_day - timedelta(days=int(n) - 1)).weekday()
        fit = _fit_many(
            np.stack([windows[r] for r in rows]), np.full(len(rows), first), with_sd=True
        )
        for at, r in enumerate(rows):
            models[r] = DailyModel(
                last_day,
                float(fit.level[at]),
                float(fit.slope[at]),
                tuple(float(f) for f in fit.factors[at]),
                float(fit.residual_sd[at]),
            )
    return models


def _month_ends(
    fitted: Sequence[_Fitted], as_of: datetime, interval: bool = True, widen: float | None = None
) -> list[MonthEnd]:
    """``month_end`` of many series at once: the interval's past origins of all of them
    are fitted together (``_origin_ratios``)."""
    return _month_ends_known(fitted, as_of, interval, widen)[0]


def interval_key(fitted: _Fitted, as_of: datetime) -> str:
    """What the interval's past-origin ratios depend on: the complete days, the last of
    them and the days left in the month (not the instant within the day, nor today's
    partial spend). Equal keys, equal ratios."""
    today = as_of.date()
    remaining = (_month_last(today) - today).days + 1
    digest = hashlib.blake2b(np.ascontiguousarray(fitted.y).tobytes(), digest_size=16)
    return f"{fitted.last_day}:{remaining}:{len(fitted.y)}:{digest.hexdigest()}"


def _month_ends_known(
    fitted: Sequence[_Fitted],
    as_of: datetime,
    interval: bool = True,
    widen: float | None = None,
    known: Sequence[RatioSummary | None] | None = None,
) -> tuple[list[MonthEnd], list[RatioSummary | None]]:
    """``_month_ends``, reusing the ratio summaries already ``known`` for some series (from
    an earlier computation with the same ``interval_key``), and each series' summary (None
    where no interval was needed)."""
    today = as_of.date()
    remaining = (_month_last(today) - today).days + 1
    rests = [float(_future(f.model, as_of, f.partial, remaining).sum()) for f in fitted]
    wanted = [interval and rest > 0 for rest in rests]
    given = list(known) if known is not None else [None] * len(fitted)
    ratios = _origin_ratios(
        [
            f.y if want and have is None else f.y[:0]
            for f, want, have in zip(fitted, wanted, given, strict=True)
        ],
        today - timedelta(days=1),
        remaining,
    )
    out, summaries = [], []
    for f, rest, want, r, have in zip(fitted, rests, wanted, ratios, given, strict=True):
        summary = (have if have is not None else _ratio_summary(r)) if want else None
        lo, hi = (
            _interval(f.y, f.last_day, remaining, rest, widen, summary=summary)
            if want
            else (rest, rest)
        )
        out.append(
            MonthEnd(as_of, f.mtd, round(f.mtd + lo), round(f.mtd + rest), round(f.mtd + hi))
        )
        summaries.append(summary)
    return out, summaries


def month_end(
    history: pl.DataFrame, as_of: datetime, interval: bool = True, widen: float | None = None
) -> MonthEnd:
    """Month-end forecast from a (date, credits) frame; rows after ``as_of`` are ignored.
    ``widen``: the interval's widening (None: ``INTERVAL_WIDEN``; for calibration)."""
    return _month_ends([_fitted(history, as_of)], as_of, interval, widen)[0]


def _history(
    con: duckdb.DuckDBPyConnection, org: str, as_of: datetime, model: str | None = None
) -> pl.DataFrame:
    return query(
        con,
        """
        SELECT date, CAST(SUM(credits) AS BIGINT) AS credits FROM daily_usage
        WHERE org = $org AND date <= $today AND date > $since
          AND ($model IS NULL OR model = $model)
        GROUP BY date ORDER BY date
        """,
        {
            "org": org,
            "today": as_of.date(),
            "since": as_of.date() - timedelta(days=FIT_WINDOW_DAYS),
            "model": model,
        },
    )


def month_end_forecast(
    con: duckdb.DuckDBPyConnection, org: str, as_of: datetime, model: str | None = None
) -> MonthEnd:
    """Month-end net spend of ``org`` (or of one of its models) forecast at ``as_of``."""
    return month_end(_history(con, org, as_of, model), as_of)


def month_end_forecasts(
    con: duckdb.DuckDBPyConnection, orgs: Sequence[str], as_of: datetime, model: str | None = None
) -> list[MonthEnd]:
    """``month_end_forecast`` of each org of ``orgs`` (in that order), from one read of
    their history and one fit of all their interval origins."""
    names = list(dict.fromkeys(orgs))
    history = _histories(con, names, as_of, model)
    fitted = _fitted_many(history, names, as_of)
    found = dict(zip(names, _month_ends(fitted, as_of), strict=True))
    return [found[org] for org in orgs]


@dataclass(frozen=True)
class OrgForecast:
    """Everything ``runway-costs forecast`` reports for one organization."""

    org: str
    as_of: datetime
    balance_credits: int | None
    cap_credits: int | None
    spend_today_credits: int
    spend_mtd_credits: int
    spend_30d_credits: int
    purchases_30d_credits: int
    month_end: MonthEnd
    daily_rate_credits: int  # mean forecast spend per day over the next 7 days
    runout_date: date | None
    cap_bound_date: date | None
    cap_peak_30d_credits: int | None  # most a 30-day window must buy in the next 30 days
    credit_usd: float = CREDIT_USD
    daily: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False, compare=False)
    # purchases_30d_credits covers only the days whose purchases are known (see
    # analytics.purchases): how many, from when, and when balances were first collected
    purchases_observed_days: int = 0
    purchases_observed_since: datetime | None = None
    balances_observed_since: datetime | None = None

    @property
    def purchases_window(self) -> PurchasesWindow:
        """Which of the last 30 days' purchases are known (the cap-bound date counts the
        unknown ones as none)."""
        return PurchasesWindow.of(
            self.purchases_observed_days,
            self.purchases_observed_since,
            self.balances_observed_since,
        )

    @property
    def cap_bound_assumption(self) -> str | None:
        """What the cap-bound date assumes when purchases are unknown or partial (None:
        the whole window is known, or there is no cap to bind)."""
        return None if self.cap_credits is None else self.purchases_window.assumption

    @property
    def purchases_text(self) -> str:
        """The bought figure with its window ("0 since ... UTC"), never a bare 0."""
        return describe_purchases(
            self.purchases_30d_credits,
            self.purchases_observed_days,
            self.purchases_observed_since,
            self.balances_observed_since,
        )

    def usd(self, credits: int | None) -> float | None:
        return None if credits is None else usd(credits, self.credit_usd)

    def to_json(self) -> dict:
        """The documented JSON shape (credits as integers, USD alongside, ISO dates)."""
        me = self.month_end
        return {
            "org": self.org,
            "as_of": self.as_of.isoformat(timespec="seconds") + "Z",
            "balance_credits": self.balance_credits,
            "cap_credits": self.cap_credits,
            "spend_today_credits": self.spend_today_credits,
            "spend_mtd_credits": self.spend_mtd_credits,
            "spend_30d_credits": self.spend_30d_credits,
            "purchases_30d_credits": self.purchases_30d_credits,
            "month_end_forecast": {"low": me.low, "mid": me.mid, "high": me.high},
            "month_end_forecast_usd": {
                "low": self.usd(me.low),
                "mid": self.usd(me.mid),
                "high": self.usd(me.high),
            },
            "daily_rate_credits": self.daily_rate_credits,
            "runout_date": self.runout_date.isoformat() if self.runout_date else None,
            "cap_bound_date": self.cap_bound_date.isoformat() if self.cap_bound_date else None,
            "cap_peak_30d_credits": self.cap_peak_30d_credits,
            # set when the cap-bound date counts unknown past purchases as none
            "cap_bound_assumption": self.cap_bound_assumption,
            "balance_usd": self.usd(self.balance_credits),
            "spend_mtd_usd": self.usd(self.spend_mtd_credits),
            "spend_30d_usd": self.usd(self.spend_30d_credits),
            "purchases_30d_usd": self.usd(self.purchases_30d_credits),
            # purchases_30d_* cover only these observed days; null since: none known
            "purchases_observed_days": self.purchases_observed_days,
            "purchases_observed_since": _iso(self.purchases_observed_since),
            "balances_observed_since": _iso(self.balances_observed_since),
        }


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat(timespec="seconds") + "Z"


def _first_day(mask: np.ndarray, start: date) -> date | None:
    hits = np.flatnonzero(mask)
    return start + timedelta(days=int(hits[0])) if len(hits) else None


def outlook_dates(
    future: np.ndarray,
    balance: int | None,
    cap: int | None,
    past_buys: np.ndarray,
    today: date,
) -> tuple[date | None, date | None, int | None]:
    """(run-out date, cap-bound date, peak 30-day purchases) from forecast daily spend.

    Run-out: the first day cumulative spend reaches the balance if nothing is bought.
    Cap-bound: buying just in time whatever spend needs beyond the balance, the first day
    the purchases of a rolling 30-day window (the last 29 days' reconstructed purchases,
    ``past_buys`` ending today, included) would exceed the cap. Pure, so the dashboard's
    batched overview and ``forecast_org`` give the same dates.
    """
    if balance is None:
        return None, None, None
    spent = np.cumsum(future)
    runout = today if balance <= 0 else _first_day(spent >= balance, today)
    if cap is None or cap <= 0:
        return runout, None, None
    need = np.maximum(spent - max(balance, 0), 0.0)
    buys = np.diff(need, prepend=0.0)
    past_buys = np.asarray(past_buys, dtype=float)
    series = np.concatenate([past_buys[:-1], past_buys[-1:] + buys[:1], buys[1:]])
    window = np.convolve(series, np.ones(30), mode="full")[29 : len(series)]
    return runout, _first_day(window > cap, today), round(float(window[:30].max()))


def forecast_org(
    con: duckdb.DuckDBPyConnection, settings: Settings, org: str, as_of: datetime
) -> OrgForecast:
    """Month-end spend, run-out and cap-bound dates for ``org`` at ``as_of`` (naive UTC)."""
    today = as_of.date()
    state = org_state(con, as_of, [org])
    return _org_forecast(
        org,
        as_of,
        settings,
        fitted=(fitted := _fitted(_history(con, org, as_of), as_of)),
        month_end=_month_ends([fitted], as_of)[0],
        state=state.row(0, named=True) if state.height else None,
        summary=spend_summary(con, today, [org], settings.credit_usd).row(0, named=True),
        past=purchases_daily(con, [org], window_start(today), today),
        began=balances_observed_since(con, [org])["balances_observed_since"],
    )


def _org_forecast(
    org: str,
    as_of: datetime,
    settings: Settings,
    *,
    fitted: _Fitted,
    month_end: MonthEnd,
    state: Mapping | None,
    summary: Mapping,
    past: pl.DataFrame,
    began: pl.Series,
) -> OrgForecast:
    """One organization's forecast from what was read for it (``forecast_org`` reads it
    for one organization, ``forecast_orgs`` for many at once)."""
    today = as_of.date()
    model = fitted.model
    future = _future(model, as_of, fitted.partial, HORIZON_DAYS)
    days = pl.date_range(today, today + timedelta(days=HORIZON_DAYS - 1), "1d", eager=True)

    balance = int(state["balance_credits"]) if state is not None else None
    cap = int(state["cap_credits"]) if state is not None else None
    purchases_30d = int(past["purchases"].sum())
    known_days = past.filter(pl.col("purchases").is_not_null())["date"]

    runout, cap_bound, cap_peak = outlook_dates(
        future, balance, cap, past["purchases"].fill_null(0).to_numpy(), today
    )
    return OrgForecast(
        org=org,
        as_of=as_of,
        balance_credits=balance,
        cap_credits=cap,
        spend_today_credits=int(summary["today_credits"]),
        spend_mtd_credits=int(summary["mtd_credits"]),
        spend_30d_credits=int(summary["rolling_30d_credits"]),
        purchases_30d_credits=purchases_30d,
        month_end=month_end,
        daily_rate_credits=round(float(model.predict(today, 7).mean())),
        runout_date=runout,
        cap_bound_date=cap_bound,
        cap_peak_30d_credits=cap_peak,
        credit_usd=settings.credit_usd,
        daily=pl.DataFrame({"date": days, "credits_mid": future}),
        purchases_observed_days=known_days.len(),
        purchases_observed_since=(
            datetime.combine(cast(date, known_days.min()), time()) if known_days.len() else None
        ),
        balances_observed_since=began[0] if began.len() else None,
    )


def forecast_orgs(
    con: duckdb.DuckDBPyConnection, settings: Settings, orgs: Sequence[str], as_of: datetime
) -> list[OrgForecast]:
    """``forecast_org`` of every org of ``orgs``, from one read of each kind for all of
    them (history, balances and caps, spend summaries, reconstructed purchases, first
    balance collections) instead of five queries per organization; the model, interval
    and dates are computed per organization exactly as ``forecast_org`` does."""
    return forecast_orgs_with_history(con, settings, orgs, as_of).forecasts


class Batch(NamedTuple):
    """``forecast_orgs_with_history``'s answer."""

    forecasts: list[OrgForecast]
    history: pl.DataFrame  # org, date, credits: what they were fitted on
    intervals: dict[str, tuple[str, RatioSummary]]  # org -> (interval_key, ratio summary)


def forecast_orgs_with_history(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    orgs: Sequence[str],
    as_of: datetime,
    intervals: Mapping[str, tuple[str, RatioSummary]] | None = None,
) -> Batch:
    """``forecast_orgs``, the (org, date, credits) history it fitted them on (the stored
    outlooks roll it up without reading it again), and each org's interval key and ratio
    summary. ``intervals``: such pairs from an earlier computation (the last cycle's): an
    org whose key is unchanged (same complete days, same day) reuses its summary instead
    of refitting its past origins, with the same result."""
    wanted = list(orgs)
    names = list(dict.fromkeys(wanted))  # each read once per org
    if not names:
        empty = pl.DataFrame(schema={"org": pl.String, "date": pl.Date, "credits": pl.Int64})
        return Batch([], empty, {})
    today = as_of.date()
    history = _histories(con, names, as_of)
    states = {r["org"]: r for r in org_state(con, as_of, names).iter_rows(named=True)}
    summaries = {
        r["org"]: r
        for r in spend_summary(con, today, names, settings.credit_usd).iter_rows(named=True)
    }
    pasts = purchases_daily(con, names, window_start(today), today, spend=history).partition_by(
        "org", as_dict=True
    )
    began = balances_observed_since(con, names)
    began_at = dict(zip(began["org"], began["balances_observed_since"], strict=True))
    fitted = dict(zip(names, _fitted_many(history, names, as_of), strict=True))
    keys = {org: interval_key(f, as_of) for org, f in fitted.items()}
    earlier = intervals or {}
    known = [earlier[o][1] if o in earlier and earlier[o][0] == keys[o] else None for o in names]
    # the interval's past origins of every organization fitted at once (unless known)
    ends, ratio_summaries = _month_ends_known(list(fitted.values()), as_of, known=known)
    month_ends = dict(zip(names, ends, strict=True))
    found = {o: (keys[o], x) for o, x in zip(names, ratio_summaries, strict=True) if x is not None}
    forecasts = [
        _org_forecast(
            org,
            as_of,
            settings,
            fitted=fitted[org],
            month_end=month_ends[org],
            state=states.get(org),
            summary=summaries[org],
            past=pasts[(org,)],
            began=pl.Series(
                "balances_observed_since",
                [began_at[org]] if org in began_at else [],
                dtype=began["balances_observed_since"].dtype,
            ),
        )
        for org in wanted
    ]
    return Batch(forecasts, history, found)


def forecast_all(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    as_of: datetime,
    orgs: Sequence[str] | None = None,
) -> list[OrgForecast]:
    """One forecast per organization (configured ones, else every one in the database),
    read for all of them at once (``forecast_orgs``)."""
    names = list(orgs) if orgs is not None else orgs_with_data(con)
    return forecast_orgs(con, settings, names, as_of)


@dataclass(frozen=True)
class ManyForecast:
    """Several organizations forecast at once (the all-organizations overview)."""

    per_org: pl.DataFrame  # org, mtd_credits, month_end_mid, runout_date, cap_bound_date
    history: pl.DataFrame  # org, date, credits: the days the forecasts were fitted on
    future: pl.DataFrame  # date, credits: the organizations' forecast daily spend, summed
    month_end: MonthEnd  # of their summed spend, with its interval


def _histories(
    con: duckdb.DuckDBPyConnection, orgs: list[str], at: datetime, model: str | None = None
) -> pl.DataFrame:
    """Net spend per org and day (of one model, if given) over the window ``_history``
    reads, for all orgs in one query (``_history`` takes one query per organization)."""
    today = at.date()
    return query(
        con,
        """
        SELECT org, date, CAST(SUM(credits) AS BIGINT) AS credits FROM daily_usage
        WHERE org IN (SELECT unnest($orgs::VARCHAR[])) AND date <= $today AND date > $since
          AND ($model IS NULL OR model = $model)
        GROUP BY org, date ORDER BY org, date
        """,
        {
            "orgs": orgs,
            "today": today,
            "since": today - timedelta(days=FIT_WINDOW_DAYS),
            "model": model,
        },
    )


def _dense_series(
    history: pl.DataFrame, orgs: list[str], today: date
) -> dict[str, tuple[np.ndarray, int]]:
    """Per org, what ``_series`` makes of its history (complete days from its first one to
    yesterday, zero-filled, and today's partial figure), for every org in one pivot."""
    past = history.filter(pl.col("date") < today)
    partial = dict(
        history.filter(pl.col("date") == today)
        .group_by("org")
        .agg(pl.col("credits").sum())
        .iter_rows()
    )
    out = {org: (np.zeros(0), int(partial.get(org, 0))) for org in orgs}
    if past.is_empty():
        return out
    first_day = cast(date, past["date"].min())
    days = pl.DataFrame(
        {"date": pl.date_range(first_day, today - timedelta(days=1), "1d", eager=True)}
    )
    wide = days.join(
        past.pivot(on="org", index="date", values="credits", aggregate_function="sum"),
        on="date",
        how="left",
    ).fill_null(0)
    for org, day in past.group_by("org").agg(pl.col("date").min()).iter_rows():
        y = wide[org].to_numpy().astype(float)[(day - first_day).days :]
        out[org] = (y, int(partial.get(org, 0)))
    return out


def _org_outlook(
    y: np.ndarray,
    partial: int,
    mtd: int,
    at: datetime,
    balance: int | None,
    cap: int | None,
    past_buys: np.ndarray,
) -> tuple[int, date | None, date | None, np.ndarray]:
    """(month-end mid, run-out date, cap-bound date, future daily spend) of one organization:
    ``forecast_org``'s model and rules without its per-org queries and its interval."""
    today = at.date()
    model = DailyModel.fit(y, today - timedelta(days=1))
    future = _future(model, at, partial, HORIZON_DAYS)
    runout, cap_bound, _ = outlook_dates(future, balance, cap, past_buys, today)
    remaining = (_month_last(today) - today).days + 1  # month_end()'s mid, same model
    return round(mtd + float(future[:remaining].sum())), runout, cap_bound, future


def forecast_many(
    con: duckdb.DuckDBPyConnection,
    orgs: Sequence[str],
    as_of: datetime,
    balances: Mapping[str, int | None],
    caps: Mapping[str, int | None],
    past_buys: Mapping[str, np.ndarray],
) -> ManyForecast:
    """``forecast_org``'s month-end mid, run-out and cap-bound dates for every org of
    ``orgs`` from one read of their history, and the month end (with interval) of their
    summed spend. ``balances``, ``caps`` and ``past_buys`` (the last 30 days' reconstructed
    purchases, oldest first) come from ``analytics.purchases``, read once by the caller."""
    names = list(orgs)
    today = as_of.date()
    history = _histories(con, names, as_of)
    total = history.group_by("date").agg(pl.col("credits").sum()).sort("date")
    mtd = dict(
        history.filter(pl.col("date") >= today.replace(day=1))
        .group_by("org")
        .agg(pl.col("credits").sum())
        .iter_rows()
    )
    series = _dense_series(history, names, today)
    outlooks = {
        org: _org_outlook(
            *series[org],
            int(mtd.get(org, 0)),
            as_of,
            balances.get(org),
            caps.get(org),
            past_buys.get(org, np.zeros(0)),
        )
        for org in names
    }
    per_org = pl.DataFrame(
        {
            "org": names,
            "mtd_credits": [int(mtd.get(o, 0)) for o in names],
            "month_end_mid": [outlooks[o][0] for o in names],
            "runout_date": [outlooks[o][1] for o in names],
            "cap_bound_date": [outlooks[o][2] for o in names],
        },
        schema_overrides={"runout_date": pl.Date, "cap_bound_date": pl.Date},
    )
    days = pl.date_range(today, today + timedelta(days=HORIZON_DAYS - 1), "1d", eager=True)
    future = pl.DataFrame(
        {"date": days, "credits": np.sum([o[3] for o in outlooks.values()], axis=0)}
    )
    return ManyForecast(per_org, history, future, month_end(total, as_of))
