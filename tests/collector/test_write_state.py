"""The write-state tables (issue #12) on real DuckDB files: hand-computed values after
backfill, refresh, revision, vanished rows, snapshot changes in and out of order, and a
database from before them; each time equal to what a full scan of the collector's tables
gives (the scan is written here, not taken from the store)."""

from __future__ import annotations

from datetime import date, datetime

import duckdb

from runway_costs.collector.models import ModelState, OrgSnapshot, UsageRow, UsageWindow
from runway_costs.collector.store import (
    RunRecord,
    last_usage_dates,
    write_failed_run,
    write_org_result,
    write_session,
)
from tests.collector.support import consistency_problems

T0 = datetime(2026, 11, 24, 12, 0)
T1 = datetime(2026, 11, 24, 12, 15)
T2 = datetime(2026, 11, 24, 12, 30)
T3 = datetime(2026, 11, 24, 12, 45)
D1 = datetime(2026, 11, 25, 0, 15)
DAY = date(2026, 11, 24)

# What each write-state table must equal: the same facts computed from the whole tables.
FULL_SCANS = {
    "org_usage_totals": """
        SELECT org, coalesce(n, 0), coalesce(c, 0), b
        FROM (SELECT org, count(*) AS n, sum(credits) AS c FROM daily_usage GROUP BY org)
        FULL JOIN (SELECT org, max(usage_before) AS b FROM collection_runs
                   WHERE status = 'ok' GROUP BY org) USING (org)""",
    "org_latest": """
        SELECT org, taken_at, credit_balance, max_monthly_credit_spend FROM org_snapshots
        QUALIFY row_number() OVER (PARTITION BY org ORDER BY taken_at DESC) = 1""",
    "model_latest": """
        SELECT s.org, s.model, s.taken_at, s.max_concurrent_generations,
               s.max_daily_generations, s.daily_generations,
               (SELECT max(daily_generations) FROM model_snapshots p
                WHERE p.org = s.org AND p.model = s.model
                  AND CAST(p.taken_at AS DATE) = CAST(s.taken_at AS DATE))
        FROM model_snapshots s
        QUALIFY row_number() OVER (PARTITION BY org, model ORDER BY taken_at DESC) = 1""",
    "usage_coverage": """
        SELECT r.org, d.date, max(r.finished_at)
        FROM collection_runs r
        JOIN (SELECT DISTINCT date FROM usage_coverage
              UNION SELECT DISTINCT date FROM daily_usage) d
          ON r.usage_start <= d.date AND d.date < r.usage_before
        WHERE r.status = 'ok'
        GROUP BY r.org, d.date""",
}


