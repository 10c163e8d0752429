"""Stored outlooks (issue #12): a cycle stores each organization's outlook once, and what
is stored is what ``forecast_org`` computes at the same instant; readers use it only when
it describes the latest cycle."""

from __future__ import annotations

import importlib
import json
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from runway_costs.analytics import alert_rules
from runway_costs.analytics.alerts import evaluate_alerts
from runway_costs.analytics.db import connect_reader
from runway_costs.analytics.forecast import forecast_many, forecast_org
from runway_costs.analytics.outlook import (
    has_outlooks,
    outlook_step,
    stored_outlooks,
    stored_rollup,
)
from runway_costs.analytics.purchases import purchase_headroom, purchases_daily
from runway_costs.analytics.spend import spend_daily
from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.core.clock import fixed_clock
from runway_costs.core.config import Settings
from runway_costs.core.windows import window_start
from runway_costs.sandbox.server import SandboxServer
from tests.collector.support import cli, settings_for, write_config
from tests.conftest import SANDBOX_AT, SANDBOX_CLOCK, SANDBOX_NOW, SANDBOX_SEED
from tests.timecases import Instant, each_instant

pytestmark = pytest.mark.integration

ORGS = ["studio", "agency", "indie"]  # the default sandbox's, in its configured order


def _assert_same(stored, computed) -> None:
    for got, want in zip(stored, computed, strict=True):
        assert got == want
        assert got.daily.equals(want.daily)
        assert got.to_json() == want.to_json()


@each_instant()
def test_a_cycle_stores_what_forecast_org_computes_at_its_instant(tmp_path, instant: Instant):
    db = tmp_path / "o.duckdb"
    with SandboxServer(seed=SANDBOX_SEED, now=instant.at.isoformat() + "Z", faults="none") as sb:
        settings = settings_for(sb, db)
        result = run_cycle_sync(
            settings, clock=fixed_clock(instant.at), after_write=outlook_step(settings)
        )
    assert result.ok
    names = [o.name for o in settings.orgs]
    with connect_reader(db) as con:
        stored = stored_outlooks(con, settings, names, instant.at)
        assert stored is not None
        _assert_same(stored, [forecast_org(con, settings, org, instant.at) for org in names])
    assert [f.to_json()["as_of"] for f in stored] == [
        instant.at.isoformat(timespec="seconds") + "Z"
    ] * len(names)
    # the stored forecast starts on the instant's day and runs 180 days
    assert stored[0].daily["date"][0] == instant.at.date()
    assert stored[0].daily.height == 180


def test_rollup_and_window_spend_match_the_overviews_own_computation(sandbox, tmp_db):
    settings = settings_for(sandbox, tmp_db)
    assert run_cycle_sync(settings, clock=SANDBOX_CLOCK, after_write=outlook_step(settings)).ok
    today = SANDBOX_AT.date()
    with connect_reader(tmp_db) as con:
        rollup = stored_rollup(con, ORGS, SANDBOX_AT)
        assert rollup is not None
        head = purchase_headroom(con, today, ORGS)
        bought = purchases_daily(con, ORGS, window_start(today), today)
        many = forecast_many(
            con,
            ORGS,
            SANDBOX_AT,
            balances=dict(zip(head["org"], head["balance_credits"], strict=True)),
            caps=dict(zip(head["org"], head["cap_credits"], strict=True)),
            past_buys={
                org: frame.sort("date")["purchases"].fill_null(0).to_numpy()
                for (org,), frame in bought.group_by("org")
            },
        )
        daily = spend_daily(con, ORGS, window_start(today), today)
        stored = stored_outlooks(con, settings, ORGS, SANDBOX_AT)
    assert stored is not None
    assert rollup.orgs == ("studio", "agency", "indie")
    assert rollup.month_end == many.month_end
    assert np.array_equal(rollup.future["credits"].to_numpy(), many.future["credits"].to_numpy())
    # the window's summed spend, against spend_daily (a separate query)
    summed = daily.group_by("date").agg(pl.col("credits").sum()).sort("date")
    assert rollup.actual["credits"].to_list() == summed["credits"].to_list()
    assert rollup.actual.height == 30 and rollup.actual["date"][0] == window_start(today)
    for f in stored:  # each org's run-out and cap-bound dates as the Overview finds them
        row = many.per_org.filter(pl.col("org") == f.org).row(0, named=True)
        assert (f.runout_date, f.cap_bound_date) == (row["runout_date"], row["cap_bound_date"])
        assert f.month_end.mid == row["month_end_mid"]


def test_outlooks_stand_only_for_the_latest_cycle_and_its_day(sandbox, tmp_db):
    settings = settings_for(sandbox, tmp_db)
    assert run_cycle_sync(settings, clock=SANDBOX_CLOCK, after_write=outlook_step(settings)).ok
    with connect_reader(tmp_db) as con:
        assert stored_outlooks(con, settings, ORGS) is not None  # "now"
        assert stored_outlooks(con, settings, ORGS, SANDBOX_AT + timedelta(hours=3)) is not None
        # before the cycle, on another day, or for an org it did not compute: none
        assert stored_outlooks(con, settings, ORGS, SANDBOX_AT - timedelta(minutes=1)) is None
        assert stored_outlooks(con, settings, ORGS, datetime(2026, 11, 25, 0, 1)) is None
        assert stored_outlooks(con, settings, [*ORGS, "nobody"], SANDBOX_AT) is None
        assert stored_rollup(con, ORGS[:2], SANDBOX_AT) is None
    # A later cycle that stores none (an older collector, a failed step): stale, not used.
    later = fixed_clock(SANDBOX_AT + timedelta(minutes=15))
    assert run_cycle_sync(settings, "snapshot", clock=later).ok
    with connect_reader(tmp_db) as con:
        assert has_outlooks(con)
        assert stored_outlooks(con, settings, ORGS) is None
        assert stored_rollup(con, ORGS) is None


