"""The archive step's guarantees (``collector.archive``) on small hand-written histories:
a failure or a kill mid-step loses and duplicates nothing, readers keep a snapshot's parts
through a merge, a missing part is one clear line, the live file is rewritten tight with
its sequence intact, and data dated before the horizons is not written."""

from __future__ import annotations

import logging
import subprocess
import sys
from contextlib import closing
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from runway_costs.analytics.db import BadDatabaseError, connect_reader
from runway_costs.collector import archive
from runway_costs.collector.archive import archive_step, horizons, vacuum_if_sparse
from runway_costs.collector.models import ModelState, OrgSnapshot, UsageRow, UsageWindow
from runway_costs.collector.store import (
    ArchivedHistoryError,
    RunRecord,
    rebuild_model_daily,
    write_org_result,
    write_session,
)
from runway_costs.core.files import parts_dir
from tests.collector.support import REPO

DAY0 = datetime(2026, 1, 5, 12, 0)
# Snapshots on these days (offsets from DAY0), one usage row per day written with each.
DAYS = (0, 1, 2, 6, 7, 20, 30, 31)
HISTORY = (
    "org_snapshots",
    "model_snapshots",
    "model_daily",
    "daily_usage",
    "collection_runs",
    "usage_coverage",
    "org_limit_daily",
)


def _write_day(db: Path, at: datetime, gens: int) -> None:
    run = RunRecord(
        org="prod",
        kind="full",
        started_at=at,
        finished_at=at,
        http_calls=2,
        retries=0,
        usage_start=at.date(),
        usage_before=at.date() + timedelta(days=1),
    )
    snapshot = OrgSnapshot(at, 1000 - gens, 10000, (ModelState("gen4.5", 2, 200, gens),))
    usage = UsageWindow(
        at.date(), at.date() + timedelta(days=1), (UsageRow(at.date(), "gen4.5", gens),)
    )
    with write_session(db) as con:
        write_org_result(con, run, snapshot, [usage])


def _history(db: Path, days: tuple[int, ...] = DAYS) -> None:
    for i, offset in enumerate(days):
        _write_day(db, DAY0 + timedelta(days=offset), 10 + i)


def _read(db: Path) -> dict[str, list[tuple]]:
    with closing(connect_reader(db)) as con:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in HISTORY}


def _step(db: Path, at: datetime) -> archive.ArchiveReport:
    with write_session(db) as con:
        return archive_step(con, db, at)


def _live_count(db: Path, table: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def test_a_step_moves_old_days_and_readers_see_every_row_once(tmp_db):
    _history(tmp_db)
    before = _read(tmp_db)
    last = DAY0 + timedelta(days=31)  # 2026-02-05
    report = _step(tmp_db, last)

    assert _read(tmp_db) == before
    # snapshot tables keep 2026-02-04 and -05 live: the rows of days 30 and 31
    assert _live_count(tmp_db, "model_snapshots") == 2
    assert _live_count(tmp_db, "collection_runs") == 2
    assert report.rows["model_snapshots"] == 6 and report.rows["collection_runs"] == 6
    with duckdb.connect(str(tmp_db), read_only=True) as con:
        assert horizons(con)["model_snapshots"] == date(2026, 2, 4)
        assert horizons(con)["daily_usage"] == date(2025, 10, 9)  # 120 days: nothing moved
    assert "daily_usage" not in report.rows
    # a second step the same day does nothing
    assert _step(tmp_db, last + timedelta(hours=3)).files_written == 0


def test_a_failed_step_keeps_every_row_live_and_leaves_no_file(tmp_db):
    _history(tmp_db)
    before = _read(tmp_db)

    class Failing:
        """The writer's connection, refusing the manifest insert (a full disk, say)."""

        def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
            self._con = con

        def execute(self, sql: str, *args):
            if sql.startswith("INSERT INTO archive_parts"):
                raise duckdb.IOException("disk full")
            return self._con.execute(sql, *args)

        def __getattr__(self, name: str):
            return getattr(self._con, name)

    with write_session(tmp_db) as con, pytest.raises(duckdb.IOException):
        archive_step(Failing(con), tmp_db, DAY0 + timedelta(days=31))  # type: ignore[arg-type]

    assert list(parts_dir(tmp_db).iterdir()) == []
    assert _live_count(tmp_db, "model_snapshots") == len(DAYS)
    assert _read(tmp_db) == before
    with duckdb.connect(str(tmp_db), read_only=True) as con:
        assert horizons(con) == {}


KILLED_STEP = """
import os, sys
from datetime import datetime
from pathlib import Path
from runway_costs.collector import archive
from runway_costs.collector.store import write_session

def die(folder):  # the parts are renamed into place; the manifest is not committed
    os.kill(os.getpid(), 9)

archive._fsync_dir = die
db = Path(sys.argv[1])
with write_session(db) as con:
    archive.archive_step(con, db, datetime.fromisoformat(sys.argv[2]))
"""


def test_a_step_killed_before_its_commit_is_redone_without_duplicates(tmp_db):
    _history(tmp_db)
    before = _read(tmp_db)
    at = DAY0 + timedelta(days=31)
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_STEP, str(tmp_db), at.isoformat()],
        cwd=REPO,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -9
    left = sorted(p.name for p in parts_dir(tmp_db).iterdir())
    assert left and all(name.endswith(".parquet") for name in left)  # listed nowhere
    assert _read(tmp_db) == before  # the killed step's files are in no manifest

    report = _step(tmp_db, at)

    assert report.files_deleted == len(left)
    assert not any((parts_dir(tmp_db) / name).exists() for name in left)
    assert _read(tmp_db) == before
    assert _live_count(tmp_db, "model_snapshots") == 2


