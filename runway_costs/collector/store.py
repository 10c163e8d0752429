"""Writes what the collector learned into DuckDB, and publishes a snapshot for readers.

Each organization's results go in ONE transaction together with its ``collection_runs``
row, so a crash (even ``kill -9``) leaves either all of it or none of it. The writing
itself is ``collector.writes`` (the set-based writer: many orgs per transaction, a fixed
number of statements per batch; ``write_org_result`` and ``write_failed_run`` are batches
of one), set-based SQL over registered polars frames; nothing loops over rows in Python.

Every statement of a write touches only the written orgs' rows of the windows being
written, never their history (issue #12): the latest snapshot rows, the usage totals and
when each day was last collected are kept in small write-state tables (``org_latest``,
``model_latest``, ``org_usage_totals``, ``usage_coverage``) in the same transaction; the
stored usage is read once per write, bounded by each org's window, and diffed against the
new rows, so an unchanged org writes nothing but its run row.

After a writer finishes (``write_session`` exits cleanly) the live file is checkpointed,
closed and copied to ``<db>.snapshot`` by atomic rename: readers open that copy, so they
never contend for DuckDB's single-writer file lock and always see whole cycles.

Public API:
    write_session(db_path, timeout=60) -> ContextManager[duckdb.DuckDBPyConnection]
    write_org_result(con, run, snapshot, windows) -> int          (rows changed)
    write_failed_run(con, run) -> None
    rebuild_model_daily(con) -> int                              (rows in model_daily)
    rebuild_write_state(con) -> None          (org_usage_totals, org_latest, model_latest,
                                               usage_coverage recomputed from the tables)
    rebuild_limit_rollup(con) -> int     (model_day_start, org_limit_daily from model_daily;
                                          rebuild_model_daily and rebuild_write_state too)
    last_usage_dates(con) -> dict[str, date]
    publish_snapshot(db_path) -> Path
    adopt_database(db_path) -> list[str]                     (the other tables kept)
    drop_history_keys(con) -> list[str]      (an older file moved to the keyless layout;
                                              ensure_schema does it once)

The history tables (``org_snapshots``, ``model_snapshots``, ``usage_revisions``,
``collection_runs``) have no primary key (schema.sql says why): a row is written only when
it differs from the org's latest, and a row written again at an instant already stored
first deletes the one it replaces, in the same transaction.

Files: the database, DuckDB's WAL, the snapshot and the lock files are created owner-only
(0600), and directories this module creates 0700 (``locks.owner_only``).

A DuckDB file that holds other tables and none of the collector's is refused
(``ForeignDatabaseError``) rather than written into, unless adopted on purpose
(``adopt_database``, ``runway-costs collect --adopt``).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import date, datetime
from importlib import resources
from pathlib import Path

import duckdb

from runway_costs.collector.archive import QUIET, current_parts, is_sparse, rewrite_tight
from runway_costs.collector.locks import PRIVATE_FILE, make_private_dirs, owner_only, write_lock
from runway_costs.collector.models import OrgSnapshot, UsageWindow
from runway_costs.collector.writes import (  # the write path's home; importable from here too
    MODEL_DAILY_SQL,
    MODEL_LATEST_SQL,
    OrgWrite,
    RunRecord,
    fill_limit_rollup,
    rollback_quietly,
    unregister_quietly,  # noqa: F401
    write_org_results,
)
from runway_costs.core.files import snapshot_path

SCHEMA_VERSION = "1"
# Bumped when the write-state tables change meaning: ensure_schema rebuilds them once.
WRITE_STATE_VERSION = "1"
# meta 'limit_rollup': the limit roll-up (model_day_start, org_limit_daily) is kept here.
LIMIT_ROLLUP_VERSION = "1"
LIVE_OPEN_WAIT_SECONDS = 30.0
DATA_TABLES = (
    "org_snapshots",
    "model_snapshots",
    "model_daily",
    "daily_usage",
    "key_usage",
    "usage_revisions",
    "org_usage_totals",
    "org_latest",
    "model_latest",
    "usage_coverage",
    "model_day_start",
    "org_limit_daily",
    "archive_parts",
)
# Tables without a primary key (schema.sql says why); older databases had one.
KEYLESS_TABLES = (
    "org_snapshots",
    "model_snapshots",
    "usage_revisions",
    "collection_runs",
    "model_daily",
    "daily_usage",
    "key_usage",
    "usage_coverage",
)
# Any of these marks a database as the collector's own (schema.sql).
OWN_TABLES = ("meta", "org_snapshots", "model_snapshots", "daily_usage", "collection_runs")


class ForeignDatabaseError(duckdb.Error):
    """The file is a DuckDB database of something else: the collector will not add its
    tables to it unless asked (``adopt_database``). A duckdb.Error, so callers that report
    an unusable database (exit 2) report this one too."""

    def __init__(self, db_path: Path, tables: Sequence[str]) -> None:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        super().__init__(
            f"{db_path} is a DuckDB database of something else (tables: {shown}); "
            "runway-costs adds its tables to such a file only when asked "
            "(`runway-costs collect --adopt`); or point --db at another file"
        )
        self.db_path = db_path
        self.tables = list(tables)


class ArchivedHistoryError(RuntimeError):
    """A rebuild of derived tables was asked of a database whose old days are in Parquet
    parts (``collector.archive``): the rebuilds read and rewrite whole tables in the live
    file, which would duplicate the archived days. They serve databases from before the
    tables they fill, which have no parts."""


def _refuse_if_archived(con: duckdb.DuckDBPyConnection, what: str) -> None:
    if current_parts(con):
        raise ArchivedHistoryError(
            f"{what} cannot run on a database with archived history parts "
            "(collector.archive): the parts are final"
        )


def schema_sql() -> str:
    return (
        resources.files("runway_costs.collector").joinpath("schema.sql").read_text(encoding="utf-8")
    )


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the collector's tables if missing and fill new derived ones (idempotent)."""
    drop_history_keys(con)
    con.execute(schema_sql())
    con.execute(
        "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
        [SCHEMA_VERSION],
    )
    needs_rollup = con.execute(
        "SELECT NOT EXISTS (FROM model_daily) AND EXISTS (FROM model_snapshots)"
    ).fetchall()[0][0]
    if needs_rollup:  # a database from before model_daily: derive it once
        rebuild_model_daily(con)
    state = con.execute("SELECT value FROM meta WHERE key = 'write_state'").fetchall()
    if not state or state[0][0] != WRITE_STATE_VERSION:  # from before the write-state tables
        rebuild_write_state(con)
    rollup = con.execute("SELECT value FROM meta WHERE key = 'limit_rollup'").fetchall()
    if not rollup or rollup[0][0] != LIMIT_ROLLUP_VERSION:  # from before the limit roll-up
        rebuild_limit_rollup(con)


