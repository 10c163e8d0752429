"""Writes what the collector learned into DuckDB, and publishes a snapshot for readers.

Each organization's results go in ONE transaction together with its ``collection_runs``
row, so a crash (even ``kill -9``) leaves either all of it or none of it. Writes are
set-based SQL over registered polars frames; nothing loops over rows in Python.

Every statement of an org's write touches only that org's rows of the window being
written, never its history (issue #12): the latest snapshot rows, the usage totals and
when each day was last collected are kept in small write-state tables (``org_latest``,
``model_latest``, ``org_usage_totals``, ``usage_coverage``) in the same transaction; the
stored usage is read once per write, bounded by the window's dates, and diffed against the
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
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import cast

import duckdb
import polars as pl

from runway_costs.collector.locks import PRIVATE_FILE, make_private_dirs, owner_only, write_lock
from runway_costs.collector.models import OrgSnapshot, UsageWindow
from runway_costs.core.files import snapshot_path

SCHEMA_VERSION = "1"
# Bumped when the write-state tables change meaning: ensure_schema rebuilds them once.
WRITE_STATE_VERSION = "1"
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
)
# History tables without a primary key (schema.sql says why); older databases had one.
KEYLESS_TABLES = ("org_snapshots", "model_snapshots", "usage_revisions", "collection_runs")
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


# model_snapshots reduced per (org, UTC day, model): what model_daily holds. ``{where}``
# picks the snapshot rows; a reduced day must be given all of its rows.
MODEL_DAILY_SQL = """
    SELECT org, CAST(taken_at AS DATE) AS date, model,
           arg_max(daily_generations, taken_at) AS gens_end,
           max(daily_generations) AS gens_peak,
           arg_max_null(max_daily_generations, taken_at) AS max_daily_generations,
           arg_max_null(max_concurrent_generations, taken_at) AS max_concurrent_generations,
           max(taken_at) AS last_taken_at
    FROM model_snapshots
    WHERE {where}
    GROUP BY org, date, model
"""

_MODEL_SCHEMA = {
    "model": pl.String,
    "max_concurrent_generations": pl.Int64,
    "max_daily_generations": pl.Int64,
    "daily_generations": pl.Int64,
}
# The latest model_snapshots row per (org, model) and the highest generations of that row's
# day: what model_latest holds. ``{where}`` picks the snapshot rows (whole days).
MODEL_LATEST_SQL = """
    SELECT org, model, taken_at, max_concurrent_generations, max_daily_generations,
           daily_generations, day_peak
    FROM (
        SELECT *, max(daily_generations)
                      OVER (PARTITION BY org, model, CAST(taken_at AS DATE)) AS day_peak
        FROM model_snapshots WHERE {where}
    )
    QUALIFY row_number() OVER (PARTITION BY org, model ORDER BY taken_at DESC) = 1
"""

_USAGE_SCHEMA = {"date": pl.Date, "model": pl.String, "credits": pl.Int64}
_KEY_SCHEMA = {"date": pl.Date, "api_key_id": pl.String, "model": pl.String, "credits": pl.Int64}
_WINDOW_SCHEMA = {"start": pl.Date, "before": pl.Date}


@dataclass(frozen=True, slots=True)
class RunRecord:
    """The facts of one org's run that end up in its ``collection_runs`` row."""

    org: str
    kind: str
    started_at: datetime
    finished_at: datetime
    http_calls: int
    retries: int
    usage_start: date | None = None
    usage_before: date | None = None
    error: str | None = None


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


