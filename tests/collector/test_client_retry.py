"""RunwayClient retries, backoff and error mapping, on httpx.MockTransport with a fake
sleep and a fake random source, so waits are asserted exactly and nothing really sleeps."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import datetime

import httpx
import pytest
from pydantic import SecretStr

from runway_costs.collector.client import ClientOptions, RunwayClient
from runway_costs.collector.errors import (
    ApiError,
    AuthError,
    BadRequestError,
    ResponseFormatError,
    RetryExhaustedError,
)
from runway_costs.collector.models import ModelState, OrgSnapshot
from runway_costs.collector.retry import backoff_delay, parse_retry_after

NOW = datetime(2026, 11, 24, 12, 0, 0)
ORG_BODY = {
    "creditBalance": 900,
    "tier": {
        "maxMonthlyCreditSpend": 10000,
        "models": {"gen4.5": {"maxConcurrentGenerations": 1, "maxDailyGenerations": 50}},
    },
    "usage": {"models": {"gen4.5": {"dailyGenerations": 3}}},
}
EXPECTED_SNAPSHOT = OrgSnapshot(NOW, 900, 10000, (ModelState("gen4.5", 1, 50, 3),))

Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class FakeRandom(random.Random):
    """uniform(a, b) returns a + fraction * (b - a) and records the bounds it was given."""

    def __init__(self, fraction: float) -> None:
        super().__init__(0)
        self.fraction = fraction
        self.bounds: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.bounds.append((a, b))
        return a + self.fraction * (b - a)


class Script:
    """A MockTransport handler that plays ``steps`` in order (the last one repeats)."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps[min(len(self.requests), len(self.steps)) - 1]
        if isinstance(step, Exception):
            raise step
        if callable(step) and not isinstance(step, httpx.Response):
            return step(request)
        return step


def ok() -> httpx.Response:
    return httpx.Response(200, json=ORG_BODY)


def status(code: int, **headers: str) -> httpx.Response:
    return httpx.Response(code, json={"error": f"status {code}"}, headers=headers)


class Harness:
    def __init__(self, script: Script, fraction: float = 0.25, **opts: float) -> None:
        self.script = script
        self.sleeps: list[float] = []
        self.rng = FakeRandom(fraction)
        options = {
            "timeout_seconds": 5.0,
            "max_attempts": 5,
            "backoff_base_seconds": 0.5,
            "backoff_max_seconds": 30.0,
        }
        options.update(opts)
        self.client = RunwayClient(
            "prod",
            "https://api.example.test",
            SecretStr("key_retrytests"),
            options=ClientOptions(**options),
            transport=httpx.MockTransport(script),
            clock=lambda: NOW,
            sleep=self._sleep,
            rng=self.rng,
        )

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def organization(self) -> OrgSnapshot:
        async def go() -> OrgSnapshot:
            async with self.client as client:
                return await client.organization()

        return asyncio.run(go())


# -- retryable failures ------------------------------------------------------------------


@pytest.mark.parametrize("code", [429, 502, 503, 504])
def test_retryable_status_is_retried_with_full_jitter(code: int) -> None:
    h = Harness(Script(status(code), status(code), ok()))
    assert h.organization() == EXPECTED_SNAPSHOT
    # ceilings min(30, 0.5 * 2**n) for n = 0, 1; the fake picks a quarter of each
    assert h.rng.bounds == [(0.0, 0.5), (0.0, 1.0)]
    assert h.sleeps == [0.125, 0.25]
    assert h.client.stats.http_calls == 3
    assert h.client.stats.retries == 2
    assert len(h.script.requests) == 3


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadError("connection reset"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=lambda e: type(e).__name__,
)
def test_timeouts_and_transport_errors_are_retried(exc: Exception) -> None:
    h = Harness(Script(exc, ok()), fraction=1.0)
    assert h.organization() == EXPECTED_SNAPSHOT
    assert h.sleeps == [0.5]
    assert h.client.stats.http_calls == 2
    assert h.client.stats.retries == 1


