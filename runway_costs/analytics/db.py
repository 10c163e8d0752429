"""The one way analytics, reports and the dashboard open the database: read-only.

Readers open ``<db>.snapshot``, the copy the writer publishes by atomic rename after each
cycle, so they never take DuckDB's lock on the live file (the writer is never blocked)
and every read sees one whole committed cycle. Before the first publish they fall back
to the live file read-only, retrying while a writer holds it.

A file that cannot serve (not a DuckDB file, a directory, empty, truncated or damaged, a
DuckDB file without the collector's tables) raises ``BadDatabaseError`` naming the file
and what is wrong. A damaged snapshot beside a healthy live file is not fatal: the reader
falls back to the live file (read-only) and tells ``on_fallback`` why; the writer's next
publish replaces the snapshot.

Tables whose old days the collector archived to Parquet (``collector.archive``) are read
through same-named temp views over the live rows and the parts the snapshot lists, so
reader SQL names tables as always.

Close the connection when done (``with connect_reader(db) as con: ...``): DuckDB caches
open databases per path inside a process, so a connection kept open keeps serving the
snapshot it opened, not the newest one.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from runway_costs.collector.archive import QUIET, PartError, create_history_views
from runway_costs.core.files import snapshot_path

LIVE_RETRIES = 20
LIVE_RETRY_SECONDS = 0.25

# The collector's own tables (collector/schema.sql); a reader needs all of them.
COLLECTOR_TABLES = ("org_snapshots", "model_snapshots", "daily_usage", "collection_runs")

log = logging.getLogger(__name__)


class NoDataError(Exception):
    """Nothing has been collected into this database yet."""


class DatabaseBusyError(NoDataError):
    """No snapshot yet and the writer still holds the live file (first cycle running)."""


class BadDatabaseError(NoDataError):
    """The file cannot be read as a runway-costs database; the message names it and why.

    A NoDataError, so every caller that explains "no data" (exit 2, the dashboard's
    notice) also explains this, without a traceback.
    """

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"database {path} cannot be read: {problem}")
        self.path = path
        self.problem = problem


class MissingPartError(BadDatabaseError):
    """An archived history part the database lists is missing or damaged: the live file
    lists the same parts, so there is nothing to fall back to."""


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc).lower()
    return "lock" in text or "different configuration" in text


def describe_error(exc: BaseException) -> str:
    """What a DuckDB or OS failure to read a file means, in words (one line)."""
    text = " ".join(str(exc).split())
    low = text.lower()
    if isinstance(exc, IsADirectoryError) or "is a directory" in low:
        return "it is a directory, not a database file"
    if "not a valid duckdb database file" in low:
        return "it is not a DuckDB database file"
    if "could not read enough bytes" in low or "truncated" in low:
        return f"it is truncated or damaged ({text})"
    if isinstance(exc, PermissionError) or "permission denied" in low:
        return "permission denied"
    return f"it is damaged or unreadable ({text})"


def _precheck(path: Path) -> None:
    """Problems visible without opening the file: a directory, an empty file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise BadDatabaseError(path, describe_error(exc)) from None
    if path.is_dir():
        raise BadDatabaseError(path, "it is a directory, not a database file")
    if st.st_size == 0:
        raise BadDatabaseError(path, "it is empty (0 bytes), not a database file")


def table_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The base tables of the open database's main schema, sorted."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = 'main' "
        "ORDER BY table_name"
    ).fetchall()
    return [r[0] for r in rows]


# A DuckDB file is three 4 KiB headers, then its blocks of ``block_size``: at least its
# ``used_blocks`` of them (free blocks at the end are cut off at a checkpoint, so the
# header's ``total_blocks`` may exceed what a healthy file holds).
_HEADER_BYTES = 3 * 4096


