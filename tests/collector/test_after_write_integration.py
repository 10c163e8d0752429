"""The cycle's after-write seam (issue #12): once per cycle, on the written rows, before
the publish; a failing step still lets the cycle's data be published."""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import datetime

import duckdb
import pytest

from runway_costs.analytics.db import connect_reader
from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.core.files import snapshot_path
from tests.collector.support import settings_for
from tests.conftest import SANDBOX_AT, SANDBOX_CLOCK

pytestmark = pytest.mark.integration


def test_after_write_runs_once_on_the_written_rows_before_the_publish(sandbox, tmp_db):
    calls: list[tuple[datetime, list[tuple], bool]] = []

    def after_write(con: duckdb.DuckDBPyConnection, at: datetime) -> None:
        runs = con.execute("SELECT org, status FROM collection_runs ORDER BY org").fetchall()
        calls.append((at, runs, snapshot_path(tmp_db).exists()))
        con.begin()
        con.execute(
            "CREATE TABLE probe_outlook AS SELECT org, count(*) AS n FROM daily_usage GROUP BY org"
        )
        con.commit()

    result = run_cycle_sync(
        settings_for(sandbox, tmp_db), clock=SANDBOX_CLOCK, after_write=after_write
    )

    assert result.ok
    # once; every org's run row already committed; the snapshot not yet published
    assert calls == [(SANDBOX_AT, [("agency", "ok"), ("indie", "ok"), ("studio", "ok")], False)]
    with closing(connect_reader(tmp_db)) as con:  # published with the data
        assert con.execute("SELECT org, n FROM probe_outlook ORDER BY org").fetchall() == [
            ("agency", 550),  # the 91 days' (date, model) rows the world serves each org
            ("indie", 412),
            ("studio", 673),
        ]


def test_a_failing_after_write_still_publishes_the_cycle(sandbox, tmp_db, caplog):
    calls = 0

    def after_write(con: duckdb.DuckDBPyConnection, at: datetime) -> None:
        nonlocal calls
        calls += 1
        con.begin()
        con.execute("CREATE TABLE half_done (x INTEGER)")
        raise ValueError("forecast blew up\nsecond line")

    with caplog.at_level(logging.ERROR, logger="runway_costs.collector.cycle"):
        result = run_cycle_sync(
            settings_for(sandbox, tmp_db), clock=SANDBOX_CLOCK, after_write=after_write
        )

    assert calls == 1
    assert result.ok and [r.org for r in result.orgs] == ["studio", "agency", "indie"]
    assert [r.getMessage() for r in caplog.records] == [
        "after-write step failed, publishing the data without it: "
        "ValueError: forecast blew up second line"
    ]
    with closing(connect_reader(tmp_db)) as con:
        assert con.execute("SELECT org, status FROM collection_runs ORDER BY org").fetchall() == [
            ("agency", "ok"),
            ("indie", "ok"),
            ("studio", "ok"),
        ]
        assert con.execute("SELECT count(DISTINCT org) FROM daily_usage").fetchone() == (3,)
        assert con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'half_done'"
        ).fetchone() == (0,)  # its open transaction was rolled back


def test_after_write_runs_when_there_is_no_org(sandbox, tmp_db):
    seen: list[datetime] = []
    settings = settings_for(sandbox, tmp_db, names=[])
    run_cycle_sync(settings, clock=SANDBOX_CLOCK, after_write=lambda con, at: seen.append(at))
    assert seen == [SANDBOX_AT]
    assert snapshot_path(tmp_db).exists()
