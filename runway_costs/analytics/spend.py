"""Where the credits went: spend per day, month, month-to-date, rolling 30 days, top models.

All figures come from ``daily_usage`` (net credits per org, UTC day and model; a day can be
negative when refunds win). Every frame carries credits as integers and their USD value
(``credits * credit_usd``, rounded to cents). Windows are inclusive UTC dates: "rolling 30
days" at ``as_of`` means ``core.windows.window_start(as_of) .. as_of`` (``as_of - 29``); "month
to date" means the 1st .. ``as_of``.

Public API (``con`` is any DuckDB connection, e.g. ``analytics.db.connect_reader(db)``):

- ``spend_daily(con, orgs, start, end, credit_usd=CREDIT_USD) -> pl.DataFrame``
  org, date, credits, usd - one row per org and day, days without usage as 0.
- ``spend_daily_by_model(con, orgs, start, end, credit_usd=CREDIT_USD) -> pl.DataFrame``
  org, date, model, credits, usd - the stored rows only.
- ``spend_monthly(con, orgs, start, end, credit_usd=CREDIT_USD, by_model=False) -> pl.DataFrame``
  org, month (first day), [model], credits, usd.
- ``spend_summary(con, as_of, orgs=None, credit_usd=CREDIT_USD, by_model=False) -> pl.DataFrame``
  org, [model], today_credits, mtd_credits, rolling_30d_credits and the matching ``*_usd``.
- ``top_models(con, start, end, orgs=None, n=5, credit_usd=CREDIT_USD) -> pl.DataFrame``
  org, rank, model, credits, usd, share (of the org's net spend in the window).
- ``spend_by_date_model(con, orgs, start, end, credit_usd=CREDIT_USD) -> pl.DataFrame``
  date, model, credits, usd, rows - summed over orgs (``orgs=None``: every org, no filter).
- ``spend_by_org_date(con, orgs, start, end, credit_usd=CREDIT_USD) -> pl.DataFrame``
  org, date, credits, usd - summed over models, stored days only.
- ``spend_rows(con, orgs, start, end, credit_usd=CREDIT_USD, limit=None) -> pl.DataFrame``
  ``spend_daily_by_model``'s rows, or the newest ``limit`` of them.
- ``org_predicate(orgs) -> str``: the SQL filter on ``org`` the reads share.
- ``spend_through_sql(con) -> str``: SQL (param ``$day``) of each org's net spend through
  a day, without reading history when the collector keeps per-org totals.
- ``query(con, sql, params) -> pl.DataFrame``: the helper the other analytics modules share.

``credit_usd`` defaults to ``core.money.CREDIT_USD``; callers holding settings pass
``settings.credit_usd``. The conversion itself is ``core.money.usd``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import cast

import duckdb
import polars as pl

from runway_costs.analytics.orgs import orgs_with_data, write_state_kept
from runway_costs.core.money import CREDIT_USD, usd
from runway_costs.core.windows import window_start

__all__ = [
    "month_start",
    "org_predicate",
    "query",
    "spend_by_date_model",
    "spend_by_org_date",
    "spend_daily",
    "spend_daily_by_model",
    "spend_monthly",
    "spend_rows",
    "spend_summary",
    "spend_through_sql",
    "top_models",
]


def query(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict | list | None = None
) -> pl.DataFrame:
    """Run SQL and return a polars frame (typed columns even when no row matches)."""
    # an Arrow table always becomes a DataFrame (from_arrow gives a Series for an array)
    return cast(pl.DataFrame, pl.from_arrow(con.sql(sql, params=params).to_arrow_table()))


def month_start(day: date) -> date:
    return day.replace(day=1)


def org_predicate(orgs: Sequence[str] | None) -> str:
    """The filter on ``org`` for a read of ``$orgs``: ``org = ANY($orgs)``, which DuckDB
    evaluates in the scan (a per-row list search cost up to twice the time), or ``TRUE``
    for ``None`` (every organization: no filter, and no list of names to build)."""
    return "TRUE" if orgs is None else "org = ANY($orgs::VARCHAR[])"


def spend_through_sql(con: duckdb.DuckDBPyConnection) -> str:
    """A query (parameter ``$day``) of org, credits: every org's net spend on the days up
    to ``$day``. Where the collector keeps per-org totals (``write_state_kept``) it is the
    kept sum less the days after ``$day`` (none for "now": DuckDB skips every row group by
    its dates), instead of a sum over all of history (66M rows at 1,000 orgs x 3 years)."""
    if write_state_kept(con):
        return """
            SELECT t.org, t.usage_credits - coalesce(sum(u.credits), 0) AS credits
            FROM org_usage_totals t LEFT JOIN daily_usage u ON u.org = t.org AND u.date > $day
            GROUP BY t.org, t.usage_credits
        """
    return "SELECT org, sum(credits) AS credits FROM daily_usage WHERE date <= $day GROUP BY org"


def _org_params(orgs: Sequence[str] | None) -> dict[str, list[str]]:
    return {} if orgs is None else {"orgs": list(orgs)}


def _orgs_list(con: duckdb.DuckDBPyConnection, orgs: Sequence[str] | None) -> list[str]:
    return list(orgs) if orgs is not None else orgs_with_data(con)


def _window_credits(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    orgs: Sequence[str] | None,
    start: date,
    end: date,
    credit_usd: float,
    **params: object,
) -> pl.DataFrame:
    """Run ``sql`` (params ``$orgs``, ``$start``, ``$end``) and add its credits in USD."""
    frame = query(con, sql, {"orgs": _orgs_list(con, orgs), "start": start, "end": end, **params})
    return frame.with_columns(usd=usd(pl.col("credits"), credit_usd))


def spend_daily(
    con: duckdb.DuckDBPyConnection,
    orgs: Sequence[str] | None,
    start: date,
    end: date,
    credit_usd: float = CREDIT_USD,
) -> pl.DataFrame:
    """Net credits per org and day in [start, end], zero-filled so charts show quiet days."""
    return _window_credits(
        con,
        """
        WITH o AS (SELECT unnest($orgs::VARCHAR[]) AS org),
        d AS (SELECT CAST(range AS DATE) AS date
              FROM range($start::DATE, $end::DATE + INTERVAL 1 DAY, INTERVAL 1 DAY)),
        u AS (SELECT org, date, SUM(credits) AS credits FROM daily_usage
              WHERE date BETWEEN $start AND $end AND org = ANY($orgs::VARCHAR[])
              GROUP BY org, date)
        SELECT o.org, d.date, CAST(COALESCE(u.credits, 0) AS BIGINT) AS credits
        FROM o CROSS JOIN d LEFT JOIN u ON u.org = o.org AND u.date = d.date
        ORDER BY o.org, d.date
        """,
        orgs,
        start,
        end,
        credit_usd,
    )


def spend_daily_by_model(
    con: duckdb.DuckDBPyConnection,
    orgs: Sequence[str] | None,
    start: date,
    end: date,
    credit_usd: float = CREDIT_USD,
) -> pl.DataFrame:
    """The stored (org, date, model) rows in [start, end]; models are open strings."""
    return _window_credits(
        con,
        """
        SELECT org, date, model, credits FROM daily_usage
        WHERE date BETWEEN $start AND $end AND org = ANY($orgs::VARCHAR[])
        ORDER BY org, date, model
        """,
        orgs,
        start,
        end,
        credit_usd,
    )


def spend_monthly(
    con: duckdb.DuckDBPyConnection,
    orgs: Sequence[str] | None,
    start: date,
    end: date,
    credit_usd: float = CREDIT_USD,
    by_model: bool = False,
) -> pl.DataFrame:
    """Calendar-month totals of the days in [start, end] (partial months are partial sums)."""
    model_col = ", model" if by_model else ""
    return _window_credits(
        con,
        f"""
        SELECT org, CAST(date_trunc('month', date) AS DATE) AS month{model_col},
               CAST(SUM(credits) AS BIGINT) AS credits
        FROM daily_usage
        WHERE date BETWEEN $start AND $end AND org = ANY($orgs::VARCHAR[])
        GROUP BY ALL ORDER BY ALL
        """,
        orgs,
        start,
        end,
        credit_usd,
    )


def spend_summary(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    orgs: Sequence[str] | None = None,
    credit_usd: float = CREDIT_USD,
    by_model: bool = False,
) -> pl.DataFrame:
    """Today, month-to-date and rolling-30-day net spend at ``as_of`` (inclusive)."""
    group = "org, model" if by_model else "org"
    from30 = window_start(as_of)
    frame = query(
        con,
        f"""
        WITH o AS (SELECT unnest($orgs::VARCHAR[]) AS org),
        s AS (
            SELECT {group},
                SUM(credits) FILTER (WHERE date = $as_of) AS today_credits,
                SUM(credits) FILTER (WHERE date >= $month) AS mtd_credits,
                SUM(credits) FILTER (WHERE date >= $from30) AS rolling_30d_credits
            FROM daily_usage
            WHERE date BETWEEN $earliest AND $as_of AND org = ANY($orgs::VARCHAR[])
            GROUP BY {group})
        SELECT o.org{", s.model" if by_model else ""},
            CAST(COALESCE(s.today_credits, 0) AS BIGINT) AS today_credits,
            CAST(COALESCE(s.mtd_credits, 0) AS BIGINT) AS mtd_credits,
            CAST(COALESCE(s.rolling_30d_credits, 0) AS BIGINT) AS rolling_30d_credits
        FROM o {"JOIN" if by_model else "LEFT JOIN"} s ON s.org = o.org
        ORDER BY ALL
        """,
        {
            "orgs": _orgs_list(con, orgs),
            "as_of": as_of,
            "month": month_start(as_of),
            "from30": from30,
            # A 31-day month starts before the 30-day window.
            "earliest": min(from30, month_start(as_of)),
        },
    )
    return frame.with_columns(
        today_usd=usd(pl.col("today_credits"), credit_usd),
        mtd_usd=usd(pl.col("mtd_credits"), credit_usd),
        rolling_30d_usd=usd(pl.col("rolling_30d_credits"), credit_usd),
    )


def top_models(
    con: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    orgs: Sequence[str] | None = None,
    n: int = 5,
    credit_usd: float = CREDIT_USD,
) -> pl.DataFrame:
    """The ``n`` models with the most net spend per org in [start, end], with their share."""
    return _window_credits(
        con,
        """
        WITH m AS (
            SELECT org, model, CAST(SUM(credits) AS BIGINT) AS credits FROM daily_usage
            WHERE date BETWEEN $start AND $end AND org = ANY($orgs::VARCHAR[])
            GROUP BY org, model),
        r AS (SELECT *, row_number() OVER (PARTITION BY org ORDER BY credits DESC, model) AS rank,
                 SUM(credits) OVER (PARTITION BY org) AS org_total FROM m)
        SELECT org, rank, model, credits,
               CASE WHEN org_total > 0 THEN credits / org_total END AS share
        FROM r WHERE rank <= $n ORDER BY org, rank
        """,
        orgs,
        start,
        end,
        credit_usd,
        n=n,
    )


def spend_by_date_model(
    con: duckdb.DuckDBPyConnection,
    orgs: Sequence[str] | None,
    start: date,
    end: date,
    credit_usd: float = CREDIT_USD,
) -> pl.DataFrame:
    """date, model, credits, usd, rows (how many stored rows each sum covers) in [start,
    end], summed over the organizations: what a page of many organizations draws (days x
    models), never their orgs x days x models rows. Days and models without a row are
    absent; ``orgs=None``: every organization, with no filter to evaluate."""
    return _sums(con, "date, model", ", count(*) AS rows", orgs, start, end, credit_usd)


def spend_by_org_date(
    con: duckdb.DuckDBPyConnection,
    orgs: Sequence[str] | None,
    start: date,
    end: date,
    credit_usd: float = CREDIT_USD,
) -> pl.DataFrame:
    """org, date, credits, usd in [start, end], summed over models; only days with a stored
    row (``spend_daily`` zero-fills); ``orgs=None``: every organization, no filter."""
    return _sums(con, "org, date", "", orgs, start, end, credit_usd)


def _sums(
    con: duckdb.DuckDBPyConnection,
    keys: str,
    extra: str,
    orgs: Sequence[str] | None,
    start: date,
    end: date,
    credit_usd: float,
) -> pl.DataFrame:
    """``daily_usage`` credits in [start, end] summed per ``keys`` (a fixed column list,
    never user text), in ``keys`` order, with ``usd``; ``extra``: more aggregates."""
    return query(
        con,
        f"""
        SELECT {keys}, CAST(sum(credits) AS BIGINT) AS credits{extra}
        FROM daily_usage
        WHERE date BETWEEN $start AND $end AND {org_predicate(orgs)}
        GROUP BY {keys} ORDER BY {keys}
        """,
        {"start": start, "end": end, **_org_params(orgs)},
    ).with_columns(usd=usd(pl.col("credits"), credit_usd))


def spend_rows(
    con: duckdb.DuckDBPyConnection,
    orgs: Sequence[str] | None,
    start: date,
    end: date,
    credit_usd: float = CREDIT_USD,
    limit: int | None = None,
) -> pl.DataFrame:
    """``spend_daily_by_model``'s stored rows in [start, end] (``orgs=None``: every org):
    all of them in (org, date, model) order, or with ``limit`` the newest ``limit`` in
    (date descending, org, model) order. Narrow ``start`` to the days those rows need
    (``spend_by_date_model`` counts rows per day): the read then skips older row groups."""
    params: dict[str, object] = {"start": start, "end": end, **_org_params(orgs)}
    order = "org, date, model"
    if limit is not None:
        params["limit"] = limit
        order = "date DESC, org, model LIMIT $limit"
    frame = query(
        con,
        f"""
        SELECT org, date, model, credits FROM daily_usage
        WHERE date BETWEEN $start AND $end AND {org_predicate(orgs)}
        ORDER BY {order}
        """,
        params,
    )
    return frame.with_columns(usd=usd(pl.col("credits"), credit_usd))
