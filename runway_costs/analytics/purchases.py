"""Credit purchases, reconstructed, and the headroom left under the 30-day purchase cap.

The API reports a balance, never the purchases; but a balance that rises more than the
day's spending explains was topped up:

    purchases(day) = max(0, balance_end(day) - balance_end(day - 1) + spend(day))

``balance_end(day)`` is the step-function value of ``org_snapshots`` (a row only on change)
at the end of that UTC day, and it is *known* only for a day on which a successful
collection that reads the balance (kind ``full`` or ``snapshot``) finished: before
collection started, or while it was stopped, a constant balance would otherwise look like
purchases equal to spend. Unknown days give NULL purchases and count as 0 in sums; the
``observed_days`` column says how much of the 30-day window was seen.

So "bought in the last 30 days" is only a lower bound until 30 whole days are observed:
right after a first backfill nothing is known, not 0. Wherever the figure is shown it
comes with its window (``describe_purchases``): ``purchases_observed_since`` is the start
(00:00 UTC) of the first window day whose purchases are known, ``balances_observed_since``
when the first successful balance collection finished (a day's purchases need the balance
at the end of the day before, so the first observed day itself is still unknown).

Public API:

- ``org_state(con, at, orgs=None) -> pl.DataFrame``
  org, taken_at, balance_credits, cap_credits: the latest snapshot at or before ``at``.
- ``purchases_daily(con, orgs, start, end, spend=None) -> pl.DataFrame``
  org, date, balance_end, spend, purchases (NULL where a balance is unknown); every read
  bounded by the window's dates (``spend``: the daily net spend, when already read).
- ``purchase_headroom(con, as_of, orgs=None, credit_usd=CREDIT_USD) -> pl.DataFrame``
  org, balance_credits, cap_credits, purchases_30d_credits, headroom_credits,
  cap_used_ratio, observed_days, purchases_observed_since, balances_observed_since and
  ``*_usd`` - the window is ``core.windows.window_start(as_of) .. as_of``.
- ``balances_observed_since(con, orgs) -> pl.DataFrame``: org, balances_observed_since.
- ``describe_purchases(credits, observed_days, observed_since, balances_since=None) -> str``
  e.g. "1,200", "0 since 2026-11-25 00:00 UTC (1 of 30 days known)", "unknown: ...".
- ``PurchasesWindow.of(observed_days, observed_since, balances_since=None)``: the window
  as a value: ``known``, ``complete`` (all 30 days), ``days``, ``since``, ``reason`` and
  ``text`` ("in the last 30 days", "since ...", "unknown: ..."); what follows for the
  figures derived from it: ``headroom_text(credits)`` ("260,000", "at most 260,000 ...")
  and ``assumption`` (None, or the line every headroom / cap-bound figure must carry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import duckdb
import polars as pl

from runway_costs.analytics.orgs import orgs_with_data
from runway_costs.analytics.spend import query
from runway_costs.core.money import CREDIT_USD, usd
from runway_costs.core.windows import PURCHASE_WINDOW_DAYS, window_start

__all__ = [
    "PurchasesWindow",
    "balances_observed_since",
    "describe_purchases",
    "org_state",
    "purchase_headroom",
    "purchases_daily",
]


def org_state(
    con: duckdb.DuckDBPyConnection, at: datetime, orgs: Sequence[str] | None = None
) -> pl.DataFrame:
    """Balance and cap in force at ``at`` (naive UTC) per org; orgs never seen are absent.
    One grouped read (the latest row per org: taken_at is unique per org), no window."""
    return query(
        con,
        """
        SELECT org, max(taken_at) AS taken_at,
               arg_max(credit_balance, taken_at) AS balance_credits,
               arg_max(max_monthly_credit_spend, taken_at) AS cap_credits
        FROM org_snapshots
        WHERE taken_at <= $at AND org IN (SELECT unnest($orgs::VARCHAR[]))
        GROUP BY org ORDER BY org
        """,
        {"at": at, "orgs": list(orgs) if orgs is not None else orgs_with_data(con)},
    )


def purchases_daily(
    con: duckdb.DuckDBPyConnection,
    orgs: Sequence[str] | None,
    start: date,
    end: date,
    spend: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Reconstructed purchases per org and day in [start, end] (see the module docstring).

    Every read is bounded by the window's dates: each day's last snapshot from the day
    before ``start`` to ``end``, and, only for an org with no snapshot on that first day,
    the one in force then (snapshots are kept only on change); the runs that observed a
    balance in the window. ``spend``: the orgs' net credits per (org, date) over the
    window when the caller has read them already (missing days count as no spend)."""
    names = list(orgs) if orgs is not None else orgs_with_data(con)
    params = {"orgs": names, "start": start, "end": end}
    balances = query(
        con,
        """
        WITH o AS (SELECT unnest($orgs::VARCHAR[]) AS org),
        days AS (
            SELECT o.org, CAST(d.range AS DATE) AS date
            FROM o CROSS JOIN range($start::DATE - INTERVAL 1 DAY,
                                    $end::DATE + INTERVAL 1 DAY, INTERVAL 1 DAY) d),
        -- each window day's last snapshot
        inside AS (
            SELECT org, CAST(taken_at AS DATE) AS date,
                   arg_max(credit_balance, taken_at) AS credit_balance
            FROM org_snapshots
            WHERE org IN (SELECT org FROM o)
              AND taken_at >= $start::DATE - INTERVAL 1 DAY
              AND taken_at < $end::DATE + INTERVAL 1 DAY
            GROUP BY org, date),
        -- the balance in force on the window's first day, for orgs without a row that day
        seed AS (
            SELECT org, CAST($start::DATE - INTERVAL 1 DAY AS DATE) AS date,
                   arg_max(credit_balance, taken_at) AS credit_balance
            FROM org_snapshots
            WHERE org IN (SELECT org FROM o EXCEPT
                          SELECT org FROM inside WHERE date = $start::DATE - INTERVAL 1 DAY)
              AND taken_at < $start::DATE - INTERVAL 1 DAY
            GROUP BY org),
        snap AS (SELECT * FROM inside UNION ALL SELECT * FROM seed),
        observed AS (
            SELECT DISTINCT org, CAST(finished_at AS DATE) AS date FROM collection_runs
            WHERE status = 'ok' AND kind IN ('full', 'snapshot')
              AND org IN (SELECT org FROM o)
              AND finished_at >= $start::DATE - INTERVAL 1 DAY
              AND finished_at < $end::DATE + INTERVAL 1 DAY),
        -- the step function at each day's end: the day's last row, else the last before
        filled AS (
            SELECT days.org, days.date,
                   last_value(s.credit_balance IGNORE NULLS) OVER (
                       PARTITION BY days.org ORDER BY days.date
                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS credit_balance
            FROM days LEFT JOIN snap s ON s.org = days.org AND s.date = days.date)
        SELECT filled.org, filled.date,
               CASE WHEN observed.date IS NOT NULL THEN filled.credit_balance END AS balance_end
        FROM filled
        LEFT JOIN observed ON observed.org = filled.org AND observed.date = filled.date
        ORDER BY filled.org, filled.date
        """,
        params,
    )
    if spend is None:
        spend = query(
            con,
            """
            SELECT org, date, CAST(SUM(credits) AS BIGINT) AS credits FROM daily_usage
            WHERE date BETWEEN $start AND $end AND org IN (SELECT unnest($orgs::VARCHAR[]))
            GROUP BY org, date
            """,
            params,
        )
    day_spend = spend.filter(pl.col("date").is_between(start, end)).select(
        "org", "date", spend=pl.col("credits").cast(pl.Int64)
    )
    change = pl.col("balance_end") - pl.col("balance_end").shift(1).over("org") + pl.col("spend")
    return (
        balances.join(day_spend, on=["org", "date"], how="left")
        .sort("org", "date")
        .with_columns(pl.col("spend").fill_null(0), pl.col("balance_end").cast(pl.Int64))
        .with_columns(purchases=pl.when(change > 0).then(change).when(change <= 0).then(0))
        .filter(pl.col("date") >= start)
        .select("org", "date", "balance_end", "spend", pl.col("purchases").cast(pl.Int64))
        .sort("org", "date")
    )


