"""RunwayClient parsing and request shape, on httpx.MockTransport (no network)."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import date, datetime

import httpx
import pytest
from pydantic import SecretStr

from runway_costs.collector.client import (
    API_VERSION,
    ClientOptions,
    RunwayClient,
    usage_windows,
)
from runway_costs.collector.errors import ResponseFormatError
from runway_costs.collector.models import ModelState, OrgSnapshot, UsageRow, UsageWindow
from runway_costs.core.config import CollectionConfig

KEY = "key_0123456789abcdef"
NOW = datetime(2026, 3, 16, 9, 30, 0)

# The documented examples of the Runway API reference (runway-api.md, kept beside the
# repository), verbatim.
ORG_EXAMPLE = {
    "creditBalance": 5000,
    "tier": {
        "maxMonthlyCreditSpend": 10000,
        "models": {"gen4.5": {"maxConcurrentGenerations": 2, "maxDailyGenerations": 200}},
    },
    "usage": {"models": {"gen4.5": {"dailyGenerations": 12}}},
}
USAGE_EXAMPLE = {
    "results": [
        {
            "date": "2026-03-16",
            "usedCredits": [{"model": "gen4.5", "amount": 120}, {"model": "veo3.1", "amount": 400}],
        }
    ],
    "models": ["gen4.5", "veo3.1"],
    "apiKeys": None,
    "resultsByApiKey": None,
}


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


def client_for(body: object, seen: list[httpx.Request] | None = None) -> RunwayClient:
    """A client whose every request is answered 200 with ``body`` (bytes sent as-is)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if isinstance(body, bytes):
            return httpx.Response(200, content=body, headers={"content-type": "text/html"})
        return httpx.Response(200, json=body)

    return RunwayClient(
        "prod",
        "https://api.example.test/",
        SecretStr(KEY),
        options=ClientOptions(max_attempts=1),
        transport=httpx.MockTransport(handler),
        clock=lambda: NOW,
    )


async def fetch_org(body: object) -> OrgSnapshot:
    async with client_for(body) as client:
        return await client.organization()


async def fetch_usage(body: object, start: date, before: date) -> UsageWindow:
    async with client_for(body) as client:
        return await client.usage(start, before)


# -- documented examples -----------------------------------------------------------------


def test_organization_example_parses_to_snapshot() -> None:
    seen: list[httpx.Request] = []

    async def go() -> tuple[OrgSnapshot, RunwayClient]:
        async with client_for(ORG_EXAMPLE, seen) as client:
            return await client.organization(), client

    snap, client = run(go())
    assert snap == OrgSnapshot(
        taken_at=datetime(2026, 3, 16, 9, 30, 0),
        credit_balance=5000,
        max_monthly_credit_spend=10000,
        models=(ModelState("gen4.5", 2, 200, 12),),
    )
    assert client.stats.http_calls == 1
    assert client.stats.retries == 0
    (request,) = seen
    assert request.method == "GET"
    assert str(request.url) == "https://api.example.test/v1/organization"
    assert request.headers["authorization"] == "Bearer key_0123456789abcdef"
    assert request.headers["x-runway-version"] == "2024-11-06"
    assert request.headers["user-agent"].startswith("runway-costs/")


def test_usage_example_parses_and_request_body_is_the_window() -> None:
    seen: list[httpx.Request] = []

    async def go() -> UsageWindow:
        async with client_for(USAGE_EXAMPLE, seen) as client:
            return await client.usage(date(2026, 2, 15), date(2026, 3, 17))

    window = run(go())
    assert window == UsageWindow(
        start=date(2026, 2, 15),
        before=date(2026, 3, 17),
        rows=(
            UsageRow(date(2026, 3, 16), "gen4.5", 120),
            UsageRow(date(2026, 3, 16), "veo3.1", 400),
        ),
    )
    (request,) = seen
    assert request.method == "POST"
    assert request.url.path == "/v1/organization/usage"
    assert json.loads(request.content) == {"startDate": "2026-02-15", "beforeDate": "2026-03-17"}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-runway-version"] == API_VERSION


# -- open world: unknown fields and models -----------------------------------------------


def test_unknown_fields_and_models_are_accepted() -> None:
    body = {
        "creditBalance": 0,
        "organizationColor": "teal",
        "tier": {
            "maxMonthlyCreditSpend": 200000,
            "name": "tier 4",
            "models": {
                "kling3.0_pro": {"maxConcurrentGenerations": 10, "maxDailyGenerations": 5000},
                "zz_future_model": {"maxConcurrentGenerations": None, "future": 1},
                "gen4_image": {"maxConcurrentGenerations": 10, "maxDailyGenerations": 10000},
            },
        },
        "usage": {
            "models": {
                "gen4_image": {"dailyGenerations": 31, "weekly": 7},
                "gwm1_avatars": {"dailyGenerations": 4},
            },
            "period": "24h",
        },
    }
    snap = run(fetch_org(body))
    assert snap == OrgSnapshot(
        taken_at=NOW,
        credit_balance=0,
        max_monthly_credit_spend=200000,
        models=(
            ModelState("gen4_image", 10, 10000, 31),
            # in usage only: no known limits
            ModelState("gwm1_avatars", None, None, 4),
            # in tier only: no generations
            ModelState("kling3.0_pro", 10, 5000, 0),
            # null / absent limit means "no limit"
            ModelState("zz_future_model", None, None, 0),
        ),
    )


