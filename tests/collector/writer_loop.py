"""A writer process for the crash and concurrency tests: loops collection cycles.

    python -m tests.collector.writer_loop --db DB --base-url URL --start ISO
        [--step-minutes 37] [--cycles 0]

Organization keys come from the env var WRITER_ORGS (JSON [{"name", "api_key"}]). Before
each cycle it moves the sandbox clock forward, so every cycle changes the data; after each
cycle returns (committed and published) it prints ``committed <n> <clock>``.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from pydantic import SecretStr

from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.core.clock import fixed_clock
from runway_costs.core.config import CollectionConfig, OrgConfig, Settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--start", required=True)
    parser.add_argument("--step-minutes", type=float, default=37)
    parser.add_argument("--cycles", type=int, default=0)
    args = parser.parse_args()
    orgs = tuple(
        OrgConfig(name=o["name"], api_key=SecretStr(o["api_key"]), base_url=args.base_url)
        for o in json.loads(os.environ["WRITER_ORGS"])
    )
    settings = Settings(
        db_path=args.db,
        orgs=orgs,
        collection=CollectionConfig(timeout_seconds=10, backoff_base_seconds=0.01),
    )
    clock = datetime.fromisoformat(args.start.replace("Z", "+00:00")).replace(tzinfo=None)
    n = 0
    while args.cycles == 0 or n < args.cycles:
        stamp = clock.isoformat() + "Z"
        httpx.post(f"{args.base_url}/_sandbox/clock", json={"now": stamp}, timeout=10)
        result = run_cycle_sync(settings, clock=fixed_clock(clock))
        if not result.ok:
            print("failed " + "; ".join(r.error or "" for r in result.failed), flush=True)
        n += 1
        print(f"committed {n} {stamp}", flush=True)
        clock += timedelta(minutes=args.step_minutes)


if __name__ == "__main__":
    main()
