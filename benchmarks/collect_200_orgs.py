"""One collection cycle for 200 sandbox organizations: wall time, calls, retries, rows/s.

    .venv/bin/python benchmarks/collect_200_orgs.py [--orgs 200] [--faults none]

Runs a backfill cycle (first contact: 90 days per org) and then a steady-state cycle,
against an embedded sandbox on 127.0.0.1 with a frozen clock, into a temporary DuckDB file.
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path

from pydantic import SecretStr

from runway_costs.collector.cycle import CycleResult, run_cycle_sync
from runway_costs.core.clock import fixed_clock
from runway_costs.core.config import CollectionConfig, OrgConfig, Settings
from runway_costs.sandbox.server import SandboxServer

NOW = "2026-11-24T12:00:00Z"
CLOCK = fixed_clock(datetime(2026, 11, 24, 12, 0))  # the sandbox's frozen instant


def report(label: str, result: CycleResult, seconds: float) -> None:
    n = len(result.orgs)
    calls = sum(r.http_calls for r in result.orgs)
    retries = sum(r.retries for r in result.orgs)
    rows = sum(r.rows_changed for r in result.orgs)
    print(
        f"{label:<12} orgs={n} ok={n - len(result.failed)} wall={seconds:.2f}s "
        f"http_calls/org={calls / n:.2f} (max {max(r.http_calls for r in result.orgs)}) "
        f"retries={retries} rows_changed={rows} rows/s={rows / seconds:,.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=200)
    parser.add_argument("--faults", default="none")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with SandboxServer(seed=7, now=NOW, n_orgs=args.orgs, faults=args.faults) as sb:
        tmp = Path(tempfile.mkdtemp(prefix="runway-bench-"))
        settings = Settings(
            db_path=tmp / "bench.duckdb",
            orgs=tuple(
                OrgConfig(name=o["name"], api_key=SecretStr(o["api_key"]), base_url=sb.base_url)
                for o in sb.orgs
            ),
            collection=CollectionConfig(
                concurrency=args.concurrency, backoff_base_seconds=0.05, backoff_max_seconds=1
            ),
        )
        for label in ("backfill", "steady"):
            started = time.perf_counter()
            result = run_cycle_sync(settings, clock=CLOCK)
            report(label, result, time.perf_counter() - started)
        size = settings.db_path.stat().st_size
        print(f"database {size / 1e6:.1f} MB at {settings.db_path}")


if __name__ == "__main__":
    main()