def drop_history_keys(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Move the history tables of a database from before (schema version 1) to the keyless
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
    con.begin()
    try:
        con.execute("DELETE FROM model_daily")
        con.execute("INSERT INTO model_daily " + MODEL_DAILY_SQL.format(where="TRUE"))
        con.execute("DELETE FROM model_latest")
        con.execute("INSERT INTO model_latest " + MODEL_LATEST_SQL.format(where="TRUE"))
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
        con.commit()
    except BaseException:
        rollback_quietly(con)
        raise


def rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back after a failure without hiding it: when the failure already ended the
    transaction (a commit that hit a full disk, say), ROLLBACK itself fails ("no
    transaction is active"), and that must not replace the error that says what happened."""
    with suppress(duckdb.Error):
        con.rollback()


def unregister_quietly(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Drop registered frames; an aborted transaction refuses even that, and the error
    that aborted it is the one to report."""
    for name in names:
        with suppress(duckdb.Error):
            con.unregister(name)


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
            return duckdb.connect(str(db_path))
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
        except BaseException:
            with suppress(duckdb.Error):
                con.close()
            raise
        con.close()
        if publish:
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
    """Store one org's snapshot and usage windows plus its ok run row, atomically.

    Returns how many data rows were inserted, updated or deleted.
    """
    written_at = written_at or run.finished_at
    con.begin()
    try:
        changed = 0
        delta = _UsageDelta()
        if snapshot is not None:
            changed += _write_snapshot(con, run.org, snapshot)
        if windows:
            delta = _write_usage(con, run.org, windows, written_at)
            changed += delta.changed
            changed += _write_key_usage(con, run.org, windows, written_at)
        _insert_run(con, run, status="ok", rows_changed=changed, delta=delta)
        con.commit()
    except BaseException:
        rollback_quietly(con)
        raise
    return changed


def write_failed_run(con: duckdb.DuckDBPyConnection, run: RunRecord) -> None:
    """A failed org leaves only its run row (status failed, error text)."""
    con.begin()
    try:
        _insert_run(con, run, status="failed", rows_changed=0, delta=_UsageDelta())
        con.commit()
    except BaseException:
        rollback_quietly(con)
        raise


@dataclass(frozen=True, slots=True)
class _UsageDelta:
    """What one write did to an org's daily_usage: rows changed, and how its row count and
    credit sum moved (added to ``org_usage_totals``)."""

    changed: int = 0
    rows: int = 0
    credits: int = 0


def _row_count(con: duckdb.DuckDBPyConnection, sql: str, params: object) -> int:
    """Run an INSERT, MERGE or DELETE and return the count of rows it changed."""
    row = con.execute(sql, params).fetchone()
    assert row is not None  # DuckDB answers every DML statement with one count row
    return row[0]


def _write_snapshot(con: duckdb.DuckDBPyConnection, org: str, snap: OrgSnapshot) -> int:
    """Insert the org row and changed model rows; a row only when something changed.

    "Changed" is against the org's latest row (``org_latest``, ``model_latest``), which
    move forward with the rows inserted; ``model_daily`` is folded forward from
    ``model_latest.day_peak``. A row at or before the latest one (the same instant
    written again, or a clock gone back) takes the exact path: its day is reduced again.
    """
    params = {
        "org": org,
        "taken_at": snap.taken_at,
        "balance": snap.credit_balance,
        "cap": snap.max_monthly_credit_spend,
    }
    latest = con.execute(
        "SELECT taken_at, credit_balance = $balance AND max_monthly_credit_spend = $cap "
        "FROM org_latest WHERE org = $org",
        {k: params[k] for k in ("org", "balance", "cap")},
    ).fetchall()
    inserted = not latest or not latest[0][1]
    if inserted:
        if latest and latest[0][0] >= snap.taken_at:  # an instant that may be stored already
            con.execute(
                "DELETE FROM org_snapshots WHERE org = $org AND taken_at = $taken_at",
                {"org": org, "taken_at": snap.taken_at},
            )
        con.execute("INSERT INTO org_snapshots VALUES ($org, $taken_at, $balance, $cap)", params)
    if inserted:
        con.execute(
            """
            INSERT INTO org_latest VALUES ($org, $taken_at, $balance, $cap)
            ON CONFLICT (org) DO UPDATE SET
                taken_at = excluded.taken_at, credit_balance = excluded.credit_balance,
                max_monthly_credit_spend = excluded.max_monthly_credit_spend
            WHERE excluded.taken_at >= org_latest.taken_at
            """,
            params,
        )
    models = pl.DataFrame(
        {
            "model": [m.model for m in snap.models],
            "max_concurrent_generations": [m.max_concurrent_generations for m in snap.models],
            "max_daily_generations": [m.max_daily_generations for m in snap.models],
            "daily_generations": [m.daily_generations for m in snap.models],
        },
        schema=_MODEL_SCHEMA,
    ).unique(subset="model", keep="last")
    at = {"org": org, "taken_at": snap.taken_at}
    con.register("_new_models", models)
    try:
        changed = _query(
            con,
            """
            SELECT n.model, n.max_concurrent_generations, n.max_daily_generations,
                   n.daily_generations,
                   l.taken_at IS NULL OR l.taken_at < $taken_at AS forward,
                   CASE WHEN CAST(l.taken_at AS DATE) = CAST($taken_at AS DATE)
                        THEN greatest(l.day_peak, n.daily_generations)
                        ELSE n.daily_generations END AS day_peak
            FROM _new_models n
            LEFT JOIN (SELECT * FROM model_latest WHERE org = $org) l ON l.model = n.model
            WHERE l.model IS NULL
               OR l.max_concurrent_generations IS DISTINCT FROM n.max_concurrent_generations
               OR l.max_daily_generations IS DISTINCT FROM n.max_daily_generations
               OR l.daily_generations IS DISTINCT FROM n.daily_generations
            """,
            at,
        )
    finally:
        unregister_quietly(con, "_new_models")
    if changed.is_empty():
        return int(inserted)
    con.register("_changed_models", changed)
    try:
        if not changed["forward"].all():  # at or before a stored row: it may be stored already
            con.execute(
                """
                DELETE FROM model_snapshots
                WHERE org = $org AND taken_at = $taken_at
                  AND model IN (SELECT model FROM _changed_models WHERE NOT forward)
                """,
                at,
            )
        con.execute(
            """
            INSERT INTO model_snapshots
            SELECT $org, $taken_at, model, max_concurrent_generations, max_daily_generations,
                   daily_generations
            FROM _changed_models
            """,
            at,
        )
        if changed["forward"].any():
            con.execute(
                """
                INSERT OR REPLACE INTO model_latest
                SELECT $org, model, $taken_at, max_concurrent_generations,
                       max_daily_generations, daily_generations, day_peak
                FROM _changed_models WHERE forward
                """,
                at,
            )
            con.execute(
                """
                INSERT OR REPLACE INTO model_daily
                SELECT $org, CAST($taken_at AS DATE), model, daily_generations, day_peak,
                       max_daily_generations, max_concurrent_generations, $taken_at
                FROM _changed_models WHERE forward
                """,
                at,
            )
        if not changed["forward"].all():
            _refresh_model_day(con, org, snap.taken_at)
    finally:
        unregister_quietly(con, "_changed_models")
    return int(inserted) + changed.height


def _refresh_model_day(con: duckdb.DuckDBPyConnection, org: str, taken_at: datetime) -> None:
    """The exact path for models of ``_changed_models`` written at or before their latest
    row: reduce ``taken_at``'s day again, and their latest rows (and day peaks) from their
    snapshot rows."""
    backward = "model IN (SELECT model FROM _changed_models WHERE NOT forward)"
    day_rows = (
        "org = $org AND taken_at >= CAST($taken_at AS DATE)"
        " AND taken_at < CAST($taken_at AS DATE) + INTERVAL 1 DAY AND " + backward
    )
    params = {"org": org, "taken_at": taken_at}
    con.execute(
        "INSERT OR REPLACE INTO model_daily " + MODEL_DAILY_SQL.format(where=day_rows), params
    )
    con.execute(
        "INSERT OR REPLACE INTO model_latest "
        + MODEL_LATEST_SQL.format(where="org = $org AND " + backward),
        {"org": org},
    )


def _frame(rows: Sequence[object], names: Sequence[str], schema: dict) -> pl.DataFrame:
    """The rows' attributes ``names`` as a frame, summed per key (every column but credits)."""
    data = {name: [getattr(r, name) for r in rows] for name in names}
    keys = [n for n in names if n != "credits"]
    return pl.DataFrame(data, schema=schema).group_by(keys).agg(pl.col("credits").sum())


def _bounds(windows: Sequence[UsageWindow], frame: pl.DataFrame) -> dict[str, date]:
    """[lo, hi): the dates of the windows and of the rows reported in them."""
    lo = min(w.start for w in windows)
    hi = max(w.before for w in windows)
    if not frame.is_empty():
        first, last = frame["date"].min(), frame["date"].max()
        assert isinstance(first, date) and isinstance(last, date)
        lo, hi = min(lo, first), max(hi, last + timedelta(days=1))
    return {"lo": lo, "hi": hi}


def _query(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> pl.DataFrame:
    """A SELECT's rows as a polars frame (typed columns even when no row matches)."""
    return cast(pl.DataFrame, pl.from_arrow(con.sql(sql, params=params).to_arrow_table()))


def _diff(
    con: duckdb.DuckDBPyConnection, table: str, keys: Sequence[str], params: dict
) -> pl.DataFrame:
    """The keys whose stored credits the write changes (``_new`` and ``_spans``
    registered): reported with other credits or not stored (old_credits NULL), or stored in
    a window and no longer reported (new_credits NULL), with the stored collected_at.

    Reads the org's stored rows of [lo, hi) only (``_bounds``).
    """
    key_cols = ", ".join(f"coalesce(n.{k}, o.{k}) AS {k}" for k in keys)
    on = " AND ".join(f"o.{k} = n.{k}" for k in keys)
    return _query(
        con,
        f"""
        WITH o AS (
            SELECT {", ".join(keys)}, credits, collected_at FROM {table}
            WHERE org = $org AND date >= $lo AND date < $hi
        )
        SELECT {key_cols}, o.credits AS old_credits, o.collected_at AS old_collected_at,
               n.credits AS new_credits
        FROM _new n FULL JOIN o ON {on}
        WHERE CASE WHEN n.date IS NOT NULL THEN o.credits IS DISTINCT FROM n.credits
                   ELSE EXISTS (SELECT 1 FROM _spans w WHERE o.date >= w.start
                                AND o.date < w.before) END
        """,
        {k: params[k] for k in ("org", "lo", "hi")},
    )


def _apply_diff(
    con: duckdb.DuckDBPyConnection, table: str, keys: Sequence[str], params: dict
) -> None:
    """Upsert the reported rows of ``_diff`` (collected_at $now), delete the vanished."""
    cols = ", ".join(keys)
    con.execute(
        f"INSERT OR REPLACE INTO {table} (org, {cols}, credits, collected_at) "
        f"SELECT $org, {cols}, new_credits, $now FROM _diff WHERE new_credits IS NOT NULL",
        {k: params[k] for k in ("org", "now")},
    )
    match = " AND ".join(f"x.{k} = {table}.{k}" for k in keys)
    con.execute(
        f"""
        DELETE FROM {table}
        WHERE org = $org AND date >= $lo AND date < $hi
          AND EXISTS (SELECT 1 FROM _diff x WHERE x.new_credits IS NULL AND {match})
        """,
        {k: params[k] for k in ("org", "lo", "hi")},
    )


def _write_usage(
    con: duckdb.DuckDBPyConnection, org: str, windows: Sequence[UsageWindow], now: datetime
) -> _UsageDelta:
    """Upsert the reported (date, model) credits and drop rows the API no longer reports.

    ``collected_at`` moves only when a value changes, so identical data is a no-op (one
    read of the window's stored rows, no write). Every change is kept in
    ``usage_revisions`` first (same transaction): a changed or dropped value with its old
    and new credits, and a model new on a day an earlier collection had already covered
    (old credits NULL, old_collected_at from ``usage_coverage``).
    """
    usage = _frame([r for w in windows for r in w.rows], list(_USAGE_SCHEMA), _USAGE_SCHEMA)
    spans = pl.DataFrame(
        {"start": [w.start for w in windows], "before": [w.before for w in windows]},
        schema=_WINDOW_SCHEMA,
    )
    params = {"org": org, "now": now, **_bounds(windows, usage)}
    con.register("_new", usage)
    con.register("_spans", spans)
    try:
        diff = _diff(con, "daily_usage", ("date", "model"), params)
    finally:
        unregister_quietly(con, "_new", "_spans")
    if diff.is_empty():
        return _UsageDelta()
    con.register("_diff", diff)
    try:
        for sql in REVISIONS_SQL:
            con.execute(sql, params)
        _apply_diff(con, "daily_usage", ("date", "model"), params)
    finally:
        unregister_quietly(con, "_diff")
    added = diff["old_credits"].null_count()
    vanished = diff["new_credits"].null_count()
    credits = _total(diff["new_credits"]) - _total(diff["old_credits"])
    return _UsageDelta(changed=diff.height, rows=added - vanished, credits=credits)


def _total(column: pl.Series) -> int:
    """The sum of an integer column, NULLs as 0 (exact: Int64 in, int out)."""
    return int(cast(int, column.fill_null(0).sum()))


# The revision rows of ``_diff`` (registered): a changed or dropped value, and a model new
# on a day an earlier ok collection had covered (old_collected_at from usage_coverage).
_REVISION_ROWS = """
    SELECT $org AS org, d.date, d.model, $now AS seen_at, d.old_credits, d.new_credits,
           CASE WHEN d.old_credits IS NULL THEN c.covered_at ELSE d.old_collected_at END
               AS old_collected_at
    FROM _diff d
    LEFT JOIN (  -- the last earlier ok collection whose window held the day
        SELECT date, covered_at FROM usage_coverage
        WHERE org = $org AND date >= $lo AND date < $hi
    ) c ON c.date = d.date
    WHERE d.old_credits IS NOT NULL OR c.covered_at IS NOT NULL
"""
# A revision is one row per (org, date, model, seen_at): one written again at the same
# instant replaces the first (the table has no key to do it: schema.sql). Rows are appended
# in seen_at order, so ``seen_at = $now`` reads the newest row groups only.
REVISIONS_SQL = (
    f"""
    DELETE FROM usage_revisions
    WHERE org = $org AND seen_at = $now
      AND EXISTS (SELECT 1 FROM ({_REVISION_ROWS}) n
                  WHERE n.date = usage_revisions.date AND n.model = usage_revisions.model)
    """,
    f"""
    INSERT INTO usage_revisions
        (org, date, model, seen_at, old_credits, new_credits, old_collected_at)
    {_REVISION_ROWS}
    """,
)


def _write_key_usage(
    con: duckdb.DuckDBPyConnection, org: str, windows: Sequence[UsageWindow], now: datetime
) -> int:
    """Per-API-key credits of the windows the API answered with ``resultsByApiKey``:
    upserted and replaced like ``daily_usage`` (a window without them is left alone)."""
    answered = [w for w in windows if w.key_rows is not None]
    if not answered:
        return 0
    keys = _frame([r for w in answered for r in (w.key_rows or ())], list(_KEY_SCHEMA), _KEY_SCHEMA)
    spans = pl.DataFrame(
        {"start": [w.start for w in answered], "before": [w.before for w in answered]},
        schema=_WINDOW_SCHEMA,
    )
    params = {"org": org, "now": now, **_bounds(answered, keys)}
    key_cols = ("date", "api_key_id", "model")
    con.register("_new", keys)
    con.register("_spans", spans)
    try:
        diff = _diff(con, "key_usage", key_cols, params)
    finally:
        unregister_quietly(con, "_new", "_spans")
    if diff.is_empty():
        return 0
    con.register("_diff", diff)
    try:
        _apply_diff(con, "key_usage", key_cols, params)
    finally:
        unregister_quietly(con, "_diff")
    return diff.height


def _insert_run(
    con: duckdb.DuckDBPyConnection,
    run: RunRecord,
    *,
    status: str,
    rows_changed: int,
    delta: _UsageDelta,
) -> None:
    """The run row; an ok run first moves the org's ``org_usage_totals`` by the write's
    delta (and its last usage collection) and records the totals, and marks the days of
    its usage window collected (``usage_coverage``)."""
    ok = status == "ok"
    if ok:
        con.execute(
            """
            INSERT INTO org_usage_totals VALUES ($org, $rows, $credits, $before)
            ON CONFLICT (org) DO UPDATE SET
                usage_rows = org_usage_totals.usage_rows + excluded.usage_rows,
                usage_credits = org_usage_totals.usage_credits + excluded.usage_credits,
                last_usage_before = greatest(org_usage_totals.last_usage_before,
                                             excluded.last_usage_before)
            """,
            {
                "org": run.org,
                "rows": delta.rows,
                "credits": delta.credits,
                "before": run.usage_before,
            },
        )
        if run.usage_start is not None and run.usage_before is not None:
            con.execute(
                """
                INSERT INTO usage_coverage
                SELECT $org, CAST(d AS DATE), $finished_at
                FROM range(CAST($start AS DATE), CAST($before AS DATE), INTERVAL 1 DAY) t(d)
                ON CONFLICT (org, date) DO UPDATE SET covered_at = excluded.covered_at
                WHERE excluded.covered_at > usage_coverage.covered_at
                """,
                {
                    "org": run.org,
                    "finished_at": run.finished_at,
                    "start": run.usage_start,
                    "before": run.usage_before,
                },
            )
    con.execute(
        """
        INSERT INTO collection_runs (org, kind, started_at, finished_at, status, error,
            http_calls, retries, usage_start, usage_before, rows_changed,
            usage_rows, usage_credits)
        SELECT $org, $kind, $started_at, $finished_at, $status, $error, $http_calls,
            $retries, $usage_start, $usage_before, $rows_changed,
            CASE WHEN $ok THEN coalesce(max(usage_rows), 0) END,
            CASE WHEN $ok THEN coalesce(max(usage_credits), 0) END
        FROM org_usage_totals WHERE org = $org
        """,
        {
            "org": run.org,
            "kind": run.kind,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "status": status,
            "ok": ok,
            "error": run.error,
            "http_calls": run.http_calls,
            "retries": run.retries,
            "usage_start": run.usage_start,
            "usage_before": run.usage_before,
            "rows_changed": rows_changed,
        },
    )
