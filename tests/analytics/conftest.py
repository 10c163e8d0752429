"""A small hand-written history in a real DuckDB file, built with the collector's schema."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

SCHEMA = Path(__file__).resolve().parents[2] / "runway_costs" / "collector" / "schema.sql"


def new_db(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute(SCHEMA.read_text(encoding="utf-8"))
    return con


def add_usage(con: duckdb.DuckDBPyConnection, org: str, day: date, model: str, credits: int):
    con.execute(
        "INSERT INTO daily_usage VALUES (?, ?, ?, ?, ?)",
        [org, day, model, credits, datetime.combine(day, datetime.min.time())],
    )


def add_snapshot(con, org: str, at: datetime, balance: int, cap: int = 10_000):
    con.execute("INSERT INTO org_snapshots VALUES (?, ?, ?, ?)", [org, at, balance, cap])


def add_model(con, org: str, at: datetime, model: str, gens: int, max_daily: int, conc: int = 2):
    con.execute(
        "INSERT INTO model_snapshots VALUES (?, ?, ?, ?, ?, ?)",
        [org, at, model, conc, max_daily, gens],
    )


def add_run(con, org: str, finished_at: datetime, kind: str = "full", status: str = "ok"):
    con.execute(
        """INSERT INTO collection_runs (org, kind, started_at, finished_at, status, error,
           http_calls, retries) VALUES (?, ?, ?, ?, ?, NULL, 2, 0)""",
        [org, kind, finished_at, finished_at, status],
    )


def build_acme(con: duckdb.DuckDBPyConnection) -> None:
    """acme: October tail plus 1-5 November 2026, two top-ups (2,000 and 3,000 credits).

    Daily net spend: 10-15 1000, 10-31 70, 11-01 300, 11-02 150, 11-03 380 (a -20 refund
    in it), 11-04 0, 11-05 50. beta spends only 10 credits on 11-03.
    """
    for day, model, credits in [
        (date(2026, 10, 15), "veo3.1", 1000),
        (date(2026, 10, 31), "gen4.5", 70),
        (date(2026, 11, 1), "gen4.5", 100),
        (date(2026, 11, 1), "veo3.1", 200),
        (date(2026, 11, 2), "gen4.5", 150),
        (date(2026, 11, 3), "gen4.5", -20),
        (date(2026, 11, 3), "veo3.1", 400),
        (date(2026, 11, 5), "gen4.5", 50),
    ]:
        add_usage(con, "acme", day, model, credits)
    add_usage(con, "beta", date(2026, 11, 3), "gen4_image", 10)
    for at, balance in [
        (datetime(2026, 10, 31, 22), 5000),
        (datetime(2026, 11, 1, 23), 4700),
        (datetime(2026, 11, 2, 12), 6550),
        (datetime(2026, 11, 3, 23, 50), 6170),
        (datetime(2026, 11, 5, 20), 9120),
    ]:
        add_snapshot(con, "acme", at, balance)
    for at in [
        datetime(2026, 10, 31, 23),
        datetime(2026, 11, 1, 23, 30),
        datetime(2026, 11, 2, 23),
        datetime(2026, 11, 3, 23, 55),
        datetime(2026, 11, 4, 23),
        datetime(2026, 11, 5, 23),
    ]:
        add_run(con, "acme", at)
    add_run(con, "acme", datetime(2026, 11, 5, 23, 30), kind="usage")


@pytest.fixture
def acme_db(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = new_db(tmp_path / "acme.duckdb")
    build_acme(con)
    yield con
    con.close()
