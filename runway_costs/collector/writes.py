"""The set-based writer: many organizations' cycle results in one transaction, with a
fixed number of SQL statements whatever the number of organizations (issue #12).

Why: one org per transaction cost ~10 statements plus begin/commit, 25-50 ms per org on a
busy 2-core machine, so a steady-state cycle of 10,000 orgs spent 250-500 s writing while
the fetch took ~45 s. Here every statement of the per-org path runs once for the whole
batch: the items' rows go into polars frames with an ``org`` column, registered once, and
each statement joins them on org. A batch of one is the per-org path
(``store.write_org_result``, ``store.write_failed_run``).

What each statement touches: the orgs of the batch, and of each org only its own rows of
its own window (``_bounds``: per org, the dates of its usage windows and of the rows
reported in them, a registered frame joined on org and date), plus the one-row-per-org
write state (``org_latest``, ``model_latest``, ``org_usage_totals``, ``usage_coverage``).
The one exception is the exact "backward" path, the same as the per-org path's: a snapshot
at or before an org's latest row (the same instant written again, a clock gone back)
reduces that model's day again and finds its latest row among its snapshot rows.

Results are exactly those of writing the items one by one in order with the per-org path
(``tests/collector/reference_writer.py`` keeps that path as the reference; the
differential test compares every table): orgs do not share rows, so the order of
statements across orgs does not matter, and within an org the statements keep the per-org
order (snapshot, usage and its revisions, key usage, totals, coverage, run row). The run
ids are drawn from the sequence in item order, as the per-org path draws them.

Crash guarantee: the batch is ONE transaction, so every org's data and its
``collection_runs`` row commit together (a batch commits or rolls back whole); a reader
still never sees an org's data without its run row. An org's data that the database
refuses (a constraint) rolls its whole batch back; the caller then writes the batch's orgs
one per transaction so that org fails alone (``cycle._write``).

Public API:
    OrgWrite(run, snapshot=None, windows=(), written_at=None, ok=True)
    OrgWrite.failed(run) -> OrgWrite                 (a failed run: its run row only)
    write_org_results(con, items) -> list[int]       (rows changed per item, in order)
    RunRecord, MODEL_DAILY_SQL, MODEL_LATEST_SQL, rollback_quietly, unregister_quietly
        (the write path's own; ``store`` imports them, and they are still importable
        from there)
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, cast

import duckdb
import polars as pl

from runway_costs.collector.archive import history_source, horizons
from runway_costs.collector.models import OrgSnapshot, UsageWindow

log = logging.getLogger("runway_costs.collector.writes")

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


# The limit roll-up (schema.sql: model_day_start, org_limit_daily) of the orgs picked by
# ``{where}`` (on org), derived from model_daily alone: each (org, model)'s count at 00:00 of
# a day is its previous row's gens_end (lag); each org day with a row gets, for every model
# seen by then, the row in force (an as-of join), its day's share (peak with midnight) when
# the row is that day's, else its end share, and the maximum of each over the models.
MODEL_DAY_START_SQL = """
    SELECT org, model, date, gens_start FROM (
        SELECT org, model, date,
               lag(gens_end) OVER (PARTITION BY org, model ORDER BY date) AS gens_start
        FROM {source} WHERE {where})
    QUALIFY row_number() OVER (PARTITION BY org, model ORDER BY date DESC) = 1
"""
ORG_LIMIT_DAILY_SQL = """
    WITH md AS (
        SELECT org, model, date, gens_end, max_daily_generations AS lim,
               greatest(gens_peak, lag(gens_end) OVER (PARTITION BY org, model ORDER BY date))
                   AS peak
        FROM {source} WHERE {where}),
    od AS (SELECT DISTINCT org, date FROM md),
    om AS (SELECT DISTINCT org, model FROM md),
    g AS (SELECT od.org, od.date, om.model FROM od JOIN om ON om.org = od.org)
    SELECT g.org, g.date,
           max(CASE WHEN m.lim > 0 THEN (CASE WHEN m.date = g.date THEN m.peak
                                              ELSE m.gens_end END) / m.lim END) AS used,
           max(CASE WHEN m.lim > 0 THEN m.gens_end / m.lim END) AS used_end
    FROM g ASOF JOIN md m ON m.org = g.org AND m.model = g.model AND g.date >= m.date
    GROUP BY g.org, g.date
"""


def fill_limit_rollup(
    con: duckdb.DuckDBPyConnection,
    where: str,
    params: dict[str, Any],
    source: str = "model_daily",
) -> None:
    """Recompute the limit roll-up of the orgs ``where`` picks (a condition on ``org``)
    from their model_daily rows (``source``: all of them, archived parts included when
    there are some, ``archive.history_source``), inside the caller's transaction: the
    migration, the rebuilds, and the writer's exact path (a row at or before a stored one)."""
    con.execute(f"DELETE FROM model_day_start WHERE {where}", params)
    con.execute(f"DELETE FROM org_limit_daily WHERE {where}", params)
    con.execute(
        "INSERT INTO model_day_start " + MODEL_DAY_START_SQL.format(where=where, source=source),
        params,
    )
    con.execute(
        "INSERT INTO org_limit_daily " + ORG_LIMIT_DAILY_SQL.format(where=where, source=source),
        params,
    )


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


