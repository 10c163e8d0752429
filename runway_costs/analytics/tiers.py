"""Which usage tier an organization is on, and how far it is from the next one.

The API reports limits, not a tier number, so the tier is the one in the tier table
(``runway_costs/data/tiers.toml``, ``analytics.tiertable``) whose 30-day purchase cap equals
the organization's ``maxMonthlyCreditSpend``; failing that, the tier whose concurrency and
daily-generation ranges hold the most of its models' limits.

A tier unlocks after ``unlock_days`` at the previous tier and ``unlock_spend_usd`` spent.
Progress is measured on the collected history, so both figures are lower bounds: days at
the current tier count from the first snapshot with the current cap (``since_first_
snapshot`` says the tier may be older), spend is all net spend collected (the API keeps
about 90 days).

Everything is computed for a set of organizations at once (one query for caps and spend,
one for the latest limits, tier matching as polars joins against the tier table), so the
"all organizations" dashboard view costs the same few queries as one organization.

Public API:

- ``detect_tier(table, cap_credits, model_limits) -> tuple[int | None, str | None]``
  (tier, "cap" | "limits" | None); ``model_limits`` has max_concurrent_generations and
  max_daily_generations columns.
- ``detect_tiers(table, caps, model_limits) -> pl.DataFrame``: the same for many orgs;
  ``caps`` has org, cap_credits; ``model_limits`` org plus the two limit columns; returns
  org, tier, matched_by for every org of ``caps``.
- ``latest_limits(con, as_of, orgs, since=None) -> pl.DataFrame``: per (org, model) the
  limits of the latest row at or before ``as_of`` (NULL limits kept), only rows from
  ``since`` on when given.
- ``tier_facts(con, as_of, orgs, runs=None) -> pl.DataFrame``: org, cap_credits, cap_since,
  since_first_snapshot, spend_credits.
- ``cap_runs(con, as_of, orgs, runs=None) -> CapRuns``: the cap columns alone; given an
  earlier ``CapRuns``, only the snapshots after it are read (the stored outlooks keep one,
  so a cycle never reads all of ``org_snapshots``).
- ``progress_from(table, as_of, facts, model_limits, credit_usd=CREDIT_USD)
  -> list[TierProgress]``
- ``tier_progress_many(con, table, as_of, orgs, credit_usd=CREDIT_USD) -> list[TierProgress]``
- ``tier_progress(con, table, as_of, org, credit_usd=CREDIT_USD) -> TierProgress``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from runway_costs.analytics.spend import query, spend_through_sql
from runway_costs.analytics.tiertable import TierTable
from runway_costs.core.money import CREDIT_USD, usd

__all__ = [
    "CapRuns",
    "TierProgress",
    "cap_runs",
    "detect_tier",
    "detect_tiers",
    "latest_limits",
    "progress_from",
    "tier_facts",
    "tier_progress",
    "tier_progress_many",
]

LIMIT_COLUMNS = ("max_concurrent_generations", "max_daily_generations")


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


def _tier_frame(table: TierTable) -> pl.DataFrame:
    """The tier table as rows; ``pos`` keeps its order, which breaks ties (lowest first)."""
    return pl.DataFrame(
        {
            "pos": list(range(len(table.tiers))),
            "tier": [t.number for t in table.tiers],
            "cap_credits": [t.purchase_cap_credits for t in table.tiers],
            "conc_min": [t.concurrency_min for t in table.tiers],
            "conc_max": [t.concurrency_max for t in table.tiers],
            "daily_min": [t.daily_generations_min for t in table.tiers],
            "daily_max": [t.daily_generations_max for t in table.tiers],
        },
        schema_overrides={"pos": pl.Int64, "tier": pl.Int64, "cap_credits": pl.Int64},
    )


def detect_tiers(table: TierTable, caps: pl.DataFrame, model_limits: pl.DataFrame) -> pl.DataFrame:
    """Per org of ``caps``: the tier whose cap equals its cap, else whose ranges fit the
    most of its models' limits (first such tier in table order); tier NULL otherwise."""
    tiers = _tier_frame(table)
    orgs = caps.select(pl.col("org").cast(pl.String), pl.col("cap_credits").cast(pl.Int64))
    by_cap = (
        orgs.join(tiers.select("cap_credits", "pos", "tier"), on="cap_credits")
        .sort("pos")
        .group_by("org")
        .agg(cap_tier=pl.col("tier").first())
    )
    fits = (
        model_limits.select(pl.col("org").cast(pl.String), *LIMIT_COLUMNS)
        .drop_nulls(list(LIMIT_COLUMNS))
        .join(tiers, how="cross")
        .filter(
            pl.col("max_concurrent_generations").is_between("conc_min", "conc_max")
            & pl.col("max_daily_generations").is_between("daily_min", "daily_max")
        )
        .group_by("org", "pos", "tier")
        .agg(fit=pl.len())
        .sort(["fit", "pos"], descending=[True, False])
        .group_by("org")
        .agg(limits_tier=pl.col("tier").first())
    )
    return (
        orgs.select("org")
        .join(by_cap, on="org", how="left")
        .join(fits, on="org", how="left")
        .select(
            "org",
            tier=pl.coalesce("cap_tier", "limits_tier"),
            matched_by=pl.when(pl.col("cap_tier").is_not_null())
            .then(pl.lit("cap"))
            .when(pl.col("limits_tier").is_not_null())
            .then(pl.lit("limits")),
        )
    )


