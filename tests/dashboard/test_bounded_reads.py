"""Reads every page shares, without history (issue #12): the sidebar's organizations from
the collector's per-org state, tier spend from its kept totals, one org's alert history.

Expected figures are worked out by hand from tests/dashboard/seed.py: usage alpha 02-27
100, 03-01 200 + 400, 03-10 -50, 03-20 300 (950); beta 03-05 1000, 03-20 120 (1,120).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from runway_costs.analytics import limits as limits_mod
from runway_costs.analytics import orgs as orgs_mod
from runway_costs.analytics import tiers as tiers_mod
from runway_costs.collector.store import ensure_schema
from runway_costs.core.config import Settings
from runway_costs.dashboard import views

ALERTS_SCHEMA = Path(__file__).resolve().parents[2] / "runway_costs/analytics/alerts_schema.sql"


def _keep_write_state(db: Path) -> None:
    """What a database written by the collector has: its per-org write state."""
    with duckdb.connect(str(db)) as con:
        ensure_schema(con)


def _add_failed_only_org(db: Path) -> None:
    with duckdb.connect(str(db)) as con:
        con.execute(
            """INSERT INTO collection_runs (org, kind, started_at, finished_at, status, error,
               http_calls, retries) VALUES ('gamma', 'full', TIMESTAMP '2025-03-20 09:00:00',
               TIMESTAMP '2025-03-20 09:01:00', 'failed', 'HTTP 401', 1, 0)"""
        )


@pytest.mark.parametrize("kept", [True, False])
def test_known_orgs_with_and_without_the_write_state(seeded_db: Path, kept: bool) -> None:
    if kept:
        _keep_write_state(seeded_db)
    _add_failed_only_org(seeded_db)  # a failed run only: neither snapshot nor usage
    with views.reader(seeded_db) as con:
        assert orgs_mod.write_state_kept(con) is kept
        assert orgs_mod.orgs_with_data_kept(con) == (["alpha", "beta", "gamma"] if kept else None)
        assert views.known_orgs(con, Settings(db_path=seeded_db)) == ["alpha", "beta", "gamma"]


@pytest.mark.parametrize("kept", [True, False])
def test_tier_spend_through_a_day(seeded_db: Path, kept: bool) -> None:
    if kept:
        _keep_write_state(seeded_db)
    with views.reader(seeded_db) as con:
        early = tiers_mod.tier_facts(con, datetime(2025, 3, 10, 12), ["alpha", "beta"])
        late = tiers_mod.tier_facts(con, datetime(2025, 3, 20, 12), ["beta", "alpha"])
    # through 03-10: alpha 100 + 200 + 400 - 50 = 650, beta 1,000
    assert early.select("org", "spend_credits").rows() == [("alpha", 650), ("beta", 1000)]
    assert late.select("org", "spend_credits").rows() == [("beta", 1120), ("alpha", 950)]


def test_one_org_alert_history_is_its_own_latest(seeded_db: Path) -> None:
    with duckdb.connect(str(seeded_db)) as con:
        con.execute(ALERTS_SCHEMA.read_text(encoding="utf-8"))
        con.execute(  # alpha's one event, then 600 newer ones of beta's
            """INSERT INTO alert_events (event_at, org, rule, target, key, status, severity,
                                         message)
               SELECT TIMESTAMP '2025-03-01 00:00:00' + i * INTERVAL 1 MINUTE,
                      CASE WHEN i = 0 THEN 'alpha' ELSE 'beta' END, 'balance_low', '', '',
                      'fired', 'warning', 'low balance'
               FROM range(601) t(i) ORDER BY i"""
        )
    settings = Settings(db_path=seeded_db)
    with views.reader(seeded_db) as con:
        alpha = views.alerts(con, settings, views.Scope(("alpha",)))
        beta = views.alerts(con, settings, views.Scope(("beta",)))
    assert alpha.history["org"].to_list() == ["alpha"]
    assert beta.history.height == 500  # the page's newest 500


@pytest.mark.parametrize("kept", [True, False])
def test_latest_model_rows_from_the_kept_state_or_the_snapshots(seeded_db: Path, kept: bool):
    if kept:
        _keep_write_state(seeded_db)
    with views.reader(seeded_db) as con:

        def latest(at: datetime) -> tuple[str, list[tuple]]:
            sql, params = limits_mod.latest_models_query(con, "alpha", at)
            rows = con.execute(
                f"SELECT model, daily_generations, taken_at FROM ({sql}) ORDER BY model", params
            ).fetchall()
            return sql, rows

        after, rows_after = latest(datetime(2025, 3, 20, 12))
        before, rows_before = latest(datetime(2025, 3, 19, 12))  # before alpha's 03-20 rows
    assert rows_after == [
        ("gen4.5", 25, datetime(2025, 3, 20, 9)),
        ("veo3.1", 45, datetime(2025, 3, 20, 9)),
    ]
    assert rows_before == [("gen4.5", 10, datetime(2025, 3, 19, 8))]
    assert ("model_latest" in after) is kept  # one row per model, no window over history
    assert "model_snapshots" in before


@pytest.mark.parametrize(
    ("now", "stale"),
    [
        (datetime(2025, 3, 20, 12), False),  # the success is in the recent runs read first
        (datetime(2025, 4, 20, 12), True),  # none in the last 2 days: every run is read
    ],
)
def test_collection_status_from_recent_runs_or_all(seeded_db: Path, now, stale) -> None:
    settings = Settings(db_path=seeded_db)
    with views.reader(seeded_db) as con:
        every = views.collection_status(con, settings, views.Scope(("alpha", "beta"), True), now)
        beta = views.collection_status(con, settings, views.Scope(("beta",)), now)
    # ok runs finished 03-20 10:00; beta's snapshot run failed at 11:00, after it
    for status in (every, beta):
        assert (status.last_success, status.failed_since) == (datetime(2025, 3, 20, 10), 1)
        assert (status.as_of.isoformat(), status.stale) == ("2025-03-20", stale)