@dataclass(frozen=True, slots=True)
class OrgWrite:
    """One org's result of a cycle: an ok run with its snapshot and usage windows (usage
    and revisions stamped ``written_at``, default the run's end), or a failed run
    (``ok=False``: only its run row is written, whatever else the item holds)."""

    run: RunRecord
    snapshot: OrgSnapshot | None = None
    windows: Sequence[UsageWindow] = ()
    written_at: datetime | None = None
    ok: bool = True

    @classmethod
    def failed(cls, run: RunRecord) -> OrgWrite:
        return cls(run=run, ok=False)


_RUN_SCHEMA: dict[str, Any] = {
    "idx": pl.Int64,
    "org": pl.String,
    "kind": pl.String,
    "started_at": pl.Datetime("us"),
    "finished_at": pl.Datetime("us"),
    "ok": pl.Boolean,
    "error": pl.String,
    "http_calls": pl.Int64,
    "retries": pl.Int64,
    "usage_start": pl.Date,
    "usage_before": pl.Date,
}
_ORG_SNAP_SCHEMA: dict[str, Any] = {
    "org": pl.String,
    "taken_at": pl.Datetime("us"),
    "balance": pl.Int64,
    "cap": pl.Int64,
}
_MODEL_SCHEMA: dict[str, Any] = {
    "org": pl.String,
    "taken_at": pl.Datetime("us"),
    "model": pl.String,
    "max_concurrent_generations": pl.Int64,
    "max_daily_generations": pl.Int64,
    "daily_generations": pl.Int64,
}
_USAGE_SCHEMA: dict[str, Any] = {
    "org": pl.String,
    "date": pl.Date,
    "model": pl.String,
    "credits": pl.Int64,
}
_KEY_SCHEMA: dict[str, Any] = {
    "org": pl.String,
    "date": pl.Date,
    "api_key_id": pl.String,
    "model": pl.String,
    "credits": pl.Int64,
}
_SPAN_SCHEMA: dict[str, Any] = {"org": pl.String, "start": pl.Date, "before": pl.Date}
_NOW_SCHEMA: dict[str, Any] = {"org": pl.String, "now": pl.Datetime("us")}
_USAGE_KEYS = ("date", "model")
_KEY_KEYS = ("date", "api_key_id", "model")

# Every frame this module registers, unregistered after each batch.
_FRAMES = (
    "_w_orgs",
    "_w_org_ins",
    "_w_models",
    "_w_changed",
    "_w_new",
    "_w_spans",
    "_w_bounds",
    "_w_diff",
    "_w_runs",
)


def _within_horizons(con: duckdb.DuckDBPyConnection, items: Sequence[OrgWrite]) -> list[OrgWrite]:
    """The items without what falls before the archive horizons (``collector.archive``):
    archived days are final, so a snapshot dated before the snapshot tables' horizon is
    not written, and usage windows (rows, key rows and the run's usage_start) start at
    the usage tables' horizon. Only a clock moved back by days produces such data; it is
    logged. Unchanged (the same list) while nothing is archived."""
    known = horizons(con)
    if not known:
        return list(items)
    snap_h = known.get("model_snapshots")
    usage_h = known.get("daily_usage")
    out: list[OrgWrite] = []
    clipped: list[str] = []
    for item in items:
        snapshot, windows, run = item.snapshot, item.windows, item.run
        if snap_h and snapshot is not None and snapshot.taken_at.date() < snap_h:
            snapshot = None
        if usage_h and any(w.start < usage_h for w in windows):
            windows = tuple(_clip_window(w, usage_h) for w in windows if w.before > usage_h)
            if run.usage_start is not None and run.usage_start < usage_h:
                start = min(usage_h, run.usage_before) if run.usage_before else usage_h
                run = replace(run, usage_start=start)
        if snapshot is item.snapshot and windows is item.windows:
            out.append(item)
            continue
        clipped.append(item.run.org)
        out.append(replace(item, run=run, snapshot=snapshot, windows=windows))
    if clipped:
        log.warning(
            "%d organization(s) reported data dated before the archived history "
            "(snapshots before %s, usage before %s; is the clock behind?): that part is "
            "not written, archived days are final: %s",
            len(clipped),
            snap_h,
            usage_h,
            ", ".join(clipped[:5]) + (", ..." if len(clipped) > 5 else ""),
        )
    return out


def _clip_window(window: UsageWindow, first: date) -> UsageWindow:
    if window.start >= first:
        return window
    keys = window.key_rows
    return UsageWindow(
        start=first,
        before=window.before,
        rows=tuple(r for r in window.rows if r.date >= first),
        key_rows=None if keys is None else tuple(k for k in keys if k.date >= first),
    )


