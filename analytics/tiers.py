"""Which usage tier an organization is on, and how far it is from the next one.

The API reports limits, not a tier number, so the tier is the one in ``data/tiers.toml``
(``analytics.tiertable``) whose 30-day purchase cap equals the organization's
``maxMonthlyCreditSpend``; failing that, the tier whose concurrency and daily-generation
ranges hold the most of its models' limits.

A tier unlocks after ``unlock_days`` at the previous tier and ``unlock_spend_usd`` spent.
Progress is measured on the collected history, so both figures are lower bounds: days at
the current tier count from the first snapshot with the current cap (``since_first_
snapshot`` says the tier may be older), spend is all net spend collected (the API keeps
about 90 days).

Public API:

- ``detect_tier(table, cap_credits, model_limits) -> tuple[int | None, str | None]``
  (tier, "cap" | "limits" | None); ``model_limits`` has max_concurrent_generations and
  max_daily_generations columns.
- ``tier_progress(con, table, as_of, org, credit_usd=0.01) -> TierProgress``
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from analytics.spend import query
from analytics.tiertable import TierTable

__all__ = ["TierProgress", "detect_tier", "tier_progress"]


@dataclass(frozen=True, slots=True)
class TierProgress:
    org: str
    tier: int | None
    matched_by: str | None  # "cap" | "limits" | None (no snapshot, or nothing matches)
    cap_credits: int | None
    next_tier: int | None  # None at the top tier or when the tier is unknown
    next_unlock_days: int | None
    next_unlock_spend_usd: float | None
    days_at_tier: float | None
    since_first_snapshot: bool  # the tier began at or before collection started
    spend_usd: float  # net spend in the collected history
    days_progress: float | None  # 0..1
    spend_progress: float | None  # 0..1
    next_cap_credits: int | None

    @property
    def eligible(self) -> bool:
        """Both unlock conditions met on the collected history (the API then raises it)."""
        return self.days_progress == 1.0 and self.spend_progress == 1.0


def detect_tier(
    table: TierTable, cap_credits: int | None, model_limits: pl.DataFrame
) -> tuple[int | None, str | None]:
    """The tier whose cap equals ``cap_credits``, else whose ranges fit the most limits."""
    for t in table.tiers:
        if cap_credits is not None and t.purchase_cap_credits == cap_credits:
            return t.number, "cap"
    limits = model_limits.drop_nulls(["max_concurrent_generations", "max_daily_generations"])
    if limits.is_empty():
        return None, None
    best, best_fit = None, 0
    for t in table.tiers:  # five tiers: a loop over the table, not over data rows
        fit = limits.filter(
            pl.col("max_concurrent_generations").is_between(t.concurrency_min, t.concurrency_max)
            & pl.col("max_daily_generations").is_between(
                t.daily_generations_min, t.daily_generations_max
            )
        ).height
        if fit > best_fit:
            best, best_fit = t.number, fit
    return (best, "limits") if best is not None else (None, None)


def tier_progress(
    con: duckdb.DuckDBPyConnection,
    table: TierTable,
    as_of: datetime,
    org: str,
    credit_usd: float = 0.01,
) -> TierProgress:
    """Tier now, what the next tier needs, and progress toward it at ``as_of``."""
    caps = query(
        con,
        """
        SELECT taken_at, max_monthly_credit_spend AS cap FROM org_snapshots
        WHERE org = $org AND taken_at <= $as_of ORDER BY taken_at
        """,
        {"org": org, "as_of": as_of},
    )
    limits = query(
        con,
        """
        SELECT model,
               arg_max_null(max_concurrent_generations, taken_at) AS max_concurrent_generations,
               arg_max_null(max_daily_generations, taken_at) AS max_daily_generations
        FROM model_snapshots
        WHERE org = $org AND taken_at <= $as_of
        GROUP BY model  -- the latest row per model (NULL limits kept), ~2x faster than a window
        """,
        {"org": org, "as_of": as_of},
    )
    spent = con.execute(
        "SELECT COALESCE(SUM(credits), 0) FROM daily_usage WHERE org = ? AND date <= ?",
        [org, as_of.date()],
    ).fetchall()[0]
    spend_usd = round(float(spent[0] if spent else 0) * credit_usd, 2)
    cap = int(caps["cap"][-1]) if caps.height else None
    tier, matched_by = detect_tier(table, cap, limits)

    days_at_tier: float | None = None
    since_first = False
    if cap is not None:
        # The current cap's run of rows: after the last row with a different cap.
        changed = caps.filter(pl.col("cap") != cap)
        if changed.height:
            last_other = changed["taken_at"][-1]
            began = caps.filter(pl.col("taken_at") > last_other)["taken_at"][0]
        else:
            began, since_first = caps["taken_at"][0], True
        days_at_tier = round((as_of - began).total_seconds() / 86400, 2)

    nxt = next((t for t in table.tiers if tier is not None and t.number == tier + 1), None)
    days_progress = spend_progress = None
    if nxt is not None and days_at_tier is not None:
        days_progress = 1.0 if nxt.unlock_days == 0 else min(1.0, days_at_tier / nxt.unlock_days)
        spend_progress = (
            1.0 if nxt.unlock_spend_usd == 0 else min(1.0, spend_usd / nxt.unlock_spend_usd)
        )
    return TierProgress(
        org=org,
        tier=tier,
        matched_by=matched_by,
        cap_credits=cap,
        next_tier=nxt.number if nxt else None,
        next_unlock_days=nxt.unlock_days if nxt else None,
        next_unlock_spend_usd=nxt.unlock_spend_usd if nxt else None,
        days_at_tier=days_at_tier,
        since_first_snapshot=since_first,
        spend_usd=spend_usd,
        days_progress=days_progress,
        spend_progress=spend_progress,
        next_cap_credits=nxt.purchase_cap_credits if nxt else None,
    )
