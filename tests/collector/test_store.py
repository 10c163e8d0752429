"""Store semantics on a real DuckDB file with hand-written inputs and expectations."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest

from runway_costs.collector.models import ModelState, OrgSnapshot, UsageRow, UsageWindow
from runway_costs.collector.store import (
    RunRecord,
    last_usage_dates,
    rebuild_model_daily,
    write_failed_run,
    write_org_result,
    write_session,
)
from runway_costs.core.files import snapshot_path

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
            for t in (
                "org_snapshots",
                "model_snapshots",
                "model_daily",
                "daily_usage",
                "collection_runs",
            )
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
    for table in ("org_snapshots", "model_snapshots", "model_daily", "daily_usage"):
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
        with pytest.raises(duckdb.ConstraintException, match="collection_runs.kind"):
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


# --- model_daily: model_snapshots reduced per (org, day, model) --------------------------

D1, D2 = date(2026, 11, 23), date(2026, 11, 24)


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour)


def models_at(when: datetime, *models: ModelState) -> OrgSnapshot:
    return OrgSnapshot(
        taken_at=when, credit_balance=5000, max_monthly_credit_spend=10000, models=models
    )


# gen4.5 peaks at 40 on 11-23 and its limits change at 20:00; kling leaves the tier at
# 20:00 (NULL limits); on 11-24 only gen4.5 changes (30 at 01:00, 8 at 09:00).
TWO_DAYS = [
    models_at(at(D1, 10), ModelState("gen4.5", 2, 200, 12), ModelState("kling", 1, 20, 3)),
    models_at(at(D1, 14), ModelState("gen4.5", 2, 200, 40), ModelState("kling", 1, 20, 3)),
    models_at(at(D1, 20), ModelState("gen4.5", 3, 300, 25), ModelState("kling", None, None, 5)),
    models_at(at(D2, 1), ModelState("gen4.5", 3, 300, 30), ModelState("kling", None, None, 5)),
    models_at(at(D2, 9), ModelState("gen4.5", 3, 300, 8), ModelState("kling", None, None, 5)),
]
# (org, date, model, gens_end, gens_peak, max_daily, max_concurrent, last_taken_at)
TWO_DAYS_ROLLUP = [
    ("prod", D1, "gen4.5", 25, 40, 300, 3, at(D1, 20)),
    ("prod", D1, "kling", 5, 5, None, None, at(D1, 20)),
    ("prod", D2, "gen4.5", 8, 30, 300, 3, at(D2, 9)),
]


def collect(db, snapshots) -> None:
    with write_session(db) as con:
        for s in snapshots:
            write_org_result(con, run(kind="snapshot", at=s.taken_at), s, [])


def test_model_daily_day_end_peak_and_limits_with_a_mid_day_change_and_null(tmp_path):
    db = tmp_path / "runway.duckdb"
    collect(db, TWO_DAYS)
    assert dump(db)["model_daily"] == TWO_DAYS_ROLLUP


def test_model_daily_unchanged_by_collecting_the_same_data_again(tmp_path):
    db = tmp_path / "runway.duckdb"
    collect(db, TWO_DAYS)
    first = dump(db)
    later = models_at(
        at(D2, 10), ModelState("gen4.5", 3, 300, 8), ModelState("kling", None, None, 5)
    )
    collect(db, [TWO_DAYS[-1], later])  # the last snapshot again, then one with nothing new
    second = dump(db)
    for table in ("org_snapshots", "model_snapshots", "model_daily"):
        assert second[table] == first[table]
    assert second["model_daily"] == TWO_DAYS_ROLLUP


def test_model_daily_follows_a_row_replaced_at_the_same_time(tmp_path):
    """The day is reduced again, so a replaced value does not linger as the peak."""
    db = tmp_path / "runway.duckdb"
    collect(db, TWO_DAYS[:3])
    again = models_at(at(D1, 14), ModelState("gen4.5", 2, 200, 9), ModelState("kling", 1, 20, 3))
    collect(db, [again])  # 14:00 re-read with 9 generations instead of 40
    assert dump(db)["model_daily"] == [
        ("prod", D1, "gen4.5", 25, 25, 300, 3, at(D1, 20)),
        ("prod", D1, "kling", 5, 5, None, None, at(D1, 20)),
    ]


def test_model_daily_filled_once_for_a_database_from_before_it(tmp_path):
    db = tmp_path / "runway.duckdb"
    collect(db, TWO_DAYS)
    with duckdb.connect(str(db)) as con:
        con.execute("DROP TABLE model_daily")  # as written by an older collector
    with write_session(db):  # opening for writing migrates
        pass
    assert dump(db)["model_daily"] == TWO_DAYS_ROLLUP
    with duckdb.connect(str(db)) as con:  # emptied (say a fill cut short): filled again
        con.execute("DELETE FROM model_daily")
    with write_session(db):
        pass
    assert dump(db)["model_daily"] == TWO_DAYS_ROLLUP
    with write_session(db) as con:  # already filled: left as it is, and a rebuild agrees
        assert con.execute("SELECT * FROM model_daily ORDER BY ALL").fetchall() == TWO_DAYS_ROLLUP
        assert rebuild_model_daily(con) == 3
    assert dump(db)["model_daily"] == TWO_DAYS_ROLLUP
