"""Fault profiles, observed over real HTTP with httpx, and the stats that count them."""

from __future__ import annotations

import httpx
import pytest

from runway_costs.sandbox.faults import Action, FaultSpecError, parse_faults
from runway_costs.sandbox.server import SandboxServer
from tests.sandbox.wire import headers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sb():
    with SandboxServer(seed=7, now="2026-11-24T12:00:00Z") as server:
        yield server


@pytest.fixture
def faulty(sb):
    """Yield a function that installs a fault plan (fresh counters); restore 'none' after."""
    sb.reset_stats()

    def install(spec: str) -> SandboxServer:
        sb.set_faults(spec)
        return sb

    yield install
    sb.set_faults("none")


def get(sb: SandboxServer, name: str, timeout: float = 5.0) -> httpx.Response:
    return httpx.get(
        f"{sb.base_url}/v1/organization", headers=headers(sb.key(name)), timeout=timeout
    )


def test_rate_limit_answers_429_with_retry_after_then_recovers(faulty):
    sb = faulty("rate_limit:n=2,retry_after=3")
    first, second, third = (get(sb, "studio") for _ in range(3))
    for r in (first, second):
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "3"
        assert r.json() == {"error": "Too many requests"}
    assert third.status_code == 200
    assert third.json()["creditBalance"] == 27748
    # counted per key: another organization's first request is limited too
    assert get(sb, "agency").status_code == 429
    stats = sb.stats()
    assert stats["faults"] == {"studio": {"rate_limit": 2}, "agency": {"rate_limit": 1}}
    assert stats["statuses"]["studio"] == {"429": 2, "200": 1}
    assert stats["requests"]["studio"] == {"/v1/organization": 3}


def test_5xx_burst_cycles_502_503_504(faulty):
    sb = faulty("5xx_burst:n=4")
    codes = [get(sb, "indie").status_code for _ in range(5)]
    assert codes == [502, 503, 504, 502, 200]


def test_5xx_burst_with_chosen_codes_on_the_usage_endpoint(faulty):
    sb = faulty("5xx_burst:n=2,codes=503")
    url = f"{sb.base_url}/v1/organization/usage"
    codes = [
        httpx.post(url, headers=headers(sb.key("indie")), json={}).status_code for _ in range(3)
    ]
    assert codes == [503, 503, 200]
    assert sb.stats()["requests"]["indie"] == {"/v1/organization/usage": 3}


def test_slow_response_outlasts_a_short_client_timeout(faulty):
    sb = faulty("slow:n=1,seconds=1.5")
    with pytest.raises(httpx.ReadTimeout):
        get(sb, "studio", timeout=0.5)
    assert get(sb, "studio", timeout=0.5).status_code == 200
    assert sb.stats()["fault_log"] == [
        {"org": "studio", "path": "/v1/organization", "fault": "slow", "status": None}
    ]


def test_drop_cuts_the_connection_mid_response(faulty):
    sb = faulty("drop:n=2")
    with pytest.raises(httpx.RemoteProtocolError):
        get(sb, "agency")
    # a transport error, not an HTTP status, also through a pooled client
    with httpx.Client(timeout=5) as client:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.get(f"{sb.base_url}/v1/organization", headers=headers(sb.key("agency")))
        ok = client.get(f"{sb.base_url}/v1/organization", headers=headers(sb.key("agency")))
    assert ok.status_code == 200
    assert ok.json()["tier"]["maxMonthlyCreditSpend"] == 50_000


def test_drop_at_start_disconnects_before_any_response(faulty):
    sb = faulty("drop:n=1,at=start")
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        get(sb, "agency")
    assert get(sb, "agency").status_code == 200
    assert sb.stats()["statuses"]["agency"] == {"200": 1}  # the dropped one had no status


def test_faults_take_turns_in_the_listed_order(faulty):
    sb = faulty("rate_limit:n=1,retry_after=0,5xx_burst:n=1,drop:n=1")
    r = get(sb, "indie")
    assert (r.status_code, r.headers["Retry-After"]) == (429, "0")
    assert get(sb, "indie").status_code == 502
    with pytest.raises(httpx.RemoteProtocolError):
        get(sb, "indie")
    assert get(sb, "indie").status_code == 200


def outcomes(sb: SandboxServer, n: int) -> list[str]:
    out = []
    url, hdrs = f"{sb.base_url}/v1/organization", headers(sb.key("studio"))
    with httpx.Client(timeout=5) as client:
        for _ in range(n):
            try:
                out.append(str(client.get(url, headers=hdrs).status_code))
            except httpx.TransportError:
                out.append("drop")
    return out


def test_chaos_is_seeded_and_repeatable(faulty):
    sb = faulty("chaos:p=0.5,seed=3")
    first = outcomes(sb, 40)
    sb.set_faults("chaos:p=0.5,seed=3")
    assert outcomes(sb, 40) == first
    faulted = [o for o in first if o != "200"]
    assert 8 <= len(faulted) <= 32
    assert set(faulted) <= {"429", "502", "503", "504", "drop"}
    assert len(set(faulted)) >= 3
    sb.set_faults("chaos:p=0.5,seed=4")
    assert outcomes(sb, 40) != first


def test_control_endpoints_are_never_faulted(faulty):
    sb = faulty("5xx_burst:n=100")
    assert httpx.get(f"{sb.base_url}/_sandbox/clock").status_code == 200
    r = httpx.post(f"{sb.base_url}/_sandbox/faults", json={"faults": "rate_limit:n=1"})
    assert r.json() == {"faults": "rate_limit:n=1"}
    assert get(sb, "studio").status_code == 429
    bad = httpx.post(f"{sb.base_url}/_sandbox/faults", json={"faults": "meteor"})
    assert bad.status_code == 400
    assert "unknown fault 'meteor'" in bad.json()["error"]


def test_parse_defaults_and_sequence():
    plan = parse_faults("rate_limit,5xx_burst:n=2,slow:seconds=0.25")
    assert [f.kind for f in plan.faults] == ["rate_limit", "5xx_burst", "slow"]
    actions = [plan.action("k", i) for i in range(7)]
    assert actions == [
        Action("rate_limit", status=429, retry_after=1),
        Action("rate_limit", status=429, retry_after=1),
        Action("rate_limit", status=429, retry_after=1),
        Action("5xx_burst", status=502),
        Action("5xx_burst", status=503),
        Action("slow", seconds=0.25),
        Action("slow", seconds=0.25),
    ]
    assert plan.action("k", 7) is None
    assert parse_faults("none").action("k", 0) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("meteor", "unknown fault 'meteor'"),
        ("rate_limit:n=-1", "fault 'rate_limit' parameter 'n': bad value '-1'"),
        ("slow:seconds=abc", "fault 'slow' parameter 'seconds': bad value 'abc'"),
        ("drop:colour=red", "fault 'drop' parameter 'colour': unknown parameter"),
        ("5xx_burst:codes=404", "fault '5xx_burst' parameter 'codes': bad value '404'"),
        ("chaos:p=2", "fault 'chaos' parameter 'p': bad value '2'"),
        ("n=3", "parameter 'n=3' before any fault name"),
        ("chaos,chaos", "chaos given more than once"),
        ("drop:at=middle", "fault 'drop' parameter 'at': bad value 'middle'"),
    ],
)
def test_bad_fault_specs_are_named(spec, message):
    with pytest.raises(FaultSpecError) as err:
        parse_faults(spec)
    assert message in str(err.value)
