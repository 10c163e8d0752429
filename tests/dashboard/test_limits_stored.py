"""The Limits page on a sandbox-collected database (real cycles with the outlook step, a
real DuckDB file, the published snapshot): the same page from the cycle's stored figures
as computed on load, after the first cycle and after a later one that started from what
the first kept (its cap runs and the rows in force before the 30-day window)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from runway_costs.analytics import outlook as outlook_mod
from runway_costs.analytics.db import connect_reader
from runway_costs.analytics.outlook import outlook_step
from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.core.clock import fixed_clock
from runway_costs.dashboard import views
from runway_costs.dashboard.views.common import Scope
from tests.collector.support import settings_for
from tests.conftest import SANDBOX_AT, SANDBOX_CLOCK

pytestmark = pytest.mark.integration

ORGS = ("studio", "agency", "indie")  # the default sandbox's


def _same_both_ways(db, settings, monkeypatch, scope: Scope) -> None:
    with connect_reader(db) as con:
        status = views.collection_status(con, settings, scope, SANDBOX_AT + timedelta(hours=1))
        at = views.as_of_time(status)  # the last collection, as the page asks
        start = at.date() - timedelta(days=89)
        assert outlook_mod.stored_limit_page(con, scope.org_list, at.date()) is not None
        stored = views.limits(con, settings, scope, start, at)
        with monkeypatch.context() as m:
            m.setattr(outlook_mod, "stored_limit_page", lambda *_a: None)
            computed = views.limits(con, settings, scope, start, at)
    for name in ("current", "history", "tiers"):
        assert getattr(stored, name).equals(getattr(computed, name)), name
    assert not stored.current.is_empty()
    assert stored.tiers["tier"].null_count() < stored.tiers.height


def test_the_limits_page_from_stored_figures_is_the_computed_page(sandbox, tmp_db, monkeypatch):
    settings = settings_for(sandbox, tmp_db)
    assert run_cycle_sync(settings, clock=SANDBOX_CLOCK, after_write=outlook_step(settings)).ok
    for scope in (Scope(("agency",)), Scope(ORGS, all_orgs=True)):
        _same_both_ways(tmp_db, settings, monkeypatch, scope)
    # a later cycle starts from what the first kept
    later = fixed_clock(SANDBOX_AT + timedelta(minutes=15))
    assert run_cycle_sync(settings, "snapshot", clock=later, after_write=outlook_step(settings)).ok
    with connect_reader(tmp_db) as con:
        kept = con.execute("SELECT DISTINCT kept_at, anchors_before FROM outlook_tiers").fetchall()
    # the runs kept a day behind the second cycle; the window's first day unchanged
    assert kept == [
        (
            SANDBOX_AT + timedelta(minutes=15) - timedelta(days=1),
            SANDBOX_AT.date() - timedelta(days=29),
        )
    ]
    for scope in (Scope(("agency",)), Scope(ORGS, all_orgs=True)):
        _same_both_ways(tmp_db, settings, monkeypatch, scope)
