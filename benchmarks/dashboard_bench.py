"""How long each dashboard page's data takes to load at 20, 200 and 1,000 organizations.

For each organization count a database is generated with DuckDB SQL (vectorized:
``INSERT ... SELECT`` over ``range()``s, no Python loop over rows): 3 years of daily usage
for N organizations x 60 models, 90 days of 15-minute snapshots (balances, per-model limits
stored on change, one collection run per org and snapshot), a few alerts per org, and the
collector's derived tables (``model_daily``, the write-state tables) built by the
collector's own migration (``ensure_schema``). Rows are appended in time order, a week of
usage or a day of snapshots per statement, as the collector appends them (the API serves
90 days, so older history was collected as it happened): a bounded window then reads its
own row groups, as on a real database. The history tables (daily_usage, org_snapshots,
model_snapshots) are loaded without their primary-key indexes: readers never use them,
and at 1,000 orgs building them took most of the time and ~9 GB of memory (``--keyed``
builds them, in one bulk ALTER TABLE ADD PRIMARY KEY each). Databases are cached under
``--cache`` (default ``/tmp/runway-costs-dashboard-bench``), keyed by size, years, keys
and a generator version that includes a hash of the schemas, so a changed schema or
generator builds a fresh one. 1,000 orgs: 1.5 GB; 830 s at load ~13 on 2 cores, half of
it the collector's own migration (``ensure_schema`` building model_daily and model_latest
from 130M snapshot rows); the generator before, keys maintained row by row: 514 s, 17 GB.

Then it runs the cycle's outlook step (``store_outlooks``) and times what each page asks
``dashboard.views`` for, through a fresh read-only
connection each time, as the dashboard does on a cache miss, for one organization and for
all organizations: the sidebar (known organizations and the collection status every page
shows), Overview, Spend (90 days), Limits, Planner (feasibility for one org) and Alerts.
It prints the median and worst of ``--runs`` runs after a warm-up, the baseline of the same
run (open a reader and ``SELECT 1``), and each page's growth against its time at the
smallest size. Target (issue #12): every page under 300 ms median at 1,000 orgs x 3 years.
The machine is shared: read the ratios, and the load average printed with the figures.

By default the pages read an archived copy of each database (``archived_copy``: the layout a
collecting database has, older days in Parquet parts under ``<db>.parts/``); ``--whole``
times the generated file itself.

    .venv/bin/python benchmarks/dashboard_bench.py [--orgs 20,200,1000] [--runs 5]
        [--years 3] [--pages spend,limits] [--cache DIR] [--keyed] [--whole]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from runway_costs.analytics.outlook import outlook_step
from runway_costs.collector.archive import archive_step, vacuum_if_sparse
from runway_costs.collector.store import ensure_schema, publish_snapshot, schema_sql
from runway_costs.core.config import Budget, Settings
from runway_costs.core.files import parts_dir, snapshot_path
from runway_costs.dashboard import views

ALERTS_SCHEMA = (
    Path(__file__).resolve().parents[1] / "runway_costs" / "analytics" / "alerts_schema.sql"
)
ORGS, MODELS, YEARS, SNAPSHOT_DAYS = 20, 60, 3, 90
AS_OF = datetime(2026, 11, 24, 12, 0)
TARGET_MS = 300.0
# Bump when generate() writes different rows; the schemas' text is part of the key too.
GENERATOR_VERSION = 2
CACHE = Path("/tmp/runway-costs-dashboard-bench")
# The history tables: loaded unkeyed, keyed afterwards only with --keyed.
BULK_KEYED = ("daily_usage", "org_snapshots", "model_snapshots")


def org_name(i: int) -> str:
    """The generated organizations' names: org00, org01, ..., org999 (printf %02d)."""
    return f"org{i:02d}"


def generator_key(orgs: int, years: int, keyed: bool = False) -> str:
    """The cache file name of a generated database: size, years, keys, generator version."""
    schemas = (schema_sql() + ALERTS_SCHEMA.read_text(encoding="utf-8")).encode()
    digest = hashlib.sha256(schemas).hexdigest()[:10]
    keys = "-keyed" if keyed else ""
    return f"bench-{orgs}orgs-{years}y{keys}-g{GENERATOR_VERSION}-{digest}.duckdb"


