"""What ``/metrics`` says: the published snapshot as typed Prometheus samples.

Every figure comes from the analytics the CLI and the dashboard use (``forecast_org`` for
balance, cap, purchases, month-to-date, the month-end forecast and the run-out and
cap-bound dates; ``limits.limit_use`` for the per-model generations; ``alert_store`` for
open alerts; ``collection_runs`` for the collector's own health), so a Grafana panel and
the dashboard agree. This module knows nothing of HTTP or of ``prometheus_client``: the
CLI turns the families into an exposition (``cli.metrics_cmd``).

Names follow Prometheus conventions: ``runway_costs_`` prefix, the unit last
(``_credits``, ``_seconds``), counters end in ``_total``. Per-organization series carry
``org`` and, when the config gives organizations tags, one ``tag_<key>`` label per tag key
(empty for an organization without that tag); per-model series add ``model``.

Public API:

- ``Sample(labels, value)``, ``Family(name, kind, help, samples)``
- ``collect_metrics(con, settings, as_of) -> list[Family]``
- ``unreadable_families(problem) -> list[Family]`` (what a scrape says when the database
  cannot be read)
- ``METRIC_NAMES``: every family name ``collect_metrics`` can produce
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Literal

import duckdb

from runway_costs.analytics.alert_rules import Severity
from runway_costs.analytics.alert_store import open_alerts
from runway_costs.analytics.forecast import forecast_org
from runway_costs.analytics.limits import limit_use
from runway_costs.analytics.orgs import orgs_with_data
from runway_costs.analytics.spend import query
from runway_costs.core.config import Settings

__all__ = [
    "METRIC_NAMES",
    "Family",
    "Sample",
    "collect_metrics",
    "tag_label",
    "unreadable_families",
]

PREFIX = "runway_costs_"
Kind = Literal["gauge", "counter"]


@dataclass(frozen=True, slots=True)
class Sample:
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True, slots=True)
class Family:
    name: str  # the full sample name (a counter's ends in _total)
    kind: Kind
    help: str
    label_names: tuple[str, ...]
    samples: list[Sample] = field(default_factory=list)

    def add(self, labels: dict[str, str], value: float) -> None:
        self.samples.append(Sample(tuple((k, labels[k]) for k in self.label_names), value))


# name, kind, help, extra labels after org (and tags)
_DECLARED: tuple[tuple[str, Kind, str, tuple[str, ...]], ...] = (
    ("balance_credits", "gauge", "Credit balance at the latest snapshot.", ()),
    (
        "purchase_cap_credits",
        "gauge",
        "Most credits the tier may buy in any rolling 30 days (maxMonthlyCreditSpend).",
        (),
    ),
    (
        "purchases_30d_credits",
        "gauge",
        "Credits bought in the last 30 days, of the days whose purchases are known.",
        (),
    ),
    (
        "purchases_observed_days",
        "gauge",
        "Days of the last 30 whose purchases are known (30: the purchases figure is whole).",
        (),
    ),
    ("spend_month_to_date_credits", "gauge", "Net credits spent this UTC month so far.", ()),
    (
        "month_end_forecast_credits",
        "gauge",
        "Forecast net spend of this UTC month: mid, and its 80% interval (low, high).",
        ("bound",),
    ),
    (
        "runout_seconds",
        "gauge",
        "Seconds until the UTC day the balance is forecast to run out if nothing is "
        "bought (0: today or already). Absent: not within 180 days.",
        (),
    ),
    (
        "cap_bound_seconds",
        "gauge",
        "Seconds until the UTC day the 30-day purchase cap is forecast to bind, buying just "
        "in time. Absent: not within 180 days.",
        (),
    ),
    (
        "model_daily_generations",
        "gauge",
        "Generations in the rolling 24 hours, per model, at the latest snapshot.",
        ("model",),
    ),
    (
        "model_daily_generations_limit",
        "gauge",
        "The tier's daily generation limit per model.",
        ("model",),
    ),
    ("open_alerts", "gauge", "Alerts whose condition still holds, by severity.", ("severity",)),
    (
        "last_success_timestamp_seconds",
        "gauge",
        "Unix time the last successful collection of the organization finished.",
        (),
    ),
    ("last_cycle_http_calls", "gauge", "HTTP calls of the organization's last cycle.", ()),
    ("last_cycle_retries", "gauge", "Retries of the organization's last cycle.", ()),
    ("failed_cycles_total", "counter", "Collection cycles of the organization that failed.", ()),
    ("cycles_total", "counter", "Collection cycles of the organization, failed or not.", ()),
)
DATABASE_READABLE = PREFIX + "database_readable"
SNAPSHOT_AS_OF = PREFIX + "as_of_timestamp_seconds"
METRIC_NAMES: tuple[str, ...] = (
    *(PREFIX + name for name, *_ in _DECLARED),
    DATABASE_READABLE,
    SNAPSHOT_AS_OF,
)


def tag_label(key: str) -> str:
    """A config tag key as a Prometheus label name: ``tag_`` + the key, anything but
    letters, digits and ``_`` as ``_`` (``cost-center`` -> ``tag_cost_center``)."""
    return "tag_" + re.sub(r"[^A-Za-z0-9_]", "_", key)


def _epoch(at: datetime) -> float:
    """Naive UTC -> Unix seconds."""
    return (at - datetime(1970, 1, 1)).total_seconds()


def _seconds_until(day: date | None, as_of: datetime) -> float | None:
    if day is None:
        return None
    return max(_epoch(datetime.combine(day, time())) - _epoch(as_of), 0.0)


def _runs(con: duckdb.DuckDBPyConnection, orgs: Sequence[str], as_of: datetime) -> dict:
    """Per org: last successful finish, the last cycle's calls and retries, cycle counts."""
    rows = query(
        con,
        """
        SELECT org,
               max(finished_at) FILTER (WHERE status = 'ok') AS last_success_at,
               arg_max(http_calls, run_id) AS http_calls,
               arg_max(retries, run_id) AS retries,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               count(*) AS cycles
        FROM collection_runs
        WHERE list_contains($orgs, org) AND started_at <= $as_of
        GROUP BY org
        """,
        {"orgs": list(orgs), "as_of": as_of},
    )
    return {row["org"]: row for row in rows.iter_rows(named=True)}


