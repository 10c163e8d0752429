"""Rate-limit use per model, from the step-function ``model_snapshots``.

A row is stored only when something changed, so each row holds from its ``taken_at`` until
the next row for that (org, model), and the last row until ``as_of``. ``daily_generations``
is the API's rolling-24h count of task creations; ``max_daily_generations`` the tier limit
(NULL for a model seen in usage but absent from the tier, then ratios are NULL too).

Public API:

- ``limits_by_day(con, orgs, start, as_of, all_orgs=False) -> pl.DataFrame``: per (org,
  model, day) the day-end and peak rolling-24h counts and the limits in force (the Limits
  page's lines), from the collector's ``model_daily`` roll-up
- ``org_limit_history(con, orgs, start, as_of, all_orgs=False) -> pl.DataFrame``: per
  (org, day) the busiest model's share of its daily limit (the Limits page's lines for
  several orgs), from the collector's ``org_limit_daily`` when ``limit_rollup_kept(con)``
- ``limit_summary(con, orgs, as_of, all_orgs=False, anchors=None)``: the "now" table
  (``daily_limit_summary``'s figures) grouped from 30 days of ``model_daily``, and the rows
  ``limits_at`` reads; ``limit_anchors(con, orgs, before, kept=None) -> LimitAnchors``: the
  rows in force before its window, from an earlier ``LimitAnchors`` and the days since (the
  cycle's step keeps them, so it never reads every earlier day)
- ``limits_at(daily, today, at) -> pl.DataFrame``: each (org, model)'s limits at ``at``
- ``daily_limit_summary(daily, as_of) -> pl.DataFrame``: from ``limits_by_day``, per (org,
  model) the latest count and limits, ``peak_7d`` (busiest day of the last 7 UTC days, today
  included) and ``days_at_limit_30d``; ``limit_use`` measures the same from the raw
  snapshots over 7 x 24 hours, for alerts that must see the last hour
- ``limit_use(con, as_of, orgs=None, high_ratio=0.8) -> pl.DataFrame``, per (org, model):
  ``daily_generations``, ``max_daily_generations``, ``usage_ratio`` (now), ``max_concurrent_
  generations``, ``peak_7d`` / ``peak_30d`` (highest rolling-24h count in the window),
  ``hours_high_7d`` / ``hours_high_30d`` (hours at ``high_ratio`` of the limit or more),
  ``limit_hits_7d`` / ``limit_hits_30d`` (times the count reached the limit: transitions
  from below to at-or-above), ``observed_at`` (time of the row in force).
- ``latest_models_query(con, org, as_of) -> (sql, params)``: one org's latest
  model_snapshots row per model at or before ``as_of``, from the collector's
  ``model_latest`` when it is the answer (no read of the org's snapshot history)
- ``limits_now(con, as_of, orgs=None) -> pl.DataFrame``: ``limit_use``'s "now" columns
  only (org, model, daily_generations, max_daily_generations, usage_ratio,
  max_concurrent_generations, observed_at), without the windows' statistics: what the
  alert rules need, read from ``model_latest`` when it is the answer, else from
  ``model_daily`` and the snapshots of ``as_of``'s day
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import cast

import duckdb
import polars as pl

from runway_costs.analytics.orgs import orgs_with_data, write_state_kept
from runway_costs.analytics.spend import query
from runway_costs.analytics.tiers import LIMIT_COLUMNS
from runway_costs.collector.store import LIMIT_ROLLUP_VERSION, MODEL_DAILY_SQL

__all__ = [
    "PEAK_SHARE",
    "LimitAnchors",
    "daily_limit_summary",
    "limit_use",
    "limits_at",
    "limits_by_day",
    "limits_now",
    "latest_models_query",
    "limit_anchors",
    "limit_rollup_kept",
    "limit_summary",
    "org_limit_history",
]

# A day's busiest rolling-24h count as a share of the daily limit (None without a limit > 0).
PEAK_SHARE = (
    pl.when(pl.col("max_daily_generations") > 0)
    .then(pl.col("peak_generations") / pl.col("max_daily_generations"))
    .alias("used")
)


def limit_use(
    con: duckdb.DuckDBPyConnection,
    as_of: datetime,
    orgs: Sequence[str] | None = None,
    high_ratio: float = 0.8,
) -> pl.DataFrame:
    """Now, peaks, hours near the limit and limit hits over 7 and 30 days per model.

    Reads a bounded window: the snapshots from the start of the UTC day 30 days back
    (``day0``) to ``as_of``, and per (org, model) the row in force when ``day0`` began,
    from ``model_daily`` (the last row of its latest day before ``day0``; reduced from the
    snapshots here when the database has no ``model_daily``). Older rows were superseded
    before the window began: they change no column (a hit needs only the row before it).
    """
    day0 = (as_of - timedelta(days=30)).date()
    try:
        return _limit_use(con, as_of, orgs, high_ratio, day0, _ANCHOR_DAILY)
    except duckdb.CatalogException as exc:
        if "model_daily" not in str(exc):
            raise
    return _limit_use(con, as_of, orgs, high_ratio, day0, _ANCHOR_SNAPSHOTS)


# Per (org, model), the row in force at 00:00 of $day0: the last row of the latest earlier
# day, as model_daily keeps it (NULL limits kept), or reduced from the snapshots.
_ANCHOR_DAILY = """
    SELECT org, model, max(last_taken_at) AS taken_at, arg_max(gens_end, date) AS gens,
           arg_max_null(max_daily_generations, date) AS lim,
           arg_max_null(max_concurrent_generations, date) AS conc
    FROM model_daily WHERE date < $day0 AND org IN (SELECT org FROM o)
    GROUP BY org, model