def test_backoff_doubles_up_to_the_cap_then_retry_exhausted() -> None:
    h = Harness(
        Script(status(503)), fraction=1.0, backoff_base_seconds=1.0, backoff_max_seconds=3.0
    )
    with pytest.raises(RetryExhaustedError) as err:
        h.organization()
    assert str(err.value) == (
        "organization 'prod': GET /v1/organization failed after 5 attempts; last error: HTTP 503"
    )
    assert err.value.attempts == 5
    assert err.value.last_cause == "HTTP 503"
    assert h.sleeps == [1.0, 2.0, 3.0, 3.0]
    assert len(h.script.requests) == 5
    assert h.client.stats.http_calls == 5
    assert h.client.stats.retries == 4


def test_retry_exhausted_names_the_last_cause_when_it_is_a_timeout() -> None:
    h = Harness(Script(status(502), httpx.ReadTimeout("timed out")), max_attempts=3)
    with pytest.raises(RetryExhaustedError) as err:
        h.organization()
    assert str(err.value) == (
        "organization 'prod': GET /v1/organization failed after 3 attempts; "
        "last error: ReadTimeout: timed out"
    )
    assert h.client.stats.http_calls == 3
    assert h.client.stats.retries == 2


def test_single_attempt_means_no_retry() -> None:
    h = Harness(Script(status(429, **{"Retry-After": "1"})), max_attempts=1)
    with pytest.raises(RetryExhaustedError, match="after 1 attempts; last error: HTTP 429"):
        h.organization()
    assert h.sleeps == []
    assert h.client.stats.http_calls == 1
    assert h.client.stats.retries == 0


def test_usage_post_is_retried_too() -> None:
    from datetime import date

    body = {"results": [{"date": "2026-11-20", "usedCredits": [{"model": "m", "amount": 5}]}]}
    h = Harness(Script(status(504), httpx.Response(200, json=body)), fraction=0.5)

    async def go() -> int:
        async with h.client as client:
            window = await client.usage(date(2026, 11, 1), date(2026, 11, 24))
            return window.rows[0].credits

    assert asyncio.run(go()) == 5
    assert h.sleeps == [0.25]
    assert [r.method for r in h.script.requests] == ["POST", "POST"]
    assert h.script.requests[0].content == h.script.requests[1].content


# -- Retry-After -------------------------------------------------------------------------


def test_retry_after_seconds_is_the_wait() -> None:
    h = Harness(Script(status(429, **{"Retry-After": "7"}), ok()))
    assert h.organization() == EXPECTED_SNAPSHOT
    assert h.sleeps == [7.0]
    assert h.rng.bounds == []  # no jitter drawn when the server said how long


def test_retry_after_is_capped_at_backoff_max() -> None:
    h = Harness(Script(status(503, **{"Retry-After": "120"}), ok()), backoff_max_seconds=30.0)
    h.organization()
    assert h.sleeps == [30.0]


def test_retry_after_http_date_is_relative_to_the_clock() -> None:
    # the clock says 2026-11-24 12:00:00 UTC
    h = Harness(
        Script(
            status(429, **{"Retry-After": "Tue, 24 Nov 2026 12:00:09 GMT"}),
            status(429, **{"Retry-After": "Tue, 24 Nov 2026 11:59:00 GMT"}),
            ok(),
        )
    )
    assert h.organization() == EXPECTED_SNAPSHOT
    assert h.sleeps == [9.0, 0.0]


def test_unparseable_retry_after_falls_back_to_backoff() -> None:
    h = Harness(Script(status(429, **{"Retry-After": "soon"}), ok()), fraction=0.5)
    h.organization()
    assert h.sleeps == [0.25]