def purchase_headroom(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    orgs: Sequence[str] | None = None,
    credit_usd: float = CREDIT_USD,
) -> pl.DataFrame:
    """Rolling 30-day purchases against ``maxMonthlyCreditSpend``: what is left to buy."""
    names = list(orgs) if orgs is not None else orgs_with_data(con)
    window = purchases_daily(con, names, window_start(as_of), as_of)
    known = pl.col("purchases").is_not_null()
    sums = window.group_by("org").agg(
        purchases_30d_credits=pl.col("purchases").sum().cast(pl.Int64),
        observed_days=known.sum().cast(pl.Int64),
        purchases_observed_since=pl.col("date").filter(known).min().cast(pl.Datetime("us")),
    )
    state = org_state(con, datetime.combine(as_of + timedelta(days=1), time()), names)
    frame = (
        state.drop("taken_at")
        .join(sums, on="org", how="left")
        .join(balances_observed_since(con, names), on="org", how="left")
        .with_columns(
            pl.col("purchases_30d_credits").fill_null(0),
            pl.col("observed_days").fill_null(0),
        )
        .with_columns(
            headroom_credits=(pl.col("cap_credits") - pl.col("purchases_30d_credits")).clip(
                lower_bound=0
            ),
            cap_used_ratio=pl.when(pl.col("cap_credits") > 0).then(
                pl.col("purchases_30d_credits") / pl.col("cap_credits")
            ),
        )
    )
    return frame.with_columns(
        balance_usd=usd(pl.col("balance_credits"), credit_usd),
        cap_usd=usd(pl.col("cap_credits"), credit_usd),
        purchases_30d_usd=usd(pl.col("purchases_30d_credits"), credit_usd),
        headroom_usd=usd(pl.col("headroom_credits"), credit_usd),
    ).sort("org")


