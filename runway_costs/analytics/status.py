"""Where each organization stands now: balance, cap, last collection and model limits.

Reads the step-function tables (a row only on change), so "now" is the latest row per
org and per (org, model).

Public API:
    org_status(con, credit_usd=CREDIT_USD) -> pl.DataFrame
    model_status(con) -> pl.DataFrame
"""

from __future__ import annotations

import duckdb
import polars as pl

from runway_costs.core.money import CREDIT_USD


def org_status(con: duckdb.DuckDBPyConnection, credit_usd: float = CREDIT_USD) -> pl.DataFrame:
    """One row per org: latest balance and cap (credits and USD) and collection times.

    Columns: org, credit_balance, balance_usd, max_monthly_credit_spend, cap_usd,
    snapshot_at, last_success_at, last_run_at, last_status, last_error, and the usage
    history held (usage_first_date, usage_last_date, usage_days, usage_credits) so a
    reader can see at a glance how much history the database has for the org.
    """
    return con.sql(
        """
        WITH latest_snap AS (
            SELECT org, credit_balance, max_monthly_credit_spend, taken_at
            FROM org_snapshots
            QUALIFY row_number() OVER (PARTITION BY org ORDER BY taken_at DESC) = 1
        ),
        runs AS (
            SELECT org,
                   max(finished_at) FILTER (WHERE status = 'ok') AS last_success_at,
                   arg_max(finished_at, run_id) AS last_run_at,
                   arg_max(status, run_id) AS last_status,
                   arg_max(error, run_id) AS last_error
            FROM collection_runs GROUP BY org
        ),
        usage AS (
            SELECT org,
                   min(date) AS usage_first_date,
                   max(date) AS usage_last_date,
                   count(DISTINCT date) AS usage_days,
                   sum(credits) AS usage_credits
            FROM daily_usage GROUP BY org
        )
        SELECT r.org,
               s.credit_balance,
               round(s.credit_balance * $usd, 2) AS balance_usd,
               s.max_monthly_credit_spend,
               round(s.max_monthly_credit_spend * $usd, 2) AS cap_usd,
               s.taken_at AS snapshot_at,
               r.last_success_at, r.last_run_at, r.last_status, r.last_error,
               u.usage_first_date, u.usage_last_date,
               coalesce(u.usage_days, 0) AS usage_days,
               coalesce(u.usage_credits, 0)::BIGINT AS usage_credits
        FROM runs r LEFT JOIN latest_snap s USING (org) LEFT JOIN usage u USING (org)
        ORDER BY r.org
        """,
        params={"usd": credit_usd},
    ).pl()


def model_status(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Latest limits and rolling-24h generations per (org, model), sorted.

    Columns: org, model, max_concurrent_generations, max_daily_generations,
    daily_generations, taken_at.
    """
    return con.sql(
        """
        SELECT org, model, max_concurrent_generations, max_daily_generations,
               daily_generations, taken_at
        FROM model_snapshots
        QUALIFY row_number() OVER (PARTITION BY org, model ORDER BY taken_at DESC) = 1
        ORDER BY org, model
        """
    ).pl()