def _families(tag_keys: Sequence[str]) -> dict[str, Family]:
    base = ("org", *(tag_label(k) for k in tag_keys))
    return {
        name: Family(PREFIX + name, kind, text, (*base, *extra))
        for name, kind, text, extra in _DECLARED
    }


def collect_metrics(
    con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime
) -> list[Family]:
    """Every family for the configured organizations (else every one in the database),
    read from ``con`` (a reader of the published snapshot) at ``as_of`` (naive UTC)."""
    configured = {o.name: dict(o.tags) for o in settings.orgs}
    orgs = list(configured) or orgs_with_data(con)
    tag_keys = sorted({k for tags in configured.values() for k in tags})
    fams = _families(tag_keys)
    known = set(orgs_with_data(con))
    runs = _runs(con, orgs, as_of)
    alerts = open_alerts(con)
    limits = limit_use(con, as_of, orgs)

    for org in orgs:
        tags = configured.get(org, {})
        labels = {"org": org, **{tag_label(k): tags.get(k, "") for k in tag_keys}}
        if org in known:
            fc = forecast_org(con, settings, org, as_of)
            if fc.balance_credits is not None:
                fams["balance_credits"].add(labels, fc.balance_credits)
            if fc.cap_credits is not None:
                fams["purchase_cap_credits"].add(labels, fc.cap_credits)
            fams["purchases_30d_credits"].add(labels, fc.purchases_30d_credits)
            fams["purchases_observed_days"].add(labels, fc.purchases_observed_days)
            fams["spend_month_to_date_credits"].add(labels, fc.month_end.month_to_date)
            me = fc.month_end
            for bound, value in (("low", me.low), ("mid", me.mid), ("high", me.high)):
                fams["month_end_forecast_credits"].add({**labels, "bound": bound}, value)
            dates = (("runout_seconds", fc.runout_date), ("cap_bound_seconds", fc.cap_bound_date))
            for name, day in dates:
                seconds = _seconds_until(day, as_of)
                if seconds is not None:
                    fams[name].add(labels, seconds)
        mine = alerts.filter(alerts["org"] == org) if alerts.height else alerts
        for severity in Severity:
            count = mine.filter(mine["severity"] == severity.value).height if mine.height else 0
            fams["open_alerts"].add({**labels, "severity": severity.value}, count)
        run = runs.get(org)
        if run is not None:
            if run["last_success_at"] is not None:
                fams["last_success_timestamp_seconds"].add(labels, _epoch(run["last_success_at"]))
            fams["last_cycle_http_calls"].add(labels, run["http_calls"])
            fams["last_cycle_retries"].add(labels, run["retries"])
            fams["failed_cycles_total"].add(labels, run["failed"])
            fams["cycles_total"].add(labels, run["cycles"])
        for row in limits.filter(limits["org"] == org).iter_rows(named=True):
            model_labels = {**labels, "model": row["model"]}
            fams["model_daily_generations"].add(model_labels, row["daily_generations"])
            if row["max_daily_generations"] is not None:
                fams["model_daily_generations_limit"].add(
                    model_labels, row["max_daily_generations"]
                )
    return [
        *fams.values(),
        Family(DATABASE_READABLE, "gauge", _READABLE_HELP, (), [Sample((), 1.0)]),
        Family(SNAPSHOT_AS_OF, "gauge", _AS_OF_HELP, (), [Sample((), _epoch(as_of))]),
    ]


_READABLE_HELP = "1 when the published snapshot could be read at this scrape, else 0."
_AS_OF_HELP = "Unix time these figures were computed for (the scrape's clock)."


def unreadable_families(problem: str) -> list[Family]:
    """A scrape of a database that cannot be read (none yet, damaged, busy): only
    ``runway_costs_database_readable 0``, so an alert rule can say so."""
    del problem  # logged by the caller; never a label (it may hold a path)
    return [Family(DATABASE_READABLE, "gauge", _READABLE_HELP, (), [Sample((), 0.0)])]