def write_org_results(con: duckdb.DuckDBPyConnection, items: Sequence[OrgWrite]) -> list[int]:
    """Store many orgs' results (data and run rows) in ONE transaction; returns the rows
    each item changed (inserted, updated or deleted), in item order (0 for a failed run).

    Each org at most once per batch (ValueError otherwise, before anything is written):
    a cycle collects an org once, and its statements assume orgs do not share rows.
    Raises what the database raises, after rolling the whole batch back.
    """
    twice = sorted(org for org, n in Counter(i.run.org for i in items).items() if n > 1)
    if twice:
        raise ValueError(f"an organization is written twice in one batch: {', '.join(twice)}")
    if not items:
        return []
    items = _within_horizons(con, items)
    ok_items = [item for item in items if item.ok]
    con.begin()
    try:
        changed: dict[str, int] = {}
        usage = pl.DataFrame(schema={"org": pl.String, "rows": pl.Int64, "credits": pl.Int64})
        snaps = [item for item in ok_items if item.snapshot is not None]
        if snaps:
            _add(changed, _write_snapshots(con, snaps))
        with_windows = [item for item in ok_items if item.windows]
        if with_windows:
            diff = _write_usage(con, with_windows)
            _add(changed, diff.group_by("org").len())
            usage = diff.group_by("org").agg(
                (
                    pl.col("old_credits").null_count().cast(pl.Int64)
                    - pl.col("new_credits").null_count().cast(pl.Int64)
                ).alias("rows"),
                (
                    pl.col("new_credits").fill_null(0).sum()
                    - pl.col("old_credits").fill_null(0).sum()
                ).alias("credits"),
            )
            answered = [
                OrgWrite(
                    i.run, None, [w for w in i.windows if w.key_rows is not None], i.written_at
                )
                for i in with_windows
                if any(w.key_rows is not None for w in i.windows)
            ]
            if answered:
                _add(changed, _write_key_usage(con, answered).group_by("org").len())
        counts = [changed.get(item.run.org, 0) if item.ok else 0 for item in items]
        _insert_runs(con, items, counts, usage)
        con.commit()
    except BaseException:
        rollback_quietly(con)
        raise
    finally:
        unregister_quietly(con, *_FRAMES)
    return counts


def _add(changed: dict[str, int], counts: pl.DataFrame) -> None:
    """Add per-org counts (columns org, len) to ``changed``."""
    for org, n in counts.select("org", "len").iter_rows():
        changed[org] = changed.get(org, 0) + int(n)


def _query(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None
) -> pl.DataFrame:
    """A SELECT's rows as a polars frame (typed columns even when no row matches)."""
    return cast(pl.DataFrame, pl.from_arrow(con.sql(sql, params=params or {}).to_arrow_table()))


