"""The API key never leaves the Authorization header: not in errors, repr or logs.

The fake server is hostile on purpose: it echoes the key back in error bodies, headers and
exception texts, so the client's redaction is what keeps it out.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime

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
from runway_costs.core.clock import fixed_clock

CANARY = "key_SECRET_CANARY_7f3a9c1e5b"

CLOCK = fixed_clock(datetime(2026, 11, 24, 12, 0))


def echo(code: int, content_type: str = "application/json") -> httpx.Response:
    if content_type == "application/json":
        return httpx.Response(code, json={"error": f"bad key {CANARY} for you"})
    return httpx.Response(
        code, content=f"<html>{CANARY}</html>".encode(), headers={"content-type": content_type}
    )


SCENARIOS: list[tuple[str, str, list[object], type[ApiError]]] = [
    ("400 echoing the key", "org", [echo(400)], BadRequestError),
    ("401", "org", [echo(401)], AuthError),
    ("404 echoing the key", "usage", [echo(404)], ApiError),
    ("503 until exhausted", "org", [echo(503)], RetryExhaustedError),
    (
        "transport error mentioning the key",
        "org",
        [httpx.ConnectError(f"cannot connect with {CANARY}")],
        RetryExhaustedError,
    ),
    (
        "non-retryable transport error mentioning the key",
        "org",
        [httpx.UnsupportedProtocol(f"no protocol for Bearer {CANARY}")],
        ApiError,
    ),
    ("non-JSON 200", "org", [echo(200, "text/plain")], ResponseFormatError),
    ("content-type with the key", "usage", [echo(200, f"text/{CANARY}")], ResponseFormatError),
    (
        "format error with the key as a value",
        "usage",
        [httpx.Response(200, json={"results": [{"date": CANARY, "usedCredits": []}]})],
        ResponseFormatError,
    ),
    (
        "format error with the key as a model name",
        "usage",
        [
            httpx.Response(
                200,
                json={
                    "results": [
                        {
                            "date": "2026-03-01",
                            "usedCredits": [
                                {"model": CANARY, "amount": 1},
                                {"model": CANARY, "amount": 2},
                            ],
                        }
                    ]
                },
            )
        ],
        ResponseFormatError,
    ),
]


@pytest.mark.parametrize(
    ("call", "steps", "error"), [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS]
)
def test_key_absent_from_errors_repr_and_logs(
    call: str, steps: list[object], error: type[ApiError], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["authorization"])
        step = steps[min(len(sent), len(steps)) - 1]
        if isinstance(step, Exception):
            raise step
        return step

    async def no_sleep(_: float) -> None:
        return None

    client = RunwayClient(
        "prod",
        "https://api.example.test",
        SecretStr(CANARY),
        options=ClientOptions(max_attempts=3),
        transport=httpx.MockTransport(handler),
        sleep=no_sleep,
        clock=CLOCK,
    )

    async def go() -> None:
        async with client:
            if call == "usage":
                await client.usage(date(2026, 3, 1), date(2026, 3, 2))
            else:
                await client.organization()

    with pytest.raises(error) as err:
        asyncio.run(go())
    assert sent and sent[0] == f"Bearer {CANARY}"  # the key did go on the wire
    assert CANARY not in str(err.value)
    assert CANARY not in repr(err.value)
    assert all(CANARY not in str(arg) for arg in err.value.args)
    assert err.value.__cause__ is None  # no chained exception carrying the raw text
    assert CANARY not in repr(client)
    assert CANARY not in caplog.text
    assert all(CANARY not in r.getMessage() for r in caplog.records)


def test_a_key_unfit_for_a_header_is_refused_without_echoing_it() -> None:
    bad = "key_SECRET_CANARY\nInjected: 1"
    with pytest.raises(ValueError) as err:
        RunwayClient("prod", "https://api.example.test", SecretStr(bad), clock=CLOCK)
    assert str(err.value) == (
        "organization 'prod': API key is empty or contains characters not allowed in an HTTP header"
    )
    assert "SECRET_CANARY" not in str(err.value)


def test_repr_shows_org_and_url_only() -> None:
    client = RunwayClient("prod", "https://api.example.test/", SecretStr(CANARY), clock=CLOCK)
    assert repr(client) == "RunwayClient(org='prod', base_url='https://api.example.test')"
    assert CANARY not in repr(vars(client))
    asyncio.run(client.aclose())
