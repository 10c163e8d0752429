"""The demo's world tells the same story whatever day it starts on: collected over real
HTTP from a sandbox frozen at each instant of ``tests.timecases``, indie's 30-day purchase
cap binds first, an alert is there to show, month-to-date is exactly what the world served
this calendar month, and the overview's batched outlook agrees with ``forecast_org``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from runway_costs.analytics import forecast
from runway_costs.analytics.alerts import check_alerts
from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.core.clock import fixed_clock
from runway_costs.core.config import Settings
from runway_costs.dashboard import views
from runway_costs.sandbox.server import SandboxServer
from tests.collector.support import settings_for
from tests.timecases import Instant, each_instant

pytestmark = pytest.mark.integration
ORGS = ("agency", "indie", "studio")


def served_this_month(sb: SandboxServer, org: str, instant: Instant) -> int:
    """The world's own figures (the oracle): net credits from the 1st through now."""
    world_org, now = sb.world.org(org), sb.world.now()
    day, total = instant.at.date().replace(day=1), 0
    while day <= instant.at.date():
        total += sum(world_org.served_amounts(day, now).values())
        day += timedelta(days=1)
    return total


@each_instant()
def test_same_story_on_any_day(instant: Instant, tmp_path: Path) -> None:
    db = tmp_path / "story.duckdb"
    with SandboxServer(seed=7, now=instant.at.isoformat() + "Z") as sb:
        settings = settings_for(sb, db)
        assert run_cycle_sync(settings, clock=fixed_clock(instant.at)).ok
        alerts = check_alerts(settings, instant.at, dry_run=True).alerts
        expected_mtd = {org: served_this_month(sb, org, instant) for org in ORGS}
    assert alerts, "the demo always has an alert to show"
    plain = Settings(db_path=db)
    with views.reader(db) as con:
        overview = views.overview(con, plain, views.Scope(ORGS, True), instant.at)
        assert overview.cap_bound_org == "indie"  # close to its 10,000-credit cap
        cap_date = overview.cap_bound_date
        assert instant.at.date() < cap_date <= instant.at.date() + timedelta(days=45)
        for row in overview.per_org.iter_rows(named=True):
            single = forecast.forecast_org(con.cursor(), plain, row["org"], instant.at)
            assert single.month_end.month_to_date == expected_mtd[row["org"]], row["org"]
            assert row["mtd_credits"] == single.month_end.month_to_date, row["org"]
            assert row["month_end_mid"] == single.month_end.mid, row["org"]
            assert row["runout_date"] == single.runout_date, row["org"]
            assert row["cap_bound_date"] == single.cap_bound_date, row["org"]
            assert row["balance_credits"] == single.balance_credits, row["org"]
