"""Writes what the collector learned into DuckDB, and publishes a snapshot for readers.

Each organization's results go in ONE transaction together with its ``collection_runs``
row, so a crash (even ``kill -9``) leaves either all of it or none of it. Writes are
set-based SQL over registered polars frames; nothing loops over rows in Python.

After a writer finishes (``write_session`` exits cleanly) the live file is checkpointed,
closed and copied to ``<db>.snapshot`` by atomic rename: readers open that copy, so they
never contend for DuckDB's single-writer file lock and always see whole cycles.

Public API:
    write_session(db_path, timeout=60) -> ContextManager[duckdb.DuckDBPyConnection]
    write_org_result(con, run, snapshot, windows) -> int          (rows changed)
    write_failed_run(con, run) -> None
    rebuild_model_daily(con) -> int                              (rows in model_daily)
    last_usage_dates(con) -> dict[str, date]
    publish_snapshot(db_path) -> Path
    adopt_database(db_path) -> list[str]                     (the other tables kept)

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
from datetime import date, datetime
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl

from runway_costs.collector.locks import PRIVATE_FILE, make_private_dirs, owner_only, write_lock
from runway_costs.collector.models import OrgSnapshot, UsageWindow
from runway_costs.core.files import snapshot_path

SCHEMA_VERSION = "1"
LIVE_OPEN_WAIT_SECONDS = 30.0
DATA_TABLES = (
    "org_snapshots",
    "model_snapshots",
    "model_daily",
    "daily_usage",
    "key_usage",
    "usage_revisions",
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


def rebuild_model_daily(con: duckdb.DuckDBPyConnection) -> int:
    """Recompute model_daily from all of model_snapshots, in one transaction.

    The migration of older databases, and the way to keep the rollup right after writing
    model_snapshots rows by other means than ``write_org_result`` (test seeds, generators).
    Call it outside a transaction.
    """
    con.begin()
    try:
        con.execute("DELETE FROM model_daily")
        con.execute("INSERT INTO model_daily " + MODEL_DAILY_SQL.format(where="TRUE"))
        con.commit()
    except BaseException:
        rollback_quietly(con)
        raise
    return int(con.execute("SELECT count(*) FROM model_daily").fetchall()[0][0])


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
        SELECT org, max(usage_before) - INTERVAL 1 DAY
        FROM collection_runs
        WHERE status = 'ok' AND usage_before IS NOT NULL
        GROUP BY org
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
        if snapshot is not None:
            changed += _write_snapshot(con, run.org, snapshot)
        if windows:
            changed += _write_usage(con, run.org, windows, written_at)
            changed += _write_key_usage(con, run.org, windows, written_at)
        _insert_run(con, run, status="ok", rows_changed=changed)
        con.commit()
    except BaseException:
        rollback_quietly(con)
        raise
    return changed


def write_failed_run(con: duckdb.DuckDBPyConnection, run: RunRecord) -> None:
    """A failed org leaves only its run row (status failed, error text)."""
    con.begin()
    try:
        _insert_run(con, run, status="failed", rows_changed=0)
        con.commit()
    except BaseException:
        rollback_quietly(con)
        raise


def _row_count(con: duckdb.DuckDBPyConnection, sql: str, params: object) -> int:
    """Run an INSERT, MERGE or DELETE and return the count of rows it changed."""
    row = con.execute(sql, params).fetchone()
    assert row is not None  # DuckDB answers every DML statement with one count row
    return row[0]


def _write_snapshot(con: duckdb.DuckDBPyConnection, org: str, snap: OrgSnapshot) -> int:
    """Insert the org row and changed model rows; a row only when something changed."""
    inserted = _row_count(
        con,
        """
        INSERT OR REPLACE INTO org_snapshots
        SELECT $org, $taken_at, $balance, $cap
        WHERE NOT EXISTS (
            SELECT 1 FROM (
                SELECT credit_balance, max_monthly_credit_spend FROM org_snapshots
                WHERE org = $org ORDER BY taken_at DESC LIMIT 1
            ) AS latest
            WHERE latest.credit_balance = $balance
              AND latest.max_monthly_credit_spend = $cap
        )
        """,
        {
            "org": org,
            "taken_at": snap.taken_at,
            "balance": snap.credit_balance,
            "cap": snap.max_monthly_credit_spend,
        },
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
    con.register("_new_models", models)
    try:
        model_rows = _row_count(
            con,
            """
            INSERT OR REPLACE INTO model_snapshots
            WITH latest AS (
                SELECT model, max_concurrent_generations, max_daily_generations,
                       daily_generations
                FROM model_snapshots WHERE org = $org
                QUALIFY row_number() OVER (PARTITION BY model ORDER BY taken_at DESC) = 1
            )
            SELECT $org, $taken_at, n.model, n.max_concurrent_generations,
                   n.max_daily_generations, n.daily_generations
            FROM _new_models n LEFT JOIN latest l ON l.model = n.model
            WHERE l.model IS NULL
               OR l.max_concurrent_generations IS DISTINCT FROM n.max_concurrent_generations
               OR l.max_daily_generations IS DISTINCT FROM n.max_daily_generations
               OR l.daily_generations IS DISTINCT FROM n.daily_generations
            """,
            {"org": org, "taken_at": snap.taken_at},
        )
    finally:
        unregister_quietly(con, "_new_models")
    if model_rows:
        _refresh_model_daily(con, org, snap.taken_at)
    return int(inserted) + int(model_rows)


def _refresh_model_daily(con: duckdb.DuckDBPyConnection, org: str, taken_at: datetime) -> None:
    """Recompute the rollup of ``taken_at``'s day for the models with a row at ``taken_at``.

    Reducing the whole day again (at most a day of rows per model) rather than folding the
    new row into the old totals stays exact even when a row at the same time is replaced.
    """
    day_rows = (
        "org = $org AND taken_at >= CAST($taken_at AS DATE)"
        " AND taken_at < CAST($taken_at AS DATE) + INTERVAL 1 DAY"
        " AND model IN (SELECT model FROM model_snapshots WHERE org = $org"
        " AND taken_at = $taken_at)"
    )
    con.execute(
        "INSERT OR REPLACE INTO model_daily " + MODEL_DAILY_SQL.format(where=day_rows),
        {"org": org, "taken_at": taken_at},
    )


def _write_usage(
    con: duckdb.DuckDBPyConnection, org: str, windows: Sequence[UsageWindow], now: datetime
) -> int:
    """Upsert the reported (date, model) credits and drop rows the API no longer reports.

    ``collected_at`` moves only when a value changes, so identical data is a no-op. Every
    change is kept in ``usage_revisions`` first (same transaction): a changed or dropped
    value with its old and new credits, and a model new on a day an earlier collection
    had already covered (old credits NULL).
    """
    rows = [r for w in windows for r in w.rows]
    usage = (
        pl.DataFrame(
            {
                "date": [r.date for r in rows],
                "model": [r.model for r in rows],
                "credits": [r.credits for r in rows],
            },
            schema=_USAGE_SCHEMA,
        )
        .group_by("date", "model")
        .agg(pl.col("credits").sum())
    )
    spans = pl.DataFrame(
        {"start": [w.start for w in windows], "before": [w.before for w in windows]},
        schema=_WINDOW_SCHEMA,
    )
    con.register("_new_usage", usage)
    con.register("_windows", spans)
    params = {"org": org, "now": now}
    try:
        _record_revisions(con, params)
        upserted = _row_count(
            con,
            """
            MERGE INTO daily_usage AS t
            USING (SELECT $org AS org, date, model, credits FROM _new_usage) AS s
            ON t.org = s.org AND t.date = s.date AND t.model = s.model
            WHEN MATCHED AND t.credits <> s.credits THEN
                UPDATE SET credits = s.credits, collected_at = $now
            WHEN NOT MATCHED THEN
                INSERT (org, date, model, credits, collected_at)
                VALUES (s.org, s.date, s.model, s.credits, $now)
            """,
            params,
        )
        deleted = _row_count(
            con,
            """
            DELETE FROM daily_usage AS d
            WHERE d.org = $org
              AND EXISTS (SELECT 1 FROM _windows w WHERE d.date >= w.start AND d.date < w.before)
              AND NOT EXISTS (
                  SELECT 1 FROM _new_usage n WHERE n.date = d.date AND n.model = d.model
              )
            """,
            {"org": org},
        )
    finally:
        unregister_quietly(con, "_new_usage", "_windows")
    return int(upserted) + int(deleted)


REVISIONS_SQL = """
    INSERT OR REPLACE INTO usage_revisions
        (org, date, model, seen_at, old_credits, new_credits, old_collected_at)
    WITH covered AS (  -- the last earlier ok collection whose window held each new day
        SELECT n.date, max(r.finished_at) AS covered_at
        FROM (SELECT DISTINCT date FROM _new_usage) n
        JOIN collection_runs r
          ON r.org = $org AND r.status = 'ok'
         AND r.usage_start <= n.date AND n.date < r.usage_before
        GROUP BY n.date)
    SELECT $org, n.date, n.model, $now, t.credits, n.credits, t.collected_at
    FROM _new_usage n
    JOIN daily_usage t ON t.org = $org AND t.date = n.date AND t.model = n.model
    WHERE t.credits <> n.credits
    UNION ALL
    SELECT $org, n.date, n.model, $now, NULL, n.credits, c.covered_at
    FROM _new_usage n JOIN covered c ON c.date = n.date
    WHERE NOT EXISTS (
        SELECT 1 FROM daily_usage t WHERE t.org = $org AND t.date = n.date AND t.model = n.model)
    UNION ALL
    SELECT d.org, d.date, d.model, $now, d.credits, NULL, d.collected_at
    FROM daily_usage d
    WHERE d.org = $org
      AND EXISTS (SELECT 1 FROM _windows w WHERE d.date >= w.start AND d.date < w.before)
      AND NOT EXISTS (SELECT 1 FROM _new_usage n WHERE n.date = d.date AND n.model = d.model)
