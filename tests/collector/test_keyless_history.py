"""The history tables without primary keys (issue #12): the writer keeps them unique, and a
database from before (keys present) is moved to the keyless layout once, rows intact."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest

from runway_costs.collector import store
from runway_costs.collector.models import ModelState, OrgSnapshot, UsageRow, UsageWindow
from runway_costs.collector.store import RunRecord, write_org_result, write_session
from tests.collector import reference_writer

T0 = datetime(2026, 11, 24, 12, 0)
T1 = datetime(2026, 11, 24, 12, 15)

# The four tables as schema version 1 declared them, keys included.
V1_DDL = """
CREATE SEQUENCE collection_run_seq;
CREATE TABLE org_snapshots (
    org VARCHAR NOT NULL, taken_at TIMESTAMP NOT NULL, credit_balance BIGINT NOT NULL,
    max_monthly_credit_spend BIGINT NOT NULL, PRIMARY KEY (org, taken_at));
CREATE TABLE model_snapshots (
    org VARCHAR NOT NULL, taken_at TIMESTAMP NOT NULL, model VARCHAR NOT NULL,
    max_concurrent_generations INTEGER, max_daily_generations INTEGER,
    daily_generations INTEGER NOT NULL, PRIMARY KEY (org, taken_at, model));
CREATE TABLE usage_revisions (
    org VARCHAR NOT NULL, date DATE NOT NULL, model VARCHAR NOT NULL,
    seen_at TIMESTAMP NOT NULL, old_credits BIGINT, new_credits BIGINT,
    old_collected_at TIMESTAMP, PRIMARY KEY (org, date, model, seen_at));
CREATE TABLE collection_runs (
    run_id BIGINT PRIMARY KEY DEFAULT nextval('collection_run_seq'), org VARCHAR NOT NULL,
    kind VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP NOT NULL,
    status VARCHAR NOT NULL, error VARCHAR, http_calls INTEGER NOT NULL,
    retries INTEGER NOT NULL, usage_start DATE, usage_before DATE,
    rows_changed INTEGER NOT NULL DEFAULT 0, usage_rows BIGINT, usage_credits BIGINT);
INSERT INTO org_snapshots VALUES ('prod', '2026-11-24 11:45:00', 900, 10000);
INSERT INTO model_snapshots VALUES ('prod', '2026-11-24 11:45:00', 'gen4.5', 2, 200, 7);
INSERT INTO usage_revisions VALUES
    ('prod', '2026-11-22', 'gen4.5', '2026-11-24 11:45:00', 40, 45, '2026-11-23 09:00:00');
INSERT INTO collection_runs (org, kind, started_at, finished_at, status, http_calls, retries)
    VALUES ('prod', 'snapshot', '2026-11-24 11:45:00', '2026-11-24 11:45:02', 'ok', 2, 0);