def _write_snapshots(con: duckdb.DuckDBPyConnection, items: Sequence[OrgWrite]) -> pl.DataFrame:
    """Insert each org's snapshot row and changed model rows; a row only when something
    changed against the org's latest row (``org_latest``, ``model_latest``), which move
    forward with the rows inserted; ``model_daily`` is folded forward from
    ``model_latest.day_peak``. A row at or before the latest one (the same instant
    written again, or a clock gone back) takes the exact path: its day is reduced again.
    Returns the rows changed per org (columns org, len)."""
    snaps = [(item.run.org, item.snapshot) for item in items if item.snapshot is not None]
    con.register(
        "_w_orgs",
        pl.DataFrame(
            {
                "org": [o for o, _ in snaps],
                "taken_at": [s.taken_at for _, s in snaps],
                "balance": [s.credit_balance for _, s in snaps],
                "cap": [s.max_monthly_credit_spend for _, s in snaps],
            },
            schema=_ORG_SNAP_SCHEMA,
        ),
    )
    orgs = {"orgs": [o for o, _ in snaps]}
    inserted = _query(
        con,
        """
        SELECT n.org, n.taken_at, n.balance, n.cap, l.taken_at AS latest_at
        FROM _w_orgs n
        LEFT JOIN (SELECT * FROM org_latest WHERE list_contains($orgs, org)) l
          ON l.org = n.org
        WHERE l.org IS NULL OR l.credit_balance <> n.balance
           OR l.max_monthly_credit_spend <> n.cap
        """,
        orgs,
    )
    if not inserted.is_empty():
        con.register("_w_org_ins", inserted)
        again = inserted.filter(pl.col("latest_at") >= pl.col("taken_at"))
        if not again.is_empty():  # at or before the latest row: it may be stored already
            con.execute(
                """
                DELETE FROM org_snapshots
                WHERE list_contains($orgs, org) AND taken_at >= $first AND taken_at <= $last
                  AND EXISTS (SELECT 1 FROM _w_org_ins i
                              WHERE i.latest_at >= i.taken_at AND i.org = org_snapshots.org
                                AND i.taken_at = org_snapshots.taken_at)
                """,
                _instants(again),
            )
        con.execute("INSERT INTO org_snapshots SELECT org, taken_at, balance, cap FROM _w_org_ins")
        con.execute(
            """
            INSERT INTO org_latest SELECT org, taken_at, balance, cap FROM _w_org_ins
            ON CONFLICT (org) DO UPDATE SET
                taken_at = excluded.taken_at, credit_balance = excluded.credit_balance,
                max_monthly_credit_spend = excluded.max_monthly_credit_spend
            WHERE excluded.taken_at >= org_latest.taken_at
            """
        )
    models = pl.DataFrame(
        {
            "org": [o for o, s in snaps for _ in s.models],
            "taken_at": [s.taken_at for _, s in snaps for _ in s.models],
            "model": [m.model for _, s in snaps for m in s.models],
            "max_concurrent_generations": [
                m.max_concurrent_generations for _, s in snaps for m in s.models
            ],
            "max_daily_generations": [m.max_daily_generations for _, s in snaps for m in s.models],
            "daily_generations": [m.daily_generations for _, s in snaps for m in s.models],
        },
        schema=_MODEL_SCHEMA,
    ).unique(subset=["org", "model"], keep="last", maintain_order=True)
    con.register("_w_models", models)
    changed = _query(
        con,
        """
        SELECT n.org, n.taken_at, n.model, n.max_concurrent_generations,
               n.max_daily_generations, n.daily_generations,
               l.taken_at IS NULL OR l.taken_at < n.taken_at AS forward,
               CASE WHEN CAST(l.taken_at AS DATE) = CAST(n.taken_at AS DATE)
                    THEN greatest(l.day_peak, n.daily_generations)
                    ELSE n.daily_generations END AS day_peak
               , l.daily_generations AS prev_gens, CAST(l.taken_at AS DATE) AS prev_day
        FROM _w_models n
        LEFT JOIN (SELECT * FROM model_latest WHERE list_contains($orgs, org)) l
          ON l.org = n.org AND l.model = n.model
        WHERE l.model IS NULL
           OR l.max_concurrent_generations IS DISTINCT FROM n.max_concurrent_generations
           OR l.max_daily_generations IS DISTINCT FROM n.max_daily_generations
           OR l.daily_generations IS DISTINCT FROM n.daily_generations
        """,
        orgs,
    )
    counts = (
        pl.concat([inserted.select("org"), changed.select("org")], how="vertical")
        .group_by("org")
        .len()
    )
    if changed.is_empty():
        return counts
    con.register("_w_changed", changed)
    forward = changed["forward"]
    backward = changed.filter(~pl.col("forward"))
    if not backward.is_empty():  # at or before a stored row: it may be stored already
        con.execute(
            """
            DELETE FROM model_snapshots
            WHERE list_contains($orgs, org) AND taken_at >= $first AND taken_at <= $last
              AND EXISTS (SELECT 1 FROM _w_changed c
                          WHERE NOT c.forward AND c.org = model_snapshots.org
                            AND c.taken_at = model_snapshots.taken_at
                            AND c.model = model_snapshots.model)
            """,
            _instants(backward),
        )
    con.execute(
        """
        INSERT INTO model_snapshots
        SELECT org, taken_at, model, max_concurrent_generations, max_daily_generations,
               daily_generations
        FROM _w_changed
        """
    )
    if forward.any():
        con.execute(
            """
            INSERT OR REPLACE INTO model_latest
            SELECT org, model, taken_at, max_concurrent_generations, max_daily_generations,
                   daily_generations, day_peak
            FROM _w_changed WHERE forward
            """
        )
        ahead = changed.filter(pl.col("forward"))
        con.execute(  # model_daily has no key (schema.sql): replace the day's row
            """
            DELETE FROM model_daily
            WHERE list_contains($orgs, org)
              AND date >= CAST($first AS DATE) AND date <= CAST($last AS DATE)
              AND EXISTS (SELECT 1 FROM _w_changed c
                          WHERE c.forward AND c.org = model_daily.org
                            AND c.model = model_daily.model
                            AND CAST(c.taken_at AS DATE) = model_daily.date)
            """,
            _instants(ahead),
        )
        con.execute(
            """
            INSERT INTO model_daily
            SELECT org, CAST(taken_at AS DATE), model, daily_generations, day_peak,
                   max_daily_generations, max_concurrent_generations, taken_at
            FROM _w_changed WHERE forward
            """
        )
    if not backward.is_empty():
        _refresh_model_days(con, _instants(backward))
    _write_limit_rollup(con, forward.any(), backward)
    return counts