def test_merged_parts_stay_readable_for_an_open_snapshot_until_the_grace_ends(tmp_db):
    _history(tmp_db, (0, 1, 2, 3))
    for offset in (3, 4, 5):  # three steps: three daily parts of January
        _write_day(tmp_db, DAY0 + timedelta(days=offset, hours=1), 50 + offset)
        _step(tmp_db, DAY0 + timedelta(days=offset))
    reader = connect_reader(tmp_db)  # lists the daily parts
    try:
        old_rows = reader.execute("SELECT count(*) FROM model_snapshots").fetchall()
        # February 3: January is closed, its parts are merged into one
        _write_day(tmp_db, datetime(2026, 2, 3, 12), 99)
        merged = _step(tmp_db, datetime(2026, 2, 3, 12))
        assert merged.files_merged >= 2
        # the open reader still reads its own (replaced, not yet deleted) parts
        assert reader.execute("SELECT count(*) FROM model_snapshots").fetchall() == old_rows
    finally:
        reader.close()
    with duckdb.connect(str(tmp_db), read_only=True) as con:
        january = con.execute(
            "SELECT count(*) FROM archive_parts WHERE table_name = 'model_snapshots' "
            "AND replaced_at IS NULL AND month(first_day) = 1 AND month(last_day) = 1"
        ).fetchall()
    assert january == [(1,)]
    replaced = _live_files(tmp_db)
    # an hour and a minute later the replaced files are gone, from disk and manifest
    report = _step(tmp_db, datetime(2026, 2, 3, 13, 1))
    assert report.files_deleted == replaced
    assert _live_files(tmp_db) == 0


def _live_files(db: Path) -> int:
    """Replaced parts still on disk."""
    with duckdb.connect(str(db), read_only=True) as con:
        names = [
            r[0]
            for r in con.execute(
                "SELECT file FROM archive_parts WHERE replaced_at IS NOT NULL"
            ).fetchall()
        ]
    return sum((parts_dir(db) / n).exists() for n in names)


def test_a_missing_part_is_one_clear_line(tmp_db):
    _history(tmp_db)
    _step(tmp_db, DAY0 + timedelta(days=31))
    with write_session(tmp_db):
        pass  # publish the archived state
    victim = next(parts_dir(tmp_db).glob("model_snapshots.*.parquet"))
    victim.unlink()

    fallbacks: list[str] = []
    with pytest.raises(BadDatabaseError) as caught:
        connect_reader(tmp_db, on_fallback=fallbacks.append).close()

    assert str(caught.value) == (
        f"database {tmp_db}.snapshot cannot be read: its archived history part {victim} is "
        "missing (a backup or a move must take the runway.duckdb.parts folder with the "
        "database)"
    )
    assert fallbacks == []  # the live file lists the same parts: no fallback to it
    victim.write_bytes(b"PAR1" + b"\0" * 100)  # a truncated copy: no footer
    with pytest.raises(BadDatabaseError) as caught:
        connect_reader(tmp_db).close()
    assert str(caught.value).endswith(f"its archived history part {victim} is truncated or damaged")


