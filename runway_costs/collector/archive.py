"""History that no longer changes, moved out of the live file into immutable Parquet parts.

Why (issue #12): readers open ``<db>.snapshot``, a copy of the live file the writer
publishes after each cycle. Copying all of history every cycle grew with the history
(5.2 s at 1.5 GB, 16 s at 6 GB). So the live file keeps only what can still change, or was
written lately, and every older day of the growing tables is written ONCE to
``<db>.parts/`` as Parquet (zstd), which readers read in place: a publish copies the live
part only, whatever the history.

What stays live, per table (``ARCHIVED``): the append-only history (``model_snapshots``,
``org_snapshots``, ``usage_revisions``, ``collection_runs``) for ``SNAPSHOT_LIVE_DAYS``
UTC days; ``model_daily`` for ``ROLLUP_LIVE_DAYS`` (the Limits pages read 30 days, so they
never open a part); the revisable usage tables (``daily_usage``, ``key_usage``,
``usage_coverage``) for ``USAGE_LIVE_DAYS``, past the 90 days a usage window can reach
(``cycle.plan_usage``). The small tables (write state, roll-ups, outlooks, alerts, meta)
stay live whole.

The archive step (``archive_step``, once per cycle under the write lock, after the orgs are
committed and before the one publish) moves, per table, the rows of days before its
horizon (the cycle's day minus its live days; it moves forward once a day):
    1. COPY them to a temp Parquet file, fsync, rename into ``.parts/``, fsync the folder;
    2. ONE transaction: the new files enter the manifest (``archive_parts``), the rows
       leave the live tables, the horizons move (meta ``archive_horizon:<table>``).
Killed before 2 commits, the rows are still live and the new file is in no manifest: the
next step deletes it (``sweep``) and archives again. So every published snapshot is one
whole committed cycle: its live rows plus exactly the parts its own manifest lists.

Parts are never rewritten. Daily parts of a closed month are merged into one part per
month (``compact``: a new file, then one transaction marks the old ones replaced); a
replaced file is deleted only ``REPLACED_GRACE`` after, when no reader can still be on a
snapshot that lists it (readers open a snapshot per page load or command).

Reading: ``history_views`` / ``create_history_views`` put a TEMP VIEW named like each
archived table in front of it (``<catalog>.main.<table> UNION ALL read_parquet(parts)``),
so reader SQL is unchanged: an unqualified name finds the temp view first. DuckDB skips a
part whose Parquet statistics exclude a query's filter, so a query on recent days reads
the live part only. Writes never run with the views in place (they would hit the view).

Days before a table's horizon are final: the writer does not write there
(``writes.write_org_results`` drops usage rows and snapshots dated before the horizons,
which only a clock moved back by days can produce, and logs it).

Public API:
    ARCHIVED, ArchivedTable
    archive_step(con, db_path, at) -> ArchiveReport
    history_views(con) -> ContextManager[list[str]]     (temp views while inside)
    create_history_views(con) -> list[str]; drop_history_views(con, names)
    PartError                                  (a listed part missing or damaged)
    history_source(con, table) -> str          (SQL for the whole table: live + parts)
    horizons(con) -> dict[str, date]
    is_sparse(con) -> bool; rewrite_tight(db_path)   (a live file mostly free blocks)
    vacuum_if_sparse(db_path) -> bool          (both, for callers without a connection)
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from runway_costs.collector.locks import PRIVATE_FILE, make_private_dirs, owner_only
from runway_costs.core.files import live_path, parts_dir
from runway_costs.core.windows import USAGE_HISTORY_DAYS

SNAPSHOT_LIVE_DAYS = 2  # today and yesterday: a same-instant rewrite finds its row live
ROLLUP_LIVE_DAYS = 40  # the Limits pages read 30 days (+1) of model_daily
# a usage window reaches back USAGE_HISTORY_DAYS at most (cycle.plan_usage); a month more
USAGE_LIVE_DAYS = USAGE_HISTORY_DAYS + 30
REPLACED_GRACE = timedelta(hours=1)  # a merged-away part outlives any reader's snapshot
# A live file whose free blocks exceed its used ones by this much is rewritten tight
# (after the first archive of a large database: DuckDB reuses free blocks but never
# gives them back, and the publish copies the whole file).
VACUUM_MIN_FREE_BYTES = 64 * 1024 * 1024
HORIZON_KEY = "archive_horizon:"
# DuckDB draws a progress bar on stdout for statements over ~2 s (the first archive of a
# large file, a long export): it would land in a command's output (JSON, CSV). Every
# connection the product opens runs this first.
QUIET = "SET enable_progress_bar = false"


@dataclass(frozen=True, slots=True)
class ArchivedTable:
    """A table whose old days move to parts: ``day`` is the SQL for a row's UTC day."""

    name: str
    day: str
    live_days: int