def _write_limit_rollup(
    con: duckdb.DuckDBPyConnection, forward: bool, backward: pl.DataFrame
) -> None:
    """Move the limit roll-up with the rows of ``_w_changed`` (after model_daily and
    model_latest): a model's first row of a day keeps its count at 00:00 (the latest row's
    generations) in model_day_start, and each org's row of the day in org_limit_daily is
    computed again from its models' latest rows (model_latest: one row per model). An org
    with a row at or before a stored one, or with a model already on a later day, takes
    the exact path: its roll-up recomputed from model_daily."""
    exact: list[str] = backward["org"].unique().to_list()
    if forward:
        new_day = "forward AND (prev_day IS NULL OR prev_day < CAST(taken_at AS DATE))"
        con.execute(
            f"""
            DELETE FROM model_day_start WHERE EXISTS (
                SELECT 1 FROM _w_changed c WHERE {new_day}
                  AND c.org = model_day_start.org AND c.model = model_day_start.model)
            """
        )
        con.execute(
            f"""
            INSERT INTO model_day_start
            SELECT org, model, CAST(taken_at AS DATE), prev_gens FROM _w_changed
            WHERE {new_day}
            """
        )
        days = _query(
            con,
            """
            WITH t AS (SELECT DISTINCT org, CAST(taken_at AS DATE) AS date FROM _w_changed
                       WHERE forward AND NOT list_contains($exact, org))
            SELECT t.org, t.date,
                   max(CASE WHEN l.max_daily_generations > 0 THEN
                       (CASE WHEN CAST(l.taken_at AS DATE) = t.date
                             THEN greatest(l.day_peak, s.gens_start)
                             ELSE l.daily_generations END) / l.max_daily_generations END) AS used,
                   max(CASE WHEN l.max_daily_generations > 0
                            THEN l.daily_generations / l.max_daily_generations END) AS used_end,
                   max(CAST(l.taken_at AS DATE)) > t.date AS later
            FROM t
            JOIN (SELECT * FROM model_latest WHERE list_contains($orgs, org)) l ON l.org = t.org
            LEFT JOIN (SELECT * FROM model_day_start WHERE list_contains($orgs, org)) s
              ON s.org = l.org AND s.model = l.model AND s.date = t.date
            GROUP BY t.org, t.date
            """,
            {
                "exact": exact,
                "orgs": _query(con, "SELECT DISTINCT org FROM _w_changed")["org"].to_list(),
            },
        )
        exact += days.filter(pl.col("later"))["org"].to_list()
        con.register("_w_limit_days", days.filter(~pl.col("later")).drop("later"))
        con.execute(
            """
            DELETE FROM org_limit_daily WHERE EXISTS (
                SELECT 1 FROM _w_limit_days d
                WHERE d.org = org_limit_daily.org AND d.date = org_limit_daily.date)
              AND date >= $first
            """,
            {"first": days["date"].min()},
        )
        con.execute("INSERT INTO org_limit_daily SELECT * FROM _w_limit_days")
        unregister_quietly(con, "_w_limit_days")
    if exact:
        fill_limit_rollup(
            con,
            "list_contains($orgs, org)",
            {"orgs": sorted(set(exact))},
            history_source(con, "model_daily"),
        )


def _instants(rows: pl.DataFrame) -> dict[str, Any]:
    """The orgs of ``rows`` and the first and last of their ``taken_at``: constants that
    let DuckDB skip the row groups of other orgs and other times (appended in time order)."""
    return {
        "orgs": rows["org"].unique().to_list(),
        "first": rows["taken_at"].min(),
        "last": rows["taken_at"].max(),
    }


# The models of ``_w_changed`` written at or before their latest row (the exact path).
_BACKWARD = (
    "EXISTS (SELECT 1 FROM _w_changed c WHERE NOT c.forward"
    " AND c.org = model_snapshots.org AND c.model = model_snapshots.model{day})"
)
_SAME_DAY = (
    " AND model_snapshots.taken_at >= CAST(c.taken_at AS DATE)"
    " AND model_snapshots.taken_at < CAST(c.taken_at AS DATE) + INTERVAL 1 DAY"
)


def _refresh_model_days(con: duckdb.DuckDBPyConnection, backward: dict[str, Any]) -> None:
    """The exact path for models of ``_w_changed`` written at or before their latest row
    (``backward``: their orgs, first and last instants): reduce the snapshot's day again,
    and their latest rows (and day peaks) from their snapshot rows (as the per-org path
    did: the whole snapshot history of those models of those orgs)."""
    days = (
        "list_contains($orgs, org) AND taken_at >= CAST($first AS DATE)"
        " AND taken_at < CAST($last AS DATE) + INTERVAL 1 DAY AND "
    )
    con.execute(  # model_daily has no key (schema.sql): the reduced days replace theirs
        """
        DELETE FROM model_daily
        WHERE list_contains($orgs, org)
          AND date >= CAST($first AS DATE) AND date <= CAST($last AS DATE)
          AND EXISTS (SELECT 1 FROM _w_changed c
                      WHERE NOT c.forward AND c.org = model_daily.org
                        AND c.model = model_daily.model
                        AND CAST(c.taken_at AS DATE) = model_daily.date)
        """,
        backward,
    )
    con.execute(
        "INSERT INTO model_daily "
        + MODEL_DAILY_SQL.format(where=days + _BACKWARD.format(day=_SAME_DAY)),
        backward,
    )
    con.execute(
        "INSERT OR REPLACE INTO model_latest "
        + MODEL_LATEST_SQL.format(
            where="list_contains($orgs, org) AND " + _BACKWARD.format(day="")
        ),
        {"orgs": backward["orgs"]},
    )