def table(db, name: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()


def scan_mismatches(db) -> dict[str, list[tuple]]:
    """Per write-state table, the rows it has and the full scan has not, and vice versa."""
    out = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for name, scan in FULL_SCANS.items():
            kept = f"SELECT * FROM {name}"
            diff = con.execute(f"({kept} EXCEPT {scan}) UNION ALL ({scan} EXCEPT {kept})")
            rows = diff.fetchall()
            if rows:
                out[name] = rows
        problems = consistency_problems(con)
    if problems:
        out["collection_runs"] = [(p,) for p in problems]
    return out


def run(org: str, at: datetime, start: str | None = "2026-11-20", **kw) -> RunRecord:
    base = dict(org=org, kind="full", started_at=at, finished_at=at, http_calls=2, retries=0)
    if start is not None:
        base.update(usage_start=date.fromisoformat(start), usage_before=date(2026, 11, 25))
    base.update(kw)
    return RunRecord(**base)


def window(*rows: tuple[str, str, int], start: str = "2026-11-20") -> UsageWindow:
    return UsageWindow(
        start=date.fromisoformat(start),
        before=date(2026, 11, 25),
        rows=tuple(UsageRow(date.fromisoformat(d), m, c) for d, m, c in rows),
    )


def snap(at: datetime, balance: int, gens: int) -> OrgSnapshot:
    return OrgSnapshot(
        taken_at=at,
        credit_balance=balance,
        max_monthly_credit_spend=10000,
        models=(ModelState("gen4.5", 2, 200, gens), ModelState("kling3.0_pro", None, None, 3)),
    )


def write(db, record: RunRecord, snapshot: OrgSnapshot | None, *windows: UsageWindow) -> int:
    with write_session(db) as con:
        return write_org_result(con, record, snapshot, list(windows))


def coverage(at: datetime, first: int = 20) -> list[tuple]:
    return [("prod", date(2026, 11, d), at) for d in range(first, 25)]


def test_usage_totals_and_coverage_through_backfill_refresh_revision_and_vanished(tmp_path):
    db = tmp_path / "runway.duckdb"
    first = window(
        ("2026-11-23", "gen4.5", 120), ("2026-11-23", "veo3.1", -40), ("2026-11-24", "gen4.5", 30)
    )
    assert write(db, run("prod", T0), None, first) == 3
    assert write(db, run("dev", T0), None, window(("2026-11-23", "gen4.5", 5))) == 1
    assert table(db, "org_usage_totals") == [
        ("dev", 1, 5, date(2026, 11, 25)),
        ("prod", 3, 110, date(2026, 11, 25)),
    ]
    assert [r for r in table(db, "usage_coverage") if r[0] == "prod"] == coverage(T0)
    assert scan_mismatches(db) == {}

    assert write(db, run("prod", T1), None, first) == 0  # refresh, nothing changed
    assert table(db, "org_usage_totals")[1] == ("prod", 3, 110, date(2026, 11, 25))
    assert [r for r in table(db, "usage_coverage") if r[0] == "prod"] == coverage(T1)
    assert scan_mismatches(db) == {}

    revised = window(
        ("2026-11-23", "gen4.5", 150),  # revised 120 -> 150
        ("2026-11-24", "gen4.5", 30),  # veo3.1 on the 23rd vanished
        ("2026-11-24", "kling3.0_pro", 7),  # new on a day collected at T1
    )
    assert write(db, run("prod", T2), None, revised) == 3
    assert table(db, "org_usage_totals")[1] == ("prod", 3, 187, date(2026, 11, 25))
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(
            "SELECT date, model, old_credits, new_credits, old_collected_at "
            "FROM usage_revisions WHERE org = 'prod' ORDER BY ALL"
        ).fetchall() == [
            (date(2026, 11, 23), "gen4.5", 120, 150, T0),
            (date(2026, 11, 23), "veo3.1", -40, None, T0),
            (DAY, "kling3.0_pro", None, 7, T1),
        ]
    assert scan_mismatches(db) == {}

    # a one-day window: kling vanishes from the 24th, the 23rd is left as it is
    narrow = window(("2026-11-24", "gen4.5", 30), start="2026-11-24")
    assert write(db, run("prod", T3, start="2026-11-24"), None, narrow) == 1
    assert table(db, "org_usage_totals")[1] == ("prod", 2, 180, date(2026, 11, 25))
    assert [r for r in table(db, "usage_coverage") if r[0] == "prod"] == (
        coverage(T2)[:-1] + [("prod", DAY, T3)]
    )
    with write_session(db) as con:  # a failed run changes no totals and records none
        write_failed_run(con, run("prod", T3, error="boom"))
        assert last_usage_dates(con) == {"dev": DAY, "prod": DAY}
    assert table(db, "org_usage_totals")[1] == ("prod", 2, 180, date(2026, 11, 25))
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(
            "SELECT status, usage_rows, usage_credits FROM collection_runs "
            "WHERE org = 'prod' ORDER BY run_id"
        ).fetchall() == [
            ("ok", 3, 110),
            ("ok", 3, 110),
            ("ok", 3, 187),
            ("ok", 2, 180),
            ("failed", None, None),
        ]
    assert scan_mismatches(db) == {}


def test_latest_rows_and_day_peaks_in_order_replaced_and_out_of_order(tmp_path):
    db = tmp_path / "runway.duckdb"
    write(db, run("prod", T0, start=None), snap(T0, 5000, 12))
    write(db, run("prod", T1, start=None), snap(T1, 4900, 20))
    write(db, run("prod", T2, start=None), snap(T2, 4900, 15))
    assert table(db, "org_latest") == [("prod", T1, 4900, 10000)]
    assert table(db, "model_latest") == [
        ("prod", "gen4.5", T2, 2, 200, 15, 20),
        ("prod", "kling3.0_pro", T0, None, None, 3, 3),
    ]
    gen = "SELECT * FROM model_daily WHERE model = 'gen4.5'"
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(gen).fetchall() == [("prod", DAY, "gen4.5", 15, 20, 200, 2, T2)]
    assert scan_mismatches(db) == {}

    write(db, run("prod", D1, start=None), snap(D1, 4700, 4))  # next day: its own peak
    assert table(db, "model_latest")[0] == ("prod", "gen4.5", D1, 2, 200, 4, 4)
    write(db, run("prod", D1, start=None), snap(D1, 4700, 2))  # the same instant again
    assert table(db, "model_latest")[0] == ("prod", "gen4.5", D1, 2, 200, 2, 2)
    # a clock gone back: stored, compared with the latest row, which stays the latest
    late = datetime(2026, 11, 24, 12, 35)
    assert write(db, run("prod", late, start=None), snap(late, 4800, 40)) == 2
    assert table(db, "org_latest") == [("prod", D1, 4700, 10000)]
    assert table(db, "model_latest")[0] == ("prod", "gen4.5", D1, 2, 200, 2, 2)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(gen + " ORDER BY date").fetchall() == [
            ("prod", DAY, "gen4.5", 40, 40, 200, 2, late),
            ("prod", date(2026, 11, 25), "gen4.5", 2, 2, 200, 2, D1),
        ]
    assert scan_mismatches(db) == {}


def test_database_from_before_the_write_state_gets_it_on_open(tmp_path):
    db = tmp_path / "old.duckdb"
    write(db, run("prod", T0), snap(T0, 5000, 12), window(("2026-11-23", "gen4.5", 120)))
    write(db, run("prod", T1), snap(T1, 4900, 20), window(("2026-11-23", "gen4.5", 100)))
    write(db, run("dev", T1, start=None), snap(T1, 50, 1))
    with duckdb.connect(str(db)) as con:  # what an older version left
        con.execute(
            "DROP TABLE org_usage_totals; DROP TABLE org_latest; DROP TABLE model_latest; "
            "DROP TABLE usage_coverage; DELETE FROM meta WHERE key = 'write_state'"
        )
    with write_session(db):
        pass
    assert table(db, "org_usage_totals") == [
        ("dev", 0, 0, None),
        ("prod", 1, 100, date(2026, 11, 25)),
    ]
    assert table(db, "org_latest") == [("dev", T1, 50, 10000), ("prod", T1, 4900, 10000)]
    assert table(db, "model_latest") == [
        ("dev", "gen4.5", T1, 2, 200, 1, 1),
        ("dev", "kling3.0_pro", T1, None, None, 3, 3),
        ("prod", "gen4.5", T1, 2, 200, 20, 20),
        ("prod", "kling3.0_pro", T0, None, None, 3, 3),
    ]
    assert [r for r in table(db, "usage_coverage") if r[0] == "prod"] == coverage(T1)
    assert scan_mismatches(db) == {}
    # and the next write goes on from there
    assert write(db, run("prod", T2), snap(T2, 4900, 9), window(("2026-11-24", "veo3.1", 8))) == 3
    assert table(db, "org_usage_totals")[1] == ("prod", 1, 8, date(2026, 11, 25))
    assert table(db, "model_latest")[2] == ("prod", "gen4.5", T2, 2, 200, 9, 20)
    assert scan_mismatches(db) == {}
