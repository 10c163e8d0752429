"""What changed after the fact: every revision of a stored daily usage value.

The collector keeps each change of a stored (org, date, model) value in
``usage_revisions`` (same transaction as the upsert): when it was seen, the old and new
credits. Today's figure grows during the day, so most changes are a day filling in; a
**restatement** is a change to a day that was already over when the old value was
collected (``date < old_collected_at``'s day): the number a report may have been built on.
A **closed month** was restated when such a change was seen after that month ended.

Public API:

- ``revisions(con, orgs=None, start=None, end=None) -> pl.DataFrame``: org, date, model,
  seen_at, old_credits, new_credits (NULL: not reported), change_credits (new - old, a
  missing side as 0), restated (bool), sorted by seen_at, org, date, model; ``start`` and
  ``end`` bound the revised usage date (inclusive).
- ``restated_months(con, orgs, start, end) -> pl.DataFrame``: per month (first day) of
  [start, end] that changed after it closed: month, change_credits, changes, last_seen_at.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb
import polars as pl

from runway_costs.analytics.keys import table_exists
from runway_costs.analytics.spend import query

__all__ = ["restated_months", "revisions"]

_SCHEMA = pl.Schema(
    {
        "org": pl.String(),
        "date": pl.Date(),
        "model": pl.String(),
        "seen_at": pl.Datetime("us"),
        "old_credits": pl.Int64(),
        "new_credits": pl.Int64(),
        "change_credits": pl.Int64(),
        "restated": pl.Boolean(),
    }
)


def revisions(
    con: duckdb.DuckDBPyConnection,
    orgs: Sequence[str] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> pl.DataFrame:
    """Every kept change of a stored daily value (see the module docstring)."""
    if not table_exists(con, "usage_revisions"):
        return pl.DataFrame(schema=_SCHEMA)
    frame = query(
        con,
        """
        SELECT org, date, model, seen_at, old_credits, new_credits,
               CAST(coalesce(new_credits, 0) - coalesce(old_credits, 0) AS BIGINT)
                   AS change_credits,
               coalesce(date < CAST(old_collected_at AS DATE), false) AS restated
        FROM usage_revisions
        WHERE ($orgs IS NULL OR org = ANY($orgs::VARCHAR[]))
          AND ($start IS NULL OR date >= $start) AND ($end IS NULL OR date <= $end)
        ORDER BY seen_at, org, date, model
        """,
        {"orgs": None if orgs is None else list(orgs), "start": start, "end": end},
    )
    return frame.cast(_SCHEMA)


def restated_months(
    con: duckdb.DuckDBPyConnection, orgs: Sequence[str] | None, start: date, end: date
) -> pl.DataFrame:
    """Months of [start, end] whose figures changed after the month had closed."""
    frame = revisions(con, orgs, start, end)
    month = pl.col("date").dt.truncate("1mo")
    closed = frame.filter(
        pl.col("restated") & (pl.col("seen_at").dt.date() >= month.dt.offset_by("1mo"))
    )
    return (
        closed.group_by(month.alias("month"))
        .agg(
            change_credits=pl.col("change_credits").sum().cast(pl.Int64),
            changes=pl.len().cast(pl.Int64),
            last_seen_at=pl.col("seen_at").max(),
        )
        .sort("month")
    )
