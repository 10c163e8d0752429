"""Bytes per org-year and publish time on a generated year of 15-minute polling (issue #12).

    .venv/bin/python benchmarks/storage_bench.py [--orgs 100] [--old-orgs 4] [--models 50]
                                                 [--history 1,2,4] [--dir /tmp/x] [--keep]

Generates, with DuckDB SQL over ``range`` (vectorized, in the order the collector appends:
cycle by cycle, org by org, model by model), what a year of collection stores for each org:
a snapshot every 15 minutes (balance and cap in ``org_snapshots`` on ~90% of polls, because
spending moves the balance; all ``--models`` models in ``model_snapshots`` on ~90% of polls,
because ``daily_generations`` is a rolling 24-hour count), a usage refresh every hour
(40 of the models used each day: ``daily_usage``, 5 API keys x 8 models in ``key_usage``,
and a ``usage_revisions`` row each hour for each used model, as today's credits grow),
one ``collection_runs`` row per org per cycle (35,040 snapshot + 8,760 usage runs a year),
the day rollup ``model_daily`` and the write-state tables.

Each table is inserted then checkpointed alone, so the file's growth (used blocks x block
size) is that table's bytes, with its indexes. Two layouts in the same run:

- ``old``: the schema before issue #12 (primary keys on ``model_snapshots``,
  ``org_snapshots``, ``usage_revisions``, ``collection_runs`` and on the per-day tables
  ``model_daily``, ``daily_usage``, ``key_usage``, ``usage_coverage``), at ``--old-orgs`` orgs
  (its keys make a 100-org year ~15 GB; bytes per org-year do not depend on the org count);
- ``new``: ``collector/schema.sql`` as shipped, at ``--orgs`` orgs.

Then publishing (``store.publish_snapshot``: the whole file copied, fsynced, renamed) on the
new layout with 1x, 2x, 4x the history (``--history``, whole years appended), to show how it
grows; and the shipped archive (``collector.archive``) on a copy of the same file: the first
archive step (every day past each table's live days written once to Parquet parts), the live
file rewritten without its freed blocks, its size and publish time, then a day later (one
more generated day moved by the step) again, and reader queries through the readers' views
(live part + parts) against the same queries on the whole file. Prints figures and ratios;
asserts nothing.

Needs ~7 GB of free disk under --dir at the defaults (the 4x file is 6 GB) and took 46 min
on a busy 2-core machine; ``--orgs 10 --history 1,2`` gives the same bytes per org-year in
a few minutes (publish times then show the growth, not the 100-org figures).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runway_costs.collector.archive import (  # noqa: E402
    archive_step,
    create_history_views,
    vacuum_if_sparse,
)
from runway_costs.collector.store import publish_snapshot, schema_sql  # noqa: E402
from runway_costs.core.files import parts_dir, snapshot_path  # noqa: E402

START = datetime(2025, 1, 1)
SLOTS_PER_DAY = 96  # 15-minute polling
USED_MODELS = 40
KEYS, KEY_MODELS = 5, 8
MB = 1_000_000

# The tables whose primary keys issue #12 dropped, as they were: the history tables
# (schema version 1) and, later, the per-day tables.
OLD_DDL = """
CREATE SEQUENCE IF NOT EXISTS collection_run_seq;
CREATE TABLE model_daily (
    org VARCHAR NOT NULL, date DATE NOT NULL, model VARCHAR NOT NULL,
    gens_end INTEGER NOT NULL, gens_peak INTEGER NOT NULL, max_daily_generations INTEGER,
    max_concurrent_generations INTEGER, last_taken_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org, date, model));
CREATE TABLE daily_usage (
    org VARCHAR NOT NULL, date DATE NOT NULL, model VARCHAR NOT NULL, credits BIGINT NOT NULL,
    collected_at TIMESTAMP NOT NULL, PRIMARY KEY (org, date, model));
