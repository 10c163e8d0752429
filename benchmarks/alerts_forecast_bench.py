"""Benchmark: `alerts check --dry-run --json` and `forecast --json` at many organizations
(issue #12), end to end, and the after-cycle outlook computation they read.

For each organization count (default 20, 200 and 1,000) a database is generated with
``dashboard_bench.generate`` (``--years`` of daily usage x N orgs x 60 models, 90 days of
15-minute snapshots, model_daily built) unless it already exists in ``--dir``. Then:

- the cycle's archive step (``collector.archive.archive_step``: the days past each table's
  live days moved to Parquet parts, once per database) and the after-cycle step
  (``analytics.outlook.outlook_step``, what every cycle runs before it publishes, reading
  history through the archive's views) computes and stores every org's outlook at the
  generator's instant, in a child process, timed with its peak RSS (``outlooks stored``);
- the installed ``runway-costs`` entry point runs each command as a child process, with
  ``RUNWAY_COSTS_NOW`` pinned to that instant and a config holding one budget: ``now``
  reads the stored outlooks, ``now --as-of`` computes them (the command with an
  ``--as-of``, or on a database without a current store).

Each run is timed (wall) with its peak RSS: a small wrapper process starts the command and
reads ``resource.getrusage(RUSAGE_CHILDREN)`` for its only child. Every variant of a
command must print the same JSON (checked).

``--before REF`` also runs the package as it was at git ``REF`` (``git archive`` into a
temporary directory, first on ``PYTHONPATH``: the same interpreter and libraries) on the
same databases (it ignores the stored outlooks: it computes). ``--before-max-orgs`` skips
the old code above that many organizations (it took minutes and ~10 GB at 1,000).

Targets: each command under 5 s and 1 GB at 1,000 organizations x 3 years. No assertion:
the machine is shared; the figures are printed.

    .venv/bin/python benchmarks/alerts_forecast_bench.py [--orgs 20,200,1000] [--years 3]
        [--dir DIR] [--before HEAD~3] [--before-max-orgs 200]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dashboard_bench import AS_OF, generate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 5.0
TARGET_MB = 1024.0
COMMANDS = {
    "alerts check --dry-run --json": ["alerts", "check", "--dry-run", "--json"],
    "forecast --json": ["forecast", "--json"],
}
# Archives the generated history at the instant (argv: db, ISO instant), as a cycle does
# before its after-write step: the days past each table's live days move to Parquet parts
# (once; later runs find the horizons in place), so the commands read the layout a
# collecting database has. Prints the step's seconds.
ARCHIVE = """
import sys, time, duckdb
from datetime import datetime
from pathlib import Path
from runway_costs.collector.archive import QUIET, archive_step
from runway_costs.collector.store import schema_sql
db = Path(sys.argv[1])
with duckdb.connect(str(db)) as con:
    con.execute(QUIET)  # stdout carries the figures only
    con.execute(schema_sql())  # the manifest, for a file generated before it
    t0 = time.perf_counter()
    report = archive_step(con, db, datetime.fromisoformat(sys.argv[2]))
    print(f"{time.perf_counter() - t0:.1f} {sum(report.rows.values())}")
"""
# Stores the outlooks at the instant (argv: db, ISO instant) on the live file, as a cycle's
# after-write step does, reading history through the archive's views (no publish: the
# generated databases have no snapshot).
STORE = """
import sys, duckdb
from datetime import datetime
from pathlib import Path
from runway_costs.analytics.outlook import outlook_step
from runway_costs.collector.archive import history_views
from runway_costs.core.config import Settings
db = Path(sys.argv[1])
with duckdb.connect(str(db)) as con, history_views(con):
    outlook_step(Settings(db_path=db))(con, datetime.fromisoformat(sys.argv[2]))
"""
# Runs one command, prints "<wall seconds> <peak RSS KiB> <exit code>" for that child only.
WRAPPER = """
import resource, subprocess, sys, time
t0 = time.perf_counter()
with open(sys.argv[1], "wb") as out:
    code = subprocess.run(sys.argv[2:], stdout=out).returncode
