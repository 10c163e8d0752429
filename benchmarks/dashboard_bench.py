"""How long each dashboard page's data takes to load on a large database.

Generates (with DuckDB SQL, in a temporary directory unless --db is given) 3 years of daily
usage for 20 organizations and 60 models, plus 90 days of 15-minute snapshots (balances,
per-model limits stored on change, one collection run per org and snapshot; the day
rollup ``model_daily`` built by the collector's own migration), then times what each page
asks ``dashboard.views`` for, through a fresh read-only connection each time, as the
dashboard does on a cache miss. Prints median and worst of --runs runs, and ratios against
baselines measured in the same run: opening a reader and running ``SELECT 1`` (every page),
and the Limits page on a copy without ``model_daily`` (the per-day reduction of
model_snapshots at read time, as before the rollup). Target: under 150 ms median per page.

    .venv/bin/python benchmarks/dashboard_bench.py [--runs 7] [--db PATH] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from runway_costs.collector.store import ensure_schema, rebuild_model_daily
from runway_costs.core.config import Budget, Settings
from runway_costs.dashboard import views

ALERTS_SCHEMA = (
    Path(__file__).resolve().parents[1] / "runway_costs" / "analytics" / "alerts_schema.sql"
)
ORGS, MODELS, YEARS, SNAPSHOT_DAYS = 20, 60, 3, 90
AS_OF = datetime(2026, 11, 24, 12, 0)
TARGET_MS = 150.0


def generate(db: Path, orgs: int = ORGS, years: int = YEARS) -> None:
    """Fill ``db`` with ``orgs`` organizations (org00, org01, ...) and ``years`` of usage;
    the values are pseudo-random but fixed (hash of the keys)."""
    con = duckdb.connect(str(db))
    ensure_schema(con)
    con.execute(ALERTS_SCHEMA.read_text(encoding="utf-8"))
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

    def run(sql: str) -> None:  # DuckDB wants exactly the named parameters a query uses
        con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})

    run(
        """
        INSERT INTO daily_usage
        SELECT printf('org%02d', o), d::DATE, printf('model%02d', m),
               (hash(o, d, m) % 400)::BIGINT - 10
                 + CASE WHEN dayofweek(d) IN (0, 6) THEN 0 ELSE 150 END,
               d::TIMESTAMP + INTERVAL 1 DAY
        FROM range($orgs) t(o), range($start::DATE, $end::DATE + 1, INTERVAL 1 DAY) u(d),
             range($models) v(m)
        """
    )
    run(
        """
        INSERT INTO org_snapshots
        SELECT printf('org%02d', o), t, 50000 + (hash(o, t) % 40000)::BIGINT,
               CASE o % 4 WHEN 0 THEN 10000 WHEN 1 THEN 50000 WHEN 2 THEN 200000
                          ELSE 2000000 END
        FROM range($orgs) a(o),
             range($snap_start::TIMESTAMP, $as_of::TIMESTAMP + INTERVAL 1 MINUTE,
                   INTERVAL 15 MINUTE) b(t)
        """
    )
    # Stored on change only: about one 15-minute snapshot in four changes a model.
    run(
        """
        INSERT INTO model_snapshots
        SELECT printf('org%02d', o), t, printf('model%02d', m), 3 + o % 4, 500 + 100 * (o % 4),
               (hash(o, t, m) % 500)::INTEGER
        FROM range($orgs) a(o),
             range($snap_start::TIMESTAMP, $as_of::TIMESTAMP + INTERVAL 1 MINUTE,
                   INTERVAL 15 MINUTE) b(t),
             range($models) c(m)
        WHERE hash(o, t, m, 'changed') % 4 = 0 OR t = $snap_start::TIMESTAMP
        """
    )
    run(
        """
        INSERT INTO collection_runs (org, kind, started_at, finished_at, status, http_calls,
                                     retries, rows_changed)
        SELECT printf('org%02d', o), 'snapshot', t - INTERVAL 5 SECOND, t, 'ok', 1, 0, 1
        FROM range($orgs) a(o),
             range($snap_start::TIMESTAMP, $as_of::TIMESTAMP + INTERVAL 1 MINUTE,
                   INTERVAL 15 MINUTE) b(t)
        """
    )
    rebuild_model_daily(con)  # what the collector keeps with each snapshot, built at once
    con.execute("CHECKPOINT")
    counts = {
        t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
        for t in (
            "daily_usage",
            "org_snapshots",
            "model_snapshots",
            "model_daily",
            "collection_runs",
        )
    }
    con.close()
    print("generated:", ", ".join(f"{t} {n:,}" for t, n in counts.items()))


def page_loads(settings: Settings) -> dict[str, Callable[[duckdb.DuckDBPyConnection], object]]:
    """What each page loads, for all organizations and for one."""
    every = views.Scope(tuple(f"org{i:02d}" for i in range(ORGS)), True)
    one = views.Scope(("org03",))
    start = AS_OF.date() - timedelta(days=89)
    sample = [
        {"model": "gen4.5", "count": 4, "seconds": 10},
        {"model": "veo3.1", "count": 2, "seconds": 8, "audio": True},
        {"model": "gen4_image", "count": 20, "resolution": "1080p"},
    ]
    return {
        "overview (all orgs)": lambda con: views.overview(con, settings, every, AS_OF),
        "overview (one org)": lambda con: views.overview(con, settings, one, AS_OF),
        "spend (all orgs, 90 days)": lambda con: views.spend(
            con, settings, every, start, AS_OF.date()
        ),
        "spend (one org, 90 days)": lambda con: views.spend(
            con, settings, one, start, AS_OF.date()
        ),
        "limits (all orgs)": lambda con: views.limits(con, settings, every, start, AS_OF),
        "limits (one org)": lambda con: views.limits(con, settings, one, start, AS_OF),
        "planner (one org)": lambda con: views.plan_feasibility(
            con, settings, views.json.dumps(sample), "org03"
        ),
        "alerts (all orgs)": lambda con: views.alerts(con, settings, every),
    }


def time_page(db: Path, load: Callable, runs: int) -> list[float]:
    """``runs`` timings in ms after one warm-up run."""
    out = []
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        with views.reader(db) as con:
            load(con)
        out.append((time.perf_counter() - t0) * 1000)
    return out[1:]


def trivial(con: duckdb.DuckDBPyConnection) -> object:
    """The floor every page pays: a reader opened and one query run."""
    return con.execute("SELECT 1").fetchall()


def without_rollup(db: Path, tmp: Path) -> Path:
    """A copy of ``db`` without model_daily: the Limits page then reduces model_snapshots
    per day at read time (its path for a database not yet migrated), as it did before."""
    copy = tmp / "no-rollup.duckdb"
    shutil.copyfile(db, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("DROP TABLE model_daily")
    return copy


def migrate(db: Path) -> None:
    """A reused database from before model_daily gets it the way the collector would."""
    with duckdb.connect(str(db)) as con:
        ensure_schema(con)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--db", type=Path, help="reuse (or create) this database file")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="dashboard-bench-")
    db = args.db or Path(tmp.name) / "bench.duckdb"
    if not db.exists():
        t0 = time.perf_counter()
        try:
            generate(db)
        except BaseException:  # never leave a half-generated file to be reused
            db.unlink(missing_ok=True)
            raise
        print(f"generation took {time.perf_counter() - t0:.1f} s ({db})")
    else:
        migrate(db)
    settings = Settings(db_path=db, budgets=(Budget(org="org03", credits=2_000_000),))
    floor = statistics.median(time_page(db, trivial, args.runs))
    print(f"baseline: open a reader + SELECT 1, median {floor:.1f} ms")
    print(
        f"{'page':<28} {'median ms':>10} {'worst ms':>10} {'x baseline':>11}"
        f"  (runs: {args.runs} after a warm-up)"
    )
    medians = {}
    for name, load in page_loads(settings).items():
        times = time_page(db, load, args.runs)
        med = medians[name] = statistics.median(times)
        flag = "" if med < TARGET_MS else "  over target"
        print(f"{name:<28} {med:>10.1f} {max(times):>10.1f} {med / floor:>10.1f}x{flag}")
    print(
        f"pages under {TARGET_MS:.0f} ms median: {sum(m < TARGET_MS for m in medians.values())} "
        f"of {len(medians)}"
    )
    old_db = without_rollup(db, Path(tmp.name))
    print("limits without model_daily (per-day reduction of model_snapshots at read time):")
    for name, load in page_loads(settings).items():
        if name.startswith("limits"):
            old = statistics.median(time_page(old_db, load, args.runs))
            print(
                f"{name:<28} {old:>10.1f} ms before, {medians[name]:.1f} ms now: "
                f"{medians[name] / old:.2f}x the time"
            )
    old_db.unlink()
    if args.keep and args.db is None:
        kept = Path(tempfile.gettempdir()) / "dashboard-bench.duckdb"
        db.replace(kept)
        print(f"kept {kept}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
