"""Alert state, history and the delivery outbox in DuckDB (``alerts_schema.sql``).

Writes happen on the live connection of ``collector.store.write_session`` (the collector's
lock and file, published with the snapshot); reads work on any connection, including the
read-only snapshot, and return empty frames while no check has run yet.

Public API:

- ``ensure_alerts_schema(con)``; ``has_alert_tables(con) -> bool``
- ``load_state(con, orgs) -> pl.DataFrame`` every state row of those orgs
- ``save_alerts(con, alerts, at) -> list[int]`` state upserts + events; new event ids
- ``add_deliveries(con, event_ids, channels)``; ``pending_deliveries(con, channels, since,
  max_attempts) -> pl.DataFrame``; ``record_delivery(con, event_id, channel, delivery, at)``
- ``open_alerts(con) -> pl.DataFrame``; ``alert_history(con, org=None, limit=500)
  -> pl.DataFrame`` (events, newest first, with delivered / undelivered channel counts)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from runway_costs.analytics.notify import Delivery
from runway_costs.analytics.spend import query
from runway_costs.collector.store import rollback_quietly, unregister_quietly

if TYPE_CHECKING:
    from runway_costs.analytics.alert_rules import Alert

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

__all__ = [
    "add_deliveries",
    "alert_history",
    "ensure_alerts_schema",
    "has_alert_tables",
    "load_state",
    "open_alerts",
    "pending_deliveries",
    "record_delivery",
    "save_alerts",
]

SCHEMA = Path(__file__).with_name("alerts_schema.sql")
# What one check says about one alert (the fields of ``Alert`` that are stored).
_ALERT_COLUMNS: dict[str, PolarsDataType] = {
    "org": pl.String,
    "rule": pl.String,
    "target": pl.String,
    "key": pl.String,
    "status": pl.String,
    "severity": pl.String,
    "notified_severity": pl.String,
    "value": pl.Float64,
    "threshold": pl.Float64,
    "message": pl.String,
}
_STATE_COLUMNS: dict[str, PolarsDataType] = {
    **_ALERT_COLUMNS,
    "first_fired_at": pl.Datetime("us"),
    "last_seen_at": pl.Datetime("us"),
    "resolved_at": pl.Datetime("us"),
}
_HISTORY_COLUMNS: dict[str, PolarsDataType] = {
    "event_id": pl.Int64,
    "event_at": pl.Datetime("us"),
    # An event records the alert as announced; the notified severity is state only.
    **{name: dtype for name, dtype in _ALERT_COLUMNS.items() if name != "notified_severity"},
    "delivered": pl.Int64,
    "undelivered": pl.Int64,
}


def ensure_alerts_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SCHEMA.read_text(encoding="utf-8"))


def has_alert_tables(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'alert_state'"
    ).fetchall()[0]
    return bool(row and row[0])


def load_state(con: duckdb.DuckDBPyConnection, orgs: Sequence[str]) -> pl.DataFrame:
    if not has_alert_tables(con):
        return pl.DataFrame(schema=_STATE_COLUMNS)
    return query(
        con,
        "SELECT * FROM alert_state WHERE list_contains($orgs, org) ORDER BY ALL",
        {"orgs": list(orgs)},
    )


def save_alerts(con: duckdb.DuckDBPyConnection, alerts: Sequence[Alert], at: datetime) -> list[int]:
    """Apply one check's outcome in one transaction; return the ids of announced events."""
    rows = pl.DataFrame(
        [tuple(getattr(a, name) for name in _ALERT_COLUMNS) for a in alerts],
        schema=_ALERT_COLUMNS,
        orient="row",
    )
    con.register("_alerts_in", rows)
    try:
        con.execute("BEGIN")
        con.execute(
            """
            INSERT INTO alert_state BY NAME
            SELECT org, rule, target, key,
                   CASE status WHEN 'resolved' THEN 'resolved'
                               WHEN 'superseded' THEN 'superseded' ELSE 'open' END AS status,
                   severity, notified_severity, value, threshold, message,
                   $at AS first_fired_at, $at AS last_seen_at,
                   CASE WHEN status IN ('resolved', 'superseded') THEN $at END AS resolved_at
            FROM _alerts_in
            ON CONFLICT (org, rule, target, key) DO UPDATE SET
                status = EXCLUDED.status,
                severity = CASE WHEN EXCLUDED.status = 'open' THEN EXCLUDED.severity
                                ELSE alert_state.severity END,
                notified_severity = EXCLUDED.notified_severity,
                value = EXCLUDED.value,
                threshold = EXCLUDED.threshold,
                message = CASE WHEN EXCLUDED.status = 'open' THEN EXCLUDED.message
                               ELSE alert_state.message END,
                first_fired_at = CASE WHEN alert_state.status = 'open' THEN
                                 alert_state.first_fired_at ELSE EXCLUDED.first_fired_at END,
                last_seen_at = EXCLUDED.last_seen_at,
                resolved_at = EXCLUDED.resolved_at
            """,
            {"at": at},
        )
        ids = con.execute(
            """
            INSERT INTO alert_events (event_at, org, rule, target, key, status, severity, value,
                                      threshold, message)
            SELECT $at, org, rule, target, key, status, severity, value, threshold, message
            FROM _alerts_in WHERE status IN ('fired', 'resolved')
            ORDER BY org, rule, target, key
            RETURNING event_id
            """,
            {"at": at},
        ).fetchall()
        con.execute("COMMIT")
    except BaseException:
        rollback_quietly(con)  # the error that ended the transaction is the one to report
        raise
    finally:
        unregister_quietly(con, "_alerts_in")
    return sorted(r[0] for r in ids)


