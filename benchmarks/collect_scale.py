"""How a collection cycle scales with organizations (issue #12): seconds per org at each size.

    .venv/bin/python benchmarks/collect_scale.py [--sizes 200,2000,10000] [--outlooks]
        [--concurrency N]   (default: the config's collection.concurrency, 8)

For each size N: a sandbox with N organizations, frozen at one instant, serves from a child
process (so its CPU does not share the collector's interpreter), and two cycles run into a
fresh DuckDB file: a backfill (first contact: 90 days of usage per org) and a steady-state
cycle right after it (the same instant: nothing changed, every statement should be a no-op).

Per cycle it prints the wall time and seconds per org, HTTP calls per org, the fetch span
(from the start until the last organization's fetch finished), the writer's busy time
(every ``_write`` session: opening the file, the write transactions, checkpoint, publish)
and, within it, the write transactions alone (batches of orgs, ``collector.writes``, and
any org written alone), the write sessions and the publish time;
the CPU seconds of the collector process and of the sandbox process during the cycle (on
2 cores, their sum against the wall time says whether the cycle is CPU-bound); after
both cycles, the size of the database file and of its published snapshot. Then the ratio
of seconds per org at each size against the smallest (goals for the steady state: within
1.3x at 2,000, and 10,000 orgs in under 60 s). Not a test: it prints figures and asserts
nothing. ``--outlooks``: run each cycle with the stored-outlooks step that ``collect`` and
``schedule`` run inside the write session (``analytics.outlook.outlook_step``), and print
its time apart (``after_write``). The load average is printed with each size: figures
taken on a busy machine are slower, compare ratios within one run. The databases are
written under the system's temp folder and removed after each size.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runway_costs.collector import cycle, store  # noqa: E402
from runway_costs.core.clock import fixed_clock  # noqa: E402
from runway_costs.core.config import CollectionConfig, OrgConfig, Settings  # noqa: E402
from runway_costs.core.files import snapshot_path  # noqa: E402
from runway_costs.sandbox.server import SandboxServer  # noqa: E402

NOW = "2026-11-24T12:00:00Z"
CLOCK = fixed_clock(datetime(2026, 11, 24, 12, 0))  # the sandbox's frozen instant


def _serve(n_orgs: int, conn: Any, stop: Any) -> None:
    with SandboxServer(seed=7, now=NOW, n_orgs=n_orgs) as sb:
        conn.send((sb.base_url, sb.orgs))
        stop.wait()


@dataclass
class Timings:
    """Accumulated by the wrappers installed around the cycle's fetch and write steps."""

    t0: float = 0.0
    last_fetch_done: float = 0.0
    writer_busy: float = 0.0
    transactions: float = 0.0
    publish: float = 0.0
    after_write: float = 0.0
    sessions: int = 0

    def reset(self) -> None:
        self.t0 = time.perf_counter()
        self.last_fetch_done = self.writer_busy = self.transactions = self.publish = 0.0
        self.after_write = 0.0
        self.sessions = 0


TIMINGS = Timings()