wall = time.perf_counter() - t0
print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)
"""


@dataclass
class Run:
    wall_s: float
    peak_mb: float
    code: int
    output: Path


def measure(argv: list[str], env: dict[str, str], output: Path) -> Run:
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(output), *argv],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall, rss_kib, code = done.stdout.split()
    if int(code) != 0:
        print(done.stderr, file=sys.stderr)
    return Run(float(wall), int(rss_kib) / 1024, int(code), output)


def old_package(ref: str, into: Path) -> Path:
    """The package as it was at ``ref``, unpacked under ``into`` (for PYTHONPATH)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "old.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "archive", ref, "runway_costs"], cwd=ROOT, stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    archive.unlink()
    return into


def write_config(db: Path, path: Path) -> Path:
    path.write_text(f'db = "{db}"\n\n[[budgets]]\norg = "org03"\ncredits = 2000000\n')
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", default="20,200,1000", help="comma-separated counts")
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="keep (and reuse) the databases here")
    parser.add_argument("--before", help="also run the package at this git ref")
    parser.add_argument("--before-max-orgs", type=int, default=10**9)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="alerts-forecast-bench-"))
    where = args.dir or tmp
    where.mkdir(parents=True, exist_ok=True)
    entry = str(Path(sys.executable).with_name("runway-costs"))
    base_env = os.environ | {"RUNWAY_COSTS_NOW": AS_OF.isoformat() + "Z"}
    base_env.pop("PYTHONPATH", None)
    old_env = None
    if args.before:
        old_env = base_env | {"PYTHONPATH": str(old_package(args.before, tmp / "old"))}
    counts = [int(n) for n in args.orgs.split(",")]
    stamp = AS_OF.isoformat() + "Z"
    print(f"as of {AS_OF:%Y-%m-%d %H:%M} UTC, {args.years} years of usage, 60 models")
    results: list[tuple[int, str, str, Run]] = []
    for n in counts:
        db = where / f"bench-{n}orgs-{args.years}y.duckdb"
        if not db.exists():
            t0 = time.perf_counter()
            try:
                generate(db, orgs=n, years=args.years)
            except BaseException:  # never leave a half-generated file to be reused
                db.unlink(missing_ok=True)
                raise
            print(f"{n} orgs: generated in {time.perf_counter() - t0:.0f} s ({db})")
        config = write_config(db, tmp / f"config-{n}.toml")
        archived = subprocess.run(
            [sys.executable, "-c", ARCHIVE, str(db), AS_OF.isoformat()],
            env=base_env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        print(f"{n} orgs: archive step {archived[0]} s, {int(archived[1]):,} rows moved to parts")
        store = measure(
            [sys.executable, "-c", STORE, str(db), AS_OF.isoformat()],
            base_env,
            tmp / f"store-{n}.txt",
        )
        print(
            f"{n:>5} orgs  {'outlooks stored (after a cycle)':<31} {'now':<14} "
            f"{store.wall_s:>7.1f} s {store.peak_mb:>7.0f} MB  exit {store.code}",
            flush=True,
        )
        variants = [("now", base_env, []), ("now --as-of", base_env, ["--as-of", stamp])]
        if old_env is not None and n <= args.before_max_orgs:
            variants.append((f"at {args.before}", old_env, []))
        for name, argv in COMMANDS.items():
            outs = {}
            walls = {}
            for label, env, extra in variants:
                out = tmp / f"{n}-{argv[0]}-{len(results)}.json"
                run = measure([entry, *argv, *extra, "--config", str(config)], env, out)
                results.append((n, name, label, run))
                outs[label] = json.loads(out.read_text()) if run.code == 0 else None
                walls[label] = run.wall_s
                flag = ""
                if label == "now" and (run.wall_s >= TARGET_S or run.peak_mb >= TARGET_MB):
                    flag = "  over target"
                ratio = (
                    f"  ({walls[label] / walls['now']:.1f}x now)"
                    if label != "now" and walls.get("now")
                    else ""
                )
                print(
                    f"{n:>5} orgs  {name:<31} {label:<14} {run.wall_s:>7.1f} s "
                    f"{run.peak_mb:>7.0f} MB  exit {run.code}{flag}{ratio}",
                    flush=True,
                )
            same = len(set(map(json.dumps, outs.values()))) == 1
            print(f"{'':>11}{name}: same JSON in every variant: {same}")
    print(f"targets: under {TARGET_S:.0f} s and {TARGET_MB:.0f} MB at 1,000 organizations")
    shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