"""
_ANCHOR_SNAPSHOTS = """
    SELECT org, model, max(taken_at) AS taken_at,
           arg_max(daily_generations, taken_at) AS gens,
           arg_max_null(max_daily_generations, taken_at) AS lim,
           arg_max_null(max_concurrent_generations, taken_at) AS conc
    FROM model_snapshots WHERE taken_at < $day0::TIMESTAMP AND org IN (SELECT org FROM o)
    GROUP BY org, model
"""


# The snapshot rows of the window, each (org, model) led by its row in force when the
# window's first day began (``{anchor}``: from model_daily, or the raw snapshots).
_WINDOW_ROWS = """o AS (SELECT DISTINCT unnest($orgs::VARCHAR[]) AS org),
        rows AS (
            {anchor}
            UNION ALL
            SELECT org, model, taken_at, daily_generations, max_daily_generations,
                   max_concurrent_generations
            FROM model_snapshots
            WHERE taken_at >= $day0::TIMESTAMP AND taken_at <= $as_of
              AND org IN (SELECT org FROM o)),"""


def limits_now(
    con: duckdb.DuckDBPyConnection, as_of: datetime, orgs: Sequence[str] | None = None
) -> pl.DataFrame:
    """Per (org, model), the row in force at ``as_of``: ``limit_use``'s first columns and
    ``observed_at``, equal to its, from ``model_daily`` (days before ``as_of``'s) and the
    snapshots of ``as_of``'s own day, with no window over the snapshots. When the
    collector keeps ``model_latest`` (``write_state_kept``) and none of the orgs' rows is
    after ``as_of`` (the cycle's step, an alert check now), those rows are the answer: no
    read of earlier days at all."""
    params = {
        "as_of": as_of,
        "day0": as_of.date(),
        "orgs": list(orgs) if orgs is not None else orgs_with_data(con),
    }
    if write_state_kept(con):
        latest = query(
            con,
            """
            SELECT org, model, daily_generations, max_daily_generations,
                   CASE WHEN max_daily_generations > 0
                        THEN daily_generations / max_daily_generations END AS usage_ratio,
                   max_concurrent_generations, taken_at AS observed_at
            FROM model_latest WHERE org IN (SELECT unnest($orgs::VARCHAR[]))
            """,
            {"orgs": params["orgs"]},
        )
        newest = latest["observed_at"].max()
        if newest is None or cast(datetime, newest) <= as_of:
            return latest.sort("org", "model")
    sql = (
        "WITH "
        + _WINDOW_ROWS
        + """
        last AS (
            SELECT org, model, arg_max(gens, taken_at) AS gens,
                   arg_max_null(lim, taken_at) AS lim, arg_max_null(conc, taken_at) AS conc,
                   max(taken_at) AS taken_at
            FROM rows GROUP BY org, model)
        SELECT org, model, gens AS daily_generations, lim AS max_daily_generations,
               CASE WHEN lim > 0 THEN gens / lim END AS usage_ratio,
               conc AS max_concurrent_generations, taken_at AS observed_at
        FROM last ORDER BY org, model
        """
    )
    try:
        return query(con, sql.format(anchor=_ANCHOR_DAILY), params)
    except duckdb.CatalogException as exc:
        if "model_daily" not in str(exc):
            raise
    return query(con, sql.format(anchor=_ANCHOR_SNAPSHOTS), params)


def _limit_use(
    con: duckdb.DuckDBPyConnection,
    as_of: datetime,
    orgs: Sequence[str] | None,
    high_ratio: float,
    day0: date,
    anchor: str,
) -> pl.DataFrame:
    return query(
        con,
        f"""
        WITH {_WINDOW_ROWS.format(anchor=anchor)}
        m AS (
            SELECT org, model, taken_at, gens, lim, conc,
                   lead(taken_at) OVER w AS next_at,
                   lag(gens) OVER w AS prev_gens,
                   lag(lim) OVER w AS prev_lim
            FROM rows
            WINDOW w AS (PARTITION BY org, model ORDER BY taken_at)),
        iv AS (SELECT *, COALESCE(next_at, $as_of) AS until,
                      lim IS NOT NULL AND gens >= $high * lim AS high,
                      lim IS NOT NULL AND gens >= lim
                        AND (prev_gens IS NULL OR prev_lim IS NULL OR prev_gens < prev_lim) AS hit
               FROM m),
        agg AS (
            SELECT org, model,
                max(gens) FILTER (WHERE until > $from7) AS peak_7d,
                max(gens) FILTER (WHERE until > $from30) AS peak_30d,
                COALESCE(sum(epoch(until - greatest(taken_at, $from7)))
                    FILTER (WHERE until > $from7 AND high), 0) / 3600.0 AS hours_high_7d,
                COALESCE(sum(epoch(until - greatest(taken_at, $from30)))
                    FILTER (WHERE until > $from30 AND high), 0) / 3600.0 AS hours_high_30d,
                count(*) FILTER (WHERE taken_at > $from7 AND hit) AS limit_hits_7d,
                count(*) FILTER (WHERE taken_at > $from30 AND hit) AS limit_hits_30d
            FROM iv GROUP BY org, model)
        SELECT iv.org, iv.model, iv.gens AS daily_generations,
               iv.lim AS max_daily_generations,
               CASE WHEN iv.lim > 0 THEN iv.gens / iv.lim END AS usage_ratio,
               iv.conc AS max_concurrent_generations,
               agg.peak_7d, agg.peak_30d, agg.hours_high_7d, agg.hours_high_30d,
               agg.limit_hits_7d, agg.limit_hits_30d, iv.taken_at AS observed_at
        FROM iv JOIN agg USING (org, model)
        WHERE iv.next_at IS NULL
        ORDER BY iv.org, iv.model
        """,
        {
            "as_of": as_of,
            "day0": day0,
            "from7": as_of - timedelta(days=7),
            "from30": as_of - timedelta(days=30),
            "high": high_ratio,
            "orgs": list(orgs) if orgs is not None else orgs_with_data(con),
        },
    )


def limits_by_day(
    con: duckdb.DuckDBPyConnection,
    orgs: Sequence[str],
    start: date,
    as_of: date,
    all_orgs: bool = False,
) -> pl.DataFrame:
    """Per (org, model, day) in [start, as_of]: generations at the day's end, the day's peak,
    and the limits in force. Read from ``model_daily`` (model_snapshots reduced per day by
    the collector), which has a row only for days with a change, so each day carries the
    latest earlier day's values when it has none of its own. Rows before ``start`` only
    give each (org, model) its latest day to carry in, and the day grid is filled in polars
    (an as-of join of days). For "all organizations" the scan skips the per-row org filter
    and the reduced rows are filtered instead (``all_orgs``: ``orgs`` is every org)."""
    orgs = list(orgs)
    first, start = start, start - timedelta(days=1)  # the day before: first's count at 00:00
    of_orgs = "TRUE" if all_orgs else "org = ANY($orgs)"  # a fixed fragment
    params = {"start": start, "end": as_of} | ({} if all_orgs else {"orgs": orgs})
    sql = f"""
        SELECT org, model, date, gens_end, gens_peak, max_daily_generations AS lim,
               max_concurrent_generations AS conc, last_taken_at AS taken_at
        FROM {{in_range}}
        WHERE {of_orgs} AND date >= $start AND date <= $end
        UNION ALL  -- carried in from before the range: the latest day (no peak needed)
        SELECT org, model, max(date), arg_max(gens_end, date), NULL,
               arg_max_null(max_daily_generations, date),
               arg_max_null(max_concurrent_generations, date), max(last_taken_at)
        FROM {{before}}
        WHERE {of_orgs} AND date < $start
        GROUP BY org, model
        """
    try:
        agg = query(con, sql.format(in_range="model_daily", before="model_daily"), params)
    except duckdb.CatalogException as exc:
        if "model_daily" not in str(exc):
            raise
        # a database not written since model_daily was added: reduce the snapshots here,
        # filtered on taken_at before the reduction (the filters on date cannot reach it)
        in_range, before = (
            f"({MODEL_DAILY_SQL.format(where=f'{of_orgs} AND {taken}')})"
            for taken in (
                "taken_at >= $start::DATE AND taken_at < $end::DATE + INTERVAL 1 DAY",
                "taken_at < $start::DATE",
            )
        )
        agg = query(con, sql.format(in_range=in_range, before=before), params)
    if all_orgs:
        agg = agg.filter(pl.col("org").is_in(orgs))
    days = pl.date_range(start, as_of, "1d", eager=True).alias("date").to_frame()
    # The grid in (org, model, date) order; the as-of join keeps it, and needs the right
    # side sorted by date within each (org, model) only. No sort on the strings after.
    grid = agg.select("org", "model").unique().sort("org", "model").join(days, how="cross")
    filled = grid.join_asof(
        agg.sort("date").with_columns(row_date=pl.col("date")),
        on="date",
        by=["org", "model"],
        check_sortedness=False,  # sorted within each (org, model); polars cannot check
    )
    # days before an (org, model)'s first row have nothing to show: drop them
    filled = filled.filter(pl.col("row_date").is_not_null())
    same_key = (pl.col("org") == pl.col("org").shift(1)) & (
        pl.col("model") == pl.col("model").shift(1)
    )
    peak = pl.when(pl.col("row_date") == pl.col("date")).then("gens_peak").otherwise("gens_end")
    return (
        filled.select(
            "org",
            "model",
            "date",
            pl.col("gens_end").alias("daily_generations"),
            # the count at midnight (yesterday's end) belongs to today's peak too
            pl.max_horizontal(peak, pl.when(same_key).then(pl.col("gens_end").shift(1))).alias(
                "peak_generations"
            ),
            pl.col("lim").alias("max_daily_generations"),
            pl.col("conc").alias("max_concurrent_generations"),
            "taken_at",
        )
        .with_columns(peak_generations=pl.coalesce("peak_generations", "daily_generations"))
        .filter(pl.col("date") >= first)
    )


def limit_rollup_kept(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the collector keeps the limit roll-up (``org_limit_daily``) in this
    database (``meta`` names the version this code knows); an older snapshot not yet
    migrated does not, and its readers compute from ``model_daily``."""
    try:
        rows = con.execute("SELECT value FROM meta WHERE key = 'limit_rollup'").fetchall()
    except duckdb.CatalogException:
        return False
    return bool(rows) and rows[0][0] == LIMIT_ROLLUP_VERSION


def org_limit_history(
    con: duckdb.DuckDBPyConnection,
    orgs: Sequence[str],
    start: date,
    as_of: date,
    all_orgs: bool = False,
) -> pl.DataFrame:
    """Per (org, day) in [start, as_of]: ``used``, the highest share of its daily limit any
    of the org's models reached that day (None when none has a limit > 0), equal to the
    maximum over its models of ``limits_by_day``'s ``PEAK_SHARE``, from the collector's
    ``org_limit_daily`` (``limit_rollup_kept``): orgs x days rows instead of orgs x models
    x days. A day without a row of its own carries the latest earlier row's ``used_end``
    (every model's share at that day's end); days before an org's first row are left out."""
    orgs = list(orgs)
    of_orgs = "TRUE" if all_orgs else "org = ANY($orgs)"  # a fixed fragment
    params = {"start": start, "end": as_of} | ({} if all_orgs else {"orgs": orgs})
    rows = query(
        con,
        f"""
        SELECT org, date, used, used_end FROM org_limit_daily
        WHERE {of_orgs} AND date >= $start AND date <= $end
        UNION ALL  -- carried in from before the range: the latest row's end
        SELECT org, max(date), NULL, arg_max(used_end, date) FROM org_limit_daily
        WHERE {of_orgs} AND date < $start GROUP BY org
        """,
        params,
    )
    if all_orgs:
        rows = rows.filter(pl.col("org").is_in(orgs))
    days = pl.date_range(start, as_of, "1d", eager=True).alias("date").to_frame()
    grid = rows.select("org").unique().sort("org").join(days, how="cross")
    filled = grid.join_asof(
        rows.sort("date").with_columns(row_date=pl.col("date")),
        on="date",
        by="org",
        check_sortedness=False,  # sorted within each org; polars cannot check
    ).filter(pl.col("row_date").is_not_null())
    return filled.select(
        "org",
        "date",
        pl.when(pl.col("row_date") == pl.col("date"))
        .then("used")
        .otherwise("used_end")
        .alias("used"),
    )


@dataclass(frozen=True)
class LimitAnchors:
    """Per (org, model), the ``model_daily`` row in force at 00:00 of ``before`` (its latest
    row of an earlier day: org, model, date, gens_end, lim, conc, last_taken_at; a pair
    without one has no row), for ``limit_summary`` instead of reading every earlier day.
    The stored outlooks keep the last cycle's, so a cycle reads only the days since."""

    before: date
    rows: pl.DataFrame
    orgs: frozenset[str]  # the orgs it holds, with or without rows


_ANCHOR_COLUMNS = ("org", "model", "date", "gens_end", "lim", "conc", "last_taken_at")


def limit_anchors(
    con: duckdb.DuckDBPyConnection,
    orgs: Sequence[str],
    before: date,
    kept: LimitAnchors | None = None,
) -> LimitAnchors:
    """Each (org, model)'s row in force at 00:00 of ``before`` (``LimitAnchors``): from
    ``kept`` (at or before ``before``) and the ``model_daily`` rows of the days since, or
    from every earlier day without it (and for the orgs it does not hold)."""
    names = list(orgs)
    rows = """SELECT org, model, date, gens_end, max_daily_generations AS lim,
                  max_concurrent_generations AS conc, last_taken_at
           FROM model_daily WHERE org = ANY(${orgs}) AND date < $before{since}"""
    params: dict[str, object] = {"before": before}
    held = None
    if kept is None:
        parts, params["orgs"] = [rows.format(orgs="orgs", since="")], names
    else:
        held = kept.rows.filter(pl.col("org").is_in(names)).select(_ANCHOR_COLUMNS)
        fresh = [org for org in dict.fromkeys(names) if org not in kept.orgs]
        params |= {
            "known": [org for org in dict.fromkeys(names) if org in kept.orgs],
            "since": kept.before,
        }
        parts = ["SELECT * FROM {held}", rows.format(orgs="known", since=" AND date >= $since")]
        if fresh:  # orgs the kept rows do not hold: every earlier day (a branch only then)
            params["fresh"] = fresh
            parts.append(rows.format(orgs="fresh", since=""))
    with _registered(con, held) as name:
        found = query(
            con,
            f"""
            SELECT org, model, max(date) AS date, arg_max(gens_end, date) AS gens_end,
                   arg_max_null(lim, date) AS lim, arg_max_null(conc, date) AS conc,
                   max(last_taken_at) AS last_taken_at
            FROM ({" UNION ALL ".join(parts).replace("{held}", str(name))}) GROUP BY org, model
            """,
            params,
        )
    return LimitAnchors(before, found, frozenset(names))


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame | None) -> Iterator[str | None]:
    """``frame`` as a view of ``con`` under a fresh name while the block runs (None
    without a frame): tens of thousands of rows read as a table, not bound as list
    parameters (10x slower)."""
    if frame is None:
        yield None
        return
    name = f"_limits_{uuid.uuid4().hex}"
    con.register(name, frame.to_arrow())
    try:
        yield name
    finally:
        con.unregister(name)


# The "now" table's columns as ``limit_summary`` computes them (usage_ratio is derived from
# them); the outlook step stores these (``outlook.outlook_limit_now``).
NOW_COLUMNS = (
    "org",
    "model",
    "daily_generations",
    "max_daily_generations",
    "max_concurrent_generations",
    "observed_at",
    "peak_7d",
    "days_at_limit_30d",
)


def limit_summary(
    con: duckdb.DuckDBPyConnection,
    orgs: Sequence[str],
    as_of: date,
    all_orgs: bool = False,
    anchors: LimitAnchors | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``daily_limit_summary(limits_by_day(...), as_of)`` and the rows of the day before
    ``as_of`` that ``limits_at`` reads (org, model, date, the limits), computed over the
    ``model_daily`` rows of the last 30 days and each (org, model)'s row in force before
    them, grouped, without carrying every model over every day: a row's own day peaks at
    ``greatest(gens_peak, previous row's gens_end)`` and it is carried, at ``gens_end``,
    to the day before the next row (or through ``as_of``), so a carried day at the limit
    counts once per day it covers. Equal to the grid's figures (tests/analytics).
    ``anchors`` (``limit_anchors`` at the window's first day, ``as_of`` - 29): the rows in
    force before the window, instead of reading every earlier day (the cycle's step)."""
    orgs = list(orgs)
    of_orgs = "TRUE" if all_orgs else "org = ANY($orgs)"  # a fixed fragment
    d30, d7 = as_of - timedelta(days=29), as_of - timedelta(days=6)
    params = {"d30": d30, "d7": d7, "end": as_of} | ({} if all_orgs else {"orgs": orgs})
    if anchors is None:
        anchor_rows = f"""
            SELECT org, model, max(date), arg_max(gens_end, date), NULL,
                   arg_max_null(max_daily_generations, date),
                   arg_max_null(max_concurrent_generations, date), max(last_taken_at), TRUE
            FROM model_daily WHERE {of_orgs} AND date < $d30 GROUP BY org, model"""
    else:
        if anchors.before != d30:
            raise ValueError(f"anchors at {anchors.before}, the window starts on {d30}")
        anchor_rows = """
            SELECT org, model, date, gens_end, NULL, lim, conc, last_taken_at, TRUE
            FROM {held}"""
    held = (
        anchors.rows.filter(pl.col("org").is_in(orgs)).select(_ANCHOR_COLUMNS)
        if anchors is not None
        else None
    )
    with _registered(con, held) as name:
        frame = _summary_query(con, of_orgs, anchor_rows.replace("{held}", str(name)), params)
    if all_orgs:
        frame = frame.filter(pl.col("org").is_in(orgs))
    current = frame.select(
        *NOW_COLUMNS[:-1], pl.col("days_at_limit_30d").cast(pl.UInt32)
    ).with_columns(
        usage_ratio=pl.when(pl.col("max_daily_generations") > 0).then(
            pl.col("daily_generations") / pl.col("max_daily_generations")
        )
    )
    before = frame.filter(pl.col("before_date").is_not_null()).select(
        "org",
        "model",
        pl.lit(as_of - timedelta(days=1)).alias("date"),
        pl.col("before_conc").alias("max_concurrent_generations"),
        pl.col("before_lim").alias("max_daily_generations"),
    )
    return current, before


def _summary_query(
    con: duckdb.DuckDBPyConnection, of_orgs: str, anchor_rows: str, params: Mapping[str, object]
) -> pl.DataFrame:
    """``limit_summary``'s query, the rows in force before the window from ``anchor_rows``."""
    return query(
        con,
        f"""
        WITH rows AS (
            SELECT org, model, date, gens_end, gens_peak, max_daily_generations AS lim,
                   max_concurrent_generations AS conc, last_taken_at, FALSE AS anchor
            FROM model_daily WHERE {of_orgs} AND date >= $d30 AND date <= $end
            UNION ALL  -- in force at 00:00 of the first day
            {anchor_rows}),
        w AS (
            SELECT *, lag(gens_end) OVER p AS prev_end, lead(date) OVER p AS next_date
            FROM rows WINDOW p AS (PARTITION BY org, model ORDER BY date))
        SELECT org, model,
               arg_max(gens_end, date) AS daily_generations,
               arg_max_null(lim, date) AS max_daily_generations,
               arg_max_null(conc, date) AS max_concurrent_generations,
               max(last_taken_at) AS observed_at,
               max(CASE WHEN NOT anchor AND date >= $d7 THEN greatest(gens_peak, prev_end)
                        WHEN next_date IS NULL OR next_date > $d7 THEN gens_end END)
                   AS peak_7d,
               sum(CASE WHEN NOT anchor AND lim > 0
                             AND greatest(gens_peak, prev_end) >= lim THEN 1 ELSE 0 END
                   + CASE WHEN lim > 0 AND gens_end >= lim
                          THEN coalesce(next_date, $end + 1) - greatest(date + 1, $d30)
                          ELSE 0 END) AS days_at_limit_30d,
               max(date) FILTER (WHERE date < $end) AS before_date,
               arg_max_null(conc, date) FILTER (WHERE date < $end) AS before_conc,
               arg_max_null(lim, date) FILTER (WHERE date < $end) AS before_lim
        FROM w GROUP BY org, model
        """,
        dict(params),
    ).sort("org", "model")  # 60k rows at 1,000 orgs: cheaper here than in the query


def limits_at(daily: pl.DataFrame, today: pl.DataFrame, at: datetime) -> pl.DataFrame:
    """Each (org, model)'s limits at ``at``: its latest row of ``at``'s day up to ``at``
    (``today``), else the previous day's end from ``daily``. Rows of that day after ``at``
    must not count, so the day-end values of ``at``'s own day cannot be used."""
    before = daily.filter(pl.col("date") == at.date() - timedelta(days=1)).select(
        "org", "model", *LIMIT_COLUMNS
    )
    return pl.concat(
        [
            today.select("org", "model", *LIMIT_COLUMNS),
            before.join(today, on=["org", "model"], how="anti"),
        ],
        how="vertical_relaxed",
    )


def daily_limit_summary(daily: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Per (org, model), from ``limits_by_day`` rows: the latest count and limits, the
    busiest day of the last 7 UTC days (``peak_7d``), the days at the limit in the last 30,
    and the share of the limit in use now (None where the limit is unknown or 0)."""
    last7 = pl.col("date") > as_of - timedelta(days=7)
    last30 = pl.col("date") > as_of - timedelta(days=30)
    return (  # every (org, model) has a row on as_of, the latest: 30 days suffice
        daily.filter(last30)
        .group_by("org", "model")
        .agg(
            pl.col("daily_generations", "max_daily_generations", "max_concurrent_generations")
            .sort_by("date")
            .last(),
            pl.col("taken_at").max().alias("observed_at"),
            pl.col("peak_generations").filter(last7).max().alias("peak_7d"),
            (PEAK_SHARE >= 1).filter(last30).sum().alias("days_at_limit_30d"),
        )
        .with_columns(
            usage_ratio=pl.when(pl.col("max_daily_generations") > 0).then(
                pl.col("daily_generations") / pl.col("max_daily_generations")
            )
        )
        .sort("org", "model")
    )


def latest_models_query(
    con: duckdb.DuckDBPyConnection, org: str, as_of: datetime
) -> tuple[str, dict[str, object]]:
    """A query (with its parameters) of ``org``'s latest model_snapshots row per model at
    or before ``as_of``: the model_snapshots columns. The collector keeps each (org, model)'s
    latest row in ``model_latest`` (``write_state_kept``); when none of the org's is after
    ``as_of`` (the dashboard asks at the last collection) they are the answer, one row per
    model instead of a window over the org's every snapshot (130M rows at 1,000 orgs x 90
    days hold its 130k). Otherwise the window over ``model_snapshots``."""
    if write_state_kept(con):
        newest = con.execute(
            "SELECT max(taken_at) FROM model_latest WHERE org = ?", [org]
        ).fetchall()[0][0]
        if newest is None or newest <= as_of:
            return "SELECT * EXCLUDE (day_peak) FROM model_latest WHERE org = $org", {"org": org}
    return (
        """SELECT * FROM model_snapshots WHERE org = $org AND taken_at <= $as_of
           QUALIFY row_number() OVER (PARTITION BY model ORDER BY taken_at DESC) = 1""",
        {"org": org, "as_of": as_of},
    )
