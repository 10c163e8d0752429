"""A small hand-written database whose every figure the dashboard tests know by heart.

Two organizations, ``alpha`` and ``beta``; the last successful collection is on
2025-03-20, so the pages treat that day as "today". The expected numbers in the
tests are worked out by hand from these rows (see the comments).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from runway_costs.collector.store import rebuild_model_daily

SCHEMA = Path(__file__).resolve().parents[2] / "runway_costs" / "collector" / "schema.sql"

# (org, date, model, credits)
USAGE = [
    ("alpha", "2025-02-27", "gen4.5", 100),
    ("alpha", "2025-03-01", "gen4.5", 200),
    ("alpha", "2025-03-01", "veo3.1", 400),
    ("alpha", "2025-03-10", "gen4.5", -50),  # refunds beat charges that day
    ("alpha", "2025-03-20", "veo3.1", 300),
    ("beta", "2025-03-05", "gen4_turbo", 1000),
    ("beta", "2025-03-20", "gen4.5", 120),
]
# (org, taken_at, credit_balance, max_monthly_credit_spend)
ORG_SNAPSHOTS = [
    ("alpha", "2025-03-01 00:00:00", 5000, 10000),
    ("alpha", "2025-03-20 09:00:00", 4300, 10000),
    ("beta", "2025-03-10 00:00:00", 20000, 50000),
]
# (org, taken_at, model, max_concurrent, max_daily, daily_generations)
MODEL_SNAPSHOTS = [
    ("alpha", "2025-03-19 08:00:00", "gen4.5", 2, 200, 10),
    ("alpha", "2025-03-20 09:00:00", "gen4.5", 2, 200, 25),
    ("alpha", "2025-03-20 09:00:00", "veo3.1", 1, 50, 45),
    ("beta", "2025-03-10 00:00:00", "gen4_turbo", 3, 500, 100),
]
# (org, kind, started_at, finished_at, status, error)
RUNS = [
    ("alpha", "full", "2025-03-20 09:59:00", "2025-03-20 10:00:00", "ok", None),
    ("beta", "full", "2025-03-20 09:59:00", "2025-03-20 10:00:00", "ok", None),
    ("beta", "snapshot", "2025-03-20 10:59:00", "2025-03-20 11:00:00", "failed", "HTTP 503"),
]


def create_empty(path: Path) -> None:
    """A database with the collector's tables and no rows (nothing collected yet)."""
    con = duckdb.connect(str(path))
    try:
        con.execute(SCHEMA.read_text(encoding="utf-8"))
    finally:
        con.close()


def create(path: Path, last_success: datetime | None = None) -> None:
    """The seeded database; ``last_success`` moves the ok runs' finish time (freshness)."""
    create_empty(path)
    con = duckdb.connect(str(path))
    try:
        con.executemany(
            "INSERT INTO daily_usage VALUES (?, ?::DATE, ?, ?, TIMESTAMP '2025-03-20 10:00:00')",
            USAGE,
        )
        con.executemany("INSERT INTO org_snapshots VALUES (?, ?::TIMESTAMP, ?, ?)", ORG_SNAPSHOTS)
        con.executemany(
            "INSERT INTO model_snapshots VALUES (?, ?::TIMESTAMP, ?, ?, ?, ?)", MODEL_SNAPSHOTS
        )
        rebuild_model_daily(con)  # the day rollup the collector keeps with its snapshots
        for org, kind, started, finished, status, error in RUNS:
            if last_success is not None and status == "ok":
                finished = last_success.isoformat(sep=" ")
            con.execute(
                """INSERT INTO collection_runs (org, kind, started_at, finished_at,
                   status, error, http_calls, retries)
                   VALUES (?, ?, ?::TIMESTAMP, ?::TIMESTAMP, ?, ?, 2, 0)""",
                [org, kind, started, finished, status, error],
            )
    finally:
        con.close()


