"""The REFERENCE writer for tests: the per-org write path exactly as
``runway_costs/collector/store.py`` had it before the set-based writer
(``collector/writes.py``, issue #12) replaced it (copied from commit 52a24a8, unchanged
but for this docstring, the imports and ``use_keyed_layout``: the layout it upserts into).

It is kept here, and only here, as an independent reference: ``test_batch_writes.py``
writes random org results once through it (one org per transaction, in sequence) and once
through ``writes.write_org_results`` (many orgs per transaction), and checks that every
table ends up identical. Do not use it outside the tests, and do not "fix" it to follow
the writer: it is the behaviour the writer must keep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import cast

import duckdb
import polars as pl

from runway_costs.collector.models import OrgSnapshot, UsageWindow
from runway_costs.collector.store import (
    MODEL_DAILY_SQL,
    MODEL_LATEST_SQL,
    RunRecord,
    rollback_quietly,
    unregister_quietly,
)

# The layout this writer was written for: the per-day tables with their primary keys (it
# upserts through them). ``schema.sql`` dropped them later (the writer keeps the rows
# unique); ``use_keyed_layout`` gives an empty database this writer's layout back.
KEYED_LAYOUT = """
DROP TABLE model_daily; DROP TABLE daily_usage; DROP TABLE key_usage; DROP TABLE usage_coverage;
CREATE TABLE model_daily (
    org VARCHAR NOT NULL, date DATE NOT NULL, model VARCHAR NOT NULL,
    gens_end INTEGER NOT NULL, gens_peak INTEGER NOT NULL, max_daily_generations INTEGER,
    max_concurrent_generations INTEGER, last_taken_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org, date, model));
CREATE TABLE daily_usage (
    org VARCHAR NOT NULL, date DATE NOT NULL, model VARCHAR NOT NULL, credits BIGINT NOT NULL,
    collected_at TIMESTAMP NOT NULL, PRIMARY KEY (org, date, model));
CREATE TABLE key_usage (
    org VARCHAR NOT NULL, date DATE NOT NULL, api_key_id VARCHAR NOT NULL,
    model VARCHAR NOT NULL DEFAULT '', credits BIGINT NOT NULL, collected_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org, date, api_key_id, model));
CREATE TABLE usage_coverage (
    org VARCHAR NOT NULL, date DATE NOT NULL, covered_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org, date));
"""


def use_keyed_layout(con: duckdb.DuckDBPyConnection) -> None:
    """Give an empty database (``ensure_schema``d) the per-day tables' keys back."""
    con.execute(KEYED_LAYOUT)


_MODEL_SCHEMA = {
    "model": pl.String,
    "max_concurrent_generations": pl.Int64,
    "max_daily_generations": pl.Int64,
    "daily_generations": pl.Int64,
}

_USAGE_SCHEMA = {"date": pl.Date, "model": pl.String, "credits": pl.Int64}
_KEY_SCHEMA = {"date": pl.Date, "api_key_id": pl.String, "model": pl.String, "credits": pl.Int64}
_WINDOW_SCHEMA = {"start": pl.Date, "before": pl.Date}


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