def balances_observed_since(
    con: duckdb.DuckDBPyConnection, orgs: Sequence[str] | None = None
) -> pl.DataFrame:
    """When each org's first successful balance-reading collection finished: nothing about
    its purchases before then can be known. Orgs never collected are absent."""
    return query(
        con,
        """
        SELECT org, min(finished_at) AS balances_observed_since FROM collection_runs
        WHERE status = 'ok' AND kind IN ('full', 'snapshot') AND org = ANY($orgs)
        GROUP BY org ORDER BY org
        """,
        {"orgs": list(orgs) if orgs is not None else orgs_with_data(con)},
    )


def _utc(at: datetime | date) -> str:
    if not isinstance(at, datetime):
        at = datetime.combine(at, time())
    return f"{at:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True, slots=True)
class PurchasesWindow:
    """The span a "bought in the last 30 days" figure covers: the whole window, or since
    when (the days before are unknown, not zero), or unknown altogether.

    ``known``: some day of the window has known purchases (or all do); ``days``: how many
    window days do; ``since``: 00:00 UTC of the first of them; ``balances_since``: when
    the first successful balance collection finished. ``text`` says it in the words every
    view uses; ``reason`` is why nothing is known (``None`` when something is).
    """

    known: bool
    days: int
    since: datetime | None
    balances_since: datetime | None = None

    @classmethod
    def of(
        cls,
        observed_days: int,
        observed_since: datetime | date | None,
        balances_since: datetime | None = None,
    ) -> PurchasesWindow:
        """From ``purchase_headroom``'s observed_days, purchases_observed_since and
        balances_observed_since."""
        if observed_since is not None and not isinstance(observed_since, datetime):
            observed_since = datetime.combine(observed_since, time())
        known = observed_days >= PURCHASE_WINDOW_DAYS or (
            observed_days > 0 and observed_since is not None
        )
        return cls(known, observed_days, observed_since, balances_since)

    @property
    def complete(self) -> bool:
        """Every day of the 30-day window is known: the figure is the whole window's."""
        return self.days >= PURCHASE_WINDOW_DAYS

    @property
    def reason(self) -> str | None:
        """Why nothing is known ("no balance collected yet", ...), or None."""
        if self.known:
            return None
        if self.balances_since is None:
            return "no balance collected yet"
        # a day's purchases need the balance at the end of the day before
        return f"balances collected only since {_utc(self.balances_since)}"

    @property
    def text(self) -> str:
        """The window in words: "in the last 30 days", "since 2026-11-25 00:00 UTC (2 of
        30 days known)" or "unknown: <reason>"."""
        if self.complete:
            return f"in the last {PURCHASE_WINDOW_DAYS} days"
        if not self.known:
            return f"unknown: {self.reason}"
        assert self.since is not None
        return f"since {_utc(self.since)} ({self.days} of {PURCHASE_WINDOW_DAYS} days known)"

    @property
    def assumption(self) -> str | None:
        """What a figure derived from the bought amount (left to buy under the cap, the
        date the cap binds) assumes when the window is not whole; None when it is."""
        if self.complete:
            return None
        if not self.known:
            return (
                f"purchases in the last {PURCHASE_WINDOW_DAYS} days are unknown "
                f"({self.reason}): counted as none, so this is a best case"
            )
        assert self.since is not None
        return (
            f"purchases before {_utc(self.since)} are unknown and counted as none, "
            "so this is a best case"
        )

    def headroom_text(self, credits: int | None) -> str:
        """Left to buy under the cap, in words: the figure when the whole window is known,
        else "at most N" (purchases before the known days could only lower it)."""
        if credits is None:
            return "unknown"
        if self.complete:
            return f"{credits:,}"
        return f"at most {credits:,}"


def describe_purchases(
    credits: int | None,
    observed_days: int,
    observed_since: datetime | date | None,
    balances_since: datetime | None = None,
) -> str:
    """A "bought, last 30 days" figure with its window: "1,200" when all 30 days are
    known, "0 since 2026-11-25 00:00 UTC (1 of 30 days known)", or "unknown: ..."."""
    window = PurchasesWindow.of(observed_days, observed_since, balances_since)
    if not window.known:
        return window.text
    number = f"{credits or 0:,}"
    return number if window.complete else f"{number} {window.text}"
