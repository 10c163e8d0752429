"""A database file that cannot serve is one clear line and exit 2 from every reader
command, never a traceback; a damaged snapshot beside a healthy live file is read past
(with a warning); ``collect`` will not add its tables to somebody else's DuckDB file
unless asked (``--adopt``). Every case checks that the files are left as they were."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from runway_costs.cli.main import app
from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.core.files import snapshot_path
from tests.collector.support import settings_for
from tests.conftest import SANDBOX_CLOCK

pytestmark = pytest.mark.integration

CLI = Path(sys.executable).with_name("runway-costs")
PLAN = "model,count,seconds\ngen4.5,1,5\n"
READERS = [
    ("status",),
    ("export", "usage"),
    ("forecast",),
    ("alerts", "check"),
    ("price", "{plan}", "--org", "indie"),
]


@pytest.fixture(scope="module")
def good(sandbox, tmp_path_factory) -> Path:
    """A healthy database collected from the sandbox, with its snapshot."""
    db = tmp_path_factory.mktemp("good") / "runway.duckdb"
    assert run_cycle_sync(settings_for(sandbox, db), clock=SANDBOX_CLOCK).ok
    return db


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUNWAY_COSTS_CONFIG": "", "COLUMNS": "250"}
    return subprocess.run(
        [str(CLI), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def invoke(*args: str):
    """The CLI in this process (the matrix below is 25 runs)."""
    return CliRunner().invoke(app, list(args), env={"RUNWAY_COSTS_CONFIG": "", "COLUMNS": "250"})


def digest(path: Path) -> str:
    if path.is_dir():
        return "dir:" + ",".join(sorted(os.listdir(path)))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_bad(kind: str, path: Path, good: Path) -> str:
    """Create the bad file; returns what the error line must say."""
    if kind == "text":
        path.write_text("hello, not a database\n", encoding="utf-8")
        return "it is not a DuckDB database file"
    if kind == "directory":
        path.mkdir()
        return "it is a directory, not a database file"
    if kind == "empty":
        path.write_bytes(b"")
        return "it is empty (0 bytes)"
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[:300_000])  # opens, then a block is missing
        return "it is truncated or damaged"
    if kind == "foreign":
        with closing(duckdb.connect(str(path))) as con:
            con.execute("CREATE TABLE customers (id INTEGER, name VARCHAR)")
            con.execute("INSERT INTO customers VALUES (1, 'ada')")
        return "it is a DuckDB file of something else (tables: customers)"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["text", "directory", "empty", "truncated", "foreign"])
def test_every_reader_says_what_is_wrong_and_exits_2(kind, good, tmp_path) -> None:
    db = tmp_path / "runway.duckdb"
    expected = make_bad(kind, db, good)
    before = digest(db)
    (tmp_path / "plan.csv").write_text(PLAN, encoding="utf-8")
    for cmd in READERS:
        args = [a.format(plan=tmp_path / "plan.csv") for a in cmd]
        done = invoke(*args, "--db", str(db))
        assert done.exit_code == 2, (cmd, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, (cmd, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, (cmd, done.stderr)
        assert lines[0].startswith(f"error: database {db} cannot be read: "), (cmd, lines)
        assert expected in lines[0], (cmd, lines)
        assert digest(db) == before, cmd  # nothing written, not even by alerts check
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.csv", "runway.duckdb"]


def test_a_damaged_snapshot_is_read_past_with_a_warning(good, tmp_path) -> None:
    db = tmp_path / "runway.duckdb"
    shutil.copy(good, db)
    snap = snapshot_path(db)
    snap.write_bytes(snapshot_path(good).read_bytes()[:300_000])
    before = (digest(db), digest(snap))
    reference = run("status", "--json", "--db", str(good), cwd=tmp_path)
    assert reference.returncode == 0
    done = run("status", "--json", "--db", str(db), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == reference.stdout  # the live file's data, whole
    warning = done.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith(f"warning: the snapshot {snap} cannot")
    assert f"Reading the live database {db} instead (read-only)" in warning[0]
    for cmd in (("export", "usage"), ("forecast",), ("alerts", "check", "--dry-run")):
        other = invoke(*cmd, "--db", str(db))
        assert other.exit_code == 0, (cmd, other.stderr)
        assert other.stderr.startswith("warning: the snapshot"), (cmd, other.stderr)
    assert (digest(db), digest(snap)) == before


def test_collect_refuses_a_foreign_duckdb_file_unless_adopted(sandbox, tmp_path) -> None:
    db = tmp_path / "theirs.duckdb"
    make_bad("foreign", db, db)
    before = digest(db)
    keys = {f"K{i}": o["api_key"] for i, o in enumerate(sandbox.orgs)}
    config = tmp_path / "config.toml"
    config.write_text(
        "".join(
            f'[[orgs]]\nname = "{o["name"]}"\napi_key_env = "K{i}"\n'
            f'base_url = "{sandbox.base_url}"\n'
            for i, o in enumerate(sandbox.orgs)
        ),
        encoding="utf-8",
    )
    env = {**os.environ, **keys, "COLUMNS": "250"}
    args = [str(CLI), "collect", "--db", str(db), "--config", str(config)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: cannot use database {db}: {db} is a DuckDB database of something else "
        "(tables: customers); runway-costs adds its tables to such a file only when asked "
        "(`runway-costs collect --adopt`); or point --db at another file"
    ]
    assert digest(db) == before and not snapshot_path(db).exists()

    adopted = subprocess.run(
        [*args, "--adopt"], env=env, capture_output=True, text=True, timeout=120
    )
    assert adopted.returncode == 0, adopted.stderr
    with closing(duckdb.connect(str(db), read_only=True)) as con:
        assert con.execute("SELECT * FROM customers").fetchall() == [(1, "ada")]
        assert con.execute("SELECT count(DISTINCT org) FROM daily_usage").fetchone() == (3,)