def detect_tier(
    table: TierTable, cap_credits: int | None, model_limits: pl.DataFrame
) -> tuple[int | None, str | None]:
    """The tier whose cap equals ``cap_credits``, else whose ranges fit the most limits."""
    caps = pl.DataFrame(
        {"org": [""], "cap_credits": [cap_credits]},
        schema={"org": pl.String, "cap_credits": pl.Int64},
    )
    limits = model_limits.select(*LIMIT_COLUMNS).with_columns(org=pl.lit(""))
    row = detect_tiers(table, caps, limits).row(0, named=True)
    return row["tier"], row["matched_by"]


def latest_limits(
    con: duckdb.DuckDBPyConnection,
    as_of: datetime,
    orgs: Sequence[str],
    since: datetime | None = None,
) -> pl.DataFrame:
    """Per (org, model): the limits of the latest row at or before ``as_of`` (NULL limits
    kept: a model that left the tier), from rows taken at ``since`` or later if given."""
    return query(
        con,
        """
        SELECT org, model,
               arg_max_null(max_concurrent_generations, taken_at) AS max_concurrent_generations,
               arg_max_null(max_daily_generations, taken_at) AS max_daily_generations,
               max(taken_at) AS taken_at
        FROM model_snapshots
        WHERE org = ANY($orgs) AND taken_at <= $as_of
          AND ($since IS NULL OR taken_at >= $since)
        GROUP BY org, model
        ORDER BY org, model
        """,
        {"orgs": list(orgs), "as_of": as_of, "since": since},
    )


def tier_facts(
    con: duckdb.DuckDBPyConnection,
    as_of: datetime,
    orgs: Sequence[str],
    runs: CapRuns | None = None,
) -> pl.DataFrame:
    """Per org: the latest 30-day cap, when its current run of that cap began (after the
    last snapshot with another cap), whether that is the first snapshot, and net spend.
    ``runs``: each org's run at an earlier instant (``cap_runs``), so only the snapshots
    after it are read (orgs it does not hold: all their history)."""
    source, params = _cap_rows(as_of, orgs, runs)
    return query(
        con,
        f"""
        WITH {source},
        runs AS ({_RUNS_SQL}),
        -- every org's sum, then the join keeps the asked ones: cheaper than a per-row filter
        spent AS ({spend_through_sql(con)})
        SELECT runs.org, runs.cap_credits, runs.cap_since, runs.since_first_snapshot,
               CAST(COALESCE(spent.credits, 0) AS BIGINT) AS spend_credits
        FROM runs LEFT JOIN spent ON spent.org = runs.org
        ORDER BY runs.pos
        """,
        params | {"day": as_of.date()},
    )