def create_steady(path: Path, orgs: tuple[str, ...] = ("steady",)) -> None:
    """Each org spends exactly 100 credits every day from 2025-01-01; collected at noon on
    2025-03-20 with a balance of 3,000. A constant history makes the forecast hand-checkable:
    weekday factors 1, no trend, every backtest ratio 1 (a zero-width interval)."""
    create_empty(path)
    con = duckdb.connect(str(path))
    try:
        for org in orgs:
            con.execute(
                """INSERT INTO daily_usage
                   SELECT ?, d::DATE, 'gen4.5', 100, TIMESTAMP '2025-03-20 12:00:00'
                   FROM range(DATE '2025-01-01', DATE '2025-03-21', INTERVAL 1 DAY) t(d)""",
                [org],
            )
            con.execute(
                "INSERT INTO org_snapshots VALUES (?, TIMESTAMP '2025-03-20 12:00:00', 3000,"
                " 10000)",
                [org],
            )
            con.execute(
                """INSERT INTO collection_runs (org, kind, started_at, finished_at, status,
                   http_calls, retries) VALUES (?, 'full', TIMESTAMP '2025-03-20 11:59:00',
                   TIMESTAMP '2025-03-20 12:00:00', 'ok', 2, 0)""",
                [org],
            )
    finally:
        con.close()


def add_quiet_org(path: Path) -> None:
    """``quiet``: collected (balance 800, cap 10,000) but has never spent a credit."""
    con = duckdb.connect(str(path))
    try:
        con.execute(
            "INSERT INTO org_snapshots VALUES ('quiet', TIMESTAMP '2025-03-20 09:00:00', 800,"
            " 10000)"
        )
        con.execute(
            """INSERT INTO collection_runs (org, kind, started_at, finished_at, status,
               http_calls, retries) VALUES ('quiet', 'full', TIMESTAMP '2025-03-20 09:59:00',
               TIMESTAMP '2025-03-20 10:00:00', 'ok', 2, 0)"""
        )
    finally:
        con.close()


ALERTS_SCHEMA = (
    Path(__file__).resolve().parents[2] / "runway_costs" / "analytics" / "alerts_schema.sql"
)


def add_alerts(path: Path) -> None:
    """One open alert (alpha runs out soon) and one resolved (beta's budget), as a check
    would have left them, with their three announced events."""
    con = duckdb.connect(str(path))
    try:
        con.execute(ALERTS_SCHEMA.read_text(encoding="utf-8"))
        con.execute(
            """INSERT INTO alert_state VALUES
            ('alpha', 'runout', '', '2025-03', 'open', 'warning', 'warning', 5, 7,
             'alpha runs out of credits in 5 days (2025-03-25) at the forecast rate',
             TIMESTAMP '2025-03-20 10:00:00', TIMESTAMP '2025-03-20 10:00:00', NULL),
            ('beta', 'budget_used', 'all models', '2025-03', 'resolved', 'warning', 'warning',
             0.85, 0.8, 'beta used 85% of its monthly budget',
             TIMESTAMP '2025-03-18 10:00:00', TIMESTAMP '2025-03-19 10:00:00',
             TIMESTAMP '2025-03-20 10:00:00')"""
        )
        con.execute(
            """INSERT INTO alert_events (event_at, org, rule, target, key, status, severity,
                                         value, threshold, message) VALUES
            (TIMESTAMP '2025-03-18 10:00:00', 'beta', 'budget_used', 'all models', '2025-03',
             'fired', 'warning', 0.85, 0.8, 'beta used 85% of its monthly budget'),
            (TIMESTAMP '2025-03-20 10:00:00', 'beta', 'budget_used', 'all models', '2025-03',
             'resolved', 'warning', 0.85, 0.8, 'beta used 85% of its monthly budget'),
            (TIMESTAMP '2025-03-20 10:00:00', 'alpha', 'runout', '', '2025-03', 'fired',
             'warning', 5, 7,
             'alpha runs out of credits in 5 days (2025-03-25) at the forecast rate')"""
        )
    finally:
        con.close()
