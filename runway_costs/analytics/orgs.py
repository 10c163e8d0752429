"""Which organizations the database knows, in the two senses the commands need.

- ``orgs_with_data(con)``: every organization with any collected row (a snapshot, a
  usage row or a collection run), sorted: the default scope of analytics, forecasts,
  alerts and the dashboard.
- ``orgs_collected(con)``: every organization the collector has ever run for (a row in
  ``collection_runs``, successful or not), sorted: what ``status`` reports on.
- ``write_state_kept(con)``: whether the collector keeps its per-org write state here.
- ``orgs_with_data_kept(con)``: ``orgs_with_data`` from the collector's per-org write
  state (a row per org, not per day), or None when the database does not keep it.
"""

from __future__ import annotations

import duckdb

from runway_costs.collector.store import WRITE_STATE_VERSION

__all__ = ["orgs_collected", "orgs_with_data", "orgs_with_data_kept", "write_state_kept"]


def orgs_with_data(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Organizations with a snapshot, usage or a collection run, sorted."""
    rows = con.execute(
        """
        SELECT org FROM org_snapshots UNION SELECT org FROM daily_usage
        UNION SELECT org FROM collection_runs ORDER BY org
        """
    ).fetchall()
    return [r[0] for r in rows]


def orgs_collected(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every organization the collector has ever run for, sorted."""
    rows = con.execute("SELECT DISTINCT org FROM collection_runs ORDER BY org").fetchall()
    return [r[0] for r in rows]


def write_state_kept(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the collector keeps its per-org write state in this database (``meta``
    names the version this code knows): then ``org_latest`` and ``org_usage_totals`` are
    current in every published snapshot, moved in the same transaction as the rows."""
    try:
        rows = con.execute("SELECT value FROM meta WHERE key = 'write_state'").fetchall()
    except duckdb.CatalogException:
        return False
    return bool(rows) and rows[0][0] == WRITE_STATE_VERSION


def orgs_with_data_kept(con: duckdb.DuckDBPyConnection) -> list[str] | None:
    """``orgs_with_data`` without reading history (issue #12): the collector keeps, in the
    transaction of every write, a row per org with a snapshot (``org_latest``) and per org
    with usage or a successful run (``org_usage_totals``); an org whose runs all failed is
    found among the failed runs (few, and DuckDB skips the row groups without one). None
    when the database does not keep that state (``meta`` has no ``write_state``: a file
    from before it, or tables written by other means), and then only the scan can say."""
    if not write_state_kept(con):
        return None
    try:
        rows = con.execute(
            """
            SELECT org FROM org_latest UNION SELECT org FROM org_usage_totals
            UNION SELECT org FROM collection_runs WHERE status <> 'ok' ORDER BY org
            """
        ).fetchall()
    except duckdb.CatalogException:  # a file from before the write-state tables
        return None
    return [r[0] for r in rows]