def _check_complete(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """The file is long enough for the blocks in use it counts: a truncated copy (a full
    disk, an interrupted copy) is caught here, at open, by one stat and one pragma, not by
    reading the whole file (gigabytes at scale). Damage inside a block still fails its
    query, and that is one clear line too (``describe_error``)."""
    rows = con.execute("SELECT block_size, used_blocks FROM pragma_database_size()").fetchall()
    if not rows:
        return
    row = rows[0]
    expected = _HEADER_BYTES + int(row[0]) * int(row[1])
    size = path.stat().st_size
    if size < expected:
        raise BadDatabaseError(
            path, f"it is truncated or damaged ({size:,} bytes, its blocks need {expected:,})"
        )


def _verify(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """The collector's tables are there, and the file holds every block it counts."""
    names = table_names(con)
    missing = [t for t in COLLECTOR_TABLES if t not in names]
    if missing and not any(t in names for t in COLLECTOR_TABLES):
        if names:
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise BadDatabaseError(
                path,
                f"it is a DuckDB file of something else (tables: {shown}), not a "
                "runway-costs database; point --db at another file",
            )
        raise NoDataError(f"no data yet: run `runway-costs collect` ({path} holds no tables)")
    if missing:
        raise BadDatabaseError(path, f"the collector's table(s) {', '.join(missing)} are missing")
    _check_complete(con, path)


def _open_checked(path: Path) -> duckdb.DuckDBPyConnection:
    """``path`` read-only and verified; a lock conflict is re-raised as the duckdb.Error."""
    _precheck(path)
    try:
        con = duckdb.connect(str(path), read_only=True)
        con.execute(QUIET)  # no progress bar in a command's output
    except duckdb.Error as exc:
        if _is_lock_error(exc):
            raise
        raise BadDatabaseError(path, describe_error(exc)) from None
    except OSError as exc:
        raise BadDatabaseError(path, describe_error(exc)) from None
    try:
        _verify(con, path)
        create_history_views(con)  # archived tables whole: live rows + Parquet parts
    except PartError as exc:
        con.close()
        raise MissingPartError(path, str(exc)) from None
    except NoDataError:
        con.close()
        raise
    except (duckdb.Error, OSError) as exc:
        con.close()
        raise BadDatabaseError(path, describe_error(exc)) from None
    return con


def connect_reader(
    db_path: Path | str, on_fallback: Callable[[str], None] | None = None
) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the newest published snapshot of ``db_path``.

    ``on_fallback`` hears (one line) when a damaged snapshot is skipped for the live file.
    """
    db_path = Path(db_path)
    snap = snapshot_path(db_path)
    if os.path.lexists(snap):  # replaced only by atomic rename, never removed: safe to open
        try:
            return _open_checked(snap)
        except BadDatabaseError as exc:
            if not db_path.exists() or isinstance(exc, MissingPartError):
                raise
            note = (
                f"the snapshot {snap} cannot be read: {exc.problem}. Reading the live "
                f"database {db_path} instead (read-only) until the next collection "
                "replaces the snapshot"
            )
            if on_fallback is None:
                log.warning("%s", note)
            else:
                on_fallback(note)
            return _open_live(db_path, snap, check_snapshot=False)
    if not db_path.exists():
        raise NoDataError(f"no data yet: run `runway-costs collect` (no database at {db_path})")
    return _open_live(db_path, snap, check_snapshot=True)


def _open_live(db_path: Path, snap: Path, *, check_snapshot: bool) -> duckdb.DuckDBPyConnection:
    """The live file read-only, retrying while the writer holds it."""
    last: duckdb.Error | None = None
    for attempt in range(LIVE_RETRIES):
        try:
            return _open_checked(db_path)
        except BadDatabaseError:
            raise
        except duckdb.Error as exc:  # only lock conflicts get here
            last = exc
        if check_snapshot and snap.exists():  # the writer published while we waited
            return _open_checked(snap)
        time.sleep(LIVE_RETRY_SECONDS * min(attempt + 1, 4))
    raise DatabaseBusyError(
        f"no data yet: the first collection into {db_path} is still running, try again shortly"
    ) from last
