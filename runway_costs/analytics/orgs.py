"""Which organizations the database knows, in the two senses the commands need.

- ``orgs_with_data(con)``: every organization with any collected row (a snapshot, a
  usage row or a collection run), sorted: the default scope of analytics, forecasts,
  alerts and the dashboard.
- ``orgs_collected(con)``: every organization the collector has ever run for (a row in
  ``collection_runs``, successful or not), sorted: what ``status`` reports on.
"""

from __future__ import annotations

import duckdb

__all__ = ["orgs_collected", "orgs_with_data"]


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