def test_usage_rows_sorted_negative_amounts_and_unknown_fields_kept_out() -> None:
    body = {
        "results": [
            {
                "date": "2026-03-02",
                "usedCredits": [
                    {"model": "veo3.1", "amount": -40, "refunds": 2},
                    {"model": "brand_new_model_9", "amount": 7},
                ],
                "extra": [1, 2],
            },
            {"date": "2026-03-01", "usedCredits": [{"model": "gen4.5", "amount": 0}]},
            {"date": "2026-03-03", "usedCredits": []},
        ],
        "models": ["gen4.5", "veo3.1", "brand_new_model_9"],
        "apiKeys": ["k1"],
        "resultsByApiKey": [{"apiKey": "k1", "results": []}],
    }
    window = run(fetch_usage(body, date(2026, 3, 1), date(2026, 3, 4)))
    assert window.rows == (
        UsageRow(date(2026, 3, 1), "gen4.5", 0),
        UsageRow(date(2026, 3, 2), "brand_new_model_9", 7),
        UsageRow(date(2026, 3, 2), "veo3.1", -40),
    )


# -- missing and wrongly typed fields are named ------------------------------------------

ORG_MSG = "organization 'prod': response from GET /v1/organization "
USAGE_MSG = "organization 'prod': response from POST /v1/organization/usage "


def without(body: dict, path: tuple) -> dict:
    doc = copy.deepcopy(body)
    node = doc
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return doc


def replaced(body: dict, path: tuple, value: object) -> dict:
    doc = copy.deepcopy(body)
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("creditBalance",), "creditBalance"),
        (("tier",), "tier"),
        (("tier", "maxMonthlyCreditSpend"), "tier.maxMonthlyCreditSpend"),
        (("tier", "models"), "tier.models"),
        (("usage",), "usage"),
        (("usage", "models"), "usage.models"),
        (
            ("usage", "models", "gen4.5", "dailyGenerations"),
            'usage.models["gen4.5"].dailyGenerations',
        ),
    ],
)
def test_missing_organization_field_is_named(path: tuple, field: str) -> None:
    with pytest.raises(ResponseFormatError) as err:
        run(fetch_org(without(ORG_EXAMPLE, path)))
    assert str(err.value) == f"{ORG_MSG}is missing '{field}'"
    assert err.value.field == field
    assert err.value.org == "prod"


def test_missing_field_message_matches_the_brief_example() -> None:
    with pytest.raises(ResponseFormatError) as err:
        run(fetch_org(without(ORG_EXAMPLE, ("tier", "maxMonthlyCreditSpend"))))
    assert str(err.value) == (
        "organization 'prod': response from GET /v1/organization is missing "
        "'tier.maxMonthlyCreditSpend'"
    )


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("results",), "results"),
        (("results", 0, "date"), "results[0].date"),
        (("results", 0, "usedCredits"), "results[0].usedCredits"),
        (("results", 0, "usedCredits", 1, "model"), "results[0].usedCredits[1].model"),
        (("results", 0, "usedCredits", 1, "amount"), "results[0].usedCredits[1].amount"),
    ],
)
def test_missing_usage_field_is_named(path: tuple, field: str) -> None:
    with pytest.raises(ResponseFormatError) as err:
        run(fetch_usage(without(USAGE_EXAMPLE, path), date(2026, 3, 1), date(2026, 3, 17)))
    assert str(err.value) == f"{USAGE_MSG}is missing '{field}'"
    assert err.value.field == field


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("results", 0, "usedCredits", 1, "amount"), "400", '= "400", expected an integer'),
        (("results", 0, "usedCredits", 1, "amount"), 400.5, "= 400.5, expected an integer"),
        (("results", 0, "usedCredits", 1, "amount"), 400.0, "= 400.0, expected an integer"),
        (("results", 0, "usedCredits", 1, "amount"), True, "= true, expected an integer"),
        (("results", 0, "usedCredits", 1, "amount"), None, "= null, expected an integer"),
        (("results", 0, "usedCredits", 1, "model"), 3, "= 3, expected a non-empty string"),
        (("results", 0, "usedCredits", 1, "model"), "", '= "", expected a non-empty string'),
        (("results", 0, "date"), "16/03/2026", '= "16/03/2026", expected an ISO date (YYYY-MM-DD)'),
        (("results", 0, "date"), "2026-02-30", '= "2026-02-30", expected an ISO date (YYYY-MM-DD)'),
        (("results", 0, "date"), "2026-03-16T00:00:00Z", "expected an ISO date (YYYY-MM-DD)"),
        (("results", 0, "usedCredits"), {"gen4.5": 1}, '= {"gen4.5": 1}, expected a JSON array'),
        (("results",), {}, "= {}, expected a JSON array"),
    ],
)
def test_wrongly_typed_usage_field_is_named(path: tuple, value: object, expected: str) -> None:
    field = "results" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[1:])
    with pytest.raises(ResponseFormatError) as err:
        run(fetch_usage(replaced(USAGE_EXAMPLE, path, value), date(2026, 3, 1), date(2026, 3, 17)))
    assert str(err.value).startswith(f"{USAGE_MSG}has '{field}' ")
    assert str(err.value).endswith(expected)
    assert err.value.field == field