@dataclass(frozen=True)
class CapRuns:
    """Each org's run of its cap at ``at`` (``cap_runs``' rows: org, cap_credits, cap_since,
    since_first_snapshot; cap NULL: no snapshot yet), kept by the stored outlooks so the
    next cycle reads only the snapshots after ``at`` instead of all history."""

    at: datetime
    rows: pl.DataFrame


def cap_runs(
    con: duckdb.DuckDBPyConnection,
    as_of: datetime,
    orgs: Sequence[str],
    runs: CapRuns | None = None,
) -> CapRuns:
    """``tier_facts``' cap columns at ``as_of`` (org, cap_credits, cap_since,
    since_first_snapshot), from ``runs`` (at or before ``as_of``) and the snapshots after
    it, or from all history without it."""
    source, params = _cap_rows(as_of, orgs, runs)
    rows = query(
        con,
        f"""
        WITH {source}
        SELECT org, cap_credits, cap_since, since_first_snapshot
        FROM ({_RUNS_SQL}) ORDER BY pos
        """,
        params,
    )
    return CapRuns(as_of, rows)


# Per org of o: its latest cap, the start of its run (the first row after the last row with
# another cap; the first row when there is none) and whether that is the first snapshot,
# from the rows c. A kept run stands in c as two rows: its first row at cap_since, and,
# unless it began at the first snapshot, a row with cap NULL just before (another cap:
# real caps are never NULL). Equal to the figures over all history (tests/analytics).
_RUNS_SQL = """
        WITH latest AS (SELECT org, arg_max(cap, taken_at) AS cap, min(taken_at) AS first_at
                        FROM c GROUP BY org),
        other AS (SELECT c.org, max(c.taken_at) AS last_other
                  FROM c JOIN latest ON c.org = latest.org
                   AND c.cap IS DISTINCT FROM latest.cap
                  GROUP BY c.org),
        began AS (SELECT c.org, min(c.taken_at) AS began
                  FROM c JOIN other ON c.org = other.org AND c.taken_at > other.last_other
                  GROUP BY c.org)
        SELECT o.org, o.pos, latest.cap AS cap_credits,
               COALESCE(began.began, latest.first_at) AS cap_since,
               latest.org IS NOT NULL AND other.org IS NULL AS since_first_snapshot
        FROM o LEFT JOIN latest ON latest.org = o.org
               LEFT JOIN other ON other.org = o.org
               LEFT JOIN began ON began.org = o.org
"""


def _cap_rows(
    as_of: datetime, orgs: Sequence[str], runs: CapRuns | None
) -> tuple[str, dict[str, object]]:
    """The CTEs ``o`` (the orgs asked, in order) and ``c`` (org, taken_at, cap): the
    snapshots at or before ``as_of``; with ``runs``, only those after ``runs.at`` for the
    orgs it holds, each led by its run's two stand-in rows (``_RUNS_SQL``)."""
    names = list(orgs)
    params: dict[str, object] = {"orgs": names, "as_of": as_of}
    o = "o AS (SELECT unnest($orgs) AS org, generate_subscripts($orgs, 1) AS pos)"
    if runs is None:
        return (
            o
            + """,
        c AS (SELECT org, taken_at, max_monthly_credit_spend AS cap FROM org_snapshots
              WHERE org = ANY($orgs) AND taken_at <= $as_of)""",
            params,
        )
    if runs.at > as_of:
        raise ValueError(f"cap runs kept at {runs.at}, after {as_of}")
    kept = runs.rows.filter(pl.col("org").is_in(names))
    known = kept["org"].to_list()
    fresh = [org for org in dict.fromkeys(names) if org not in set(known)]
    held = kept.filter(pl.col("cap_credits").is_not_null())
    params |= {
        "since": runs.at,
        "known": known,
        "k_org": held["org"].to_list(),
        "k_cap": held["cap_credits"].to_list(),
        "k_since": held["cap_since"].to_list(),
        "k_first": held["since_first_snapshot"].to_list(),
    }
    # the orgs not held: all their history (a branch only when there are some, so the
    # usual read is bounded by its instants and DuckDB skips older row groups)
    fresh_rows = (
        """
              UNION ALL
              SELECT org, taken_at, max_monthly_credit_spend FROM org_snapshots
              WHERE org = ANY($fresh) AND taken_at <= $as_of"""
        if fresh
        else ""
    )
    if fresh:
        params["fresh"] = fresh
    return (
        o
        + """,
        k AS (SELECT unnest($k_org::VARCHAR[]) AS org, unnest($k_cap::BIGINT[]) AS cap,
                     unnest($k_since::TIMESTAMP[]) AS since,
                     unnest($k_first::BOOLEAN[]) AS first),
        c AS (SELECT org, taken_at, max_monthly_credit_spend AS cap FROM org_snapshots
              WHERE org = ANY($known) AND taken_at > $since AND taken_at <= $as_of"""
        + fresh_rows
        + """
              UNION ALL
              SELECT org, since, cap FROM k
              UNION ALL
              SELECT org, since - INTERVAL 1 MICROSECOND, NULL FROM k WHERE NOT first)""",
        params,
    )


