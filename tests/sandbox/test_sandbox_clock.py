"""Moving the clock over HTTP: today grows, past days stay put, the control endpoint works."""

from __future__ import annotations

import httpx
import pytest

from runway_costs.sandbox.server import SandboxServer
from tests.sandbox.wire import headers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sb():
    with SandboxServer(seed=7, now="2026-11-24T12:00:00Z") as server:
        yield server


def day_total(sb: SandboxServer, name: str, day: str) -> dict[str, int]:
    r = httpx.post(
        f"{sb.base_url}/v1/organization/usage",
        headers=headers(sb.key(name)),
        json={"startDate": day, "beforeDate": "2026-11-26"},
    )
    assert r.status_code == 200
    first = r.json()["results"][0]
    assert first["date"] == day
    return {c["model"]: c["amount"] for c in first["usedCredits"]}


def balance(sb: SandboxServer, name: str) -> int:
    r = httpx.get(f"{sb.base_url}/v1/organization", headers=headers(sb.key(name)))
    return r.json()["creditBalance"]


def test_today_grows_through_the_day_and_past_days_stay(sb):
    sb.set_now("2026-11-24T00:00:00Z")
    assert day_total(sb, "studio", "2026-11-24") == {}
    past_at_midnight = day_total(sb, "studio", "2026-11-20")
    totals, balances = [], []
    for t in ("06:00", "12:00", "23:00"):
        sb.set_now(f"2026-11-24T{t}:00Z")
        totals.append(sum(day_total(sb, "studio", "2026-11-24").values()))
        balances.append(balance(sb, "studio"))
        assert day_total(sb, "studio", "2026-11-20") == past_at_midnight
    assert 0 < totals[0] < totals[1] < totals[2]
    # nothing bought during the day, so the balance falls exactly by what today adds
    assert balances[0] - balances[1] == totals[1] - totals[0]
    assert balances[1] - balances[2] == totals[2] - totals[1]

    sb.set_now("2026-11-25T06:00:00Z")
    full_day = day_total(sb, "studio", "2026-11-24")
    assert sum(full_day.values()) >= totals[2]
    sb.set_now("2026-11-28T06:00:00Z")
    assert day_total(sb, "studio", "2026-11-24") == full_day
    assert day_total(sb, "studio", "2026-11-20") == past_at_midnight


def test_full_day_equals_sum_of_its_parts_at_the_end(sb):
    sb.set_now("2026-11-23T23:59:59Z")
    nearly = day_total(sb, "agency", "2026-11-23")
    sb.set_now("2026-11-24T00:00:00Z")
    done = day_total(sb, "agency", "2026-11-23")
    assert nearly.keys() <= done.keys()
    for model, amount in nearly.items():
        assert abs(done[model] - amount) <= abs(done[model]) * 0.001 + 1


def test_clock_control_endpoint(sb):
    r = httpx.post(f"{sb.base_url}/_sandbox/clock", json={"now": "2026-11-30T18:30:00Z"})
    assert r.json() == {"now": "2026-11-30T18:30:00Z", "frozen": True}
    assert httpx.get(f"{sb.base_url}/_sandbox/clock").json()["now"] == "2026-11-30T18:30:00Z"
    r = httpx.post(
        f"{sb.base_url}/v1/organization/usage", headers=headers(sb.key("indie")), json={}
    )
    assert r.json()["results"][0]["date"] == "2026-10-31"  # today 2026-11-30 minus 30

    bad = httpx.post(f"{sb.base_url}/_sandbox/clock", json={"now": "soon"})
    assert bad.status_code == 400
    assert "clock" in bad.json()["error"]
    missing = httpx.post(f"{sb.base_url}/_sandbox/clock", json={})
    assert missing.status_code == 400

    r = httpx.post(f"{sb.base_url}/_sandbox/clock", json={"now": None})
    assert r.json()["frozen"] is False
    sb.set_now("2026-11-24T12:00:00Z")
    assert balance(sb, "studio") == 27748
