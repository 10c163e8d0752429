"""The overview's batched per-organization outlook agrees with ``runway-costs forecast``
(``analytics.forecast.forecast_org``, the oracle here) on a sandbox-collected database."""

from __future__ import annotations

from pathlib import Path

import pytest

from runway_costs.analytics import forecast, views
from runway_costs.core.config import Settings
from tests.conftest import SANDBOX_AT
from tests.dashboard.live import collect_sandbox

pytestmark = pytest.mark.integration


def test_batched_outlook_matches_forecast_org(sandbox, tmp_path: Path) -> None:
    db = tmp_path / "consistency.duckdb"
    collect_sandbox(sandbox, db)
    settings = Settings(db_path=db)
    with views.reader(db) as con:
        orgs = tuple(views.known_orgs(con, settings))
        assert orgs == ("agency", "indie", "studio")
        overview = views.overview(con, settings, views.Scope(orgs, True), SANDBOX_AT)
        at = views.as_of_time(overview.status)
        assert overview.per_org["org"].to_list() == list(orgs)  # the loop below covers all
        # indie spends close to its 10,000-credit cap: the one whose cap binds first
        assert overview.cap_bound_org == "indie"
        assert (
            overview.cap_bound_date == overview.per_org.filter(org="indie")["cap_bound_date"].item()
        )
        for row in overview.per_org.iter_rows(named=True):
            single = forecast.forecast_org(con.cursor(), settings, row["org"], at)
            assert row["runout_date"] == single.runout_date, row["org"]
            assert row["cap_bound_date"] == single.cap_bound_date, row["org"]
            assert row["month_end_mid"] == single.month_end.mid, row["org"]
            assert row["mtd_credits"] == single.month_end.month_to_date, row["org"]
            assert row["balance_credits"] == single.balance_credits, row["org"]
