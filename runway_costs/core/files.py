"""Where the database's companion files live.

One process writes ``runway.duckdb`` (under a file lock); after every committed
cycle it publishes a read-only copy, ``runway.duckdb.snapshot``, by atomic rename.
Readers open the snapshot, so they never take DuckDB's lock on the live file and
never block or break the writer, and every read sees one whole committed cycle.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SNAPSHOT_SUFFIX = ".snapshot"


def snapshot_path(db: Path) -> Path:
    return db.with_name(db.name + SNAPSHOT_SUFFIX)


def parts_dir(db: Path) -> Path:
    """The folder of the database's archived history (immutable Parquet parts, written once
    by ``collector.archive``): readers of the live file and of its snapshot read the same."""
    return db.with_name(db.name + ".parts")


def live_path(path: Path) -> Path:
    """The live database a file belongs to: itself, or the live file of a snapshot."""
    if path.name.endswith(SNAPSHOT_SUFFIX):
        return path.with_name(path.name.removesuffix(SNAPSHOT_SUFFIX))
    return path


def write_lock_path(db: Path) -> Path:
    """Held by whoever writes a cycle (collect, scheduler job)."""
    return db.with_name(db.name + ".write.lock")


def scheduler_lock_path(db: Path) -> Path:
    """Held for a scheduler's whole life so a second one refuses to start."""
    return db.with_name(db.name + ".scheduler.lock")


def package_data(name: str) -> Path:
    """A file shipped inside the package (``runway_costs/data/<name>``): the default rate and
    tier tables and the sample plan. Found through ``importlib.resources``, so it is the same
    file in a checkout, an editable install and a wheel (installed unzipped, as pip does)."""
    return Path(str(resources.files("runway_costs").joinpath("data", name)))
