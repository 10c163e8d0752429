"""Files and secrets: owner-only database, snapshot and lock files; exports that refuse
anything but a regular file; a full disk reported as what it is."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from runway_costs.cli.main import app
from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.core.files import scheduler_lock_path, snapshot_path, write_lock_path
from tests.collector.support import settings_for
from tests.conftest import SANDBOX_CLOCK

pytestmark = pytest.mark.integration


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"RUNWAY_COSTS_CONFIG": "", "COLUMNS": "200"})


@pytest.fixture(scope="module")
def collected(sandbox, tmp_path_factory) -> Path:
    """A cycle into a folder that does not exist yet, under a permissive umask."""
    db = tmp_path_factory.mktemp("files") / "new" / "deeper" / "runway.duckdb"
    old = os.umask(0o022)
    try:
        assert run_cycle_sync(settings_for(sandbox, db), clock=SANDBOX_CLOCK).ok
    finally:
        os.umask(old)
    return db


def test_database_snapshot_locks_and_folders_are_owner_only(collected: Path) -> None:
    assert mode(collected) == 0o600
    assert mode(snapshot_path(collected)) == 0o600
    assert mode(write_lock_path(collected)) == 0o600
    assert mode(collected.parent) == 0o700 and mode(collected.parent.parent) == 0o700
    assert os.umask(0o022) == 0o022  # the process umask is back as it was
    from runway_costs.collector.locks import scheduler_lock

    with scheduler_lock(collected):
        assert mode(scheduler_lock_path(collected)) == 0o600


def test_export_refuses_an_empty_path_a_directory_and_special_files(collected, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    cases = [
        ("", "error: -o/--output: the path is empty"),
        (str(tmp_path), f"error: cannot write {tmp_path}: it is a directory"),
        (
            str(fifo),
            f"error: cannot write {fifo}: it is not a regular file (a device, pipe or socket);"
            " exports only create or replace regular files",
        ),
        (
            str(tmp_path / "missing" / "x.csv"),
            f"error: cannot write {tmp_path / 'missing' / 'x.csv'}: folder "
            f"{tmp_path / 'missing'} does not exist",
        ),
    ]
    for target, message in cases:
        done = invoke("export", "usage", "--db", str(collected), "-o", target)
        assert done.exit_code == 2, (target, done.stdout, done.stderr)
        assert done.stderr.strip() == message, target
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still the pipe it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temp file left


def test_export_replaces_a_regular_file_atomically_keeping_its_mode(collected, tmp_path):
    out = tmp_path / "usage.csv"
    out.write_text("old\n", encoding="utf-8")
    out.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(out)
    done = invoke("export", "usage", "--db", str(collected), "--org", "indie", "-o", str(link))
    assert done.exit_code == 0, done.stderr
    assert link.is_symlink() and out.read_text().startswith("org,date,model,credits\n")
    assert mode(out) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "usage.csv"]


FULL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    from datetime import date, datetime, timedelta
    from pathlib import Path
    from runway_costs.collector import store
    from runway_costs.collector.models import UsageRow, UsageWindow

    db = Path(sys.argv[1])
    size = db.stat().st_size
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 64 * 1024, resource.RLIM_INFINITY))
    start = date(2026, 1, 1)
    rows = tuple(
        UsageRow(date=start + timedelta(days=i % 90), model=f"m{i // 90}", credits=i)
        for i in range(90 * 2000)
    )
    window = UsageWindow(start=start, before=start + timedelta(days=90), rows=rows)
    run = store.RunRecord(org="o", kind="full", started_at=datetime(2026, 4, 1),
                          finished_at=datetime(2026, 4, 1), http_calls=1, retries=0)
    try:
        with store.write_session(db) as con:
            store.write_org_result(con, run, None, [window])
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}")
    """
)


def test_a_full_disk_is_reported_not_masked_by_the_rollback(tmp_path) -> None:
    from runway_costs.collector.store import write_session

    db = tmp_path / "runway.duckdb"
    with write_session(db):
        pass
    before = db.read_bytes()
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(db)], capture_output=True, text=True, timeout=120
    )
    out = done.stdout.strip()
    assert out.startswith("IOException: IO Error: Could not write file"), out + done.stderr
    assert "File too large" in out
    assert "rollback" not in out.lower() and "aborted" not in out.lower()
    with closing(duckdb.connect(str(db), read_only=True)) as con:
        assert con.execute("SELECT count(*) FROM daily_usage").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM collection_runs").fetchone() == (0,)
    assert snapshot_path(db).read_bytes() == before  # the snapshot is the last good one
