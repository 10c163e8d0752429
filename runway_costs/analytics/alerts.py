"""Alert checks: evaluate the rules, announce each condition once, resolve, deliver.

Lifecycle of an (org, rule, target, period key), kept in DuckDB so it survives restarts:

- condition holds, nothing open  -> ``fired`` (announced; a resolved one re-opens)
- condition holds, already open  -> ``ongoing`` (silent), or ``fired`` again when the
  severity rises above what was announced (warning -> critical)
- open, condition gone           -> ``resolved`` (announced)
- open, the same condition moved to a new period (a new month or day) -> closed silently
  as superseded while the new key fires.

Only organizations evaluated in a check are touched: an organization with no data keeps
its state. A check evaluates the rules on the published snapshot (``connect_reader``),
without the collector's write lock, so a cycle never waits on an evaluation; it takes
the lock only to decide each alert's status against the stored state, read again from the
live file (a check that finished meanwhile is seen), and to save it (one transaction);
then it delivers outside the lock (network), then records each delivery.
Undelivered notices are retried by the following checks for a day. Each delivery has a
deadline (``[alerts] delivery_timeout_seconds``, 15 s by default); a channel that hangs
past it is skipped for the rest of the check (and while its attempt still hangs), its
notices left pending for the next check, so one slow channel costs a check at most one
deadline.

Public API:

- ``Alert`` (org, rule, target, key, severity, status, value, threshold, message),
  ``Alert.to_json()`` (declared in ``analytics.alert_rules``, re-exported here)
- ``plan_alerts(state, conditions, evaluated_orgs) -> list[Alert]`` (pure)
- ``evaluate_alerts(con, settings, as_of, orgs=None) -> list[Alert]`` (read-only: what a
  check would announce now; ``alerts check --dry-run``)
- ``check_alerts(settings, as_of, dry_run=False) -> CheckResult``
- ``alerts_after_cycle(settings, clock) -> None`` the scheduler hook (never raises)
- ``open_alerts(con)``, ``alert_history(con, org=None, limit=500)`` (from alert_store)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import polars as pl
from pydantic import SecretStr

from runway_costs.analytics.alert_rules import (
    SEVERITY_RANK,
    Alert,
    Condition,
    Status,
    evaluate_rules,
    rule_title,
)
from runway_costs.analytics.alert_store import (
    add_deliveries,
    alert_history,
    ensure_alerts_schema,
    load_state,
    open_alerts,
    pending_deliveries,
    record_delivery,
    save_alerts,
)
from runway_costs.analytics.db import connect_reader
from runway_costs.analytics.notify import (
    Delivery,
    channel_hanging,
    channel_label,
    deliver,
)
from runway_costs.analytics.orgs import orgs_with_data
from runway_costs.analytics.outlook import (
    stored_last_success,
    stored_limits,
    stored_orgs,
    stored_outlooks,
    stored_spend,
)
from runway_costs.core.clock import Clock
from runway_costs.core.config import Settings

__all__ = [
    "Alert",
    "CheckResult",
    "alert_history",
    "alerts_after_cycle",
    "check_alerts",
    "evaluate_alerts",
    "open_alerts",
    "plan_alerts",
]

log = logging.getLogger("runway_costs.analytics.alerts")

RETRY_FOR = timedelta(days=1)  # undelivered notices are retried by later checks this long
CHECKS_TO_RETRY = 5  # ... for at most this many checks' worth of attempts


@dataclass
class CheckResult:
    alerts: list[Alert]
    deliveries: list[tuple[str, str, Delivery]] = field(default_factory=list)  # title, channel

    @property
    def failed_deliveries(self) -> int:
        return sum(1 for _, _, d in self.deliveries if not d.ok)

    def visible(self) -> list[Alert]:
        """What the user sees: everything but silently superseded periods."""
        return [a for a in self.alerts if a.status != Status.SUPERSEDED]


def _resolved(row: dict) -> Alert:
    what = rule_title(row["rule"])
    target = f" ({row['target']})" if row["target"] else ""
    return Alert(
        row["org"],
        row["rule"],
        row["target"],
        row["key"],
        row["severity"],
        Status.RESOLVED,
        row["value"],
        row["threshold"],
        f"Resolved: {what}{target} for {row['org']} no longer holds. It was: {row['message']}",
        row["notified_severity"],
    )


def plan_alerts(
    state: pl.DataFrame, conditions: Sequence[Condition], evaluated_orgs: Sequence[str]
) -> list[Alert]:
    """Decide each alert's status from the stored state and the firing conditions."""
    rows = {
        (r["org"], r["rule"], r["target"], r["key"]): r
        for r in state.filter(pl.col("org").is_in(list(evaluated_orgs))).iter_rows(named=True)
    }
    firing = {(c.org, c.rule, c.target, c.key): c for c in conditions}
    firing_targets = {(c.org, c.rule, c.target) for c in conditions}
    out: list[Alert] = []
    for ident, c in sorted(firing.items()):
        row = rows.get(ident)
        if row is not None and row["status"] == "open":
            rises = SEVERITY_RANK[c.severity] > SEVERITY_RANK[row["notified_severity"]]
            status = Status.FIRED if rises else Status.ONGOING
            notified = c.severity if rises else row["notified_severity"]
        else:
            status, notified = Status.FIRED, c.severity
        out.append(
            Alert(
                c.org,
                c.rule,
                c.target,
                c.key,
                c.severity,
                status,
                c.value,
                c.threshold,
                c.message,
                notified,
            )
        )
    for ident, row in sorted(rows.items()):
        if row["status"] != "open" or ident in firing:
            continue
        if ident[:3] in firing_targets:  # the same condition, now in a new period
            out.append(
                Alert(
                    *ident,
                    row["severity"],
                    Status.SUPERSEDED,
                    row["value"],
                    row["threshold"],
                    row["message"],
                    row["notified_severity"],
                )
            )
        else:
            out.append(_resolved(row))
    return out