"""


def keys(db) -> list[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY' "
            "ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def rows(db, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def snap(at: datetime, balance: int, gens: int) -> OrgSnapshot:
    return OrgSnapshot(
        taken_at=at,
        credit_balance=balance,
        max_monthly_credit_spend=10000,
        models=(ModelState("gen4.5", 2, 200, gens),),
    )


def run(at: datetime) -> RunRecord:
    return RunRecord(
        org="prod", kind="full", started_at=at, finished_at=at, http_calls=2, retries=0
    )


def window(credits: int) -> UsageWindow:
    return UsageWindow(
        start=date(2026, 11, 22),
        before=date(2026, 11, 25),
        rows=(UsageRow(date(2026, 11, 22), "gen4.5", credits),),
    )


def test_new_database_has_keys_only_on_the_one_row_per_org_tables(tmp_path):
    db = tmp_path / "runway.duckdb"
    with write_session(db):
        pass
    assert keys(db) == ["meta", "model_latest", "org_latest", "org_usage_totals"]


def test_database_from_before_moved_to_keyless_layout_with_its_rows(tmp_path):
    db = tmp_path / "runway.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(V1_DDL)
    with write_session(db) as con:  # opening for writing migrates
        write_org_result(con, run(T0), snap(T0, 880, 9), [])
    assert "model_snapshots" not in keys(db) and "collection_runs" not in keys(db)
    assert "org_snapshots" not in keys(db) and "usage_revisions" not in keys(db)
    assert rows(db, "SELECT * FROM org_snapshots ORDER BY taken_at") == [
        ("prod", datetime(2026, 11, 24, 11, 45), 900, 10000),
        ("prod", T0, 880, 10000),
    ]
    assert rows(db, "SELECT taken_at, daily_generations FROM model_snapshots ORDER BY 1") == [
        (datetime(2026, 11, 24, 11, 45), 7),
        (T0, 9),
    ]
    assert rows(db, "SELECT seen_at, old_credits, new_credits FROM usage_revisions") == [
        (datetime(2026, 11, 24, 11, 45), 40, 45)
    ]
    # the run ids go on from the old table's sequence
    assert rows(db, "SELECT run_id, kind FROM collection_runs ORDER BY run_id") == [
        (1, "snapshot"),
        (2, "full"),
    ]
    with write_session(db):  # already moved: opening again changes nothing
        pass
    assert len(rows(db, "SELECT * FROM org_snapshots")) == 2


def test_keyed_per_day_tables_move_to_the_keyless_layout_and_stay_unique(tmp_path):
    """A database whose model_daily, daily_usage, key_usage and usage_coverage had keys
    (before the archive change) loses them on open, rows intact; the writer then replaces
    a revised day's row instead of adding one."""
    db = tmp_path / "runway.duckdb"
    with write_session(db) as con:
        reference_writer.use_keyed_layout(con)
        con.execute(
            "INSERT INTO daily_usage VALUES ('prod', '2026-11-22', 'gen4.5', 40, '2026-11-23')"
        )
        con.execute("INSERT INTO usage_coverage VALUES ('prod', '2026-11-22', '2026-11-23')")
        con.execute(
            "INSERT INTO model_daily VALUES "
            "('prod', '2026-11-22', 'gen4.5', 3, 4, 200, 2, '2026-11-22 23:45:00')"
        )
        store.rebuild_write_state(con)
    assert "daily_usage" in keys(db)
    covering = RunRecord(
        org="prod",
        kind="usage",
        started_at=T0,
        finished_at=T0,
        http_calls=1,
        retries=0,
        usage_start=date(2026, 11, 22),
        usage_before=date(2026, 11, 25),
    )
    with write_session(db) as con:  # opening for writing migrates
        write_org_result(con, covering, None, [window(45)], written_at=T0)
    assert keys(db) == ["meta", "model_latest", "org_latest", "org_usage_totals"]
    assert rows(db, "SELECT date, model, credits, collected_at FROM daily_usage") == [
        (date(2026, 11, 22), "gen4.5", 45, T0)
    ]
    assert rows(db, "SELECT date, gens_end, gens_peak FROM model_daily") == [
        (date(2026, 11, 22), 3, 4)
    ]
    assert rows(db, "SELECT date, covered_at FROM usage_coverage ORDER BY 1") == [
        (date(2026, 11, d), T0)
        for d in (22, 23, 24)  # the 22nd's later time replaced
    ]


def test_an_instant_written_again_replaces_its_rows_without_a_key(tmp_path):
    """The same instant read again with other values: one row per key, the last values."""
    db = tmp_path / "runway.duckdb"
    with write_session(db) as con:
        write_org_result(con, run(T0), snap(T0, 900, 5), [window(40)])
        write_org_result(con, run(T1), snap(T1, 880, 9), [window(45)], written_at=T1)
        write_org_result(con, run(T1), snap(T1, 870, 11), [window(47)], written_at=T1)
    assert rows(db, "SELECT * FROM org_snapshots ORDER BY taken_at") == [
        ("prod", T0, 900, 10000),
        ("prod", T1, 870, 10000),
    ]
    assert rows(db, "SELECT taken_at, daily_generations FROM model_snapshots ORDER BY 1") == [
        (T0, 5),
        (T1, 11),
    ]
    assert rows(
        db, "SELECT date, seen_at, old_credits, new_credits FROM usage_revisions ORDER BY ALL"
    ) == [(date(2026, 11, 22), T1, 45, 47)]
    assert rows(db, "SELECT date, credits FROM daily_usage") == [(date(2026, 11, 22), 47)]


def test_a_move_that_fails_midway_leaves_the_old_layout_whole(tmp_path, monkeypatch):
    """Renames, new tables and copies are one transaction: a failure after the renames
    (here: the new tables cannot be created) leaves the keyed tables and their rows."""
    db = tmp_path / "runway.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(V1_DDL)
    monkeypatch.setattr(store, "schema_sql", lambda: "CREATE TABLE broken (")
    with duckdb.connect(str(db)) as con, pytest.raises(duckdb.ParserException):
        store.drop_history_keys(con)
    assert keys(db) == ["collection_runs", "model_snapshots", "org_snapshots", "usage_revisions"]
    assert rows(db, "SELECT org, credit_balance FROM org_snapshots") == [("prod", 900)]
    assert rows(db, "SELECT count(*) FROM model_snapshots") == [(1,)]
    monkeypatch.undo()
    with write_session(db):  # the next open moves it
        pass
    assert "model_snapshots" not in keys(db)
    assert rows(db, "SELECT org, credit_balance FROM org_snapshots") == [("prod", 900)]
