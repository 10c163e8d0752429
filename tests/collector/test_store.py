"""Store semantics on a real DuckDB file with hand-written inputs and expectations."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest

from collector.models import ModelState, OrgSnapshot, UsageRow, UsageWindow
from collector.store import (
    RunRecord,
    last_usage_dates,
    write_failed_run,
    write_org_result,
    write_session,
)
from runway_costs.dbfiles import snapshot_path

T0 = datetime(2026, 11, 24, 12, 0, 0)
T1 = datetime(2026, 11, 24, 12, 15, 0)


def run(org: str = "prod", at: datetime = T0, **kw) -> RunRecord:
    base = dict(org=org, kind="full", started_at=at, finished_at=at, http_calls=2, retries=0)
    base.update(kw)
    return RunRecord(**base)


def snap(at: datetime, balance: int, gens: int = 12) -> OrgSnapshot:
    return OrgSnapshot(
        taken_at=at,
        credit_balance=balance,
        max_monthly_credit_spend=10000,
        models=(
            ModelState("gen4.5", 2, 200, gens),
            ModelState("kling3.0_pro", None, None, 3),
        ),
    )


def window(*rows: tuple[str, str, int], start="2026-11-20", before="2026-11-25") -> UsageWindow:
    return UsageWindow(
        start=date.fromisoformat(start),
        before=date.fromisoformat(before),
        rows=tuple(UsageRow(date.fromisoformat(d), m, c) for d, m, c in rows),
    )


def dump(db) -> dict[str, list[tuple]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("org_snapshots", "model_snapshots", "daily_usage", "collection_runs")
        }


def test_write_then_same_data_changes_nothing_but_runs(tmp_path):
    db = tmp_path / "runway.duckdb"
    w = window(("2026-11-23", "gen4.5", 120), ("2026-11-23", "veo3.1", -40))
    with write_session(db) as con:
        assert write_org_result(con, run(), snap(T0, 5000), [w]) == 2 + 1 + 2
    first = dump(db)
    assert first["daily_usage"] == [
        ("prod", date(2026, 11, 23), "gen4.5", 120, T0),
        ("prod", date(2026, 11, 23), "veo3.1", -40, T0),
    ]
    assert first["org_snapshots"] == [("prod", T0, 5000, 10000)]
    assert first["model_snapshots"] == [
        ("prod", T0, "gen4.5", 2, 200, 12),
        ("prod", T0, "kling3.0_pro", None, None, 3),
    ]
    with write_session(db) as con:
        assert write_org_result(con, run(at=T1), snap(T1, 5000), [w]) == 0
    second = dump(db)
    for table in ("org_snapshots", "model_snapshots", "daily_usage"):
        assert second[table] == first[table]
    runs = second["collection_runs"]
    assert [(r[1], r[5], r[11], r[12], r[13]) for r in runs] == [
        ("prod", "ok", 5, 2, 80),
        ("prod", "ok", 0, 2, 80),
    ]


def test_revised_day_replaced_and_vanished_row_deleted(tmp_path):
    db = tmp_path / "runway.duckdb"
    outside = window(("2026-11-10", "gen4.5", 7), start="2026-11-10", before="2026-11-11")
    w1 = window(("2026-11-23", "gen4.5", 120), ("2026-11-24", "veo3.1", 40))
    with write_session(db) as con:
        write_org_result(con, run(), None, [outside, w1])
    w2 = window(("2026-11-23", "gen4.5", 95), ("2026-11-24", "gen4.5", 10))
    with write_session(db) as con:
        # 11-23 revised (1), 11-24 gen4.5 new (1), 11-24 veo3.1 gone (1)
        assert write_org_result(con, run(at=T1), None, [w2]) == 3
    assert dump(db)["daily_usage"] == [
        ("prod", date(2026, 11, 10), "gen4.5", 7, T0),
        ("prod", date(2026, 11, 23), "gen4.5", 95, T1),
        ("prod", date(2026, 11, 24), "gen4.5", 10, T1),
    ]


def test_changed_snapshot_adds_rows_only_for_what_changed(tmp_path):
    db = tmp_path / "runway.duckdb"
    with write_session(db) as con:
        write_org_result(con, run(kind="snapshot"), snap(T0, 5000, gens=12), [])
        write_org_result(con, run(kind="snapshot", at=T1), snap(T1, 4880, gens=13), [])
    d = dump(db)
    assert d["org_snapshots"] == [("prod", T0, 5000, 10000), ("prod", T1, 4880, 10000)]
    assert d["model_snapshots"] == [
        ("prod", T0, "gen4.5", 2, 200, 12),
        ("prod", T0, "kling3.0_pro", None, None, 3),
        ("prod", T1, "gen4.5", 2, 200, 13),
    ]


def test_failed_write_rolls_back_and_failed_run_row_only(tmp_path):
    db = tmp_path / "runway.duckdb"
    with write_session(db) as con:
        write_failed_run(con, run(error="organization 'prod': API key rejected (401)"))
        with pytest.raises(duckdb.Error):
            # a NULL-typed run row violates NOT NULL after data was written: all rolled back
            write_org_result(con, run(kind=None), snap(T0, 5000), [window(("2026-11-23", "a", 1))])
    d = dump(db)
    assert d["org_snapshots"] == [] and d["model_snapshots"] == [] and d["daily_usage"] == []
    assert [(r[1], r[5], r[6], r[13]) for r in d["collection_runs"]] == [
        ("prod", "failed", "organization 'prod': API key rejected (401)", None)
    ]


def test_last_usage_dates_and_snapshot_published(tmp_path):
    db = tmp_path / "runway.duckdb"
    with write_session(db) as con:
        write_org_result(
            con,
            run(usage_start=date(2026, 8, 26), usage_before=date(2026, 11, 25)),
            None,
            [window()],
        )
        write_org_result(con, run(org="b", kind="snapshot"), snap(T0, 1), [])
        write_failed_run(con, run(org="c", usage_before=date(2026, 11, 25), error="x"))
        assert last_usage_dates(con) == {"prod": date(2026, 11, 24)}
    assert snapshot_path(db).exists()
    with duckdb.connect(str(snapshot_path(db)), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM collection_runs").fetchone() == (3,)