def test_parse_retry_after_values() -> None:
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("", NOW) is None
    assert parse_retry_after("3", NOW) == 3.0
    assert parse_retry_after(" 1.5 ", NOW) == 1.5
    assert parse_retry_after("-4", NOW) == 0.0
    assert parse_retry_after("nan", NOW) is None
    assert parse_retry_after("Tue, 24 Nov 2026 12:01:30 GMT", NOW) == 90.0
    assert parse_retry_after("Tue, 24 Nov 2026 11:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("not a date", NOW) is None


def test_backoff_delay_with_a_seeded_random_stays_within_the_ceiling() -> None:
    rng = random.Random(20261124)
    delays = [backoff_delay(n, 0.5, 3.0, rng) for n in range(8)]
    ceilings = [0.5, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    assert all(0.0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == 8  # jittered, not constant


# -- answers that are not retried --------------------------------------------------------


def test_400_is_not_retried_and_carries_the_api_text() -> None:
    body = {"error": "startDate must be within the last 90 days"}
    h = Harness(Script(httpx.Response(400, json=body), ok()))
    with pytest.raises(BadRequestError) as err:
        h.organization()
    assert str(err.value) == (
        "organization 'prod': GET /v1/organization rejected as a bad request (400): "
        "startDate must be within the last 90 days"
    )
    assert err.value.api_message == "startDate must be within the last 90 days"
    assert err.value.status == 400
    assert len(h.script.requests) == 1
    assert h.client.stats.http_calls == 1
    assert h.client.stats.retries == 0
    assert h.sleeps == []


def test_401_is_not_retried_and_says_the_key_was_rejected() -> None:
    h = Harness(Script(httpx.Response(401, json={"error": "Invalid API key"}), ok()))
    with pytest.raises(AuthError) as err:
        h.organization()
    assert str(err.value) == "organization 'prod': API key rejected (401)"
    assert len(h.script.requests) == 1
    assert h.client.stats.http_calls == 1
    assert h.sleeps == []


@pytest.mark.parametrize(
    ("code", "body", "text"),
    [
        (404, {"error": "Not found"}, "Not found"),
        (500, {"message": "boom"}, "boom"),
        (403, None, "(empty body)"),
        (409, "plain\n  text", "plain text"),
    ],
)
def test_other_statuses_are_api_errors_not_retried(code: int, body: object, text: str) -> None:
    if body is None:
        response = httpx.Response(code)
    elif isinstance(body, str):
        response = httpx.Response(code, text=body)
    else:
        response = httpx.Response(code, json=body)
    h = Harness(Script(response, ok()))
    with pytest.raises(ApiError) as err:
        h.organization()
    assert type(err.value) is ApiError
    assert str(err.value) == (
        f"organization 'prod': GET /v1/organization failed with HTTP {code}: {text}"
    )
    assert len(h.script.requests) == 1


def test_format_errors_are_not_retried() -> None:
    h = Harness(Script(httpx.Response(200, json={"tier": {}}), ok()))
    with pytest.raises(ResponseFormatError):
        h.organization()
    assert len(h.script.requests) == 1


def test_unsupported_protocol_is_not_retried() -> None:
    h = Harness(Script(httpx.UnsupportedProtocol("Request URL has an unsupported protocol")))
    with pytest.raises(ApiError) as err:
        h.organization()
    assert str(err.value) == (
        "organization 'prod': GET /v1/organization failed: "
        "UnsupportedProtocol: Request URL has an unsupported protocol"
    )
    assert len(h.script.requests) == 1


# -- logging -----------------------------------------------------------------------------


def test_each_retry_is_logged_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    h = Harness(
        Script(status(503), httpx.ReadTimeout("timed out"), ok()),
        fraction=0.5,
    )
    h.organization()
    records = [r for r in caplog.records if r.name == "runway_costs.collector.client"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (
            logging.WARNING,
            "organization 'prod': GET /v1/organization attempt 1/5 failed (HTTP 503); "
            "retrying in 0.250s",
        ),
        (
            logging.WARNING,
            "organization 'prod': GET /v1/organization attempt 2/5 failed "
            "(ReadTimeout: timed out); retrying in 0.500s",
        ),
    ]


def test_timeout_option_is_passed_to_every_request() -> None:
    h = Harness(Script(ok()), timeout_seconds=1.25)
    h.organization()
    (request,) = h.script.requests
    assert request.extensions["timeout"] == {
        "connect": 1.25,
        "read": 1.25,
        "write": 1.25,
        "pool": 1.25,
    }