def drop_history_keys(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Move the ``KEYLESS_TABLES`` of a database from before (the history tables had keys
    until one change of issue #12, the per-day tables until a later one) to the keyless
    layout of ``schema.sql``; returns the tables moved ([] when none had a key).

    DuckDB cannot drop a primary key, so each table is renamed, created again from
    ``schema.sql`` and its rows copied over in their stored (time) order, then the old one
    is dropped, all in ONE transaction: a crash leaves the old layout whole, and the next
    open moves it again. Readers never look at constraints, so either layout serves them.
    The file keeps its size (DuckDB reuses the freed blocks for the rows written next).
    """
    keyed = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT table_name FROM duckdb_constraints() "
            "WHERE database_name = current_database() AND schema_name = 'main' "
            "AND constraint_type = 'PRIMARY KEY' AND list_contains($tables, table_name)",
            {"tables": list(KEYLESS_TABLES)},
        ).fetchall()
    ]
    if not keyed:
        return []
    con.begin()
    try:
        for table in keyed:
            con.execute(f"ALTER TABLE {table} RENAME TO {table}__v1")
        con.execute(schema_sql())  # creates the renamed ones again, without their keys
        for table in keyed:
            con.execute(f"INSERT INTO {table} SELECT * FROM {table}__v1")
            con.execute(f"DROP TABLE {table}__v1")
        con.commit()
    except BaseException:
        rollback_quietly(con)
        raise
    return sorted(keyed)


def rebuild_model_daily(con: duckdb.DuckDBPyConnection) -> int:
    """Recompute model_daily from all of model_snapshots, in one transaction.

    The migration of older databases, and the way to keep the rollup right after writing
    model_snapshots rows by other means than ``write_org_result`` (test seeds, generators).
    Call it outside a transaction. ``model_latest`` (derived from the same rows) is
    recomputed with it.
    """
    _refuse_if_archived(con, "rebuild_model_daily")
    con.begin()
    try:
        con.execute("DELETE FROM model_daily")
        con.execute("INSERT INTO model_daily " + MODEL_DAILY_SQL.format(where="TRUE"))
        con.execute("DELETE FROM model_latest")
        con.execute("INSERT INTO model_latest " + MODEL_LATEST_SQL.format(where="TRUE"))
        _fill_all_limit_rollup(con)
        con.commit()
    except BaseException:
        rollback_quietly(con)
        raise
    return int(con.execute("SELECT count(*) FROM model_daily").fetchall()[0][0])


def rebuild_write_state(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute the write-state tables from the collector's tables, in one transaction.

    The migration of databases from before them (``ensure_schema``, once), and the way to
    make them right again after writing daily_usage, org_snapshots, model_snapshots or
    collection_runs rows by other means than this module (``rebuild_model_daily`` too if
    model_snapshots changed). Call it outside a transaction.
    """
    _refuse_if_archived(con, "rebuild_write_state")
    con.begin()
    try:
        con.execute("DELETE FROM org_usage_totals")
        con.execute(
            """
            INSERT INTO org_usage_totals
            SELECT org, coalesce(u.n, 0), coalesce(u.c, 0), r.last_before
            FROM (SELECT org, count(*) AS n, sum(credits) AS c FROM daily_usage GROUP BY org) u
            FULL JOIN (
                SELECT org, max(usage_before) AS last_before FROM collection_runs
                WHERE status = 'ok' GROUP BY org
            ) r USING (org)
            """
        )
        con.execute("DELETE FROM org_latest")
        con.execute(
            """
            INSERT INTO org_latest
            SELECT org, max(taken_at), arg_max(credit_balance, taken_at),
                   arg_max(max_monthly_credit_spend, taken_at)
            FROM org_snapshots GROUP BY org
            """
        )
        con.execute("DELETE FROM model_latest")
        con.execute("INSERT INTO model_latest " + MODEL_LATEST_SQL.format(where="TRUE"))
        con.execute("DELETE FROM usage_coverage")
        con.execute(
            """
            INSERT INTO usage_coverage
            SELECT org, CAST(d AS DATE) AS date, max(finished_at)
            FROM collection_runs,
                 LATERAL (SELECT unnest(range(usage_start, usage_before, INTERVAL 1 DAY)) AS d)
            WHERE status = 'ok' AND usage_start IS NOT NULL AND usage_before IS NOT NULL
            GROUP BY org, CAST(d AS DATE)
            """
        )
        con.execute("INSERT OR REPLACE INTO meta VALUES ('write_state', ?)", [WRITE_STATE_VERSION])
        _fill_all_limit_rollup(con)
        con.commit()
    except BaseException:
        rollback_quietly(con)
        raise


def rebuild_limit_rollup(con: duckdb.DuckDBPyConnection) -> int:
    """Recompute the limit roll-up (``model_day_start``, ``org_limit_daily``) from
    model_daily, in one transaction, and mark it kept (meta 'limit_rollup'): the one-off
    fill of a database from before it (``ensure_schema``), set-based over every org.
    ``rebuild_model_daily`` and ``rebuild_write_state`` do it too. Returns the rows of
    org_limit_daily. Call it outside a transaction."""
    _refuse_if_archived(con, "rebuild_limit_rollup")
    con.begin()
    try:
        _fill_all_limit_rollup(con)
        con.commit()
    except BaseException:
        rollback_quietly(con)
        raise
    return int(con.execute("SELECT count(*) FROM org_limit_daily").fetchall()[0][0])


def _fill_all_limit_rollup(con: duckdb.DuckDBPyConnection) -> None:
    fill_limit_rollup(con, "TRUE", {})
    con.execute("INSERT OR REPLACE INTO meta VALUES ('limit_rollup', ?)", [LIMIT_ROLLUP_VERSION])


def foreign_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The tables of a database that is not the collector's (none of its own tables), or
    [] when it is the collector's or empty."""
    names = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "ORDER BY schema_name, table_name"
        ).fetchall()
    ]
    if any(t in OWN_TABLES for t in names):
        return []
    return names


