"""``forecast_orgs`` (one read of each kind for many organizations, what ``forecast --json``
and ``forecast_all`` use) says exactly what ``forecast_org`` says of each organization."""

from __future__ import annotations

from datetime import datetime

import pytest

from runway_costs.analytics.db import connect_reader
from runway_costs.analytics.forecast import (
    forecast_all,
    forecast_org,
    forecast_orgs,
    month_end_forecast,
    month_end_forecasts,
)
from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.core.config import Settings
from tests.collector.support import settings_for
from tests.conftest import SANDBOX_AT, SANDBOX_CLOCK

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "as_of",
    [
        SANDBOX_AT,  # the collection's instant
        datetime(2026, 11, 24, 0, 5),  # today barely begun
        datetime(2026, 10, 31, 23, 0),  # a month's last hour, before purchases were seen
        datetime(2026, 11, 1, 0, 0),  # a month's first instant
    ],
)
def test_batched_forecasts_equal_forecast_org_for_every_org(sandbox, tmp_db, as_of):
    assert run_cycle_sync(settings_for(sandbox, tmp_db), clock=SANDBOX_CLOCK).ok
    settings = Settings(db_path=tmp_db)
    with connect_reader(tmp_db) as con:
        orgs = ["studio", "agency", "indie", "nobody", "agency"]  # unknown and repeated too
        batched = forecast_orgs(con, settings, orgs, as_of)
        one_by_one = [forecast_org(con, settings, org, as_of) for org in orgs]
        every = forecast_all(con, settings, as_of)
    assert [f.org for f in batched] == orgs
    assert [f.org for f in every] == ["agency", "indie", "studio"]
    for got, want in zip(batched, one_by_one, strict=True):
        assert got == want
        assert got.daily.equals(want.daily)
        assert got.to_json() == want.to_json()
    # the one cycle read balances at SANDBOX_AT: before it, none is known
    assert all((f.balance_credits is not None) == (as_of >= SANDBOX_AT) for f in batched[:3])
    assert batched[3].balance_credits is None and batched[3].month_end.mid == 0
    by_org = {f.org: f.to_json() for f in one_by_one}
    assert [f.to_json() for f in every] == [by_org[o] for o in ("agency", "indie", "studio")]


@pytest.mark.parametrize("model", [None, "gen4_turbo"])
def test_month_end_forecasts_equal_month_end_forecast_for_every_org(sandbox, tmp_db, model):
    assert run_cycle_sync(settings_for(sandbox, tmp_db), clock=SANDBOX_CLOCK).ok
    orgs = ["studio", "agency", "indie", "nobody", "agency"]
    with connect_reader(tmp_db) as con:
        batched = month_end_forecasts(con, orgs, SANDBOX_AT, model)
        one_by_one = [month_end_forecast(con, org, SANDBOX_AT, model) for org in orgs]
        assert month_end_forecasts(con, [], SANDBOX_AT) == []
    assert batched == one_by_one
    assert batched[3].mid == 0 and batched[0].mid > 0  # nobody spends nothing