def test_wrong_credit_type_message_in_full() -> None:
    body = replaced(USAGE_EXAMPLE, ("results", 0, "usedCredits", 1, "amount"), "400")
    with pytest.raises(ResponseFormatError) as err:
        run(fetch_usage(body, date(2026, 3, 1), date(2026, 3, 17)))
    assert str(err.value) == (
        "organization 'prod': response from POST /v1/organization/usage has "
        "'results[0].usedCredits[1].amount' = \"400\", expected an integer"
    )


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("creditBalance",), 50.5, "has 'creditBalance' = 50.5, expected an integer"),
        (("creditBalance",), None, "has 'creditBalance' = null, expected an integer"),
        (("tier",), None, "has 'tier' = null, expected a JSON object"),
        (("tier", "models"), [], "has 'tier.models' = [], expected a JSON object"),
        (
            ("tier", "models", "gen4.5", "maxDailyGenerations"),
            "200",
            'has \'tier.models["gen4.5"].maxDailyGenerations\' = "200", expected an integer',
        ),
        (
            ("usage", "models", "gen4.5"),
            12,
            "has 'usage.models[\"gen4.5\"]' = 12, expected a JSON object",
        ),
    ],
)
def test_wrongly_typed_organization_field_is_named(
    path: tuple, value: object, message: str
) -> None:
    with pytest.raises(ResponseFormatError) as err:
        run(fetch_org(replaced(ORG_EXAMPLE, path, value)))
    assert str(err.value) == ORG_MSG + message


def test_non_json_body_is_a_format_error() -> None:
    with pytest.raises(ResponseFormatError) as err:
        run(fetch_org(b"<html>maintenance</html>"))
    assert str(err.value) == (
        "organization 'prod': response from GET /v1/organization is not JSON "
        "(HTTP 200, text/html, 24 bytes)"
    )
    assert err.value.field is None


def test_json_that_is_not_an_object_is_a_format_error() -> None:
    with pytest.raises(ResponseFormatError) as err:
        run(fetch_org([1, 2]))
    assert str(err.value) == f"{ORG_MSG}is not a JSON object (got [1, 2])"


def test_usage_date_outside_requested_window_is_rejected() -> None:
    with pytest.raises(ResponseFormatError) as err:
        run(fetch_usage(USAGE_EXAMPLE, date(2026, 3, 1), date(2026, 3, 16)))
    assert str(err.value) == (
        f"{USAGE_MSG}has 'results[0].date' = \"2026-03-16\", outside the requested window "
        "2026-03-01 .. 2026-03-16 (exclusive)"
    )


def test_usage_duplicate_date_and_model_is_rejected() -> None:
    body = copy.deepcopy(USAGE_EXAMPLE)
    body["results"].append(
        {"date": "2026-03-16", "usedCredits": [{"model": "veo3.1", "amount": 1}]}
    )
    with pytest.raises(ResponseFormatError) as err:
        run(fetch_usage(body, date(2026, 3, 1), date(2026, 3, 17)))
    assert str(err.value) == (
        f'{USAGE_MSG}reports model "veo3.1" twice for 2026-03-16 '
        "(again at 'results[1].usedCredits[0].model')"
    )


# -- usage windows -----------------------------------------------------------------------


def test_usage_rejects_windows_over_90_days_without_calling() -> None:
    seen: list[httpx.Request] = []

    async def go(start: date, before: date) -> None:
        async with client_for(USAGE_EXAMPLE, seen) as client:
            await client.usage(start, before)

    with pytest.raises(ValueError, match="91 days; the API allows at most 90"):
        run(go(date(2026, 1, 1), date(2026, 4, 2)))
    with pytest.raises(ValueError, match="empty"):
        run(go(date(2026, 1, 1), date(2026, 1, 1)))
    assert seen == []
    # exactly 90 days is allowed
    window = run(fetch_usage({"results": []}, date(2026, 1, 1), date(2026, 4, 1)))
    assert window == UsageWindow(date(2026, 1, 1), date(2026, 4, 1), ())


