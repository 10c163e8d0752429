"""The Limits page's figures stored by the cycle's outlook step (issue #12): the "now" table,
the limits the tier is matched on and the tier facts, equal to what the page computes at
the same instant (hand values, and stored vs computed), used only while current; and the
cap's run kept a day behind, from which a cycle reads only the snapshots after it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pytest

from runway_costs.analytics import outlook as outlook_mod
from runway_costs.analytics.limits import (
    LimitAnchors,
    limit_anchors,
    limit_summary,
    limits_at,
    limits_now,
)
from runway_costs.analytics.outlook import KEEP_BEHIND, outlook_step, stored_limit_page
from runway_costs.analytics.tiers import CapRuns, cap_runs, latest_limits, tier_facts
from runway_costs.collector.store import rebuild_write_state
from runway_costs.core.config import Settings
from runway_costs.dashboard.views.common import Scope
from runway_costs.dashboard.views.limits import limits as views_limits
from tests.analytics.conftest import add_run, add_snapshot, add_usage, new_db
from tests.analytics.test_limits import hand_seeded

ORGS = ["acme", "beta", "gamma"]
STEP_AT = datetime(2026, 11, 5, 18)  # the cycle's instant
PAGE_AT = datetime(2026, 11, 5, 17)  # the page's: the last collection, before the step


def _seeded(tmp_path):
    """test_limits' hand-seeded models (a limit 0, NULL limits, carried days, an org with
    rows only before the window), caps and spend for the tiers, and a run per org."""
    con = hand_seeded(tmp_path / "limits.duckdb")
    add_snapshot(con, "acme", datetime(2026, 11, 1), 5000, cap=10_000)
    add_snapshot(con, "acme", datetime(2026, 11, 3, 12), 9000, cap=50_000)
    add_snapshot(con, "acme", datetime(2026, 11, 5, 6), 8000, cap=50_000)
    add_snapshot(con, "beta", datetime(2026, 11, 3, 10), 100, cap=10_000)
    add_usage(con, "acme", date(2026, 11, 4), "gen4.5", 3000)
    for org in ORGS:
        add_run(con, org, PAGE_AT)
    return con, Settings(db_path=tmp_path / "limits.duckdb")


def test_stored_now_table_and_tier_facts_hand_values(tmp_path):
    con, settings = _seeded(tmp_path)
    outlook_step(settings)(con, STEP_AT)
    page = stored_limit_page(con, ORGS, STEP_AT.date())
    assert page is not None
    columns = ("org", "model", "daily_generations", "max_daily_generations", "usage_ratio")
    assert page.current.select(
        *columns, "max_concurrent_generations", "observed_at", "peak_7d", "days_at_limit_30d"
    ).rows() == [
        # 120 now; the busiest day of 10-30..11-05 is 11-04 (210), the one day at the limit
        ("acme", "aleph", 90, 100, 0.9, 2, datetime(2026, 11, 5, 3), 90, 0),
        ("acme", "gen4.5", 120, 200, 0.6, 2, datetime(2026, 11, 4, 20), 210, 1),
        ("acme", "kling3.0_pro", 5, None, None, None, datetime(2026, 11, 2, 12), 5, 0),
        ("acme", "veo3.1", 500, 0, None, 2, datetime(2026, 11, 3, 8), 500, 0),  # limit 0
        ("beta", "kling3.0_pro", 7, None, None, None, datetime(2026, 11, 3, 10), 7, 0),
        ("gamma", "gen4.5", 180, 200, 0.9, 2, datetime(2026, 10, 20), 180, 0),  # carried
    ]
    assert page.in_force.sort("org", "model").rows() == [
        ("acme", "aleph", 2, 100),
        ("acme", "gen4.5", 2, 200),
        ("acme", "kling3.0_pro", None, None),
        ("acme", "veo3.1", 2, 0),
        ("beta", "kling3.0_pro", None, None),
        ("gamma", "gen4.5", 2, 200),
    ]
    assert page.facts.rows() == [  # in the order asked
        ("acme", 50_000, datetime(2026, 11, 3, 12), False, 3000),
        ("beta", 10_000, datetime(2026, 11, 3, 10), True, 0),
        ("gamma", None, None, False, 0),  # no snapshot of the org: no cap
    ]
    # another order, a subset
    subset = stored_limit_page(con, ["gamma", "acme"], STEP_AT.date())
    assert subset is not None
    assert subset.facts["org"].to_list() == ["gamma", "acme"]


def test_stored_figures_are_the_computed_ones_at_the_same_instant(tmp_path):
    con, settings = _seeded(tmp_path)
    outlook_step(settings)(con, STEP_AT)
    page = stored_limit_page(con, ORGS, STEP_AT.date())
    assert page is not None
    current, before = limit_summary(con, ORGS, STEP_AT.date())
    today = latest_limits(con, STEP_AT, ORGS, datetime(2026, 11, 5))
    assert page.current.equals(current)
    assert page.in_force.sort("org", "model").equals(
        limits_at(before, today, STEP_AT).sort("org", "model")
    )
    assert page.facts.equals(tier_facts(con, STEP_AT, ORGS))


@pytest.mark.parametrize("orgs", [["acme"], ORGS], ids=["one org", "all orgs"])
def test_the_limits_view_is_the_same_from_stored_figures(tmp_path, monkeypatch, orgs):
    con, settings = _seeded(tmp_path)
    outlook_step(settings)(con, STEP_AT)
    scope = Scope(tuple(orgs), all_orgs=len(orgs) > 1)
    read: list[int] = []
    real = outlook_mod.stored_limit_page

    def counting(*args):
        found = real(*args)
        read.append(found is not None)
        return found

    monkeypatch.setattr(outlook_mod, "stored_limit_page", counting)
    stored = views_limits(con, settings, scope, date(2026, 11, 2), PAGE_AT)
    monkeypatch.setattr(outlook_mod, "stored_limit_page", lambda *_a: None)
    computed = views_limits(con, settings, scope, date(2026, 11, 2), PAGE_AT)
    assert read == [True]
    for name in ("current", "history", "tiers"):
        assert getattr(stored, name).equals(getattr(computed, name)), name
    assert stored.tiers.filter(pl.col("org") == "acme")["tier"].to_list() == [2]  # by cap
    assert stored.tiers.filter(pl.col("org") == "acme")["days_at_tier"].to_list() == [2.21]


def test_stored_figures_stand_only_for_the_latest_collection_and_its_day(tmp_path):
    con, settings = _seeded(tmp_path)
    assert stored_limit_page(con, ORGS, STEP_AT.date()) is None  # no step yet
    outlook_step(settings)(con, STEP_AT)
    assert stored_limit_page(con, ORGS, STEP_AT.date()) is not None
    assert stored_limit_page(con, ORGS, date(2026, 11, 4)) is None  # another day (--as-of)
    assert stored_limit_page(con, [*ORGS, "nobody"], STEP_AT.date()) is None
    add_run(con, "beta", STEP_AT + timedelta(minutes=15))  # collected since: stale
    assert stored_limit_page(con, ORGS, STEP_AT.date()) is None
    outlook_step(settings)(con, STEP_AT + timedelta(minutes=20))
    assert stored_limit_page(con, ORGS, STEP_AT.date()) is not None
    con.execute("DROP TABLE outlook_tiers")  # a snapshot stored by an older layout
    assert stored_limit_page(con, ORGS, STEP_AT.date()) is None


def test_an_org_without_models_or_snapshots(tmp_path):
    con = new_db(tmp_path / "empty.duckdb")
    add_usage(con, "quiet", date(2026, 11, 5), "gen4.5", 40)
    add_run(con, "quiet", PAGE_AT)
    settings = Settings(db_path=tmp_path / "empty.duckdb")
    outlook_step(settings)(con, STEP_AT)
    page = stored_limit_page(con, ["quiet"], STEP_AT.date())
    assert page is not None
    assert page.current.is_empty() and page.in_force.is_empty()
    assert page.facts.rows() == [("quiet", None, None, False, 40)]
    data = views_limits(con, settings, Scope(("quiet",)), date(2026, 11, 2), PAGE_AT)
    assert data.current.is_empty()
    assert data.tiers["tier"].to_list() == [None]


# --- the cap's run kept a day behind ---------------------------------------------------

CAPS = {  # org -> (taken_at, cap), written in time order
    "acme": [
        (datetime(2026, 11, 1), 10_000),
        (datetime(2026, 11, 2), 10_000),
        (datetime(2026, 11, 3), 50_000),
        (datetime(2026, 11, 4), 50_000),
        (datetime(2026, 11, 5, 6), 10_000),  # back down
        (datetime(2026, 11, 5, 12), 10_000),
    ],
    "beta": [(datetime(2026, 11, 1, 9), 200_000), (datetime(2026, 11, 4, 9), 200_000)],
    "delta": [(datetime(2026, 11, 4, 12), 50_000)],  # first snapshot late
}
RUN_ORGS = ["acme", "beta", "gamma", "delta"]  # gamma: never a snapshot


def _caps(tmp_path):
    con = new_db(tmp_path / "caps.duckdb")
    for org, rows in CAPS.items():
        for at, cap in rows:
            add_snapshot(con, org, at, 1000, cap=cap)
    return con


def test_cap_runs_hand_values(tmp_path):
    con = _caps(tmp_path)
    rows = cap_runs(con, datetime(2026, 11, 5, 18), RUN_ORGS).rows
    assert rows.rows() == [
        ("acme", 10_000, datetime(2026, 11, 5, 6), False),
        ("beta", 200_000, datetime(2026, 11, 1, 9), True),
        ("gamma", None, None, False),
        ("delta", 50_000, datetime(2026, 11, 4, 12), True),
    ]
    assert cap_runs(con, datetime(2026, 11, 4, 1), RUN_ORGS).rows.rows() == [
        ("acme", 50_000, datetime(2026, 11, 3), False),
        ("beta", 200_000, datetime(2026, 11, 1, 9), True),
        ("gamma", None, None, False),
        ("delta", None, None, False),  # nothing yet
    ]


INSTANTS = [
    datetime(2026, 10, 31),  # before every snapshot
    datetime(2026, 11, 1),  # at acme's first
    datetime(2026, 11, 2, 12),
    datetime(2026, 11, 3),  # at the change
    datetime(2026, 11, 4, 10),
    datetime(2026, 11, 5, 6),  # at the change back
    datetime(2026, 11, 5, 9),
    datetime(2026, 11, 6),
]


def test_a_kept_run_plus_the_snapshots_after_it_is_the_whole_history(tmp_path):
    con = _caps(tmp_path)
    for i, kept_at in enumerate(INSTANTS):
        kept = cap_runs(con, kept_at, RUN_ORGS)
        for at in INSTANTS[i:]:
            want = cap_runs(con, at, RUN_ORGS).rows
            assert cap_runs(con, at, RUN_ORGS, kept).rows.equals(want), (kept_at, at)
            facts = tier_facts(con, at, RUN_ORGS, kept)
            assert facts.equals(tier_facts(con, at, RUN_ORGS)), (kept_at, at)
            # kept twice over (as cycle after cycle does)
            for mid in INSTANTS[i : INSTANTS.index(at) + 1]:
                chained = cap_runs(con, at, RUN_ORGS, cap_runs(con, mid, RUN_ORGS, kept))
                assert chained.rows.equals(want), (kept_at, mid, at)
    with pytest.raises(ValueError, match="after"):
        cap_runs(
            con, datetime(2026, 11, 1), RUN_ORGS, cap_runs(con, datetime(2026, 11, 2), RUN_ORGS)
        )
    # an org the kept runs do not hold reads all its history
    partial = cap_runs(con, datetime(2026, 11, 2, 12), ["beta"])
    assert cap_runs(con, datetime(2026, 11, 6), RUN_ORGS, partial).rows.equals(
        cap_runs(con, datetime(2026, 11, 6), RUN_ORGS).rows
    )


def test_the_step_keeps_runs_a_day_behind_and_reads_only_after_them(tmp_path, monkeypatch):
    con = _caps(tmp_path)
    for org in RUN_ORGS:
        add_run(con, org, datetime(2026, 11, 5, 12))
    settings = Settings(db_path=tmp_path / "caps.duckdb")
    outlook_step(settings)(con, datetime(2026, 11, 5, 12))
    kept = con.execute("SELECT DISTINCT kept_at FROM outlook_tiers").fetchall()
    assert kept == [(datetime(2026, 11, 5, 12) - KEEP_BEHIND,)]
    assert con.execute(
        "SELECT org, kept_cap, kept_since, kept_first FROM outlook_tiers ORDER BY org"
    ).fetchall() == [  # each run at 11-04 12:00
        ("acme", 50_000, datetime(2026, 11, 3), False),
        ("beta", 200_000, datetime(2026, 11, 1, 9), True),
        ("delta", 50_000, datetime(2026, 11, 4, 12), True),
        ("gamma", None, None, False),
    ]
    # The next day: acme goes up to 200,000. The step starts from the kept runs: its
    # reads of org_snapshots begin after 11-04 12:00 (none from all history).
    add_snapshot(con, "acme", datetime(2026, 11, 6, 9), 1000, cap=200_000)
    for org in RUN_ORGS:
        add_run(con, org, datetime(2026, 11, 6, 9))
    seen: list[CapRuns | None] = []
    real = outlook_mod.cap_runs

    def spying(con_, as_of, orgs, runs=None):
        seen.append(runs)
        return real(con_, as_of, orgs, runs)

    monkeypatch.setattr(outlook_mod, "cap_runs", spying)
    at = datetime(2026, 11, 6, 10)
    outlook_step(settings)(con, at)
    assert [r.at if r is not None else None for r in seen] == [datetime(2026, 11, 4, 12)]
    page = stored_limit_page(con, RUN_ORGS, at.date())
    assert page is not None
    assert page.facts.select("org", "cap_credits", "cap_since", "since_first_snapshot").rows() == [
        ("acme", 200_000, datetime(2026, 11, 6, 9), False),
        ("beta", 200_000, datetime(2026, 11, 1, 9), True),
        ("gamma", None, None, False),
        ("delta", 50_000, datetime(2026, 11, 4, 12), True),
    ]
    assert page.facts.equals(tier_facts(con, at, RUN_ORGS))
    # A clock set back before the kept instant: all history again, and still right.
    seen.clear()
    anchored: list[LimitAnchors | None] = []
    real_anchors = outlook_mod.limit_anchors

    def spying_anchors(con_, orgs, before, kept=None):
        anchored.append(kept)
        return real_anchors(con_, orgs, before, kept)

    monkeypatch.setattr(outlook_mod, "limit_anchors", spying_anchors)
    back = datetime(2026, 11, 3, 12)
    add_run(con, "acme", back)
    outlook_step(settings)(con, back)
    assert seen == [None]
    assert anchored == [None]
    stored = outlook_mod.query(  # not current (a run after it): read the rows themselves
        con,
        "SELECT org, cap_credits, cap_since, since_first_snapshot, spend_credits "
        "FROM outlook_tiers ORDER BY list_position($orgs::VARCHAR[], org)",
        {"orgs": RUN_ORGS},
    )
    assert stored.equals(tier_facts(con, back, RUN_ORGS))
    assert stored.row(0) == ("acme", 50_000, datetime(2026, 11, 3), False, 0)
    # the anchors kept at 11-06's window (10-08) are after this window's first day (10-05):
    # every earlier day again
    assert con.execute("SELECT DISTINCT anchors_before FROM outlook_tiers").fetchall() == [
        (date(2026, 10, 5),)
    ]


# --- the rows in force before the "now" table's window, kept --------------------------


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def test_kept_anchors_plus_the_days_since_are_every_earlier_day(tmp_path):
    con = hand_seeded(tmp_path / "limits.duckdb")
    # the 30-day window's first day moves over the seeded rows (10-20 to 11-05)
    firsts = _days(date(2026, 10, 18), date(2026, 11, 7))[::2]
    assert limit_anchors(con, ORGS, date(2026, 11, 3)).rows.sort("org", "model").rows() == [
        ("acme", "gen4.5", date(2026, 11, 2), 100, 200, 2, datetime(2026, 11, 2, 9)),
        ("acme", "kling3.0_pro", date(2026, 11, 2), 5, None, None, datetime(2026, 11, 2, 12)),
        ("gamma", "gen4.5", date(2026, 10, 20), 180, 200, 2, datetime(2026, 10, 20)),
    ]
    for i, kept_on in enumerate(firsts):
        kept = limit_anchors(con, ORGS, kept_on)
        for first in firsts[i:]:
            want = limit_anchors(con, ORGS, first).rows.sort("org", "model")
            got = limit_anchors(con, ORGS, first, kept)
            assert got.rows.sort("org", "model").equals(want), (kept_on, first)
            as_of = first + timedelta(days=29)
            for computed, stored in zip(
                limit_summary(con, ORGS, as_of),
                limit_summary(con, ORGS, as_of, anchors=got),
                strict=True,
            ):
                assert stored.equals(computed), (kept_on, first)
    # an org the kept anchors do not hold reads every earlier day
    partial = limit_anchors(con, ["beta"], date(2026, 10, 25))
    full = limit_anchors(con, ORGS, date(2026, 11, 6)).rows.sort("org", "model")
    assert (
        limit_anchors(con, ORGS, date(2026, 11, 6), partial).rows.sort("org", "model").equals(full)
    )
    with pytest.raises(ValueError, match="window starts"):
        limit_summary(con, ORGS, date(2026, 12, 1), anchors=partial)


def test_the_step_keeps_anchors_and_reads_only_the_days_since(tmp_path, monkeypatch):
    con, settings = _seeded(tmp_path)
    outlook_step(settings)(con, STEP_AT)
    assert con.execute("SELECT DISTINCT anchors_before FROM outlook_tiers").fetchall() == [
        (date(2026, 10, 7),)  # 11-05 - 29 days
    ]
    seen: list[LimitAnchors | None] = []
    real = outlook_mod.limit_anchors

    def spying(con_, orgs, before, kept=None):
        seen.append(kept)
        return real(con_, orgs, before, kept)

    monkeypatch.setattr(outlook_mod, "limit_anchors", spying)
    later = datetime(2026, 11, 20, 12)  # first day 10-22: gamma's 10-20 row is now before it
    for org in ORGS:
        add_run(con, org, later)
    outlook_step(settings)(con, later)
    assert [(k.before, sorted(k.orgs)) for k in seen if k is not None] == [
        (date(2026, 10, 7), ORGS)
    ]
    page = stored_limit_page(con, ORGS, later.date())
    assert page is not None
    assert page.current.equals(limit_summary(con, ORGS, later.date())[0])
    assert con.execute("SELECT org, model, date FROM outlook_limit_anchors").fetchall() == [
        ("gamma", "gen4.5", date(2026, 10, 20))
    ]


def test_limits_now_from_model_latest_is_the_computed_one(tmp_path):
    con = hand_seeded(tmp_path / "limits.duckdb")
    rebuild_write_state(con)  # meta says the collector keeps model_latest
    at = datetime(2026, 11, 5, 18)
    kept = limits_now(con, at, ORGS)
    assert kept.rows() == [
        ("acme", "aleph", 90, 100, 0.9, 2, datetime(2026, 11, 5, 3)),
        ("acme", "gen4.5", 120, 200, 0.6, 2, datetime(2026, 11, 4, 20)),
        ("acme", "kling3.0_pro", 5, None, None, None, datetime(2026, 11, 2, 12)),
        ("acme", "veo3.1", 500, 0, None, 2, datetime(2026, 11, 3, 8)),
        ("beta", "kling3.0_pro", 7, None, None, None, datetime(2026, 11, 3, 10)),
        ("gamma", "gen4.5", 180, 200, 0.9, 2, datetime(2026, 10, 20)),
    ]
    # before a model_latest row: the snapshots of the day (aleph's 03:00 row not yet)
    early = limits_now(con, datetime(2026, 11, 5, 2), ORGS)
    assert early.filter(pl.col("model") == "aleph").is_empty()
    con.execute("DELETE FROM meta WHERE key = 'write_state'")
    assert limits_now(con, at, ORGS).equals(kept)
    assert limits_now(con, datetime(2026, 11, 5, 2), ORGS).equals(early)