def add_deliveries(
    con: duckdb.DuckDBPyConnection, event_ids: Sequence[int], channels: Sequence[str]
) -> None:
    """One outbox row per (new event, configured channel)."""
    if not event_ids or not channels:
        return
    con.execute(
        """
        INSERT INTO alert_deliveries (event_id, channel)
        SELECT e.id, c.channel FROM unnest($ids::BIGINT[]) AS e(id)
        CROSS JOIN unnest($channels::VARCHAR[]) AS c(channel)
        ON CONFLICT DO NOTHING
        """,
        {"ids": list(event_ids), "channels": list(channels)},
    )


def pending_deliveries(
    con: duckdb.DuckDBPyConnection, channels: Sequence[str], since: datetime, max_attempts: int
) -> pl.DataFrame:
    """Undelivered notices for the configured channels, oldest first."""
    return query(
        con,
        """
        SELECT d.event_id, d.channel, d.attempts, e.org, e.rule, e.target, e.key, e.status,
               e.severity, e.message, e.value, e.threshold
        FROM alert_deliveries d JOIN alert_events e USING (event_id)
        WHERE d.delivered_at IS NULL AND d.attempts < $max AND e.event_at >= $since
          AND list_contains($channels, d.channel)
        ORDER BY d.event_id, d.channel
        """,
        {"channels": list(channels), "since": since, "max": max_attempts},
    )


def record_delivery(
    con: duckdb.DuckDBPyConnection, event_id: int, channel: str, delivery: Delivery, at: datetime
) -> None:
    con.execute(
        """
        UPDATE alert_deliveries SET attempts = attempts + $n, last_attempt_at = $at,
            delivered_at = CASE WHEN $ok THEN $at END, last_error = $error
        WHERE event_id = $id AND channel = $channel
        """,
        {
            "n": delivery.attempts,
            "at": at,
            "ok": delivery.ok,
            "error": delivery.error,
            "id": event_id,
            "channel": channel,
        },
    )


def open_alerts(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Alerts whose condition still holds, most severe first."""
    if not has_alert_tables(con):
        return pl.DataFrame(schema=_STATE_COLUMNS)
    return query(
        con,
        """
        SELECT * FROM alert_state WHERE status = 'open'
        ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
                 org, rule, target, key
        """,
    )


def alert_history(
    con: duckdb.DuckDBPyConnection, org: str | None = None, limit: int = 500
) -> pl.DataFrame:
    """Announced events, newest first, with how many channels got each one."""
    if not has_alert_tables(con):
        return pl.DataFrame(schema=_HISTORY_COLUMNS)
    return query(
        con,
        """
        SELECT e.*,
               count(d.delivered_at) AS delivered,
               count(d.channel) - count(d.delivered_at) AS undelivered
        FROM alert_events e LEFT JOIN alert_deliveries d USING (event_id)
        WHERE $org IS NULL OR e.org = $org
        GROUP BY ALL ORDER BY e.event_id DESC LIMIT $limit
        """,
        {"org": org, "limit": limit},
    )