def test_the_live_file_is_rewritten_tight_and_its_run_ids_go_on(tmp_db, monkeypatch):
    _history(tmp_db)
    with write_session(tmp_db) as con:  # bulk history, as an older database has
        con.execute(
            "INSERT INTO model_snapshots SELECT 'bulk', TIMESTAMP '2025-06-01' + to_seconds(i),"
            " 'm' || (i % 50), 2, 200, hash(i) % 100000 FROM range(3000000) r(i)"
        )
    big = tmp_db.stat().st_size
    monkeypatch.setattr(archive, "VACUUM_MIN_FREE_BYTES", 1024 * 1024)
    _step(tmp_db, DAY0 + timedelta(days=31))  # closes, rewrites (mostly free), publishes

    assert tmp_db.stat().st_size < big / 2
    with duckdb.connect(str(tmp_db), read_only=True) as con:
        assert con.execute("SELECT free_blocks FROM pragma_database_size()").fetchall() == [(0,)]
    assert tmp_db.stat().st_mode & 0o777 == 0o600
    assert vacuum_if_sparse(tmp_db) is False  # tight now
    _write_day(tmp_db, DAY0 + timedelta(days=32), 77)
    with closing(connect_reader(tmp_db)) as con:
        ids = [
            r[0]
            for r in con.execute("SELECT run_id FROM collection_runs ORDER BY run_id").fetchall()
        ]
        bulk = con.execute("SELECT count(*) FROM model_snapshots WHERE org = 'bulk'").fetchall()
    assert ids == list(range(1, len(DAYS) + 2))  # the sequence continued after the rewrite
    assert bulk == [(3000000,)]


def test_data_dated_before_the_horizons_is_not_written(tmp_db, caplog):
    _history(tmp_db)
    _step(tmp_db, DAY0 + timedelta(days=31))
    before = _read(tmp_db)
    late = DAY0 + timedelta(days=3)  # the clock went back four weeks
    run = RunRecord("prod", "full", late, late, 2, 0, late.date(), late.date() + timedelta(days=1))
    snapshot = OrgSnapshot(late, 5, 10000, (ModelState("gen4.5", 2, 200, 1),))

    with (
        caplog.at_level(logging.WARNING, logger="runway_costs.collector.writes"),
        write_session(tmp_db) as con,
    ):
        assert write_org_result(con, run, snapshot, []) == 0

    after = _read(tmp_db)
    assert after["model_snapshots"] == before["model_snapshots"]
    assert len(after["collection_runs"]) == len(before["collection_runs"]) + 1  # its run row
    assert [r.getMessage()[:52] for r in caplog.records] == [
        "1 organization(s) reported data dated before the arc"
    ]


def test_rebuilds_refuse_a_database_with_parts(tmp_db):
    _history(tmp_db)
    _step(tmp_db, DAY0 + timedelta(days=31))
    with write_session(tmp_db) as con, pytest.raises(ArchivedHistoryError):
        rebuild_model_daily(con)


def test_usage_before_the_usage_horizon_is_clipped_from_a_window(tmp_db):
    _history(tmp_db, (0,))
    _step(tmp_db, datetime(2026, 6, 1, 12))  # usage live from 2026-02-02 (120 days)
    at = datetime(2026, 2, 5, 12)  # a clock behind by months, a window over the horizon
    run = RunRecord("prod", "usage", at, at, 2, 0, date(2026, 1, 30), date(2026, 2, 5))
    usage = UsageWindow(
        date(2026, 1, 30),
        date(2026, 2, 5),
        (UsageRow(date(2026, 2, 1), "gen4.5", 11), UsageRow(date(2026, 2, 3), "gen4.5", 13)),
    )
    with write_session(tmp_db) as con:
        assert write_org_result(con, run, None, [usage]) == 1  # the row of 3 February

    rows = _read(tmp_db)
    assert [r[1:4] for r in rows["daily_usage"]] == [
        (date(2026, 1, 5), "gen4.5", 10),  # archived, as it was
        (date(2026, 2, 3), "gen4.5", 13),
    ]
    last_run = max(rows["collection_runs"], key=lambda r: r[0])
    assert last_run[9:11] == (date(2026, 2, 2), date(2026, 2, 5))  # usage_start clipped
    assert [r[1] for r in rows["usage_coverage"] if r[2] == at] == [
        date(2026, 2, 2),  # the window's days from the horizon on, not 30 and 31 January
        date(2026, 2, 3),
        date(2026, 2, 4),
    ]


def test_no_connection_draws_a_progress_bar_on_a_commands_output(tmp_db):
    """DuckDB draws one on stdout for statements over ~2 s (a first archive, an export):
    it would corrupt `--json` output. The writer's and the readers' connections turn it off."""
    _history(tmp_db, (0,))
    with write_session(tmp_db) as con:
        assert con.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]
    with closing(connect_reader(tmp_db)) as con:
        assert con.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]