def _register_window_frames(
    con: duckdb.DuckDBPyConnection,
    items: Sequence[OrgWrite],
    rows: pl.DataFrame,
) -> dict[str, Any]:
    """Register ``_w_new`` (the reported rows, summed per key), ``_w_spans`` (each org's
    windows) and ``_w_bounds`` (per org, [lo, hi): the dates of its windows and of the rows
    reported in them, and ``now``, its write instant); returns the batch's outer bounds,
    given to the statements as constants so DuckDB prunes row groups by them too."""
    keys = [c for c in rows.columns if c != "credits"]
    new = rows.group_by(keys, maintain_order=True).agg(pl.col("credits").sum())
    spans = pl.DataFrame(
        {
            "org": [i.run.org for i in items for _ in i.windows],
            "start": [w.start for i in items for w in i.windows],
            "before": [w.before for i in items for w in i.windows],
        },
        schema=_SPAN_SCHEMA,
    )
    nows = pl.DataFrame(
        {
            "org": [i.run.org for i in items],
            "now": [i.written_at or i.run.finished_at for i in items],
        },
        schema=_NOW_SCHEMA,
    )
    reported = new.group_by("org").agg(
        pl.col("date").min().alias("first"),
        (pl.col("date").max() + pl.duration(days=1)).alias("after"),
    )
    bounds = (
        spans.group_by("org")
        .agg(pl.col("start").min().alias("lo"), pl.col("before").max().alias("hi"))
        .join(reported, on="org", how="left")
        .select(
            "org",
            pl.min_horizontal("lo", "first").alias("lo"),
            pl.max_horizontal("hi", "after").alias("hi"),
        )
        .join(nows, on="org")
    )
    con.register("_w_new", new)
    con.register("_w_spans", spans)
    con.register("_w_bounds", bounds)
    return {"orgs": bounds["org"].to_list(), "lo": bounds["lo"].min(), "hi": bounds["hi"].max()}


def _diff(
    con: duckdb.DuckDBPyConnection, table: str, keys: Sequence[str], outer: dict
) -> pl.DataFrame:
    """The (org, key)s whose stored credits the write changes: reported with other credits
    or not stored (old_credits NULL), or stored in one of the org's windows and no longer
    reported (new_credits NULL), with the stored collected_at.

    Reads each org's stored rows of its own [lo, hi) only (``_w_bounds``).
    """
    key_cols = ", ".join(f"coalesce(n.{k}, o.{k}) AS {k}" for k in ("org", *keys))
    on = " AND ".join(f"o.{k} = n.{k}" for k in ("org", *keys))
    return _query(
        con,
        f"""
        WITH o AS (
            SELECT t.org, {", ".join(f"t.{k}" for k in keys)}, t.credits, t.collected_at
            FROM {table} t JOIN _w_bounds b
              ON t.org = b.org AND t.date >= b.lo AND t.date < b.hi
            WHERE list_contains($orgs, t.org) AND t.date >= $lo AND t.date < $hi
        )
        SELECT {key_cols}, o.credits AS old_credits, o.collected_at AS old_collected_at,
               n.credits AS new_credits
        FROM _w_new n FULL JOIN o ON {on}
        WHERE CASE WHEN n.date IS NOT NULL THEN o.credits IS DISTINCT FROM n.credits
                   ELSE EXISTS (SELECT 1 FROM _w_spans w WHERE w.org = o.org
                                AND o.date >= w.start AND o.date < w.before) END
        """,
        outer,
    )


def _apply_diff(
    con: duckdb.DuckDBPyConnection, table: str, keys: Sequence[str], outer: dict
) -> None:
    """Replace the stored rows of ``_w_diff``'s keys by the reported ones (collected_at:
    the org's ``now``): the changed and the vanished are deleted, the changed and the new
    inserted. The table has no key (schema.sql): the writer keeps it unique this way."""
    cols = ", ".join(keys)
    match = " AND ".join(f"x.{k} = {table}.{k}" for k in ("org", *keys))
    con.execute(
        f"""
        DELETE FROM {table}
        WHERE list_contains($orgs, org) AND date >= $lo AND date < $hi
          AND EXISTS (SELECT 1 FROM _w_diff x WHERE {match})
        """,
        outer,
    )
    con.execute(
        f"""
        INSERT INTO {table} (org, {cols}, credits, collected_at)
        SELECT d.org, {", ".join(f"d.{k}" for k in keys)}, d.new_credits, b.now
        FROM _w_diff d JOIN _w_bounds b ON b.org = d.org
        WHERE d.new_credits IS NOT NULL
        """
    )