ARCHIVED: tuple[ArchivedTable, ...] = (
    ArchivedTable("model_snapshots", "CAST(taken_at AS DATE)", SNAPSHOT_LIVE_DAYS),
    ArchivedTable("org_snapshots", "CAST(taken_at AS DATE)", SNAPSHOT_LIVE_DAYS),
    ArchivedTable("usage_revisions", "CAST(seen_at AS DATE)", SNAPSHOT_LIVE_DAYS),
    ArchivedTable("collection_runs", "CAST(started_at AS DATE)", SNAPSHOT_LIVE_DAYS),
    ArchivedTable("model_daily", "date", ROLLUP_LIVE_DAYS),
    ArchivedTable("daily_usage", "date", USAGE_LIVE_DAYS),
    ArchivedTable("key_usage", "date", USAGE_LIVE_DAYS),
    ArchivedTable("usage_coverage", "date", USAGE_LIVE_DAYS),
)
BY_NAME = {t.name: t for t in ARCHIVED}


@dataclass(slots=True)
class ArchiveReport:
    """What one archive step did (for the cycle's log line and the benchmarks)."""

    rows: dict[str, int] = field(default_factory=dict)  # rows moved to parts, per table
    files_written: int = 0
    files_merged: int = 0  # daily parts replaced by monthly ones
    files_deleted: int = 0  # replaced past the grace, and leftovers of killed steps
    seconds: float = 0.0


def _has_manifest(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name = 'archive_parts'"
        ).fetchall()[0][0]
    )


def _database_file(con: duckdb.DuckDBPyConnection) -> Path:
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    return Path(row[0][0])


def _parts_of(con: duckdb.DuckDBPyConnection) -> Path:
    """The parts folder of the database ``con`` is on (the live file or its snapshot)."""
    return parts_dir(live_path(_database_file(con)))


def current_parts(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Per archived table, the file names of its parts in force (not replaced)."""
    if not _has_manifest(con):
        return {}
    rows = con.execute(
        "SELECT table_name, list(file ORDER BY first_day, file) FROM archive_parts "
        "WHERE replaced_at IS NULL GROUP BY table_name"
    ).fetchall()
    return {t: list(files) for t, files in rows}


def horizons(con: duckdb.DuckDBPyConnection) -> dict[str, date]:
    """Per archived table, the first day still live (days before it are in parts)."""
    rows = con.execute(
        "SELECT key, value FROM meta WHERE starts_with(key, $p)", {"p": HORIZON_KEY}
    ).fetchall()
    return {k.removeprefix(HORIZON_KEY): date.fromisoformat(v) for k, v in rows}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _parts_list(folder: Path, files: Sequence[str]) -> str:
    return "[" + ", ".join(_quote(str(folder / f)) for f in files) + "]"


def history_source(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """SQL (a table name or a parenthesized query) for all of ``table``: its live rows and
    its parts. Used by the writer's exact paths, which must see history but cannot have
    the temp views in place."""
    files = current_parts(con).get(table)
    if not files:
        return table
    catalog = con.execute("SELECT current_database()").fetchall()[0][0]
    return (
        f'(SELECT * FROM "{catalog}".main.{table} UNION ALL '
        f"SELECT * FROM read_parquet({_parts_list(_parts_of(con), files)}))"
    )


class PartError(Exception):
    """An archived part the database lists is missing or not a whole Parquet file (a
    backup or a move that left the ``.parts`` folder behind, a truncated copy). The
    message names the file and what to do."""


_PARQUET_MAGIC = b"PAR1"


def check_parts(folder: Path, files: Sequence[str]) -> None:
    """Each listed part exists and ends like a whole Parquet file: a cheap check at open
    (a stat and 4 bytes per file), so a missing or truncated part is one clear line at
    connect instead of an error in the middle of some page's query."""
    for name in files:
        path = folder / name
        try:
            with open(path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(size - 4, 0))
                whole = size >= 12 and fh.read(4) == _PARQUET_MAGIC
        except FileNotFoundError:
            raise PartError(
                f"its archived history part {path} is missing (a backup or a move must "
                f"take the {folder.name} folder with the database)"
            ) from None
        except OSError as exc:
            raise PartError(f"its archived history part {path} cannot be read ({exc})") from None
        if not whole:
            raise PartError(f"its archived history part {path} is truncated or damaged")


def create_history_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """A TEMP VIEW over live rows + parts for each archived table that has parts; returns
    their names. Works on a read-only connection (temp objects live in memory). Raises
    ``PartError`` when a listed part is missing or damaged."""
    parts = current_parts(con)
    if not parts:
        return []
    folder = _parts_of(con)
    for files in parts.values():
        check_parts(folder, files)
    catalog = con.execute("SELECT current_database()").fetchall()[0][0]
    names = []
    for table, files in parts.items():
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {table} AS "
            f'SELECT * FROM "{catalog}".main.{table} UNION ALL '
            f"SELECT * FROM read_parquet({_parts_list(folder, files)})"
        )
        names.append(table)
    return names


