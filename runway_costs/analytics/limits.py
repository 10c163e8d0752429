"""Rate-limit use per model, from the step-function ``model_snapshots``.

A row is stored only when something changed, so each row holds from its ``taken_at`` until
the next row for that (org, model), and the last row until ``as_of``. ``daily_generations``
is the API's rolling-24h count of task creations; ``max_daily_generations`` the tier limit
(NULL for a model seen in usage but absent from the tier, then ratios are NULL too).

Public API:

- ``limit_use(con, as_of, orgs=None, high_ratio=0.8) -> pl.DataFrame``, per (org, model):
  ``daily_generations``, ``max_daily_generations``, ``usage_ratio`` (now), ``max_concurrent_
  generations``, ``peak_7d`` / ``peak_30d`` (highest rolling-24h count in the window),
  ``hours_high_7d`` / ``hours_high_30d`` (hours at ``high_ratio`` of the limit or more),
  ``limit_hits_7d`` / ``limit_hits_30d`` (times the count reached the limit: transitions
  from below to at-or-above), ``observed_at`` (time of the row in force).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import duckdb
import polars as pl

from runway_costs.analytics.spend import known_orgs, query

__all__ = ["limit_use"]


def limit_use(
    con: duckdb.DuckDBPyConnection,
    as_of: datetime,
    orgs: Sequence[str] | None = None,
    high_ratio: float = 0.8,
) -> pl.DataFrame:
    """Now, peaks, hours near the limit and limit hits over 7 and 30 days per model."""
    return query(
        con,
        """
        WITH m AS (
            SELECT org, model, taken_at, daily_generations AS gens,
                   max_daily_generations AS lim, max_concurrent_generations AS conc,
                   lead(taken_at) OVER w AS next_at,
                   lag(daily_generations) OVER w AS prev_gens,
                   lag(max_daily_generations) OVER w AS prev_lim
            FROM model_snapshots
            WHERE taken_at <= $as_of AND list_contains($orgs, org)
            WINDOW w AS (PARTITION BY org, model ORDER BY taken_at)),
        iv AS (SELECT *, COALESCE(next_at, $as_of) AS until,
                      lim IS NOT NULL AND gens >= $high * lim AS high,
                      lim IS NOT NULL AND gens >= lim
                        AND (prev_gens IS NULL OR prev_lim IS NULL OR prev_gens < prev_lim) AS hit
               FROM m),
        agg AS (
            SELECT org, model,
                max(gens) FILTER (WHERE until > $from7) AS peak_7d,
                max(gens) FILTER (WHERE until > $from30) AS peak_30d,
                COALESCE(sum(epoch(until - greatest(taken_at, $from7)))
                    FILTER (WHERE until > $from7 AND high), 0) / 3600.0 AS hours_high_7d,
                COALESCE(sum(epoch(until - greatest(taken_at, $from30)))
                    FILTER (WHERE until > $from30 AND high), 0) / 3600.0 AS hours_high_30d,
                count(*) FILTER (WHERE taken_at > $from7 AND hit) AS limit_hits_7d,
                count(*) FILTER (WHERE taken_at > $from30 AND hit) AS limit_hits_30d
            FROM iv GROUP BY org, model)
        SELECT iv.org, iv.model, iv.gens AS daily_generations,
               iv.lim AS max_daily_generations,
               CASE WHEN iv.lim > 0 THEN iv.gens / iv.lim END AS usage_ratio,
               iv.conc AS max_concurrent_generations,
               agg.peak_7d, agg.peak_30d, agg.hours_high_7d, agg.hours_high_30d,
               agg.limit_hits_7d, agg.limit_hits_30d, iv.taken_at AS observed_at
        FROM iv JOIN agg USING (org, model)
        WHERE iv.next_at IS NULL
        ORDER BY iv.org, iv.model
        """,
        {
            "as_of": as_of,
            "from7": as_of - timedelta(days=7),
            "from30": as_of - timedelta(days=30),
            "high": high_ratio,
            "orgs": list(orgs) if orgs is not None else known_orgs(con),
        },
    )