# The days each ok run's usage window covered, with when it finished (``_w_runs``).
_COVERED = """
    SELECT r.org, CAST(t.d AS DATE) AS date, r.finished_at AS covered_at
    FROM _w_runs r,
         LATERAL (SELECT unnest(range(r.usage_start, r.usage_before, INTERVAL 1 DAY)) AS d) t
    WHERE r.ok AND r.usage_start IS NOT NULL AND r.usage_before IS NOT NULL
"""

# The revision rows of ``_w_diff``: a changed or dropped value, and a model new on a day
# an earlier ok collection had covered (old_collected_at from usage_coverage).
_REVISION_ROWS = """
    SELECT d.org, d.date, d.model, b.now AS seen_at, d.old_credits, d.new_credits,
           CASE WHEN d.old_credits IS NULL THEN c.covered_at ELSE d.old_collected_at END
               AS old_collected_at
    FROM _w_diff d
    JOIN _w_bounds b ON b.org = d.org
    LEFT JOIN (  -- the last earlier ok collection whose window held the day
        SELECT c.org, c.date, c.covered_at FROM usage_coverage c
        JOIN _w_bounds b ON c.org = b.org AND c.date >= b.lo AND c.date < b.hi
        WHERE list_contains($orgs, c.org) AND c.date >= $lo AND c.date < $hi
    ) c ON c.org = d.org AND c.date = d.date
    WHERE d.old_credits IS NOT NULL OR c.covered_at IS NOT NULL
"""
# A revision is one row per (org, date, model, seen_at): one written again at the same
# instant replaces the first (the table has no key to do it: schema.sql). Rows are
# appended in seen_at order, so the constant seen_at range reads the newest row groups.
_REVISIONS_SQL = (
    f"""
    DELETE FROM usage_revisions
    WHERE list_contains($orgs, org) AND seen_at >= $first_now AND seen_at <= $last_now
      AND EXISTS (SELECT 1 FROM ({_REVISION_ROWS}) n
                  WHERE n.org = usage_revisions.org AND n.seen_at = usage_revisions.seen_at
                    AND n.date = usage_revisions.date AND n.model = usage_revisions.model)
    """,
    f"""
    INSERT INTO usage_revisions
        (org, date, model, seen_at, old_credits, new_credits, old_collected_at)
    {_REVISION_ROWS}
    """,
)


def _write_usage(con: duckdb.DuckDBPyConnection, items: Sequence[OrgWrite]) -> pl.DataFrame:
    """Upsert the reported (org, date, model) credits and drop rows the API no longer
    reports; returns the diff (org, keys, old and new credits) of every org.

    ``collected_at`` moves only when a value changes, so identical data is a no-op (one
    read of each org's window, no write). Every change is kept in ``usage_revisions``
    first (same transaction): a changed or dropped value with its old and new credits,
    and a model new on a day an earlier collection had already covered (old credits NULL,
    old_collected_at from ``usage_coverage``).
    """
    rows = pl.DataFrame(
        {
            "org": [i.run.org for i in items for w in i.windows for _ in w.rows],
            "date": [r.date for i in items for w in i.windows for r in w.rows],
            "model": [r.model for i in items for w in i.windows for r in w.rows],
            "credits": [r.credits for i in items for w in i.windows for r in w.rows],
        },
        schema=_USAGE_SCHEMA,
    )
    outer = _register_window_frames(con, items, rows)
    diff = _diff(con, "daily_usage", _USAGE_KEYS, outer)
    if diff.is_empty():
        return diff
    con.register("_w_diff", diff)
    nows = [i.written_at or i.run.finished_at for i in items]
    revision_params = {**outer, "first_now": min(nows), "last_now": max(nows)}
    con.execute(_REVISIONS_SQL[0], revision_params)
    con.execute(_REVISIONS_SQL[1], outer)
    _apply_diff(con, "daily_usage", _USAGE_KEYS, outer)
    con.unregister("_w_diff")
    return diff


def _write_key_usage(con: duckdb.DuckDBPyConnection, items: Sequence[OrgWrite]) -> pl.DataFrame:
    """Per-API-key credits of the windows the API answered with ``resultsByApiKey`` (the
    items hold only those): upserted and replaced like ``daily_usage``. Returns the diff."""
    rows = pl.DataFrame(
        {
            "org": [i.run.org for i in items for w in i.windows for _ in w.key_rows or ()],
            "date": [r.date for i in items for w in i.windows for r in w.key_rows or ()],
            "api_key_id": [
                r.api_key_id for i in items for w in i.windows for r in w.key_rows or ()
            ],
            "model": [r.model for i in items for w in i.windows for r in w.key_rows or ()],
            "credits": [r.credits for i in items for w in i.windows for r in w.key_rows or ()],
        },
        schema=_KEY_SCHEMA,
    )
    outer = _register_window_frames(con, items, rows)
    diff = _diff(con, "key_usage", _KEY_KEYS, outer)
    if diff.is_empty():
        return diff
    con.register("_w_diff", diff)
    _apply_diff(con, "key_usage", _KEY_KEYS, outer)
    con.unregister("_w_diff")
    return diff


