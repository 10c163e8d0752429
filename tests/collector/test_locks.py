"""The write and scheduler locks, held by a real second process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from runway_costs.collector.locks import (
    SchedulerAlreadyRunning,
    WriteLockTimeout,
    scheduler_lock,
    write_lock,
)
from tests.collector.support import REPO

HOLD = """
import sys, time
from pathlib import Path
from runway_costs.collector.locks import scheduler_lock, write_lock
lock = write_lock if sys.argv[2] == "write" else scheduler_lock
with lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.readline()
"""


@pytest.mark.parametrize("kind", ["write", "scheduler"])
def test_lock_held_by_another_process_names_its_pid(tmp_db, kind):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_db), kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        if kind == "write":
            with pytest.raises(WriteLockTimeout) as err, write_lock(tmp_db, timeout=0.2):
                pass
            assert str(err.value) == (
                f"database {tmp_db} is being written by another process "
                f"(pid {holder.pid}); gave up after 0.2 s"
            )
        else:
            with pytest.raises(SchedulerAlreadyRunning) as err, scheduler_lock(tmp_db):
                pass
            assert (
                str(err.value) == f"a scheduler is already running on {tmp_db} (pid {holder.pid})"
            )
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=10)
    # released when the holder ends: ours now, and our pid is recorded
    with write_lock(tmp_db, timeout=1) if kind == "write" else scheduler_lock(tmp_db):
        suffix = ".write.lock" if kind == "write" else ".scheduler.lock"
        lock_file = tmp_db.with_name(tmp_db.name + suffix)
        assert lock_file.read_text().strip() == str(os.getpid())