def _primary_key(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        """SELECT constraint_column_names FROM duckdb_constraints()
           WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'""",
        [table],
    ).fetchall()
    return list(rows[0][0]) if rows else []


def generate(db: Path, orgs: int = ORGS, years: int = YEARS, keyed: bool = False) -> None:
    """Fill ``db`` with ``orgs`` organizations (``org_name(i)``) and ``years`` of usage;
    the values are pseudo-random but fixed (hash of the keys)."""
    con = duckdb.connect(str(db))
    con.execute("SET enable_progress_bar = false")
    steps: dict[str, float] = {}
    t0 = time.perf_counter()
    con.execute(schema_sql())
    con.execute(ALERTS_SCHEMA.read_text(encoding="utf-8"))
    keys = {}
    for table in BULK_KEYED:  # the same columns, no index while loading
        keys[table] = _primary_key(con, table)
        con.execute(f"CREATE TABLE gen_{table} AS FROM {table} LIMIT 0")
        con.execute(f"DROP TABLE {table}")
        con.execute(f"ALTER TABLE gen_{table} RENAME TO {table}")
    end = AS_OF.date()
    start = end - timedelta(days=365 * years)
    params = {
        "orgs": orgs,
        "models": MODELS,
        "start": start,
        "end": end,
        "snap_start": AS_OF - timedelta(days=SNAPSHOT_DAYS),
        "as_of": AS_OF,
    }

    def run(sql: str, chunk: timedelta | None = None) -> None:
        """One INSERT, or with ``chunk`` one per consecutive [$lo, $hi) of that length from
        the table's first instant: rows land in time order, as the collector appends them
        (the API serves 90 days, so older history was collected as it happened), and a
        bounded window reads only its own row groups, as on a real database."""
        t = time.perf_counter()
        table = sql.split("INSERT INTO", 1)[1].split()[0]
        if chunk is None:
            bounds = [{}]
        else:
            first, stop = (
                (start, end + timedelta(days=1))
                if table == "daily_usage"
                else (params["snap_start"], AS_OF + timedelta(minutes=1))
            )
            n = -(-(stop - first) // chunk)
            bounds = [
                {"lo": first + i * chunk, "hi": min(first + (i + 1) * chunk, stop)}
                for i in range(n)
            ]
        for bound in bounds:  # DuckDB wants exactly the named parameters a query uses
            values = params | bound
            con.execute(sql, {k: v for k, v in values.items() if f"${k}" in sql})
        steps[table] = time.perf_counter() - t

    run(
        """
        INSERT INTO daily_usage
        SELECT printf('org%02d', o), d::DATE, printf('model%02d', m),
               (hash(o, d, m) % 400)::BIGINT - 10
                 + CASE WHEN dayofweek(d) IN (0, 6) THEN 0 ELSE 150 END,
               d::TIMESTAMP + INTERVAL 1 DAY
        FROM range($lo::DATE, $hi::DATE, INTERVAL 1 DAY) u(d), range($orgs) t(o),
             range($models) v(m)
        """,
        timedelta(days=7),
    )
    run(
        """
        INSERT INTO org_snapshots
        SELECT printf('org%02d', o), t, 50000 + (hash(o, t) % 40000)::BIGINT,
               CASE o % 4 WHEN 0 THEN 10000 WHEN 1 THEN 50000 WHEN 2 THEN 200000
                          ELSE 2000000 END
        FROM range($lo::TIMESTAMP, $hi::TIMESTAMP, INTERVAL 15 MINUTE) b(t), range($orgs) a(o)
        """,
        timedelta(days=1),
    )
    # Stored on change only: about one 15-minute snapshot in four changes a model.
    run(
        """
        INSERT INTO model_snapshots
        SELECT printf('org%02d', o), t, printf('model%02d', m), 3 + o % 4, 500 + 100 * (o % 4),
               (hash(o, t, m) % 500)::INTEGER
        FROM range($lo::TIMESTAMP, $hi::TIMESTAMP, INTERVAL 15 MINUTE) b(t), range($orgs) a(o),
             range($models) c(m)
        WHERE hash(o, t, m, 'changed') % 4 = 0 OR t = $snap_start::TIMESTAMP
        """,
        timedelta(days=1),
    )
    run(
        """
        INSERT INTO collection_runs (org, kind, started_at, finished_at, status, http_calls,
                                     retries, rows_changed)
        SELECT printf('org%02d', o), 'snapshot', t - INTERVAL 5 SECOND, t, 'ok', 1, 0, 1
        FROM range($lo::TIMESTAMP, $hi::TIMESTAMP, INTERVAL 15 MINUTE) b(t), range($orgs) a(o)
        """,
        timedelta(days=1),
    )
    # Alerts: per org a fired and a resolved event a week, one alert open per org.
    run(
        """
        INSERT INTO alert_events (event_at, org, rule, target, key, status, severity, value,
                                  threshold, message)
        SELECT w + INTERVAL (s * 2) DAY, printf('org%02d', o), 'limit_high',
               printf('model%02d', o % $models), strftime(w, '%G-W%V'),
               CASE s WHEN 0 THEN 'fired' ELSE 'resolved' END, 'warning', 0.9, 0.8,
               'near the daily generation limit'
        FROM range($orgs) a(o),
             range($snap_start::TIMESTAMP, $as_of::TIMESTAMP, INTERVAL 7 DAY) b(w),
             range(2) c(s)
        ORDER BY 1, 2
        """
    )
    run(
        """
        INSERT INTO alert_state
        SELECT printf('org%02d', o), 'balance_low', '', '', 'open',
               CASE o % 3 WHEN 0 THEN 'critical' WHEN 1 THEN 'warning' ELSE 'info' END,
               'warning', 1000, 5000, 'balance below the threshold',
               $as_of::TIMESTAMP - INTERVAL 1 DAY, $as_of::TIMESTAMP, NULL
        FROM range($orgs) a(o)
        """
    )
    t = time.perf_counter()
    for table, columns in keys.items():
        if keyed and columns:
            con.execute(f"ALTER TABLE {table} ADD PRIMARY KEY ({', '.join(columns)})")
    steps["keys"] = time.perf_counter() - t
    t = time.perf_counter()
    ensure_schema(con)  # the collector's migration builds model_daily and the write state
    steps["derived tables"] = time.perf_counter() - t
    t = time.perf_counter()
    con.execute("CHECKPOINT")
    steps["checkpoint"] = time.perf_counter() - t
    counts = {
        t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
        for t in (
            "daily_usage",
            "org_snapshots",
            "model_snapshots",
            "model_daily",
            "collection_runs",
            "alert_events",
        )
    }
    con.close()
    print("generated:", ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    print(
        f"  {time.perf_counter() - t0:.0f} s: "
        + ", ".join(f"{name} {secs:.1f} s" for name, secs in steps.items())
    )


def migrate(db: Path) -> None:
    """Move a database generated by an older version of the collector's schema forward
    (``ensure_schema``: e.g. the limit roll-up filled once), timed: the one-off cost a
    deployment pays on its first write after upgrading. A no-op when it is current."""
    t = time.perf_counter()
    con = duckdb.connect(str(db))
    try:
        before = {r[0] for r in con.execute("SELECT key FROM meta").fetchall()}
        ensure_schema(con)
        after = {r[0] for r in con.execute("SELECT key FROM meta").fetchall()}
        if after != before:
            con.execute("CHECKPOINT")
            print(
                f"{db.name}: migrated ({', '.join(sorted(after - before))}) in "
                f"{time.perf_counter() - t:.1f} s"
            )
    finally:
        con.close()


def store_outlooks(db: Path) -> None:
    """Run the after-write step every collection cycle runs (``analytics.outlook``) at
    ``AS_OF``, so the pages read what they read in production: the Overview and the Limits
    page read what the last cycle stored instead of computing it per organization. Timed:
    it is the cycle's cost, not the page's. Twice: the second run starts from what the
    first kept (the cap runs, the rows in force before the 30-day window, the interval
    ratios), as every cycle after the first does; the first may read all history (a
    database the step has not run on yet)."""
    con = duckdb.connect(str(db))
    try:
        secs = []
        for _ in range(2):
            t = time.perf_counter()
            outlook_step(Settings(db_path=db))(con, AS_OF)
            secs.append(time.perf_counter() - t)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    print(
        f"{db.name}: outlooks stored (the cycle's after-write step) in {secs[0]:.1f} s, "
        f"again from what it kept (the next cycle) in {secs[1]:.1f} s; "
        f"load average {os.getloadavg()[0]:.2f}"
    )


def cached_db(orgs: int, years: int, cache: Path, keyed: bool = False) -> Path:
    """The generated database of that size, built once per generator version."""
    cache.mkdir(parents=True, exist_ok=True)
    db = cache / generator_key(orgs, years, keyed)
    if db.exists():
        migrate(db)
        return db
    part = db.with_suffix(".partial")
    part.unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:
        generate(part, orgs, years, keyed)
    except BaseException:  # never leave a half-generated file to be reused
        part.unlink(missing_ok=True)
        raise
    part.replace(db)
    size = db.stat().st_size / 2**30
    print(f"{orgs} orgs: generated in {time.perf_counter() - t0:.0f} s, {size:.1f} GiB ({db})")
    return db


def archived_copy(db: Path) -> Path:
    """The production layout of ``db``: a copy on which ``collector.archive.archive_step``
    ran at ``AS_OF`` (every day past each table's live days moved to Parquet parts), the
    live file rewritten tight and published, as after a collection cycle. Pages then read
    the live part plus the parts through the readers' views. Built again from ``db`` on
    every run (its outlooks were just stored): ~1 min at 1,000 orgs."""
    copy = db.with_name(db.stem + "-archived.duckdb")
    shutil.rmtree(parts_dir(copy), ignore_errors=True)
    for stale in (copy, snapshot_path(copy)):
        stale.unlink(missing_ok=True)
    shutil.copyfile(db, copy)
    con = duckdb.connect(str(copy))
    try:
        con.execute(schema_sql())  # the manifest, for a file generated before it
        t0 = time.perf_counter()
        report = archive_step(con, copy, AS_OF)
        step = time.perf_counter() - t0
        con.execute("CHECKPOINT")
    finally:
        con.close()
    vacuum_if_sparse(copy)
    t0 = time.perf_counter()
    publish_snapshot(copy)
    publish = time.perf_counter() - t0
    print(
        f"archived a copy: {sum(report.rows.values()):,} rows to {report.files_written} parts "
        f"in {step:.1f} s; live file {copy.stat().st_size / 2**20:.0f} MiB, "
        f"published in {publish:.3f} s"
    )
    return copy


def page_loads(
    settings: Settings, orgs: int
) -> dict[tuple[str, str], Callable[[duckdb.DuckDBPyConnection], object]]:
    """What each page loads (page, scope) -> load, for one organization and for all."""
    every = views.Scope(tuple(org_name(i) for i in range(orgs)), True)
    one = views.Scope((org_name(3),))
    start = AS_OF.date() - timedelta(days=89)
    sample = json.dumps(
        [
            {"model": "gen4.5", "count": 4, "seconds": 10},
            {"model": "veo3.1", "count": 2, "seconds": 8, "audio": True},
            {"model": "gen4_image", "count": 20, "resolution": "1080p"},
        ]
    )
    loads: dict[tuple[str, str], Callable[[duckdb.DuckDBPyConnection], object]] = {}
    for label, scope in (("one org", one), ("all orgs", every)):
        loads |= {
            ("sidebar", label): lambda con, s=scope: (
                views.known_orgs(con, settings),
                views.collection_status(con, settings, s, AS_OF),
            ),
            ("overview", label): lambda con, s=scope: views.overview(con, settings, s, AS_OF),
            ("spend 90 days", label): lambda con, s=scope: views.spend(
                con, settings, s, start, AS_OF.date()
            ),
            ("limits", label): lambda con, s=scope: views.limits(con, settings, s, start, AS_OF),
            ("alerts", label): lambda con, s=scope: views.alerts(con, settings, s),
        }
    loads[("planner", "one org")] = lambda con: views.plan_feasibility(
        con, settings, sample, one.orgs[0], AS_OF
    )
    return loads


def time_page(db: Path, load: Callable, runs: int) -> list[float]:
    """``runs`` timings in ms after one warm-up run."""
    return [wall for wall, _ in time_page_cpu(db, load, runs)]


def time_page_cpu(db: Path, load: Callable, runs: int) -> list[tuple[float, float]]:
    """``runs`` (wall ms, CPU ms of this process, every thread) after one warm-up run: on
    a shared machine the wall time follows the load, the CPU time much less."""
    out = []
    for _ in range(runs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        with views.reader(db) as con:
            load(con)
        out.append(((time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000))
    return out[1:]


def trivial(con: duckdb.DuckDBPyConnection) -> object:
    """The floor every page pays: a reader opened and one query run."""
    return con.execute("SELECT 1").fetchall()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", default="20,200,1000", help="comma-separated counts")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--years", type=int, default=YEARS)
    parser.add_argument("--pages", help="only pages whose name contains one of these (a,b)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="generated databases")
    parser.add_argument("--keyed", action="store_true", help="build the history tables' keys")
    parser.add_argument(
        "--whole",
        action="store_true",
        help="time the generated file itself (default: an archived copy, the layout a "
        "collecting database has: live days in the file, older days in Parquet parts)",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.orgs.split(",")]
    wanted = [p.strip() for p in args.pages.split(",")] if args.pages else None

    print(
        f"as of {AS_OF:%Y-%m-%d %H:%M} UTC, {args.years} years of usage x {MODELS} models, "
        f"{SNAPSHOT_DAYS} days of 15-minute snapshots; {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f} at the start"
    )
    results: dict[tuple[str, str], dict[int, tuple[float, float]]] = {}
    floors: dict[int, float] = {}
    cpus: dict[tuple[str, str], dict[int, float]] = {}
    for n in counts:
        db = cached_db(n, args.years, args.cache, args.keyed)
        store_outlooks(db)
        if not args.whole:
            db = archived_copy(db)
        settings = Settings(db_path=db, budgets=(Budget(org="org03", credits=2_000_000),))
        floors[n] = statistics.median(time_page(db, trivial, args.runs))
        print(f"\n{n} orgs: baseline (open a reader + SELECT 1) median {floors[n]:.1f} ms")
        print(f"{'page':<16} {'scope':<9} {'median ms':>10} {'worst ms':>10} {'CPU ms':>8}")
        for (page, scope), load in page_loads(settings, n).items():
            if wanted and not any(w in page for w in wanted):
                continue
            runs = time_page_cpu(db, load, args.runs)
            times = [wall for wall, _ in runs]
            med, cpu = statistics.median(times), statistics.median(c for _, c in runs)
            results.setdefault((page, scope), {})[n] = (med, max(times))
            cpus.setdefault((page, scope), {})[n] = cpu
            flag = "" if med < TARGET_MS else "  over target"
            print(
                f"{page:<16} {scope:<9} {med:>10.1f} {max(times):>10.1f} {cpu:>8.1f}{flag}",
                flush=True,
            )
    first = counts[0]
    print(
        f"\nmedian ms (worst) per page; growth = median / median at {first} orgs; "
        f"load average now {os.getloadavg()[0]:.2f}; runs: {args.runs} after a warm-up"
    )
    head = "".join(f"{f'{n} orgs':>18}" for n in counts)
    print(f"{'page':<16} {'scope':<9}{head}  growth")
    over = 0
    for (page, scope), by_n in results.items():
        cells = "".join(
            f"{f'{by_n[n][0]:.0f} ({by_n[n][1]:.0f})':>18}" if n in by_n else f"{'':>18}"
            for n in counts
        )
        growth = " ".join(f"{by_n[n][0] / by_n[first][0]:.1f}x" for n in counts[1:] if n in by_n)
        last = by_n[counts[-1]][0]
        over += last >= TARGET_MS
        cpu_cells = " / ".join(f"{cpus[(page, scope)][n]:.0f}" for n in counts if n in by_n)
        print(f"{page:<16} {scope:<9}{cells}  {growth}  (CPU ms {cpu_cells})")
    print(f"baseline{'':<17}" + "".join(f"{f'{floors[n]:.0f}':>18}" for n in counts))
    print(
        f"at {counts[-1]} orgs: {len(results) - over} of {len(results)} page loads under "
        f"{TARGET_MS:.0f} ms median"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
