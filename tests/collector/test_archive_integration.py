"""Archived history (issue #12, ``collector.archive``): old days move out of the live file
into Parquet parts, and nothing a reader sees changes.

Two databases collect the same sandbox at the same instants over five months: one with
the archive step (as shipped), one with it switched off. Through ``connect_reader`` every
table, archived or not, and the stored outlooks must be the same; the live file must hold
only the live days; closed months must be merged and replaced parts deleted after the
grace; the live file must stay small enough to publish in a blink."""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from runway_costs.analytics.db import connect_reader
from runway_costs.analytics.outlook import outlook_step
from runway_costs.collector import archive, cycle
from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.core.clock import fixed_clock
from runway_costs.core.files import parts_dir, snapshot_path
from runway_costs.sandbox.server import SandboxServer
from tests.collector.support import settings_for

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 2, 12, 0)
# Cycles on consecutive days (daily parts), a month later (the first month closes and is
# merged), and past the 120 live days of usage.
OFFSETS = (0, 1, 2, 3, 5, 9, 33, 40, 41, 75, 130, 131)
TABLES = (
    "org_snapshots",
    "model_snapshots",
    "model_daily",
    "daily_usage",
    "key_usage",
    "usage_revisions",
    "collection_runs",
    "usage_coverage",
    "org_usage_totals",
    "org_latest",
    "model_latest",
    "model_day_start",
    "org_limit_daily",
    "org_outlooks",
    "outlook_limits",
)


def _collect(sb: SandboxServer, db: Path, caplog) -> None:
    settings = settings_for(sb, db)
    for days in OFFSETS:
        at = START + timedelta(days=days)
        sb.set_now(at)
        result = run_cycle_sync(settings, clock=fixed_clock(at), after_write=outlook_step(settings))
        assert result.ok
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == []  # the archive step and the outlook step never failed
    caplog.clear()


def _read(db: Path) -> dict[str, list[tuple]]:
    with closing(connect_reader(db)) as con:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in TABLES}


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> tuple[Path, Path]:
    caplog = _Records()
    logging.getLogger("runway_costs").addHandler(caplog)
    base = tmp_path_factory.mktemp("archive")
    with SandboxServer(seed=7, now=START.isoformat() + "Z", faults="none") as sb:
        archived = base / "archived" / "runway.duckdb"
        archived.parent.mkdir()
        _collect(sb, archived, caplog)
        kept = base / "kept" / "runway.duckdb"
        kept.parent.mkdir()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(cycle, "archive_step", lambda con, db, at: archive.ArchiveReport())
            _collect(sb, kept, caplog)
    logging.getLogger("runway_costs").removeHandler(caplog)
    return archived, kept


class _Records(logging.Handler):
    """The module-scoped fixture's log records (caplog is per test)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def clear(self) -> None:
        self.records = []


def test_readers_see_the_same_rows_with_and_without_the_archive(collected):
    archived, kept = collected
    assert not parts_dir(kept).exists() or not any(parts_dir(kept).iterdir())
    got, want = _read(archived), _read(kept)
    for table in TABLES:
        assert got[table] == want[table], table
    assert len(want["model_snapshots"]) > 0 and len(want["collection_runs"]) == 3 * len(OFFSETS)


def test_the_live_file_keeps_only_the_live_days(collected):
    archived, _ = collected
    last = START.date() + timedelta(days=OFFSETS[-1])  # 2026-07-11
    with duckdb.connect(str(snapshot_path(archived)), read_only=True) as con:
        first_live = dict(
            con.execute(
                "SELECT 'model_snapshots', min(CAST(taken_at AS DATE)) FROM model_snapshots "
                "UNION ALL SELECT 'collection_runs', min(CAST(started_at AS DATE)) "
                "FROM collection_runs "
                "UNION ALL SELECT 'model_daily', min(date) FROM model_daily "
                "UNION ALL SELECT 'daily_usage', min(date) FROM daily_usage"
            ).fetchall()
        )
        horizons = archive.horizons(con)
    # the last two cycles (2026-07-10 and -11) are the only snapshot days still live
    assert first_live["model_snapshots"] == date(2026, 7, 10)
    assert first_live["collection_runs"] == date(2026, 7, 10)
    assert horizons["model_snapshots"] == date(
        2026, 7, 10
    )  # 2 days live: the last and the one before
    assert horizons["model_daily"] == date(2026, 6, 2)  # 40 days live
    assert horizons["daily_usage"] == date(2026, 3, 14)  # 120 days live
    assert first_live["model_daily"] >= date(2026, 6, 2)
    assert first_live["daily_usage"] >= date(2026, 3, 14)
    assert last == date(2026, 7, 11)


def test_closed_months_are_merged_and_replaced_parts_deleted(collected):
    archived, _ = collected
    folder = parts_dir(archived)
    with duckdb.connect(str(snapshot_path(archived)), read_only=True) as con:
        parts = con.execute(
            "SELECT table_name, file, first_day, last_day, replaced_at FROM archive_parts"
        ).fetchall()
    in_force = [p for p in parts if p[4] is None]
    # March's snapshot days (2, 3, 4, 6, 10 ... archived on five cycles) became one part
    march = [
        p for p in in_force if p[0] == "model_snapshots" and p[2].month == 3 and p[3].month == 3
    ]
    assert len(march) == 1 and march[0][2] == date(2026, 3, 2)
    # every file on disk is listed, and every listed file is on disk
    assert sorted(f.name for f in folder.iterdir()) == sorted(p[1] for p in parts)
    # parts replaced at an earlier cycle (> 1 hour before the last) are gone from both
    last = START + timedelta(days=OFFSETS[-1])
    assert all(p[4] is None or p[4] >= last - archive.REPLACED_GRACE for p in parts)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all((folder / p[1]).stat().st_mode & 0o777 == 0o600 for p in parts)