def progress_from(
    table: TierTable,
    as_of: datetime,
    facts: pl.DataFrame,
    model_limits: pl.DataFrame,
    credit_usd: float = CREDIT_USD,
) -> list[TierProgress]:
    """Tier, next tier and progress per org of ``facts`` (from ``tier_facts``), given each
    org's latest model limits (org, max_concurrent_generations, max_daily_generations)."""
    detected = detect_tiers(table, facts, model_limits)
    rows = facts.join(detected, on="org", how="left", maintain_order="left")
    by_number = {t.number: t for t in table.tiers}
    out = []
    for row in rows.iter_rows(named=True):  # one per organization, not per data row
        out.append(_progress(row, by_number, as_of, credit_usd))
    return out


def _progress(row: dict, by_number: dict, as_of: datetime, credit_usd: float) -> TierProgress:
    tier, cap = row["tier"], row["cap_credits"]
    spend_usd = usd(float(row["spend_credits"]), credit_usd)
    days_at_tier = None
    if cap is not None:
        days_at_tier = round((as_of - row["cap_since"]).total_seconds() / 86400, 2)
    nxt = by_number.get(tier + 1) if tier is not None else None
    days_progress = spend_progress = None
    if nxt is not None and days_at_tier is not None:
        days_progress = 1.0 if nxt.unlock_days == 0 else min(1.0, days_at_tier / nxt.unlock_days)
        spend_progress = (
            1.0 if nxt.unlock_spend_usd == 0 else min(1.0, spend_usd / nxt.unlock_spend_usd)
        )
    return TierProgress(
        org=row["org"],
        tier=tier,
        matched_by=row["matched_by"],
        cap_credits=cap,
        next_tier=nxt.number if nxt else None,
        next_unlock_days=nxt.unlock_days if nxt else None,
        next_unlock_spend_usd=nxt.unlock_spend_usd if nxt else None,
        days_at_tier=days_at_tier,
        since_first_snapshot=bool(row["since_first_snapshot"]),
        spend_usd=spend_usd,
        days_progress=days_progress,
        spend_progress=spend_progress,
        next_cap_credits=nxt.purchase_cap_credits if nxt else None,
    )


def tier_progress_many(
    con: duckdb.DuckDBPyConnection,
    table: TierTable,
    as_of: datetime,
    orgs: Sequence[str],
    credit_usd: float = CREDIT_USD,
) -> list[TierProgress]:
    """Tier now, what the next tier needs, and progress toward it, per org (two queries)."""
    if not orgs:
        return []
    return progress_from(
        table, as_of, tier_facts(con, as_of, orgs), latest_limits(con, as_of, orgs), credit_usd
    )


def tier_progress(
    con: duckdb.DuckDBPyConnection,
    table: TierTable,
    as_of: datetime,
    org: str,
    credit_usd: float = CREDIT_USD,
) -> TierProgress:
    """Tier now, what the next tier needs, and progress toward it at ``as_of``."""
    return tier_progress_many(con, table, as_of, [org], credit_usd)[0]
