"""Benchmark: `runway-costs price` on a 1,000,000-row CSV plan, end to end (issue #11).

In one run: writes a deterministic 1M-row plan (``pricing_bench.mixed_plan``: every model,
open variants, dates), then runs as child processes, each timed (wall) with its peak RSS
(``os.wait4``):

- the installed entry point: ``runway-costs price PLAN --json``, ``--csv`` and the terminal
  output (stdout to a file);
- (a) the per-row implementation end to end: the csv module reads the plan, the per-row
  pricer of ``pricing_bench`` prices each row, ``json.dumps(indent=2)`` writes the rows.
  It runs on every row, or with ``--per-row-rows N`` on the first N rows, its time
  (less its start-up, measured on one row) scaled linearly: it is a per-row loop;
- (b) bare polars: ``read_csv``, a join with a price table, a multiply, ``write_json``.

Prints the figures and the ratios against the targets: ``price --json`` at least 5x faster
than (a), within 3x of (b), peak memory under 1 GB. No assertion on time: the machine is
shared. Run: ``.venv/bin/python benchmarks/price_1m.py`` (about a minute on 2 cores;
the per-row baseline takes about 4 GB of memory on 1M rows, ``--per-row-rows 200000``
about 0.8 GB).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pricing_bench import ON, mixed_plan, per_row_pricer  # noqa: E402

from runway_costs.analytics.rates import load_rates  # noqa: E402

PLAN_COLUMNS = ["label", "model", "count", "seconds", "resolution", "audio", "characters", "date"]
TARGET_VS_PER_ROW = 5.0
TARGET_VS_POLARS = 3.0
TARGET_PEAK_MB = 1024


@dataclass
class Run:
    name: str
    rows: int
    wall_s: float
    peak_mb: float
    out_mb: float
    fixed_s: float = 0.0  # start-up, measured on a one-row plan: not scaled

    def wall_for(self, rows: int) -> float:
        return self.fixed_s + (self.wall_s - self.fixed_s) * rows / self.rows


def write_plan(path: Path, rows: int) -> None:
    plan = mixed_plan(load_rates(), rows)
    plan.select(PLAN_COLUMNS).write_csv(path)


def run(name: str, argv: list[str], out: Path, rows: int) -> Run:
    """One child process: wall time, its own peak RSS (wait4), the size of its output."""
    env = {**os.environ, "RUNWAY_COSTS_CONFIG": ""}
    with out.open("wb") as sink:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=sink, stderr=subprocess.PIPE, env=env)
        assert child.stderr is not None
        err = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{name} failed ({child.returncode}): {err.decode()[-2000:]}")
    return Run(name, rows, wall, usage.ru_maxrss / 1024, out.stat().st_size / 2**20)


# ------------------------------------------------------------------ the two baselines


def per_row_child(plan: Path) -> None:
    """(a) The per-row implementation end to end: csv module in, json.dumps out."""
    price_row = per_row_pricer(load_rates(), ON)
    credit_usd = load_rates().credit_usd
    rows = []
    with plan.open(newline="", encoding="utf-8") as f:
        for i, r in enumerate(csv.DictReader(f)):
            typed = {
                "line": i + 2,
                "row": i + 1,
                "label": r["label"] or None,
                "model": r["model"],
                "count": int(r["count"] or 1),
                "seconds": float(r["seconds"]) if r["seconds"] else None,
                "resolution": r["resolution"] or None,
                "audio": {"true": True, "false": False}.get(r["audio"]),
                "characters": int(r["characters"]) if r["characters"] else None,
                "date": date.fromisoformat(r["date"]) if r["date"] else None,
            }
            priced = price_row(typed)
            lo, hi = priced if priced is not None else (None, None)
            typed["priced_on"] = typed["date"] or ON
            typed["credits_min"], typed["credits_max"] = lo, hi
            typed["usd_min"] = None if lo is None else round(lo * credit_usd, 6)
            typed["usd_max"] = None if hi is None else round(hi * credit_usd, 6)
            typed["priced"] = priced is not None
            rows.append(typed)
    sys.stdout.write(json.dumps({"rows": rows}, indent=2, default=str) + "\n")


def polars_child(plan: Path) -> None:
    """(b) Bare polars: read, join each row to one price per model, multiply, write JSON."""
    rates = load_rates()
    prices = (
        rates.prices.filter(pl.col("effective_from") <= ON)
        .group_by("model")
        .agg(pl.col("block").first(), pl.col("credits_max").max())
        .join(
            pl.DataFrame(
                {"model": list(rates.models), "per": [m.per for m in rates.models.values()]}
            ),
            on="model",
        )
    )
    units = (
        pl.when(pl.col("per") == "second")
        .then(pl.col("seconds"))
        .when(pl.col("per") == "character")
        .then(pl.col("characters"))
        .otherwise(1.0)
    )
    priced = (
        pl.read_csv(plan)
        .join(prices, on="model", how="left")
        .with_columns(
            credits=((units / pl.col("block")).ceil() * pl.col("credits_max") * pl.col("count"))
        )
        .with_columns(usd=pl.col("credits") * rates.credit_usd)
    )
    priced.write_json(sys.stdout.buffer)


# ------------------------------------------------------------------------------ main


def entry_point() -> str:
    beside = Path(sys.executable).parent / "runway-costs"
    found = str(beside) if beside.exists() else shutil.which("runway-costs")
    if not found:
        raise SystemExit("runway-costs is not installed (make install)")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--per-row-rows",
        type=int,
        default=0,
        help="run the per-row baseline on these first rows only, its time scaled to --rows "
        "(default 0: all rows)",
    )
    parser.add_argument("--keep", type=Path, help="keep the plan and outputs in this folder")
    parser.add_argument("--child", choices=["per-row", "polars"], help=argparse.SUPPRESS)
    parser.add_argument("plan", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "per-row":
        return per_row_child(args.plan)
    if args.child == "polars":
        return polars_child(args.plan)

    work = args.keep or Path(tempfile.mkdtemp(prefix="price-1m-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        bench(args, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def bench(args: argparse.Namespace, work: Path) -> None:
    n = args.rows
    plan = work / "plan.csv"
    start = time.perf_counter()
    write_plan(plan, n)
    print(f"plan: {n:,} rows, {plan.stat().st_size / 2**20:.0f} MiB CSV, "
          f"written in {time.perf_counter() - start:.1f} s")  # fmt: skip
    small_n = args.per_row_rows if 0 < args.per_row_rows < n else n
    small = plan
    if small_n < n:
        small = work / "plan-small.csv"
        with plan.open("rb") as src, small.open("wb") as dst:
            for i, line in enumerate(src):
                if i > small_n:
                    break
                dst.write(line)

    cli = entry_point()
    me = [sys.executable, str(Path(__file__).resolve())]
    day = ["--date", ON.isoformat()]
    runs = {
        "json": run("price --json", [cli, "price", str(plan), "--json", *day], work / "o.json", n),
        "csv": run("price --csv", [cli, "price", str(plan), "--csv", *day], work / "o.csv", n),
        "terminal": run("price (terminal)", [cli, "price", str(plan), *day], work / "o.txt", n),
        "polars": run(
            "(b) bare polars read+price+write_json",
            [*me, "--child", "polars", str(plan)],
            work / "polars.json",
            n,
        ),
        "per_row": run(
            "(a) per-row: csv module, Python loop, json.dumps",
            [*me, "--child", "per-row", str(small)],
            work / "per-row.json",
            small_n,
        ),
    }
    if small_n < n:
        one = work / "plan-one.csv"
        one.write_bytes(b"".join(small.read_bytes().splitlines(keepends=True)[:2]))
        start_up = run(
            "per-row start-up", [*me, "--child", "per-row", str(one)], work / "1.json", 1
        )
        runs["per_row"].fixed_s = start_up.wall_s
    with (work / "o.json").open("rb") as f:
        import orjson

        doc = orjson.loads(f.read())
    if len(doc["rows"]) != n:
        raise SystemExit(f"price --json gave {len(doc['rows']):,} rows, expected {n:,}")
    del doc

    print(f"\n{'':52} {'wall s':>8} {'peak MB':>8} {'out MiB':>8}")
    for r in runs.values():
        note = (
            ""
            if r.rows == n
            else f"  (measured: {r.wall_s:.2f} s on {r.rows:,} rows; start-up "
            f"{r.fixed_s:.2f} s + the rest x{n / r.rows:g})"
        )
        print(f"{r.name:52} {r.wall_for(n):8.2f} {r.peak_mb:8.0f} {r.out_mb:8.0f}{note}")
    ours = runs["json"].wall_for(n)
    vs_per_row = runs["per_row"].wall_for(n) / ours
    vs_polars = ours / runs["polars"].wall_for(n)
    peak = max(runs[k].peak_mb for k in ("json", "csv", "terminal"))
    ok = {True: "met", False: "NOT met"}
    print(
        f"\nprice --json vs per-row: {vs_per_row:.1f}x faster "
        f"(target >= {TARGET_VS_PER_ROW:g}x: {ok[vs_per_row >= TARGET_VS_PER_ROW]})"
    )
    print(
        f"price --json vs bare polars: {vs_polars:.2f}x its time "
        f"(target <= {TARGET_VS_POLARS:g}x: {ok[vs_polars <= TARGET_VS_POLARS]})"
    )
    print(
        f"peak memory of price (json, csv, terminal): {peak:.0f} MB "
        f"(target < {TARGET_PEAK_MB} MB: {ok[peak < TARGET_PEAK_MB]})"
    )


if __name__ == "__main__":
    main()