def _instrument() -> None:
    fetch_org, write = cycle._fetch_org, cycle._write

    async def timed_fetch(*args: Any, **kwargs: Any) -> Any:
        out = await fetch_org(*args, **kwargs)
        TIMINGS.last_fetch_done = time.perf_counter() - TIMINGS.t0
        return out

    def timed_write(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        TIMINGS.sessions += 1
        try:
            return write(*args, **kwargs)
        finally:
            TIMINGS.writer_busy += time.perf_counter() - started

    def timed(func: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                TIMINGS.transactions += time.perf_counter() - started

        return run

    publish = store.publish_snapshot

    def timed_publish(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return publish(*args, **kwargs)
        finally:
            TIMINGS.publish += time.perf_counter() - started

    store.publish_snapshot = timed_publish  # type: ignore[assignment]
    cycle._fetch_org = timed_fetch  # type: ignore[assignment]
    cycle._write = timed_write  # type: ignore[assignment]
    cycle.write_org_result = timed(cycle.write_org_result)  # type: ignore[assignment]
    cycle.write_org_results = timed(cycle.write_org_results)  # type: ignore[assignment]
    cycle.write_failed_run = timed(cycle.write_failed_run)  # type: ignore[assignment]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _size_mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB" if path.exists() else "-"


def _timed_step(settings: Settings) -> cycle.AfterWrite:
    from runway_costs.analytics.outlook import outlook_step

    step = outlook_step(settings)

    def timed(con: Any, at: datetime) -> None:
        started = time.perf_counter()
        try:
            step(con, at)
        finally:
            TIMINGS.after_write += time.perf_counter() - started

    return timed


def run_size(n: int, concurrency: int, outlooks: bool = False) -> dict[str, float]:
    parent, child = mp.Pipe()
    stop = mp.Event()
    server = mp.Process(target=_serve, args=(n, child, stop), daemon=True)
    server.start()
    base_url, orgs = parent.recv()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"N={n:<6} sandbox ready; load average {load}", flush=True)
    per_org: dict[str, float] = {}
    tmp = Path(tempfile.mkdtemp(prefix="runway-scale-"))
    try:
        settings = Settings(
            db_path=tmp / "bench.duckdb",
            orgs=tuple(
                OrgConfig(name=o["name"], api_key=SecretStr(o["api_key"]), base_url=base_url)
                for o in orgs
            ),
            collection=CollectionConfig(
                concurrency=concurrency, backoff_base_seconds=0.05, backoff_max_seconds=1
            ),
        )
        for label in ("backfill", "steady"):
            own, sandbox = _cpu_seconds(os.getpid()), _cpu_seconds(server.pid or 0)
            TIMINGS.reset()
            step = _timed_step(settings) if outlooks else None
            result = cycle.run_cycle_sync(settings, clock=CLOCK, after_write=step)
            wall = time.perf_counter() - TIMINGS.t0
            own = _cpu_seconds(os.getpid()) - own
            sandbox = _cpu_seconds(server.pid or 0) - sandbox
            calls = sum(r.http_calls for r in result.orgs)
            rows = sum(r.rows_changed for r in result.orgs)
            per_org[label] = wall / n
            print(
                f"N={n:<6} {label:<9} wall={wall:7.2f}s  s/org={wall / n * 1000:6.2f}ms  "
                f"ok={n - len(result.failed)}  http_calls/org={calls / n:.2f}  "
                f"rows_changed={rows}  fetch_span={TIMINGS.last_fetch_done:.2f}s  "
                f"writer_busy={TIMINGS.writer_busy:.2f}s  "
                f"(transactions {TIMINGS.transactions:.2f}s = "
                f"{TIMINGS.transactions / n * 1000:.2f}ms/org, {TIMINGS.sessions} sessions)  "
                f"publish={TIMINGS.publish:.2f}s  "
                + (f"after_write={TIMINGS.after_write:.2f}s  " if outlooks else "")
                + f"cpu: collector {own:.1f}s "
                f"sandbox {sandbox:.1f}s",
                flush=True,
            )
        snapshot = snapshot_path(settings.db_path)
        print(
            f"N={n:<6} database {_size_mb(settings.db_path)}, snapshot {_size_mb(snapshot)}",
            flush=True,
        )
    finally:
        stop.set()
        server.join(timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)
    return per_org


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,2000,10000")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=CollectionConfig().concurrency,
        help="default: the config's",
    )
    parser.add_argument("--outlooks", action="store_true", help="with the stored-outlooks step")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    _instrument()
    figures = {n: run_size(n, args.concurrency, args.outlooks) for n in sizes}
    base = sizes[0]
    for n in sizes[1:]:
        for label in ("backfill", "steady"):
            ratio = figures[n][label] / figures[base][label]
            goal = "  (goal <= 1.3x at 2,000)" if label == "steady" else ""
            print(f"s/org at {n} vs {base}, {label}: {ratio:.2f}x{goal}")
    if 10_000 in figures:
        steady = figures[10_000]["steady"] * 10_000
        print(f"steady cycle at 10,000 orgs: {steady:.1f} s (goal < 60 s)")


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