def open_live(db_path: Path, *, adopt: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the live database read-write. Caller holds the lock.

    A new file is created owner-only (as are its WAL and directories). A DuckDB file of
    something else raises ForeignDatabaseError unless ``adopt``.
    """
    db_path = Path(db_path)
    make_private_dirs(db_path.parent)
    with owner_only():
        con = _connect_rw(db_path)
    try:
        others = foreign_tables(con)
        if others and not adopt:
            raise ForeignDatabaseError(db_path, others)
        with owner_only():
            ensure_schema(con)
    except BaseException:
        con.close()
        raise
    return con


def adopt_database(db_path: Path, timeout: float = 60.0) -> list[str]:
    """Add the collector's tables to a DuckDB file that holds other tables (its tables
    are left as they are); returns those other tables ([] if there were none)."""
    db_path = Path(db_path)
    with write_lock(db_path, timeout), owner_only():
        con = open_live(db_path, adopt=True)
        try:
            names = [
                r[0]
                for r in con.execute(
                    "SELECT table_name FROM duckdb_tables() "
                    "WHERE database_name = current_database() ORDER BY table_name"
                ).fetchall()
            ]
            con.execute("CHECKPOINT")
        finally:
            con.close()
    return [n for n in names if n not in OWN_TABLES and n not in DATA_TABLES]


def _connect_rw(db_path: Path) -> duckdb.DuckDBPyConnection:
    """Open read-write, waiting out a reader that holds the live file briefly.

    Readers fall back to the live file (read-only) only before the first snapshot is
    published; their short hold must not fail the writer.
    """
    deadline = time.monotonic() + LIVE_OPEN_WAIT_SECONDS
    while True:
        try:
            con = duckdb.connect(str(db_path))
            con.execute(QUIET)
            return con
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


@contextmanager
def locked_connection(db_path: Path, timeout: float = 60.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """The live database under the write lock, without publishing (for planning reads)."""
    with write_lock(Path(db_path), timeout), owner_only():
        con = open_live(db_path)
        try:
            yield con
        finally:
            con.close()


@contextmanager
def write_session(
    db_path: Path, timeout: float = 60.0, *, publish: bool = True
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Take the write lock, open the live DB, yield it; on clean exit close and publish.

    On an exception nothing is published: readers keep the previous whole snapshot, and
    whatever the caller committed is published by the next clean session.
    Not reentrant (the lock is per open file): do not nest sessions on one database.
    """
    db_path = Path(db_path)
    with write_lock(db_path, timeout), owner_only():  # the WAL appears while writing
        con = open_live(db_path)
        try:
            yield con
        except BaseException:
            with suppress(duckdb.Error):  # the caller's error is the one to report
                con.close()
            raise
        try:
            con.execute("CHECKPOINT")
            sparse = publish and is_sparse(con)  # after an archive freed most of the file
        except BaseException:
            with suppress(duckdb.Error):
                con.close()
            raise
        con.close()
        if publish:
            if sparse:
                rewrite_tight(db_path)
            publish_snapshot(db_path)


