"""What every page's view model shares: the reader, the scope and collection freshness.

The dashboard's view models (one module per page beside it: ``overview``, ``spend``,
``limits``, ``planner``, ``alerts``) turn analytics results into what a page shows. They
import no Streamlit and have no side effects, so every figure a reviewer sees is tested
without a browser. Each takes a read-only DuckDB connection from ``reader`` and a ``Scope``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from runway_costs.analytics.db import (
    BadDatabaseError,
    DatabaseBusyError,
    NoDataError,
    connect_reader,
)
from runway_costs.analytics.orgs import orgs_with_data, orgs_with_data_kept
from runway_costs.analytics.spend import org_predicate
from runway_costs.core.config import Settings


class DataUnavailable(Exception):
    """The database cannot be read right now; ``kind`` picks the page's message.

    kind: ``"missing"`` (nothing collected yet), ``"busy"`` (being written; retry),
    ``"bad"`` (the file is not a readable runway-costs database: the message says why).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@contextlib.contextmanager
def reader(
    db_path: Path, on_fallback: Callable[[str], None] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, with the expected failures turned into DataUnavailable;
    ``on_fallback`` hears when a damaged snapshot was skipped for the live file."""
    try:
        con = connect_reader(db_path, on_fallback=on_fallback)
    except BadDatabaseError as exc:
        raise DataUnavailable("bad", str(exc)) from None
    except DatabaseBusyError as exc:
        raise DataUnavailable("busy", str(exc)) from None
    except NoDataError as exc:
        raise DataUnavailable("missing", str(exc)) from None
    except (duckdb.IOException, duckdb.ConnectionException) as exc:
        raise DataUnavailable(
            "busy", f"the database is being written right now ({type(exc).__name__})"
        ) from None
    try:
        yield con
    finally:
        con.close()


@dataclass(frozen=True)
class Scope:
    """Which organizations a page shows; charts name them through ``label``."""

    orgs: tuple[str, ...]
    all_orgs: bool = False

    @property
    def label(self) -> str:
        names = ", ".join(self.orgs)
        if self.all_orgs:
            return f"all organizations ({names})"
        return names

    @property
    def org_list(self) -> list[str]:
        return list(self.orgs)


def known_orgs(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """Organizations with any collected row, sorted by name: from the collector's per-org
    state when it keeps one (every page's sidebar asks, so no scan of history)."""
    kept = orgs_with_data_kept(con)
    return kept if kept is not None else orgs_with_data(con)


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A separate cursor per analytics call: one left with an unfetched result (DuckDB
    refuses further work on it) cannot then break the next call."""
    return con.cursor()


# How far back collection_status looks first for the scope's last successful run.
RECENT = timedelta(days=2)


@dataclass(frozen=True)
class CollectionStatus:
    """When the scope's data was last collected successfully, and whether that is stale."""

    last_success: datetime | None
    failed_since: int  # failed runs after the last success, across the scope
    stale: bool
    stale_hours: float
    as_of: date  # the day the pages treat as "today": the last collection's UTC date


def collection_status(
    con: duckdb.DuckDBPyConnection, settings: Settings, scope: Scope, now: datetime
) -> CollectionStatus:
    """Stale when the last success is older than the alerts' ``stale_hours``. "All
    organizations" reads without a filter on org (the scope is every org with data).

    Every page asks this, so it reads the runs of the last ``RECENT`` first (the tables
    grow in time order: DuckDB skips older row groups): a success found there is the
    latest, and the failures after it are there too. Only a scope without one reads all
    of its runs (a collector stopped for days, or never successful)."""
    stale_hours = settings.alerts.thresholds.stale_hours
    of_scope = org_predicate(None if scope.all_orgs else scope.org_list)
    params: dict[str, object] = {} if scope.all_orgs else {"orgs": scope.org_list}
    sql = f"""
        WITH r AS (SELECT * FROM collection_runs WHERE {of_scope} AND {{since}}),
             ok AS (SELECT max(finished_at) AS t FROM r WHERE status = 'ok')
        SELECT (SELECT t FROM ok),
               (SELECT count(*) FROM r WHERE status <> 'ok'
                  AND finished_at > coalesce((SELECT t FROM ok), TIMESTAMP '1970-01-01')),
               {{last_any}}
        """
    last_any_sql = f"(SELECT max(taken_at) FROM org_snapshots WHERE {of_scope})"
    recent = con.execute(  # the last snapshot is not needed when a success is found
        sql.format(since="finished_at >= $since", last_any="NULL"),
        params | {"since": now - RECENT},
    ).fetchall()[0]
    if recent[0] is not None:
        last, failed, last_any = recent
    else:
        last, failed, last_any = con.execute(
            sql.format(since="TRUE", last_any=last_any_sql), params
        ).fetchall()[0]
    reference = last or last_any
    if reference is None:
        day = con.execute(f"SELECT max(date) FROM daily_usage WHERE {of_scope}", params).fetchall()[
            0
        ][0]
        as_of = day or now.date()
    else:
        as_of = reference.date()
    stale = last is None or (now - last) > timedelta(hours=stale_hours)
    return CollectionStatus(
        last_success=last,
        failed_since=int(failed or 0),
        stale=stale,
        stale_hours=stale_hours,
        as_of=as_of,
    )
