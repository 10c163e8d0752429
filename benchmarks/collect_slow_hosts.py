"""One collection cycle of 200 sandbox organizations, 10 of them on a trickling host.

    .venv/bin/python benchmarks/collect_slow_hosts.py [--orgs 200] [--slow 10]
        [--timeout 3] [--attempts 2] [--concurrency 16]

Runs the same backfill cycle twice in one run, each into a fresh DuckDB file: once with
every organization on the sandbox, once with ``--slow`` of them pointed at a local host
that answers 200 and then trickles its body a byte at a time. Goal: the slow cycle takes at
most ``timeout x attempts`` (plus the backoff) longer than the healthy one, and every
healthy organization's data is written. Not a test: it prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runway_costs.collector.client import ClientOptions  # noqa: E402
from runway_costs.collector.cycle import CycleResult, org_deadline, run_cycle_sync  # noqa: E402
from runway_costs.core.clock import fixed_clock  # noqa: E402
from runway_costs.core.config import CollectionConfig, OrgConfig, Settings  # noqa: E402
from runway_costs.sandbox.server import SandboxServer  # noqa: E402
from tests.collector.trickle import trickling_server  # noqa: E402

NOW = "2026-11-24T12:00:00Z"
CLOCK = fixed_clock(datetime(2026, 11, 24, 12, 0))  # the sandbox's frozen instant


def cycle(settings: Settings) -> tuple[CycleResult, float]:
    started = time.perf_counter()
    result = run_cycle_sync(settings, clock=CLOCK)
    return result, time.perf_counter() - started


def written(db: Path) -> dict[str, int]:
    """Per org with an ok run: its daily_usage rows."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT r.org, count(u.org) FROM collection_runs r "
            "LEFT JOIN daily_usage u USING (org) WHERE r.status = 'ok' GROUP BY r.org"
        ).fetchall()
    return dict(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--orgs", type=int, default=200)
    parser.add_argument("--slow", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--attempts", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    collection = CollectionConfig(
        concurrency=args.concurrency,
        timeout_seconds=args.timeout,
        max_attempts=args.attempts,
        backoff_base_seconds=0.05,
        backoff_max_seconds=0.2,
    )
    tmp = Path(tempfile.mkdtemp(prefix="runway-bench-slow-"))
    with (
        SandboxServer(seed=7, now=NOW, n_orgs=args.orgs) as sb,
        trickling_server(interval=1.0) as slow,
    ):
        orgs = [
            OrgConfig(name=o["name"], api_key=SecretStr(o["api_key"]), base_url=sb.base_url)
            for o in sb.orgs
        ]
        step = max(1, len(orgs) // max(1, args.slow))
        slow_names = {orgs[i].name for i in range(0, len(orgs), step)[: args.slow]}
        trickled = [
            o.model_copy(update={"base_url": slow.base_url}) if o.name in slow_names else o
            for o in orgs
        ]
        healthy = Settings(db_path=tmp / "healthy.duckdb", orgs=tuple(orgs), collection=collection)
        mixed = Settings(db_path=tmp / "slow.duckdb", orgs=tuple(trickled), collection=collection)
        base_result, base_wall = cycle(healthy)
        slow_result, slow_wall = cycle(mixed)
    options = ClientOptions.from_config(collection)
    budget = args.timeout * args.attempts
    failed = {r.org for r in slow_result.failed}
    rows = written(mixed.db_path)
    healthy_names = {o.name for o in orgs} - slow_names
    missing = sorted(n for n in healthy_names if rows.get(n, 0) == 0)
    print(f"orgs={len(orgs)} slow={len(slow_names)} concurrency={args.concurrency}")
    print(
        f"timeout_seconds={args.timeout:g} max_attempts={args.attempts} "
        f"-> call deadline {options.call_deadline:g} s, org deadline (3 requests) "
        f"{org_deadline(options, 3):g} s"
    )
    print(
        f"healthy cycle   wall={base_wall:.2f}s "
        f"ok={len(base_result.orgs) - len(base_result.failed)}"
    )
    print(f"with slow hosts wall={slow_wall:.2f}s ok={len(slow_result.orgs) - len(failed)}")
    print(
        f"ratio slow/healthy={slow_wall / base_wall:.2f}  extra={slow_wall - base_wall:.2f}s  "
        f"extra/(timeout x attempts)={(slow_wall - base_wall) / budget:.2f} (goal <= 1, "
        "plus backoff)"
    )
    print(f"failed orgs are the slow ones: {failed == slow_names}")
    print(
        f"healthy orgs written: {len(healthy_names) - len(missing)}/{len(healthy_names)}"
        + (f" (missing: {', '.join(missing[:5])})" if missing else "")
    )
    print(f"trickled requests: {len(slow.requests)}; databases in {tmp}")


if __name__ == "__main__":
    main()