def publish_snapshot(db_path: Path) -> Path:
    """Copy the closed live file to ``<db>.snapshot`` via temp file, fsync, atomic rename.

    Caller holds the write lock and has closed every connection to the live file.
    """
    db_path = Path(db_path)
    target = snapshot_path(db_path)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):  # left by a killed writer
        stale.unlink(missing_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        os.fchmod(fd, PRIVATE_FILE)  # owner-only whatever the umask or a leftover file
        with open(db_path, "rb") as src, open(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target


def last_usage_dates(con: duckdb.DuckDBPyConnection) -> dict[str, date]:
    """Per org, the last day covered by a successful usage collection."""
    rows = con.execute(
        """
        SELECT org, last_usage_before - INTERVAL 1 DAY
        FROM org_usage_totals
        WHERE last_usage_before IS NOT NULL
        """
    ).fetchall()
    return {org: (d.date() if isinstance(d, datetime) else d) for org, d in rows}


def write_org_result(
    con: duckdb.DuckDBPyConnection,
    run: RunRecord,
    snapshot: OrgSnapshot | None,
    windows: Sequence[UsageWindow],
    *,
    written_at: datetime | None = None,
) -> int:
    """Store one org's snapshot and usage windows plus its ok run row, atomically: a
    batch of one for the set-based writer (``collector.writes``).

    Returns how many data rows were inserted, updated or deleted.
    """
    return write_org_results(con, [OrgWrite(run, snapshot, windows, written_at)])[0]


def write_failed_run(con: duckdb.DuckDBPyConnection, run: RunRecord) -> None:
    """A failed org leaves only its run row (status failed, error text)."""
    write_org_results(con, [OrgWrite.failed(run)])