def test_alerts_from_stored_outlooks_are_the_computed_ones(sandbox, tmp_db, monkeypatch):
    settings = settings_for(sandbox, tmp_db)
    assert run_cycle_sync(settings, clock=SANDBOX_CLOCK, after_write=outlook_step(settings)).ok
    with connect_reader(tmp_db) as con:
        computed = evaluate_alerts(con, settings, SANDBOX_AT, stored=False)

        def no_fit(*_a, **_k):
            raise AssertionError("the stored outlooks were not used")

        for read in ("forecast_orgs", "limits_now", "spend_daily", "_last_successes"):
            monkeypatch.setattr(alert_rules, read, no_fit)
        from_stored = evaluate_alerts(con, settings, SANDBOX_AT)
    assert from_stored == computed
    # a forecast rule among them: the sandbox's agency runs out within a week
    assert [(a.org, a.rule, a.severity) for a in computed] == [("agency", "runout", "warning")]


@pytest.mark.parametrize("orgs", [["agency"], ORGS], ids=["one org", "all orgs"])
def test_overview_from_stored_outlooks_is_the_overview_computed_on_load(
    sandbox, tmp_db, monkeypatch, orgs
):
    from runway_costs.dashboard.views.common import Scope

    page = importlib.import_module("runway_costs.dashboard.views.overview")

    settings = settings_for(sandbox, tmp_db)
    assert run_cycle_sync(settings, clock=SANDBOX_CLOCK, after_write=outlook_step(settings)).ok
    scope = Scope(tuple(orgs), all_orgs=len(orgs) > 1)
    with connect_reader(tmp_db) as con:
        assert page._stored(con, settings, orgs, SANDBOX_AT.date()) is not None
        stored = page.overview(con, settings, scope, SANDBOX_AT)
        monkeypatch.setattr(page, "_stored", lambda *_a: None)  # fitted on load instead
        computed = page.overview(con, settings, scope, SANDBOX_AT)
    for name in ("per_org", "window"):
        assert getattr(stored, name).equals(getattr(computed, name)), name
    same = {k: v for k, v in vars(stored).items() if k not in ("per_org", "window")}
    assert same == {k: v for k, v in vars(computed).items() if k not in ("per_org", "window")}


def test_collect_stores_outlooks_and_the_commands_read_them(sandbox, tmp_path):
    """`collect` (the installed command) stores the outlooks; `forecast --json` and
    `alerts check --dry-run --json` then print from them what they compute at the same
    instant with --as-of."""
    db, cfg = tmp_path / "runway.duckdb", tmp_path / "orgs.toml"
    env = write_config(cfg, sandbox)
    done = cli("collect", "--config", str(cfg), "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    with connect_reader(db) as con:
        assert stored_outlooks(con, Settings(db_path=db), ORGS) is not None
    common = ["--config", str(cfg), "--db", str(db)]
    for command in (["forecast", "--json"], ["alerts", "check", "--dry-run", "--json"]):
        stored = cli(*command, *common, env=env)
        computed = cli(*command, "--as-of", SANDBOX_NOW, *common, env=env)
        assert stored.returncode == computed.returncode == 0, stored.stderr + computed.stderr
        assert json.loads(stored.stdout) == json.loads(computed.stdout)
    forecasts = json.loads(cli("forecast", "--json", *common, env=env).stdout)
    assert [f["org"] for f in forecasts] == ORGS
    assert {f["as_of"] for f in forecasts} == {"2026-11-24T12:00:00Z"}


def test_a_later_cycle_the_same_day_reuses_unchanged_intervals(sandbox, tmp_db, monkeypatch):
    """A snapshot cycle changes no complete day: each org's interval ratios are reused
    from the last cycle (no past origin refitted), and the outlook is still forecast_org's."""
    from runway_costs.analytics import forecast

    settings = settings_for(sandbox, tmp_db)
    assert run_cycle_sync(settings, clock=SANDBOX_CLOCK, after_write=outlook_step(settings)).ok
    refitted: list[int] = []
    fit = forecast._origin_ratios

    def counting(ys, last_day, horizon):
        refitted.append(sum(len(y) for y in ys))
        return fit(ys, last_day, horizon)

    monkeypatch.setattr(forecast, "_origin_ratios", counting)
    later = SANDBOX_AT + timedelta(minutes=15)
    step = outlook_step(settings)
    assert run_cycle_sync(settings, "snapshot", clock=fixed_clock(later), after_write=step).ok
    # the orgs' ratios all came from the store; only the roll-up's summed series (one,
    # 90 complete days) is refitted
    assert refitted == [0, 90]
    monkeypatch.undo()
    with connect_reader(tmp_db) as con:
        stored = stored_outlooks(con, settings, ORGS, later)
        assert stored is not None
        _assert_same(stored, [forecast_org(con, settings, org, later) for org in ORGS])
    assert stored[0].as_of == later
