"""The generated world: deterministic from the seed, realistic, and self-consistent
(balance = opening + purchases - spend, never negative, purchases within the cap)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from runway_costs.sandbox.world import World, default_specs

NOW = "2026-11-24T12:00:00Z"
TODAY = date(2026, 11, 24)
WINDOW_START = TODAY - timedelta(days=90)  # 2026-08-26


@pytest.fixture(scope="module")
def world() -> World:
    return World.generated(seed=7, now=NOW)


def test_same_seed_same_keys_and_histories():
    a = World.generated(seed=7, now=NOW)
    b = World.generated(seed=7, now=NOW)
    assert a.public_orgs() == b.public_orgs()
    assert a.public_orgs()[0] == {
        "name": "studio",
        "api_key": "key_8269ce6500d1c257627b4598f90af8e7c303540d88ee785a",
        "tier": 3,
    }
    for oa, ob in zip(a.orgs, b.orgs, strict=True):
        assert oa.records(WINDOW_START, TODAY) == ob.records(WINDOW_START, TODAY)


def test_different_seed_different_keys_and_histories(world):
    other = World.generated(seed=8, now=NOW)
    assert [o.name for o in other.orgs] == ["studio", "agency", "indie"]
    for o7, o8 in zip(world.orgs, other.orgs, strict=True):
        assert o7.api_key != o8.api_key
        assert o7.api_key.startswith("key_") and len(o7.api_key) == 52
        a7 = [r.amounts for r in o7.records(WINDOW_START, TODAY)]
        a8 = [r.amounts for r in o8.records(WINDOW_START, TODAY)]
        assert a7 != a8


def test_default_orgs_span_three_tiers(world):
    assert [(o.name, o.tier, o.purchase_cap) for o in world.orgs] == [
        ("studio", 3, 200_000),
        ("agency", 2, 50_000),
        ("indie", 1, 10_000),
    ]


def test_n_orgs_cycles_all_five_tiers():
    specs = default_specs(7)
    assert [(s.name, s.tier) for s in specs] == [
        ("studio", 3),
        ("agency", 2),
        ("indie", 1),
        ("enterprise", 4),
        ("network", 5),
        ("studio-2", 3),
        ("agency-2", 2),
    ]
    world = World(specs, seed=7, now=NOW)
    assert len({o.api_key for o in world.orgs}) == 7
    with pytest.raises(ValueError, match="at least 1"):
        default_specs(0)


@pytest.mark.parametrize("name", ["studio", "agency", "indie"])
def test_refunds_make_some_net_amounts_negative(world, name):
    served = world.usage_body(world.org(name), WINDOW_START, TODAY)
    negatives = [
        (r["date"], c) for r in served["results"] for c in r["usedCredits"] if c["amount"] < 0
    ]
    assert negatives  # at least one (date, model) with a net refund in the 90 days


@pytest.mark.parametrize("name", ["studio", "agency", "indie"])
def test_seedance2_first_appears_mid_history(world, name):
    served = world.usage_body(world.org(name), WINDOW_START, TODAY)
    days = [
        r["date"] for r in served["results"] for c in r["usedCredits"] if c["model"] == "seedance2"
    ]
    # launched 45 days before the world's anchor (2026-11-24): 2026-10-10
    assert min(days) >= "2026-10-10"
    assert len(days) >= 20
    assert "seedance2" in served["models"]


@pytest.mark.parametrize("name", ["studio", "agency", "indie"])
def test_weekdays_spend_more_than_weekends(world, name):
    records = world.org(name).records(WINDOW_START, TODAY - timedelta(days=1))
    weekday = [r.spend for r in records if r.day.weekday() < 5]
    weekend = [r.spend for r in records if r.day.weekday() >= 5]
    assert sum(weekday) / len(weekday) > 1.3 * sum(weekend) / len(weekend)


@pytest.mark.parametrize("name", ["studio", "agency", "indie"])
def test_balance_never_negative_and_equals_opening_plus_purchases_minus_spend(world, name):
    org = world.org(name)
    records = org.records(org.origin, TODAY)
    assert all(r.closing >= 0 for r in records)
    running = org.opening_balance
    for r in records:
        assert r.opening == running
        running += r.purchase - r.spend
        assert r.closing == running
    now = world.now()
    served = world.usage_body(org, org.origin + timedelta(days=100), TODAY + timedelta(days=1))
    assert served["results"][-1]["date"] == "2026-11-24"
    spend_before = sum(r.spend for r in records[:-1])
    today_so_far = sum(c["amount"] for c in served["results"][-1]["usedCredits"])
    purchases = sum(r.purchase for r in records)
    assert org.balance(now) == org.opening_balance + purchases - spend_before - today_so_far


@pytest.mark.parametrize("name", ["studio", "agency", "indie"])
def test_purchases_stay_within_the_rolling_30_day_cap(world, name):
    org = world.org(name)
    records = org.records(org.origin, TODAY)
    purchases = [r.purchase for r in records]
    assert sum(1 for p in purchases if p) >= 5
    assert all(p == 0 or p >= 1_000 for p in purchases)  # USD 10 minimum
    windows = [sum(purchases[max(0, i - 29) : i + 1]) for i in range(len(purchases))]
    assert max(windows) <= org.purchase_cap


def test_indie_spends_up_to_its_cap_and_then_runs_dry(world):
    org = world.org("indie")
    records = org.records(org.origin, TODAY)
    purchases = [r.purchase for r in records]
    windows = [sum(purchases[max(0, i - 29) : i + 1]) for i in range(len(purchases))]
    assert max(windows) == 10_000  # the cap binds
    assert min(r.closing for r in records) < 50  # the balance drained (generation clipped)
    last30 = sum(r.spend for r in records[-31:-1])
    assert 8_000 <= last30 <= 12_000  # spending close to the 10,000-credit cap


def test_daily_generations_within_tier_limits(world):
    for org in world.orgs:
        body = world.organization_body(org)
        limits = body["tier"]["models"]
        gens = body["usage"]["models"]
        assert sum(g["dailyGenerations"] for g in gens.values()) > 0
        for model, g in gens.items():
            assert 0 <= g["dailyGenerations"] <= limits[model]["maxDailyGenerations"]


def test_histories_do_not_depend_on_the_clock():
    early = World.generated(seed=7, now=NOW)
    late = World.generated(seed=7, now=NOW)
    late.set_now("2027-01-10T08:00:00Z")
    for a, b in zip(early.orgs, late.orgs, strict=True):
        # late simulates 47 more days first; the shared days must not change
        b.record(date(2027, 1, 9))
        assert a.records(WINDOW_START, TODAY) == b.records(WINDOW_START, TODAY)
