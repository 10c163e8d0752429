"""The Limits page for several organizations reads the collector's limit roll-up
(``org_limit_daily``) and 30 days of ``model_daily``: the same figures as carrying every
(org, model) over every day, on a sandbox-collected database and on hand-seeded rows."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb

from runway_costs.analytics.limits import limit_rollup_kept, org_limit_history
from runway_costs.collector.store import rebuild_limit_rollup
from runway_costs.core.config import Settings
from runway_costs.dashboard.views.common import Scope
from runway_costs.dashboard.views.limits import limits as views_limits
from tests.analytics.test_limits import hand_seeded, old_way
from tests.dashboard.live import SANDBOX_TODAY, collect_sandbox

ROLLUP = ("model_day_start", "org_limit_daily")


def test_the_limits_view_is_the_same_with_and_without_the_rollup(tmp_path):
    con = hand_seeded(tmp_path / "limits.duckdb")
    settings = Settings(db_path=tmp_path / "limits.duckdb")
    scope = Scope(("acme", "beta", "gamma"), all_orgs=True)
    at = datetime(2026, 11, 5, 18)
    with_rollup = views_limits(con, settings, scope, date(2026, 11, 2), at)
    con.execute("DELETE FROM meta WHERE key = 'limit_rollup'")  # an older snapshot
    assert not limit_rollup_kept(con)
    without = views_limits(con, settings, scope, date(2026, 11, 2), at)
    assert with_rollup.history.equals(without.history)
    assert with_rollup.current.equals(without.current)
    assert with_rollup.tiers.equals(without.tiers)
    assert len(with_rollup.history) == 11


def test_sandbox_collected_rollup_equals_the_old_way_and_the_rebuild(sandbox, tmp_path):
    db = tmp_path / "runway.duckdb"
    collect_sandbox(sandbox, db)
    con = duckdb.connect(str(db))
    assert limit_rollup_kept(con)
    orgs = [r[0] for r in con.execute("SELECT DISTINCT org FROM org_latest ORDER BY 1").fetchall()]
    start = SANDBOX_TODAY - timedelta(days=89)
    got = org_limit_history(con, orgs, start, SANDBOX_TODAY, all_orgs=True).sort("org", "date")
    assert got.equals(old_way(con, orgs, start, SANDBOX_TODAY).select("org", "date", "used"))
    assert got["used"].drop_nulls().len() > 0
    written = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ROLLUP}
    rebuild_limit_rollup(con)  # the migration's path gives the writer's rows
    assert {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ROLLUP} == (
        written
    )
    settings = Settings(db_path=db)
    scope = Scope(tuple(orgs), all_orgs=True)
    at = datetime.combine(SANDBOX_TODAY, datetime.min.time()) + timedelta(hours=12)
    with_rollup = views_limits(con, settings, scope, start, at)
    con.execute("DELETE FROM meta WHERE key = 'limit_rollup'")
    without = views_limits(con, settings, scope, start, at)
    assert with_rollup.history.equals(without.history)
    assert with_rollup.current.equals(without.current)
    assert with_rollup.tiers.equals(without.tiers)