def _insert_runs(
    con: duckdb.DuckDBPyConnection,
    items: Sequence[OrgWrite],
    counts: Sequence[int],
    usage: pl.DataFrame,
) -> None:
    """The run rows, in item order (run ids drawn from the sequence in that order). Ok runs
    first move their org's ``org_usage_totals`` by the write's delta (and its last usage
    collection) and mark the days of their usage window collected (``usage_coverage``);
    an ok run records its org's totals after the write, a failed one NULL."""
    runs = pl.DataFrame(
        {
            "idx": list(range(len(items))),
            "org": [i.run.org for i in items],
            "kind": [i.run.kind for i in items],
            "started_at": [i.run.started_at for i in items],
            "finished_at": [i.run.finished_at for i in items],
            "ok": [i.ok for i in items],
            "error": [i.run.error for i in items],
            "http_calls": [i.run.http_calls for i in items],
            "retries": [i.run.retries for i in items],
            "usage_start": [i.run.usage_start for i in items],
            "usage_before": [i.run.usage_before for i in items],
        },
        schema=_RUN_SCHEMA,
    ).with_columns(rows_changed=pl.Series(counts, dtype=pl.Int64))
    runs = runs.join(usage, on="org", how="left").with_columns(
        pl.col("rows").fill_null(0), pl.col("credits").fill_null(0)
    )
    con.register("_w_runs", runs)
    if runs["ok"].any():
        con.execute(
            """
            INSERT INTO org_usage_totals
            SELECT org, rows, credits, usage_before FROM _w_runs WHERE ok
            ON CONFLICT (org) DO UPDATE SET
                usage_rows = org_usage_totals.usage_rows + excluded.usage_rows,
                usage_credits = org_usage_totals.usage_credits + excluded.usage_credits,
                last_usage_before = greatest(org_usage_totals.last_usage_before,
                                             excluded.last_usage_before)
            """
        )
        covered = runs.filter(
            pl.col("ok")
            & pl.col("usage_start").is_not_null()
            & pl.col("usage_before").is_not_null()
        )
        if not covered.is_empty():
            bounds = {
                "orgs": covered["org"].to_list(),
                "lo": covered["usage_start"].min(),
                "hi": covered["usage_before"].max(),
            }
            # usage_coverage has no key (schema.sql): a later covered_at replaces the day's
            # row (delete, then insert where none is left), an earlier one leaves it
            con.execute(
                f"""
                DELETE FROM usage_coverage
                WHERE list_contains($orgs, org) AND date >= $lo AND date < $hi
                  AND EXISTS (SELECT 1 FROM ({_COVERED}) n
                              WHERE n.org = usage_coverage.org AND n.date = usage_coverage.date
                                AND n.covered_at > usage_coverage.covered_at)
                """,
                bounds,
            )
            con.execute(
                f"""
                INSERT INTO usage_coverage
                SELECT n.org, n.date, n.covered_at FROM ({_COVERED}) n
                WHERE NOT EXISTS (
                    SELECT 1 FROM usage_coverage c
                    WHERE list_contains($orgs, c.org) AND c.date >= $lo AND c.date < $hi
                      AND c.org = n.org AND c.date = n.date)
                """,
                bounds,
            )
    con.execute(
        """
        INSERT INTO collection_runs (run_id, org, kind, started_at, finished_at, status,
            error, http_calls, retries, usage_start, usage_before, rows_changed,
            usage_rows, usage_credits)
        SELECT ids.run_id, r.org, r.kind, r.started_at, r.finished_at,
               CASE WHEN r.ok THEN 'ok' ELSE 'failed' END, r.error, r.http_calls, r.retries,
               r.usage_start, r.usage_before, r.rows_changed,
               CASE WHEN r.ok THEN coalesce(t.usage_rows, 0) END,
               CASE WHEN r.ok THEN coalesce(t.usage_credits, 0) END
        FROM _w_runs r
        JOIN (  -- the sequence's next ids, the lowest to the first item
            SELECT row_number() OVER (ORDER BY run_id) - 1 AS idx, run_id
            FROM (SELECT nextval('collection_run_seq') AS run_id FROM range($n))
        ) ids ON ids.idx = r.idx
        LEFT JOIN (SELECT * FROM org_usage_totals WHERE list_contains($orgs, org)) t
          ON t.org = r.org
        ORDER BY r.idx
        """,
        {"n": len(items), "orgs": [i.run.org for i in items]},
    )
