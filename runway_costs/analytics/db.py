"""The one way analytics, reports and the dashboard open the database: read-only.

Readers open ``<db>.snapshot``, the copy the writer publishes by atomic rename after each
cycle, so they never take DuckDB's lock on the live file (the writer is never blocked)
and every read sees one whole committed cycle. Before the first publish they fall back
to the live file read-only, retrying while a writer holds it.

Close the connection when done (``with connect_reader(db) as con: ...``): DuckDB caches
open databases per path inside a process, so a connection kept open keeps serving the
snapshot it opened, not the newest one.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from runway_costs.core.files import snapshot_path

LIVE_RETRIES = 20
LIVE_RETRY_SECONDS = 0.25


class NoDataError(Exception):
    """Nothing has been collected into this database yet."""


class DatabaseBusyError(NoDataError):
    """No snapshot yet and the writer still holds the live file (first cycle running)."""


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc).lower()
    return "lock" in text or "different configuration" in text


def connect_reader(db_path: Path | str) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the newest published snapshot of ``db_path``."""
    db_path = Path(db_path)
    snap = snapshot_path(db_path)
    if snap.exists():  # replaced only by atomic rename, never removed: safe to open
        return duckdb.connect(str(snap), read_only=True)
    if not db_path.exists():
        raise NoDataError(f"no data yet: run `runway-costs collect` (no database at {db_path})")
    last: duckdb.Error | None = None
    for attempt in range(LIVE_RETRIES):
        try:
            return duckdb.connect(str(db_path), read_only=True)
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise
            last = exc
        if snap.exists():  # the writer published while we waited
            return duckdb.connect(str(snap), read_only=True)
        time.sleep(LIVE_RETRY_SECONDS * min(attempt + 1, 4))
    raise DatabaseBusyError(
        f"no data yet: the first collection into {db_path} is still running, try again shortly"
    ) from last
