"""Scripted organizations serve exactly what was written; every expectation is by hand."""

from __future__ import annotations

import httpx
import pytest

from runway_costs.sandbox.server import SandboxServer
from runway_costs.sandbox.world import OrgSpec, World
from tests.sandbox.wire import headers

pytestmark = pytest.mark.integration

SPEC = OrgSpec(
    name="scripted",
    tier=1,
    opening_balance=1_000,
    script={
        "2026-11-20": {"gen4.5": 120, "veo3.1": 400},
        "2026-11-22": {"gen4.5": -60},
        "2026-11-23": {"gen4_turbo": 160},
        "2026-11-24": {"gen4_turbo": 200, "gen4.5": 101},
    },
    purchases={"2026-11-21": 2_000},
    api_key="key_scripted_test",
)


@pytest.fixture(scope="module")
def sb():
    with SandboxServer(orgs=[SPEC], now="2026-11-24T12:00:00Z") as server:
        yield server


def get_org(sb: SandboxServer) -> dict:
    r = httpx.get(f"{sb.base_url}/v1/organization", headers=headers("key_scripted_test"))
    assert r.status_code == 200
    return r.json()


def get_usage(sb: SandboxServer) -> dict:
    r = httpx.post(
        f"{sb.base_url}/v1/organization/usage",
        headers=headers("key_scripted_test"),
        json={"startDate": "2026-11-20", "beforeDate": "2026-11-26"},
    )
    assert r.status_code == 200
    return r.json()


def test_orgs_listing_uses_the_given_key(sb):
    assert sb.orgs == [{"name": "scripted", "api_key": "key_scripted_test", "tier": 1}]


def test_at_noon_today_is_half_counted(sb):
    sb.set_now("2026-11-24T12:00:00Z")
    # 1000 - 520 (11-20) + 2000 (11-21) + 60 (11-22) - 160 (11-23) = 2380 at 00:00 today;
    # half of today: gen4_turbo 100, gen4.5 floor(50.5) = 50
    org = get_org(sb)
    assert org["creditBalance"] == 2_230
    assert org["tier"]["maxMonthlyCreditSpend"] == 10_000
    assert org["tier"]["models"]["gen4_turbo"] == {
        "maxConcurrentGenerations": 1,
        "maxDailyGenerations": 50,
    }
    # last 24 h of gen4_turbo: 100 today + 80 (half of 11-23's 160) = 180 -> 180 // 40 = 4
    assert org["usage"]["models"] == {
        "gen4.5": {"dailyGenerations": 0},  # 50 credits, 84 per generation
        "gen4_turbo": {"dailyGenerations": 4},
        "veo3.1": {"dailyGenerations": 0},
    }
    assert get_usage(sb) == {
        "results": [
            {
                "date": "2026-11-20",
                "usedCredits": [
                    {"model": "gen4.5", "amount": 120},
                    {"model": "veo3.1", "amount": 400},
                ],
            },
            {"date": "2026-11-21", "usedCredits": []},
            {"date": "2026-11-22", "usedCredits": [{"model": "gen4.5", "amount": -60}]},
            {"date": "2026-11-23", "usedCredits": [{"model": "gen4_turbo", "amount": 160}]},
            {
                "date": "2026-11-24",
                "usedCredits": [
                    {"model": "gen4.5", "amount": 50},
                    {"model": "gen4_turbo", "amount": 100},
                ],
            },
        ],
        "models": ["gen4.5", "gen4_turbo", "veo3.1"],
        "apiKeys": None,
        "resultsByApiKey": None,
    }


def test_later_in_the_day_and_next_day(sb):
    sb.set_now("2026-11-24T18:00:00Z")
    # 3/4 of today: gen4_turbo 150, gen4.5 floor(75.75) = 75 -> 2380 - 225
    org = get_org(sb)
    assert org["creditBalance"] == 2_155
    # gen4_turbo: 150 + 40 (a quarter of 160) = 190 -> 4
    assert org["usage"]["models"]["gen4_turbo"] == {"dailyGenerations": 4}

    sb.set_now("2026-11-25T06:00:00Z")
    # 2380 - 301 (the whole of 11-24); nothing scripted for 11-25
    assert get_org(sb)["creditBalance"] == 2_079
    # gen4_turbo: 3/4 of yesterday's 200 = 150 -> 3
    assert get_org(sb)["usage"]["models"]["gen4_turbo"] == {"dailyGenerations": 3}
    results = get_usage(sb)["results"]
    assert results[4] == {
        "date": "2026-11-24",
        "usedCredits": [{"model": "gen4.5", "amount": 101}, {"model": "gen4_turbo", "amount": 200}],
    }
    assert results[5] == {"date": "2026-11-25", "usedCredits": []}


def test_before_the_script_the_opening_balance_stands():
    world = World([SPEC], now="2026-11-19T09:00:00Z")
    org = world.org("scripted")
    assert org.balance(world.now()) == 1_000
    assert world.organization_body(org)["creditBalance"] == 1_000


def test_a_script_that_overdraws_is_refused_naming_the_day():
    spec = OrgSpec("broke", tier=1, opening_balance=100, script={"2026-11-01": {"gen4.5": 120}})
    with pytest.raises(ValueError, match="'broke'.*2026-11-01"):
        World([spec], now="2026-11-24T12:00:00Z")


def test_bad_tier_and_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="tier must be 1..5"):
        World([OrgSpec("x", tier=9, script={})])
    with pytest.raises(ValueError, match="unique"):
        World([OrgSpec("x", tier=1, script={}), OrgSpec("x", tier=2, script={})])