def test_usage_windows_split_into_at_most_90_days() -> None:
    assert usage_windows(date(2026, 1, 1), date(2026, 6, 1)) == [
        (date(2026, 1, 1), date(2026, 4, 1)),
        (date(2026, 4, 1), date(2026, 6, 1)),
    ]
    assert usage_windows(date(2026, 1, 1), date(2026, 4, 1)) == [
        (date(2026, 1, 1), date(2026, 4, 1)),
    ]
    assert usage_windows(date(2026, 1, 1), date(2026, 1, 2)) == [
        (date(2026, 1, 1), date(2026, 1, 2)),
    ]
    assert usage_windows(date(2026, 1, 5), date(2026, 1, 5)) == []
    assert usage_windows(date(2026, 1, 1), date(2026, 1, 8), max_days=3) == [
        (date(2026, 1, 1), date(2026, 1, 4)),
        (date(2026, 1, 4), date(2026, 1, 7)),
        (date(2026, 1, 7), date(2026, 1, 8)),
    ]


def test_options_from_collection_config() -> None:
    cfg = CollectionConfig(
        timeout_seconds=2.5, max_attempts=7, backoff_base_seconds=0.1, backoff_max_seconds=4
    )
    assert ClientOptions.from_config(cfg) == ClientOptions(
        timeout_seconds=2.5, max_attempts=7, backoff_base_seconds=0.1, backoff_max_seconds=4.0
    )
    assert ClientOptions.from_config(CollectionConfig()) == ClientOptions(
        timeout_seconds=20.0, max_attempts=5, backoff_base_seconds=0.5, backoff_max_seconds=30.0
    )
    with pytest.raises(ValueError, match="max_attempts"):
        ClientOptions(max_attempts=0)


# -- numbers that cannot be negative; bodies decoded and capped by the client -------------


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("creditBalance",), -1, "'creditBalance' = -1"),
        (("tier", "maxMonthlyCreditSpend"), -10000, "'tier.maxMonthlyCreditSpend' = -10000"),
        (
            ("tier", "models", "gen4.5", "maxConcurrentGenerations"),
            -2,
            "'tier.models[\"gen4.5\"].maxConcurrentGenerations' = -2",
        ),
        (
            ("tier", "models", "gen4.5", "maxDailyGenerations"),
            -200,
            "'tier.models[\"gen4.5\"].maxDailyGenerations' = -200",
        ),
        (
            ("usage", "models", "gen4.5", "dailyGenerations"),
            -12,
            "'usage.models[\"gen4.5\"].dailyGenerations' = -12",
        ),
    ],
)
def test_negative_balance_cap_limit_or_count_is_a_format_error(
    path: tuple, value: int, field: str
) -> None:
    with pytest.raises(ResponseFormatError) as err:
        run(fetch_org(replaced(ORG_EXAMPLE, path, value)))
    assert str(err.value) == ORG_MSG + f"has {field}, expected a non-negative integer"


def test_zero_balance_and_cap_are_accepted() -> None:
    body = replaced(
        replaced(ORG_EXAMPLE, ("creditBalance",), 0), ("tier", "maxMonthlyCreditSpend"), 0
    )
    snapshot = run(fetch_org(body))
    assert (snapshot.credit_balance, snapshot.max_monthly_credit_spend) == (0, 0)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate", "identity"])
def test_bodies_are_decoded_by_the_client_and_capped(encoding: str) -> None:
    import zlib

    from runway_costs.collector.client import _BodyProblem, _BodyReader

    data = json.dumps(ORG_EXAMPLE).encode()
    packed = {
        "gzip": lambda d: zlib.compress(d, wbits=31),
        "deflate": zlib.compress,
        "raw-deflate": lambda d: zlib.compress(d, wbits=-15),
        "identity": lambda d: d,
    }[encoding](data)
    header = "deflate" if encoding == "raw-deflate" else encoding
    whole = _BodyReader(header, limit=len(data))
    for i in range(0, len(packed), 7):  # small chunks, as a slow network delivers them
        whole.feed(packed[i : i + 7])
    whole.finish()
    assert (whole.body(), whole.full) == (data, False)
    short = _BodyReader(header, limit=len(data) - 1)
    short.feed(packed)
    short.finish()
    assert short.full and short.size == len(data) - 1
    with pytest.raises(_BodyProblem, match="unsupported Content-Encoding 'br'"):
        _BodyReader("br", limit=10)