def drop_history_views(con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> None:
    for name in names:
        con.execute(f"DROP VIEW IF EXISTS temp.main.{name}")


@contextmanager
def history_views(con: duckdb.DuckDBPyConnection) -> Iterator[list[str]]:
    """The archived tables whole (temp views) while inside: for reads on the writer's
    connection (the after-cycle outlook step). No writes to archived tables inside."""
    names = create_history_views(con)
    try:
        yield names
    finally:
        with suppress(duckdb.Error):
            drop_history_views(con, names)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_part(
    con: duckdb.DuckDBPyConnection, folder: Path, table: ArchivedTable, query: str
) -> tuple[str, int, date, date] | None:
    """COPY ``query``'s rows, in the order it gives them, to a new part; None when it
    has no rows. Returns (file, rows, first, last). The live tables are appended in time
    order and merges list their parts by first day, so parts keep time order: a reader's
    time window skips the row groups outside it, as on the live table (no sort needed)."""
    token = secrets.token_hex(4)
    tmp = folder / f".{table.name}.{token}.tmp"
    try:
        with owner_only():
            con.execute(f"COPY ({query}) TO {_quote(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")
        stats = con.execute(
            f"SELECT count(*), min({table.day}), max({table.day}) "
            f"FROM read_parquet({_quote(str(tmp))})"
        ).fetchall()[0]
        if not stats[0]:
            tmp.unlink(missing_ok=True)
            return None
        os.chmod(tmp, PRIVATE_FILE)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        name = f"{table.name}.{stats[1]:%Y%m%d}-{stats[2]:%Y%m%d}.{token}.parquet"
        os.replace(tmp, folder / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return name, int(stats[0]), stats[1], stats[2]


def sweep(con: duckdb.DuckDBPyConnection, folder: Path, at: datetime) -> int:
    """Delete files no manifest row lists (a killed step's) and parts replaced more than
    ``REPLACED_GRACE`` before ``at`` (with their manifest rows); returns files deleted."""
    if not folder.is_dir():
        return 0
    listed = {r[0] for r in con.execute("SELECT file FROM archive_parts").fetchall()}
    deleted = 0
    for path in folder.iterdir():
        if path.name not in listed and (path.suffix in (".parquet", ".tmp")):
            path.unlink(missing_ok=True)
            deleted += 1
    expired = [
        r[0]
        for r in con.execute(
            "SELECT file FROM archive_parts WHERE replaced_at IS NOT NULL AND replaced_at < $t",
            {"t": at - REPLACED_GRACE},
        ).fetchall()
    ]
    if expired:
        con.execute("DELETE FROM archive_parts WHERE list_contains($f, file)", {"f": expired})
        for name in expired:
            (folder / name).unlink(missing_ok=True)
        deleted += len(expired)
    return deleted


def _horizon(table: ArchivedTable, at: datetime) -> date:
    """The first day kept live at ``at``: its day and the ``live_days - 1`` before."""
    return at.date() - timedelta(days=table.live_days - 1)


def _move_days(
    con: duckdb.DuckDBPyConnection, folder: Path, at: datetime, report: ArchiveReport
) -> None:
    """Steps 1 and 2 of the module doc for every table whose horizon moves."""
    known = horizons(con)
    moving = {
        t.name: _horizon(t, at)
        for t in ARCHIVED
        if known.get(t.name) is None or known[t.name] < _horizon(t, at)
    }
    if not moving:
        return
    written: list[tuple[str, str, int, date, date]] = []
    try:
        for name, horizon in moving.items():
            table = BY_NAME[name]
            part = _write_part(
                con,
                folder,
                table,
                f"SELECT * FROM main.{name} WHERE {table.day} < DATE '{horizon.isoformat()}'",
            )
            if part is not None:
                written.append((name, *part))
        if written:
            _fsync_dir(folder)
        con.begin()
        for name, file, rows, first, last in written:
            con.execute(
                "INSERT INTO archive_parts VALUES ($t, $f, $first, $last, $rows, $at, NULL)",
                {"t": name, "f": file, "first": first, "last": last, "rows": rows, "at": at},
            )
            con.execute(
                f"DELETE FROM main.{name} WHERE {BY_NAME[name].day} < $h", {"h": moving[name]}
            )
            report.rows[name] = report.rows.get(name, 0) + rows
        for name, horizon in moving.items():
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES ($k, $v)",
                {"k": HORIZON_KEY + name, "v": horizon.isoformat()},
            )
        con.commit()
    except BaseException:
        with suppress(duckdb.Error):
            con.rollback()
        for _, file, *_ in written:  # in no committed manifest: nobody can list them
            (folder / file).unlink(missing_ok=True)
        raise
    report.files_written += len(written)


def _month_end(day: date) -> date:
    first_next = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    return first_next - timedelta(days=1)


def compact(con: duckdb.DuckDBPyConnection, folder: Path, at: datetime) -> int:
    """Merge the parts of each closed month (all of its days before the table's horizon)
    into one part; returns how many parts were replaced. A part spanning several months
    (the first archive of an older database) is left as it is."""
    known = horizons(con)
    groups = con.execute(
        """
        SELECT table_name, CAST(date_trunc('month', first_day) AS DATE) AS month,
               list(file ORDER BY first_day, file)
        FROM archive_parts
        WHERE replaced_at IS NULL
          AND date_trunc('month', first_day) = date_trunc('month', last_day)
        GROUP BY table_name, month
        HAVING count(*) > 1
        ORDER BY table_name, month
        """
    ).fetchall()
    merged = 0
    for name, month, files in groups:
        horizon = known.get(name)
        if horizon is None or _month_end(month) >= horizon:
            continue  # the month still has live days: more parts will come
        table = BY_NAME[name]
        part = _write_part(
            con, folder, table, f"SELECT * FROM read_parquet({_parts_list(folder, files)})"
        )
        if part is None:
            continue
        _fsync_dir(folder)
        file, rows, first, last = part
        con.begin()
        try:
            con.execute(
                "INSERT INTO archive_parts VALUES ($t, $f, $first, $last, $rows, $at, NULL)",
                {"t": name, "f": file, "first": first, "last": last, "rows": rows, "at": at},
            )
            con.execute(
                "UPDATE archive_parts SET replaced_at = $at WHERE list_contains($f, file)",
                {"at": at, "f": files},
            )
            con.commit()
        except BaseException:
            with suppress(duckdb.Error):
                con.rollback()
            (folder / file).unlink(missing_ok=True)
            raise
        merged += len(files)
    return merged


def archive_step(con: duckdb.DuckDBPyConnection, db_path: Path, at: datetime) -> ArchiveReport:
    """Move the days past each table's horizon to parts, merge closed months, delete what
    is no longer listed (module doc). Caller holds the write lock, outside a transaction,
    without the history views. Cheap when no horizon moves (a few small queries)."""
    started = time.perf_counter()
    report = ArchiveReport()
    folder = parts_dir(Path(db_path))
    make_private_dirs(folder)
    con.begin()
    try:
        report.files_deleted = sweep(con, folder, at)
        con.commit()
    except BaseException:
        with suppress(duckdb.Error):
            con.rollback()
        raise
    _move_days(con, folder, at, report)
    report.files_merged = compact(con, folder, at)
    report.seconds = time.perf_counter() - started
    return report


def is_sparse(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the file ``con`` is on holds more free blocks than used ones, by at least
    ``VACUUM_MIN_FREE_BYTES`` (after the first archive of a large database: DuckDB reuses
    free blocks but never gives them back, and every publish would copy them). Read on the
    writer's connection after its checkpoint, so a session opens the file once."""
    row = con.execute(
        "SELECT block_size, used_blocks, free_blocks FROM pragma_database_size()"
    ).fetchall()[0]
    block, used, free = (int(v) for v in row)
    return free > used and free * block >= VACUUM_MIN_FREE_BYTES


def vacuum_if_sparse(db_path: Path) -> bool:
    """``rewrite_tight`` the (closed, checkpointed) live file if it ``is_sparse``; returns
    whether it rewrote. For callers without an open connection (benchmarks, tests)."""
    db_path = Path(db_path)
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        sparse = is_sparse(con)
    finally:
        con.close()
    if sparse:
        rewrite_tight(db_path)
    return sparse


def rewrite_tight(db_path: Path) -> None:
    """Rewrite the live file without its free blocks: ``COPY FROM DATABASE`` to a temp
    file, fsync, atomic rename, so a crash leaves the old file whole. Caller holds the
    write lock and has closed every connection to the file."""
    db_path = Path(db_path)
    tmp = db_path.with_name(f".{db_path.name}.vacuum.tmp")
    tmp.unlink(missing_ok=True)
    try:
        with owner_only():
            mem = duckdb.connect()
            try:
                mem.execute(QUIET)
                mem.execute(f"ATTACH {_quote(str(db_path))} AS src (READ_ONLY)")
                mem.execute(f"ATTACH {_quote(str(tmp))} AS dst")
                mem.execute("COPY FROM DATABASE src TO dst")
                mem.execute("DETACH dst")
                mem.execute("DETACH src")
            finally:
                mem.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, db_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        with suppress(FileNotFoundError):
            tmp.with_name(tmp.name + ".wal").unlink()
        raise
    _fsync_dir(db_path.parent)
