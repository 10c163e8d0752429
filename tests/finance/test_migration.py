"""A database from before per-key usage and revisions gains both tables on its next write,
and readers of an old snapshot see empty per-key and revision tables, not an error."""

from __future__ import annotations

from contextlib import closing
from datetime import date

import duckdb

from runway_costs.analytics.db import connect_reader
from runway_costs.analytics.keys import key_usage
from runway_costs.analytics.revisions import revisions
from runway_costs.collector.store import ensure_schema, write_session
from runway_costs.core.config import Settings


def test_old_database_gets_the_new_tables(tmp_path):
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:
        ensure_schema(con)
        con.execute("DROP TABLE key_usage; DROP TABLE usage_revisions")
        con.execute(
            "INSERT INTO daily_usage VALUES ('acme', DATE '2026-10-01', 'gen4.5', 5, now())"
        )
    with closing(connect_reader(db)) as con:  # an old file: nothing, not an error
        assert key_usage(con, Settings(), None, None, None).is_empty()
        assert revisions(con).is_empty()
    with write_session(db):
        pass
    with duckdb.connect(str(db), read_only=True) as con:
        names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert {"key_usage", "usage_revisions"} <= names
        assert con.execute("SELECT date, credits FROM daily_usage").fetchall() == [
            (date(2026, 10, 1), 5)
        ]
