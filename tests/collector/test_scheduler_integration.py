"""The scheduler: jobs run on their clock, one scheduler per DB, clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from runway_costs.analytics.db import NoDataError, connect_reader
from runway_costs.collector.locks import SchedulerAlreadyRunning, scheduler_lock
from runway_costs.collector.scheduler import run_scheduler
from runway_costs.core.clock import NOW_ENV, fixed_clock, parse_instant
from runway_costs.sandbox.server import SandboxServer
from tests.collector.support import REPO, cli, consistency_problems, settings_for, write_config
from tests.collector.trickle import trickling_server
from tests.conftest import SANDBOX_NOW

pytestmark = pytest.mark.integration

# Sandbox and scheduler share one pinned instant (a month's last minute), whatever the date.
PINNED = "2027-02-28T23:59:00Z"
PINNED_CLOCK = fixed_clock(parse_instant(PINNED, "PINNED"))


def _kinds(db: Path) -> dict[str, int]:
    try:
        with closing(connect_reader(db)) as con:
            return dict(
                con.execute(
                    "SELECT kind, count(*) FROM collection_runs WHERE status = 'ok' GROUP BY kind"
                ).fetchall()
            )
    except NoDataError:
        return {}


def _wait_for(predicate, what: str, limit: float = 90) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def test_schedule_runs_jobs_refuses_second_and_stops_on_sigterm(tmp_path):
    with SandboxServer(seed=7, now=PINNED) as sb:
        db = tmp_path / "runway.duckdb"
        cfg = tmp_path / "orgs.toml"
        env = write_config(cfg, sb, ["indie", "agency"])
        exe = Path(sys.executable).with_name("runway-costs")
        proc = subprocess.Popen(
            [
                str(exe),
                "schedule",
                "--config",
                str(cfg),
                "--db",
                str(db),
                "--snapshot-minutes",
                "0.02",
                "--usage-minutes",
                "0.03",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, **env, "COLUMNS": "200", NOW_ENV: PINNED},
        )
        try:
            _wait_for(
                lambda: _kinds(db).get("snapshot", 0) >= 4 and _kinds(db).get("usage", 0) >= 2,
                "snapshot and usage jobs",
            )
            second = cli(
                "schedule", "--config", str(cfg), "--db", str(db), env={**env, NOW_ENV: PINNED}
            )
            assert second.returncode == 2
            assert f"a scheduler is already running on {db} (pid {proc.pid})" in second.stderr
            stats = sb.stats()["requests"]
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "received SIGTERM: stopping" in err and "scheduler stopped" in err
    kinds = _kinds(db)
    assert kinds.get("full") == 2, kinds  # one full cycle per org at start
    with closing(connect_reader(db)) as con:
        assert consistency_problems(con) == []
        per_kind_calls = con.execute(
            "SELECT kind, max(http_calls) FROM collection_runs "
            "WHERE run_id > 2 GROUP BY kind ORDER BY kind"
        ).fetchall()
    assert per_kind_calls == [("snapshot", 1), ("usage", 1)]  # each job: one call per org
    # server side: 1 call at start + >= 2 snapshot jobs (4 snapshot runs over 2 orgs)
    assert stats["indie"]["/v1/organization"] >= 3
    # after a clean stop the lock is free again
    with scheduler_lock(db):
        pass


def test_after_cycle_errors_are_swallowed_and_lock_refuses_second(tmp_path):
    with SandboxServer(seed=7, now=PINNED) as sb:
        db = tmp_path / "runway.duckdb"
        settings = settings_for(sb, db, ["indie"], snapshot_minutes=0.01, usage_minutes=0.5)
        calls: list[str] = []
        stop = threading.Event()

        def hook(s, _clock) -> None:
            calls.append(s.orgs[0].name)
            if len(calls) >= 3:
                stop.set()
            raise RuntimeError("alert channel down")

        thread = threading.Thread(
            target=run_scheduler,
            args=(settings,),
            kwargs={"after_cycle": hook, "stop_event": stop, "clock": PINNED_CLOCK},
        )
        thread.start()
        try:
            _wait_for(lambda: len(calls) >= 1, "first after-cycle call")
            with pytest.raises(
                SchedulerAlreadyRunning, match=r"a scheduler is already running on .* \(pid \d+\)"
            ):
                run_scheduler(settings, clock=PINNED_CLOCK, stop_event=threading.Event())
        finally:
            thread.join(timeout=90)
            stop.set()
    assert not thread.is_alive()
    assert calls == ["indie", "indie", "indie"]  # kept running after each hook error


def _runs(db: Path, kind: str) -> int:
    return _kinds(db).get(kind, 0)


def test_schedule_keeps_collecting_while_a_delivery_hangs_and_stops_on_sigterm(tmp_path):
    """User report: a webhook that answers 200 and then trickles its body stopped the
    collections, and SIGTERM no longer stopped `schedule`."""
    with SandboxServer(seed=7, now=SANDBOX_NOW) as sb, trickling_server(interval=0.5) as hook:
        db = tmp_path / "runway.duckdb"
        cfg = tmp_path / "orgs.toml"
        env = write_config(cfg, sb)  # all three orgs: the sandbox fires alerts at this instant
        with cfg.open("a", encoding="utf-8") as f:
            f.write(f'\n[alerts]\nurls = ["{hook.webhook_url}"]\n')
        exe = Path(sys.executable).with_name("runway-costs")
        proc = subprocess.Popen(
            [str(exe), "schedule", "--config", str(cfg), "--db", str(db)]
            + ["--snapshot-minutes", "0.02", "--usage-minutes", "0.05"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, **env, "COLUMNS": "200", NOW_ENV: SANDBOX_NOW},
        )
        try:
            assert hook.first_request.wait(60), "no alert was ever delivered"
            hanging = _runs(db, "snapshot")
            # every 1.2 s a snapshot job (3 orgs): two more jobs while the delivery hangs
            _wait_for(lambda: _runs(db, "snapshot") >= hanging + 6, "snapshots", limit=20)
            assert proc.poll() is None
        finally:
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            try:
                out, err = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        stopped_in = time.monotonic() - sent
    assert proc.returncode == 0, err[-2000:]
    assert stopped_in < 5, f"took {stopped_in:.1f} s to stop after SIGTERM"
    assert "received SIGTERM: stopping" in err and "scheduler stopped" in err
    assert "TOKEN_SECRET_CANARY" not in out + err
    assert hook.requests[0] == "POST /hook/TOKEN_SECRET_CANARY"
    with closing(connect_reader(db)) as con:
        assert consistency_problems(con) == []