CREATE TABLE key_usage (
    org VARCHAR NOT NULL, date DATE NOT NULL, api_key_id VARCHAR NOT NULL,
    model VARCHAR NOT NULL DEFAULT '', credits BIGINT NOT NULL, collected_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org, date, api_key_id, model));
CREATE TABLE usage_coverage (
    org VARCHAR NOT NULL, date DATE NOT NULL, covered_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org, date));
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
"""

# One statement per table; $o orgs, $m models, $days days from $start. Names: org0000,
# model00 (the names' length is what dictionary compression sees, like real names).
ORG = "printf('org%04d', o)"
GENERATORS: dict[str, str] = {
    "model_snapshots": f"""
        SELECT {ORG}, $start + to_minutes(15 * t), printf('model%02d', m),
               CASE WHEN m % 7 = 0 THEN NULL ELSE 2 + m % 4 END,
               CASE WHEN m % 7 = 0 THEN NULL ELSE 500 * (1 + m % 4) END,
               (200 + 150 * sin((t % 96) / 15.3) + (o * 7 + m * 13) % 300
                + hash(i) % 25)::INTEGER
        FROM (SELECT i, i // ($o * $m) AS t, (i // $m) % $o AS o, i % $m AS m
              FROM range($days * 96 * $o * $m) r(i))
        WHERE hash(i, 'same') % 10 <> 0""",
    "org_snapshots": f"""
        SELECT {ORG}, $start + to_minutes(15 * t),
               (5000000 - 40 * t - hash(o) % 100000 + hash(i) % 30)::BIGINT,
               CASE o % 4 WHEN 0 THEN 10000 WHEN 1 THEN 50000 WHEN 2 THEN 200000
                          ELSE 2000000 END
        FROM (SELECT i, i // $o AS t, i % $o AS o FROM range($days * 96 * $o) r(i))
        WHERE hash(i, 'same') % 10 <> 0""",
    "model_daily": f"""
        SELECT {ORG}, CAST($start AS DATE) + CAST(d AS INTEGER), printf('model%02d', m),
               (hash(i) % 600)::INTEGER, (600 + hash(i) % 200)::INTEGER,
               CASE WHEN m % 7 = 0 THEN NULL ELSE 500 * (1 + m % 4) END,
               CASE WHEN m % 7 = 0 THEN NULL ELSE 2 + m % 4 END,
               $start + to_days(d) + INTERVAL '23:45:00'
        FROM (SELECT i, i // ($o * $m) AS d, (i // $m) % $o AS o, i % $m AS m
              FROM range($days * $o * $m) r(i))""",
    "daily_usage": f"""
        SELECT {ORG}, CAST($start AS DATE) + CAST(d AS INTEGER), printf('model%02d', m),
               (hash(i) % 5000)::BIGINT, $start + to_days(d + 1) + INTERVAL '00:05:00'
        FROM (SELECT i, i // ($o * {USED_MODELS}) AS d, (i // {USED_MODELS}) % $o AS o,
                     i % {USED_MODELS} AS m
              FROM range($days * $o * {USED_MODELS}) r(i))""",
    "key_usage": f"""
        SELECT {ORG}, CAST($start AS DATE) + CAST(d AS INTEGER),
               printf('key-%08x', hash(o, k) % 4294967296), printf('model%02d', m),
               (hash(i) % 1000)::BIGINT, $start + to_days(d + 1) + INTERVAL '00:05:00'
        FROM (SELECT i, i // ($o * {KEYS * KEY_MODELS}) AS d,
                     (i // {KEYS * KEY_MODELS}) % $o AS o,
                     (i // {KEY_MODELS}) % {KEYS} AS k, i % {KEY_MODELS} AS m
              FROM range($days * $o * {KEYS * KEY_MODELS}) r(i))""",
    "usage_revisions": f"""
        SELECT {ORG}, CAST($start AS DATE) + CAST(h // 24 AS INTEGER), printf('model%02d', m),
               $start + to_hours(h + 1), (hash(i) % 5000)::BIGINT,
               (hash(i) % 5000 + 1 + hash(i, 'n') % 200)::BIGINT, $start + to_hours(h)
        FROM (SELECT i, i // ($o * {USED_MODELS}) AS h, (i // {USED_MODELS}) % $o AS o,
                     i % {USED_MODELS} AS m
              FROM range($days * 24 * $o * {USED_MODELS}) r(i))""",
    "collection_runs": f"""
        SELECT {ORG}, CASE WHEN t % 4 = 0 AND u = 1 THEN 'usage' ELSE 'snapshot' END,
               $start + to_minutes(15 * t), $start + to_minutes(15 * t)
                   + to_milliseconds(200 + hash(i) % 3000),
               'ok', NULL, CASE WHEN u = 1 THEN 3 ELSE 2 END, 0,
               CASE WHEN u = 1 THEN CAST($start AS DATE) + CAST(t // 96 AS INTEGER) - 3 END,
               CASE WHEN u = 1 THEN CAST($start AS DATE) + CAST(t // 96 AS INTEGER) + 1 END,
               (hash(i) % 60)::INTEGER,
               CASE WHEN u = 1 THEN 40 * (t // 96) END,
               CASE WHEN u = 1 THEN 2500 * 40 * (t // 96) END
        FROM (SELECT i, t, o, u FROM (
                  SELECT i, i // ($o * 2) AS t, (i // 2) % $o AS o, i % 2 AS u
                  FROM range($days * 96 * $o * 2) r(i))
              WHERE u = 0 OR t % 4 = 0)""",
    "usage_coverage": f"""
        SELECT {ORG}, CAST($start AS DATE) + CAST(d AS INTEGER), $start + to_days(d + 1)
        FROM range($days) a(d), range($o) b(o)""",
}
RUN_COLUMNS = (
    "(org, kind, started_at, finished_at, status, error, http_calls, retries, usage_start, "
    "usage_before, rows_changed, usage_rows, usage_credits)"
)


def _used_bytes(con: duckdb.DuckDBPyConnection) -> int:
    size, used = con.execute(
        "SELECT block_size, used_blocks FROM pragma_database_size()"
    ).fetchall()[0]
    return int(size) * int(used)


def fill(
    con: duckdb.DuckDBPyConnection, orgs: int, models: int, start: datetime, days: int
) -> dict[str, int]:
    """Append ``days`` from ``start`` to every table; per table, the bytes it added."""
    grown: dict[str, int] = {}
    for table, sql in GENERATORS.items():
        params = {"o": orgs, "m": models, "days": days, "start": start}
        used = {k: v for k, v in params.items() if f"${k}" in sql}
        before = _used_bytes(con)
        columns = RUN_COLUMNS if table == "collection_runs" else ""
        con.execute(f"INSERT INTO {table} {columns} {sql}", used)
        con.execute("CHECKPOINT")
        grown[table] = _used_bytes(con) - before
    return grown


def build(path: Path, old: bool, orgs: int, models: int, years: int) -> dict[str, int]:
    """A database of ``years`` years at ``path``; bytes per table (all years)."""
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        if old:
            con.execute(OLD_DDL)
        con.execute(schema_sql())  # CREATE ... IF NOT EXISTS: the old tables stay as they are
        con.execute("CHECKPOINT")
        total: dict[str, int] = {}
        for year in range(years):
            start = START.replace(year=START.year + year)
            for table, grown in fill(con, orgs, models, start, 365).items():
                total[table] = total.get(table, 0) + grown
        return total
    finally:
        con.close()


def timed_publish(db: Path, runs: int = 3) -> float:
    """Median seconds of ``publish_snapshot`` (the snapshot removed between runs)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        publish_snapshot(db)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def per_org_year(nbytes: int, orgs: int, years: int = 1) -> float:
    return nbytes / orgs / years / MB


def print_layouts(old: dict[str, int], new: dict[str, int], old_orgs: int, orgs: int) -> None:
    print(f"\nbytes per org-year (MB), old layout at {old_orgs} orgs, new at {orgs} orgs:")
    print(f"  {'table':<18} {'old':>8} {'new':>8} {'ratio':>7}")
    for table in GENERATORS:
        a, b = per_org_year(old[table], old_orgs), per_org_year(new[table], orgs)
        print(f"  {table:<18} {a:8.2f} {b:8.2f} {a / b if b else float('nan'):7.1f}x")
    a, b = per_org_year(sum(old.values()), old_orgs), per_org_year(sum(new.values()), orgs)
    print(f"  {'total':<18} {a:8.2f} {b:8.2f} {a / b:7.1f}x   (target < 20 MB)")


READER_QUERIES = {
    "limits: one org's model_snapshots, 60 days": """
        SELECT model, count(*), max(daily_generations) FROM model_snapshots
        WHERE org = 'org0001' AND taken_at >= $anchor - INTERVAL 60 DAY AND taken_at <= $anchor
        GROUP BY model""",
    "status: every org's runs of a week": """
        SELECT org, count(*), max(finished_at) FROM collection_runs
        WHERE started_at >= $anchor - INTERVAL 7 DAY AND started_at <= $anchor GROUP BY org""",
    "spend: every org, 90 days of daily_usage": """
        SELECT org, sum(credits) FROM daily_usage
        WHERE date >= CAST($anchor AS DATE) - 90 AND date <= CAST($anchor AS DATE) GROUP BY org""",
    "revisions: one org, a year": """
        SELECT count(*), sum(new_credits) FROM usage_revisions
        WHERE org = 'org0001' AND date >= CAST($anchor AS DATE) - 365
          AND date <= CAST($anchor AS DATE)""",
    "balance: one org's org_snapshots, 2 years": """
        SELECT count(*), min(credit_balance) FROM org_snapshots
        WHERE org = 'org0001' AND taken_at >= $anchor - INTERVAL 730 DAY
          AND taken_at <= $anchor""",
}


def archived_publish(db: Path, work: Path, orgs: int, models: int, years: int) -> float:
    """The shipped design on a copy of ``db``: ``collector.archive.archive_step`` at the
    last generated instant (every day past each table's live days written once to Parquet
    parts), the live file rewritten tight (``vacuum_if_sparse``, once), then published as
    every cycle does; then a day later (one more generated day, the step moving that day)
    published again. Reader queries over the views against the same on the whole file.
    Returns the steady publish time."""
    live = work / "archived" / "runway.duckdb"
    shutil.rmtree(live.parent, ignore_errors=True)
    live.parent.mkdir()
    shutil.copyfile(db, live)
    con = duckdb.connect(str(live))
    try:
        con.execute(schema_sql())  # the manifest table (the generator predates it)
        anchor = con.execute("SELECT max(taken_at) FROM org_snapshots").fetchall()[0][0]
        t0 = time.perf_counter()
        first = archive_step(con, live, anchor)
        first_seconds = time.perf_counter() - t0
        con.execute("CHECKPOINT")
    finally:
        con.close()
    t0 = time.perf_counter()
    vacuum_if_sparse(live)
    vacuum_seconds = time.perf_counter() - t0
    publish_first = timed_publish(live)
    next_day = datetime(anchor.year, anchor.month, anchor.day) + timedelta(days=1)
    con = duckdb.connect(str(live))
    try:
        fill(con, orgs, models, next_day, 1)
        t0 = time.perf_counter()
        daily = archive_step(con, live, next_day + timedelta(days=1))
        daily_seconds = time.perf_counter() - t0
        con.execute("CHECKPOINT")
    finally:
        con.close()
    publish = timed_publish(live)
    parts = parts_dir(live)
    part_bytes = sum(f.stat().st_size for f in parts.glob("*.parquet"))
    print(
        f"  archived: first step {first_seconds:.1f} s ({first.files_written} parts, "
        f"{sum(first.rows.values()):,} rows), live file rewritten in {vacuum_seconds:.1f} s; "
        f"parts {per_org_year(part_bytes, orgs, years):.2f} MB per org-year; "
        f"live file {live.stat().st_size / MB:.0f} MB, publish {publish_first:.3f} s\n"
        f"    a day later: step {daily_seconds:.2f} s ({sum(daily.rows.values()):,} rows "
        f"moved), live file {live.stat().st_size / MB:.0f} MB, publish {publish:.3f} s"
    )
    _reader_queries(db, snapshot_path(live), anchor)
    return publish


def _reader_queries(db: Path, snapshot: Path, anchor: datetime) -> None:
    """READER_QUERIES on the whole file, then on the published live part through the
    readers' temp views over it and its parts (``create_history_views``: reader SQL
    unchanged), median of 3 each. The archived copy has one more day, which the queries'
    windows (ending at ``anchor``) leave out but "every org's last run" sees."""
    results: dict[str, dict[str, tuple[float, list]]] = {}
    for name in ("table", "view"):
        con = duckdb.connect(str(db if name == "table" else snapshot), read_only=True)
        try:
            if name == "view":
                create_history_views(con)
            for label, sql in READER_QUERIES.items():
                runs, rows = [], []
                for _ in range(3):
                    t0 = time.perf_counter()
                    rows = sorted(
                        con.execute(sql, {"anchor": anchor} if "$anchor" in sql else {}).fetchall()
                    )
                    runs.append(time.perf_counter() - t0)
                results.setdefault(label, {})[name] = (statistics.median(runs), rows)
        finally:
            con.close()
    for label, by in results.items():
        (tt, trows), (vt, vrows) = by["table"], by["view"]
        same = "same rows" if trows == vrows else "rows differ"
        print(
            f"    {label:<44} table {tt * 1000:6.0f} ms, view {vt * 1000:6.0f} ms "
            f"({vt / tt:4.1f}x, {same})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--old-orgs", type=int, default=4)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--history", default="1,2,4", help="years of history to publish")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="storage-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        old_db = work / "old.duckdb"
        old = build(old_db, True, args.old_orgs, args.models, 1)
        old_publish = timed_publish(old_db)
        old_size = old_db.stat().st_size
        print(f"old layout: {args.old_orgs} orgs generated in {time.perf_counter() - t0:.0f} s")
        for leftover in work.glob("old.duckdb*"):
            leftover.unlink()
        t0 = time.perf_counter()
        new_db = work / "new.duckdb"
        new = build(new_db, False, args.orgs, args.models, 1)
        print(f"new layout: {args.orgs} orgs generated in {time.perf_counter() - t0:.0f} s")
        print_layouts(old, new, args.old_orgs, args.orgs)
        print(
            f"\nold layout, one year, {args.old_orgs} orgs: {old_size / MB:.0f} MB, "
            f"publish (whole-file copy) {old_publish:.2f} s"
        )
        print("\nnew layout, growing history: whole-file publish vs the archived live part")
        base = None
        for years in sorted(int(y) for y in args.history.split(",")):
            con = duckdb.connect(str(new_db))
            try:
                have = con.execute("SELECT count(DISTINCT year(taken_at)) FROM org_snapshots")
                for year in range(int(have.fetchall()[0][0]), years):
                    fill(con, args.orgs, args.models, START.replace(year=START.year + year), 365)
            finally:
                con.close()
            seconds = timed_publish(new_db)
            base = base or seconds
            print(
                f"  {years}x history: whole file {new_db.stat().st_size / MB:.0f} MB, "
                f"publish {seconds:.2f} s ({seconds / base:.1f}x the 1x figure)"
            )
            archived = archived_publish(new_db, work, args.orgs, args.models, years)
            print(
                f"  publish: archived {archived:.3f} s vs whole file {seconds:.2f} s "
                f"({seconds / archived:.0f}x)"
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    main()