def _orgs(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """Configured organizations, else every organization in the database (those the
    current stored outlooks were computed for, when there are: the same, read faster)."""
    if settings.orgs:
        return [o.name for o in settings.orgs]
    return stored_orgs(con) or orgs_with_data(con)


def _conditions(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    names: list[str],
    as_of: datetime,
    stored: bool,
) -> list[Condition]:
    """The rules at ``as_of``; the forecast rules read the latest cycle's stored outlooks
    when ``stored`` and they can stand for ``as_of`` (``analytics.outlook``), else the
    forecasts are computed."""
    if stored:
        forecasts = stored_outlooks(con, settings, names, as_of, daily=False)
        spend = stored_spend(con, names, as_of)
        limits = stored_limits(con, names, as_of)
        last_ok = stored_last_success(con, names, as_of)
        if (
            forecasts is not None
            and spend is not None
            and limits is not None
            and last_ok is not None
        ):
            return evaluate_rules(
                con,
                settings,
                names,
                as_of,
                forecasts=forecasts,
                limits=limits,
                spend=spend,
                last_success=last_ok,
            )
    return evaluate_rules(con, settings, names, as_of)


def evaluate_alerts(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    as_of: datetime,
    orgs: Sequence[str] | None = None,
    stored: bool = True,
) -> list[Alert]:
    """What a check at ``as_of`` would decide, without writing or sending anything
    (``stored``: see ``check_alerts``)."""
    names = list(orgs) if orgs is not None else _orgs(con, settings)
    conditions = _conditions(con, settings, names, as_of, stored)
    return plan_alerts(load_state(con, names), conditions, names)


def _channels(settings: Settings) -> dict[str, SecretStr]:
    return {channel_label(u, i + 1): u for i, u in enumerate(settings.alerts.urls)}


def check_alerts(
    settings: Settings,
    as_of: datetime,
    dry_run: bool = False,
    stored: bool = True,
) -> CheckResult:
    """Evaluate at ``as_of`` (naive UTC), record and announce (``dry_run``: evaluate
    against the snapshot only). ``as_of`` also stamps the state and dates the retries;
    each delivery gives up after ``[alerts] delivery_timeout_seconds``. ``stored``: the
    forecast rules may read the latest cycle's stored outlooks (when they can stand for
    ``as_of``: same UTC day, nothing collected since); False computes them at ``as_of``
    (an ``--as-of`` in the past)."""
    from runway_costs.collector.store import write_session  # the writer side, only when writing

    if dry_run:
        with connect_reader(settings.db_path) as con:
            return CheckResult(evaluate_alerts(con, settings, as_of, stored=stored))

    # The rules are evaluated on the published snapshot, without the collector's lock:
    # a cycle never waits on an evaluation (NoDataError here, rather than an empty DB).
    with connect_reader(settings.db_path) as con:
        names = _orgs(con, settings)
        conditions = _conditions(con, settings, names, as_of, stored)
    channels = _channels(settings)
    attempts = settings.alerts.delivery_attempts
    with write_session(settings.db_path) as con:
        ensure_alerts_schema(con)
        # Only deciding and saving hold the lock. The state is read again here, from the
        # live file: a check that finished meanwhile has written it, so nothing it
        # announced is announced twice; the conditions are those at ``as_of``.
        alerts = plan_alerts(load_state(con, names), conditions, names)
        event_ids = save_alerts(con, alerts, as_of)
        add_deliveries(con, event_ids, list(channels))
        pending = pending_deliveries(
            con, list(channels), as_of - RETRY_FOR, attempts * CHECKS_TO_RETRY
        )
    result = CheckResult(alerts)
    if pending.is_empty():
        return result
    outcomes = []
    skipped: set[str] = set()  # channels that hang: their notices wait for the next check
    for row in pending.iter_rows(named=True):  # one notice per channel: network, no lock
        if row["channel"] in skipped or channel_hanging(channels[row["channel"]]):
            skipped.add(row["channel"])
            continue
        alert = Alert(
            row["org"],
            row["rule"],
            row["target"],
            row["key"],
            row["severity"],
            row["status"],
            row["value"],
            row["threshold"],
            row["message"],
        )
        severity = "resolved" if alert.status == Status.RESOLVED else alert.severity
        delivery = deliver(
            channels[row["channel"]],
            alert.title,
            alert.message,
            severity,
            attempts=attempts,
            deadline=settings.alerts.delivery_timeout_seconds,
        )
        if delivery.hanging:
            skipped.add(row["channel"])
        if not delivery.ok:
            log.warning(
                "alert delivery to %s failed after %d attempts: %s",
                row["channel"],
                delivery.attempts,
                delivery.error,
            )
        outcomes.append((row["event_id"], row["channel"], delivery))
        result.deliveries.append((alert.title, row["channel"], delivery))
    if skipped:
        log.warning(
            "alert channel(s) %s did not answer in time: their other notices wait for the "
            "next check",
            ", ".join(sorted(skipped)),
        )
    with write_session(settings.db_path) as con:
        for event_id, channel, delivery in outcomes:
            record_delivery(con, event_id, channel, delivery, as_of)
    return result


def alerts_after_cycle(settings: Settings, clock: Clock) -> None:
    """Scheduler hook: run a check at the scheduler's ``clock`` after each collection;
    log, never raise."""
    try:
        result = check_alerts(settings, clock())
    except Exception as exc:  # the scheduler must keep running whatever happens here
        log.error("alerts check failed: %s: %s", type(exc).__name__, exc)
        return
    fired = sum(1 for a in result.alerts if a.status in (Status.FIRED, Status.RESOLVED))
    log.info("alerts check: %d announced, %d deliveries failed", fired, result.failed_deliveries)
