"""The client against the real sandbox over HTTP on 127.0.0.1, under each fault profile.

Each test starts a sandbox with the same seed and frozen clock as a fault-free one and checks
that the client, after retrying, returns exactly the fault-free values, with the exact number
of HTTP calls and retries counted by the client and by the sandbox itself.
Backoff is tiny (base 10 ms, cap 50 ms; Retry-After: 1 is capped to 50 ms) so tests are fast.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import pytest
from pydantic import SecretStr

from runway_costs.collector.client import ClientOptions, RunwayClient
from runway_costs.collector.errors import AuthError, RetryExhaustedError
from runway_costs.collector.models import CallStats, OrgSnapshot, UsageWindow
from runway_costs.sandbox.server import SandboxServer

pytestmark = pytest.mark.integration

SEED = 7
NOW = "2026-11-24T12:00:00Z"
CLIENT_NOW = datetime(2026, 11, 24, 12, 0, 0)
START, BEFORE = date(2026, 10, 25), date(2026, 11, 25)  # 31 days including today
ORG_PATH, USAGE_PATH = "/v1/organization", "/v1/organization/usage"
OPTIONS = ClientOptions(
    timeout_seconds=10.0, max_attempts=5, backoff_base_seconds=0.01, backoff_max_seconds=0.05
)
# For the slow fault: the sandbox answers after 3 s, the client gives up after 1 s (a margin
# wide enough that a loaded machine does not time out the normal answers too).
SLOW_OPTIONS = replace(OPTIONS, timeout_seconds=1.0)


@dataclass
class Outcome:
    snapshot: OrgSnapshot | Exception
    usage: UsageWindow | Exception
    stats: CallStats
    server: dict


def collect(
    sb: SandboxServer, org: str, key: str | None = None, options: ClientOptions = OPTIONS
) -> Outcome:
    """organization() then usage() for one org, as a collection cycle would."""

    async def go() -> Outcome:
        client = RunwayClient(
            org,
            sb.base_url,
            SecretStr(key or sb.key(org)),
            options=options,
            clock=lambda: CLIENT_NOW,
        )
        async with client:
            results: list[object] = []
            for call in (client.organization, lambda: client.usage(START, BEFORE)):
                try:
                    results.append(await call())
                except Exception as exc:  # noqa: BLE001 - the test inspects it
                    results.append(exc)
            return Outcome(results[0], results[1], client.stats, {})

    outcome = asyncio.run(go())
    outcome.server = sb.stats()
    return outcome


@dataclass
class Truth:
    """What the sandbox world holds for the org (the independent oracle)."""

    balance: int
    models: list[str]
    usage: list[tuple[date, str, int]]


@pytest.fixture(scope="module")
def baseline() -> Iterator[tuple[str, Outcome]]:
    with SandboxServer(seed=SEED, now=NOW, faults="none") as sb:
        org = sb.orgs[0]["name"]
        outcome = collect(sb, org)
    yield org, outcome


@pytest.fixture(scope="module")
def world_truth(baseline: tuple[str, Outcome]) -> Truth:
    org, _ = baseline
    with SandboxServer(seed=SEED, now=NOW, faults="none") as sb:
        world_org, now = sb.world.org(org), sb.world.now()
        body = sb.world.organization_body(world_org, now)
        usage = []
        day = START
        while day < BEFORE:
            usage += [(day, m, c) for m, c in world_org.served_amounts(day, now).items()]
            day += timedelta(days=1)
    models = sorted(set(body["tier"]["models"]) | set(body["usage"]["models"]))
    return Truth(body["creditBalance"], models, sorted(usage))


def faulted(spec: str, org: str, options: ClientOptions = OPTIONS) -> tuple[Outcome, str]:
    with SandboxServer(seed=SEED, now=NOW, faults=spec) as sb:
        return collect(sb, org, options=options), sb.key(org)


def test_fault_free_baseline_is_real_data(
    baseline: tuple[str, Outcome], world_truth: Truth
) -> None:
    org, base = baseline
    assert isinstance(base.snapshot, OrgSnapshot)
    assert isinstance(base.usage, UsageWindow)
    assert base.snapshot.taken_at == CLIENT_NOW
    assert base.snapshot.credit_balance == world_truth.balance
    assert [m.model for m in base.snapshot.models] == world_truth.models
    assert [(r.date, r.model, r.credits) for r in base.usage.rows] == world_truth.usage
    days = {row.date for row in base.usage.rows}
    assert min(days) >= START and max(days) < BEFORE
    assert date(2026, 11, 24) in days  # today's partial figure is reported
    assert base.stats == CallStats(http_calls=2, retries=0)
    assert base.server["requests"] == {org: {ORG_PATH: 1, USAGE_PATH: 1}}
    assert base.server["faults"] == {}


def test_429_storm_retries_honour_retry_after_then_exhaust(
    baseline: tuple[str, Outcome], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    org, base = baseline
    # 7 rate-limited requests: organization() spends all 5 attempts on 429s and gives up;
    # usage() meets the last 2 429s, then succeeds on its 3rd attempt.
    out, key = faulted("rate_limit:n=7,retry_after=1", org)
    assert isinstance(out.snapshot, RetryExhaustedError)
    assert str(out.snapshot) == (
        f"organization '{org}': GET /v1/organization failed after 5 attempts; last error: HTTP 429"
    )
    assert out.usage == base.usage
    assert out.stats == CallStats(http_calls=8, retries=6)
    assert out.server["requests"] == {org: {ORG_PATH: 5, USAGE_PATH: 3}}
    assert out.server["statuses"] == {org: {"429": 7, "200": 1}}
    assert out.server["faults"] == {org: {"rate_limit": 7}}
    # Retry-After: 1 was honoured as the wait, capped at backoff_max (0.05 s)
    waits = [r.getMessage() for r in caplog.records if r.name == "runway_costs.collector.client"]
    assert len(waits) == 6
    assert all(w.endswith("failed (HTTP 429); retrying in 0.050s") for w in waits)
    assert key not in caplog.text


def test_429_burst_recovers_to_fault_free_values(baseline: tuple[str, Outcome]) -> None:
    org, base = baseline
    out, _ = faulted("rate_limit:n=3,retry_after=1", org)
    assert out.snapshot == base.snapshot
    assert out.usage == base.usage
    assert out.stats == CallStats(http_calls=5, retries=3)
    assert out.server["requests"] == {org: {ORG_PATH: 4, USAGE_PATH: 1}}
    assert out.server["faults"] == {org: {"rate_limit": 3}}


def test_5xx_burst_recovers_to_fault_free_values(baseline: tuple[str, Outcome]) -> None:
    org, base = baseline
    out, _ = faulted("5xx_burst:n=4", org)
    assert out.snapshot == base.snapshot
    assert out.usage == base.usage
    assert out.stats == CallStats(http_calls=6, retries=4)
    assert out.server["requests"] == {org: {ORG_PATH: 5, USAGE_PATH: 1}}
    # codes cycle 502, 503, 504, 502
    assert out.server["statuses"] == {org: {"502": 2, "503": 1, "504": 1, "200": 2}}
    assert out.server["faults"] == {org: {"5xx_burst": 4}}


def test_slow_responses_past_the_timeout_are_retried(baseline: tuple[str, Outcome]) -> None:
    org, base = baseline
    out, _ = faulted("slow:n=2,seconds=3", org, SLOW_OPTIONS)
    assert out.snapshot == base.snapshot
    assert out.usage == base.usage
    assert out.stats == CallStats(http_calls=4, retries=2)
    assert out.server["requests"] == {org: {ORG_PATH: 3, USAGE_PATH: 1}}
    assert out.server["faults"] == {org: {"slow": 2}}


def test_dropped_connections_are_retried(
    baseline: tuple[str, Outcome], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="runway_costs.collector.client")
    org, base = baseline
    out, key = faulted("drop:n=2", org)
    assert out.snapshot == base.snapshot
    assert out.usage == base.usage
    assert out.stats == CallStats(http_calls=4, retries=2)
    assert out.server["requests"] == {org: {ORG_PATH: 3, USAGE_PATH: 1}}
    assert out.server["faults"] == {org: {"drop": 2}}
    causes = [r.getMessage() for r in caplog.records if r.name == "runway_costs.collector.client"]
    assert len(causes) == 2
    # the client saw a transport failure, not an HTTP status
    assert all("(RemoteProtocolError" in c or "(ReadError" in c for c in causes)
    assert key not in caplog.text


def test_mixed_faults_across_both_calls(baseline: tuple[str, Outcome]) -> None:
    org, base = baseline
    # one of each kind in a row: 429, 502, dropped, slow (timed out), then a success on
    # organization()'s 5th and last allowed attempt; usage() is clean.
    out, _ = faulted("rate_limit:n=1,5xx_burst:n=1,drop:n=1,slow:n=1,seconds=3", org, SLOW_OPTIONS)
    assert out.snapshot == base.snapshot
    assert out.usage == base.usage
    assert out.stats == CallStats(http_calls=6, retries=4)
    assert out.server["requests"] == {org: {ORG_PATH: 5, USAGE_PATH: 1}}
    assert out.server["faults"] == {org: {"rate_limit": 1, "5xx_burst": 1, "drop": 1, "slow": 1}}
    assert [(e["fault"], e["status"]) for e in out.server["fault_log"]] == [
        ("rate_limit", 429),
        ("5xx_burst", 502),
        ("drop", None),
        ("slow", None),
    ]


def test_unknown_key_is_rejected_once_over_real_http(
    baseline: tuple[str, Outcome], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    canary = "key_SECRET_CANARY_0000ffff"
    with SandboxServer(seed=SEED, now=NOW, faults="none") as sb:
        out = collect(sb, "prod", key=canary)
    assert isinstance(out.snapshot, AuthError)
    assert str(out.snapshot) == "organization 'prod': API key rejected (401)"
    assert isinstance(out.usage, AuthError)
    assert out.stats == CallStats(http_calls=2, retries=0)
    assert out.server["requests"] == {"<unknown>": {ORG_PATH: 1, USAGE_PATH: 1}}
    assert canary not in caplog.text
