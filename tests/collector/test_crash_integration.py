"""kill -9 in the middle of cycles: the database and its snapshot stay whole."""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import closing
from datetime import date, timedelta

import pytest

from runway_costs.analytics.db import connect_reader
from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.collector.store import write_session
from runway_costs.core.clock import fixed_clock
from runway_costs.sandbox.server import SandboxServer
from tests.collector.support import (
    consistency_problems,
    runs_per_org,
    settings_for,
    truth,
    usage_rows,
)
from tests.collector.test_concurrency_integration import start_writer, wait_committed

pytestmark = pytest.mark.integration


def _drain(writer, lines: list[str]) -> None:
    for line in writer.stdout:
        lines.append(line.strip())


@pytest.mark.parametrize("delay", [0.13, 0.41, 0.77])
def test_kill_9_mid_cycle_leaves_last_committed_state(tmp_db, delay):
    with SandboxServer(seed=5, now="2026-11-24T00:10:00Z", n_orgs=6) as sb:
        writer = start_writer(sb, tmp_db, "--step-minutes", "53")
        lines = wait_committed(writer, 2)
        reader = threading.Thread(target=_drain, args=(writer, lines), daemon=True)
        reader.start()
        time.sleep(delay)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
        reader.join(timeout=10)
        assert writer.returncode == -signal.SIGKILL
        printed = len([x for x in lines if x.startswith("committed")])
        assert not any(x.startswith("failed") for x in lines), lines

        # the snapshot: whole cycles only, the last one the writer finished (it may have
        # published the next one just before it could print it)
        with closing(connect_reader(tmp_db)) as con:
            assert consistency_problems(con) == []
            snap_runs = set(runs_per_org(con).values())
        assert len(snap_runs) == 1
        (published,) = snap_runs
        assert published in (printed, printed + 1)

        # the live file (WAL replayed on open): every org whole, at most one cycle ahead
        with write_session(tmp_db, timeout=10) as con:
            assert consistency_problems(con) == []
            live_runs = runs_per_org(con)
            assert set(live_runs.values()) <= {published, published + 1}
            assert con.execute(
                "SELECT count(*) FROM collection_runs WHERE status <> 'ok'"
            ).fetchone() == (0,)

        # the next cycle completes normally and the data is exactly the world's
        clock = sb.world.now()
        today = clock.date()
        result = run_cycle_sync(settings_for(sb, tmp_db), clock=fixed_clock(clock))
        assert result.ok, [r.error for r in result.failed]
        first = today - timedelta(days=90)
        for org in [o["name"] for o in sb.orgs]:
            got = [r for r in usage_rows(tmp_db, org) if r[0] >= first]
            assert got == truth(sb, org, first, today)
        with closing(connect_reader(tmp_db)) as con:
            assert consistency_problems(con) == []
            runs = runs_per_org(con)
        assert set(runs.values()) <= {published + 1, published + 2}
        assert today >= date(2026, 11, 24)