"""


def _record_revisions(con: duckdb.DuckDBPyConnection, params: dict) -> None:
    """Keep what the upsert is about to change (``_new_usage`` and ``_windows`` registered)."""
    con.execute(REVISIONS_SQL, params)


def _write_key_usage(
    con: duckdb.DuckDBPyConnection, org: str, windows: Sequence[UsageWindow], now: datetime
) -> int:
    """Per-API-key credits of the windows the API answered with ``resultsByApiKey``:
    upserted and replaced like ``daily_usage`` (a window without them is left alone)."""
    answered = [w for w in windows if w.key_rows is not None]
    if not answered:
        return 0
    rows = [r for w in answered for r in (w.key_rows or ())]
    keys = (
        pl.DataFrame(
            {
                "date": [r.date for r in rows],
                "api_key_id": [r.api_key_id for r in rows],
                "model": [r.model for r in rows],
                "credits": [r.credits for r in rows],
            },
            schema=_KEY_SCHEMA,
        )
        .group_by("date", "api_key_id", "model")
        .agg(pl.col("credits").sum())
    )
    spans = pl.DataFrame(
        {"start": [w.start for w in answered], "before": [w.before for w in answered]},
        schema=_WINDOW_SCHEMA,
    )
    con.register("_new_keys", keys)
    con.register("_key_windows", spans)
    try:
        upserted = _row_count(
            con,
            """
            MERGE INTO key_usage AS t
            USING (SELECT $org AS org, date, api_key_id, model, credits FROM _new_keys) AS s
            ON t.org = s.org AND t.date = s.date AND t.api_key_id = s.api_key_id
               AND t.model = s.model
            WHEN MATCHED AND t.credits <> s.credits THEN
                UPDATE SET credits = s.credits, collected_at = $now
            WHEN NOT MATCHED THEN
                INSERT (org, date, api_key_id, model, credits, collected_at)
                VALUES (s.org, s.date, s.api_key_id, s.model, s.credits, $now)
            """,
            {"org": org, "now": now},
        )
        deleted = _row_count(
            con,
            """
            DELETE FROM key_usage AS d
            WHERE d.org = $org
              AND EXISTS (SELECT 1 FROM _key_windows w
                          WHERE d.date >= w.start AND d.date < w.before)
              AND NOT EXISTS (
                  SELECT 1 FROM _new_keys n WHERE n.date = d.date
                     AND n.api_key_id = d.api_key_id AND n.model = d.model)
            """,
            {"org": org},
        )
    finally:
        unregister_quietly(con, "_new_keys", "_key_windows")
    return int(upserted) + int(deleted)


def _insert_run(
    con: duckdb.DuckDBPyConnection, run: RunRecord, *, status: str, rows_changed: int
) -> None:
    con.execute(
        """
        INSERT INTO collection_runs (org, kind, started_at, finished_at, status, error,
            http_calls, retries, usage_start, usage_before, rows_changed,
            usage_rows, usage_credits)
        SELECT $org, $kind, $started_at, $finished_at, $status, $error, $http_calls,
            $retries, $usage_start, $usage_before, $rows_changed,
            CASE WHEN $status = 'ok' THEN count(*) END,
            CASE WHEN $status = 'ok' THEN coalesce(sum(credits), 0) END
        FROM daily_usage WHERE org = $org
        """,
        {
            "org": run.org,
            "kind": run.kind,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "status": status,
            "error": run.error,
            "http_calls": run.http_calls,
            "retries": run.retries,
            "usage_start": run.usage_start,
            "usage_before": run.usage_before,
            "rows_changed": rows_changed,
        },
    )
