"""Every refusal the API makes: 401 for keys, 400 for the version header and bad windows,
always with Runway's JSON error body. Today is 2026-11-24 in the session sandbox."""

from __future__ import annotations

import httpx
import pytest

from tests.sandbox.wire import headers

pytestmark = pytest.mark.integration

DOC_URL = "https://docs.dev.runwayml.com/api"


@pytest.fixture
def http(sandbox):
    with httpx.Client(base_url=sandbox.base_url, timeout=10) as c:
        yield c


def usage(http: httpx.Client, key: str, body: object) -> httpx.Response:
    return http.post("/v1/organization/usage", headers=headers(key), json=body)


@pytest.mark.parametrize("key", [None, "key_0000", "key_" + "0" * 48])
@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/organization"), ("POST", "/v1/organization/usage")]
)
def test_missing_or_unknown_key_is_401_with_json_error(http, key, method, path):
    r = http.request(method, path, headers=headers(key))
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error"].startswith("Invalid API key")
    assert body["docUrl"] == DOC_URL


def test_basic_auth_scheme_is_not_a_bearer_key(http, sandbox):
    r = http.get(
        "/v1/organization",
        headers={
            "Authorization": f"Basic {sandbox.key('studio')}",
            "X-Runway-Version": "2024-11-06",
        },
    )
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/organization"), ("POST", "/v1/organization/usage")]
)
def test_missing_version_header_is_400(http, sandbox, method, path):
    r = http.request(method, path, headers=headers(sandbox.key("studio"), version=None))
    assert r.status_code == 400
    assert r.json() == {
        "error": "The X-Runway-Version header is required (e.g. 2024-11-06).",
        "docUrl": DOC_URL,
    }


def test_unknown_version_is_400(http, sandbox):
    r = http.get("/v1/organization", headers=headers(sandbox.key("studio"), version="2023-01-01"))
    assert r.status_code == 400
    assert "2023-01-01" in r.json()["error"]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        # window longer than 90 days: 2026-09-01 -> 2026-12-01 is 91 days
        ({"startDate": "2026-09-01", "beforeDate": "2026-12-01"}, "beforeDate", "too_big"),
        # start older than 90 days before today (today - 91)
        ({"startDate": "2026-08-25"}, "startDate", "too_small"),
        ({"startDate": "2025-11-24", "beforeDate": "2025-12-01"}, "startDate", "too_small"),
        # malformed dates
        ({"startDate": "2026/11/01"}, "startDate", "invalid_string"),
        ({"startDate": "2026-11-1"}, "startDate", "invalid_string"),
        ({"startDate": "2026-13-01"}, "startDate", "invalid_date"),
        ({"startDate": 20261101}, "startDate", "invalid_string"),
        ({"beforeDate": "tomorrow"}, "beforeDate", "invalid_string"),
        ({"startDate": "2026-11-01", "beforeDate": "2026-02-30"}, "beforeDate", "invalid_date"),
        # beforeDate <= startDate
        ({"startDate": "2026-11-10", "beforeDate": "2026-11-10"}, "beforeDate", "too_small"),
        ({"startDate": "2026-11-10", "beforeDate": "2026-11-09"}, "beforeDate", "too_small"),
    ],
)
def test_bad_usage_window_is_400_naming_the_field(http, sandbox, body, field, code):
    r = usage(http, sandbox.key("agency"), body)
    assert r.status_code == 400
    payload = r.json()
    assert payload["error"] == "Validation of body failed"
    assert payload["docUrl"] == DOC_URL
    (issue,) = payload["issues"]
    assert issue["path"] == [field]
    assert issue["code"] == code
    assert field in issue["message"]


def test_window_limits_themselves_are_accepted(http, sandbox):
    # start exactly 90 days back, window exactly 90 days: 2026-08-26 .. 2026-11-23
    r = usage(http, sandbox.key("agency"), {"startDate": "2026-08-26", "beforeDate": "2026-11-24"})
    assert r.status_code == 200
    dates = [x["date"] for x in r.json()["results"]]
    assert (dates[0], dates[-1], len(dates)) == ("2026-08-26", "2026-11-23", 90)


def test_future_before_date_stops_at_today(http, sandbox):
    r = usage(http, sandbox.key("agency"), {"startDate": "2026-11-20", "beforeDate": "2026-12-20"})
    assert r.status_code == 200
    dates = [x["date"] for x in r.json()["results"]]
    assert dates == ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24"]


def test_explicit_nulls_mean_defaults(http, sandbox):
    r = usage(http, sandbox.key("agency"), {"startDate": None, "beforeDate": None})
    dates = [x["date"] for x in r.json()["results"]]
    assert (dates[0], dates[-1]) == ("2026-10-25", "2026-11-23")


def test_start_only_defaults_before_to_30_days_later(http, sandbox):
    r = usage(http, sandbox.key("agency"), {"startDate": "2026-09-01"})
    dates = [x["date"] for x in r.json()["results"]]
    assert (dates[0], dates[-1], len(dates)) == ("2026-09-01", "2026-09-30", 30)


def test_unknown_body_fields_are_ignored(http, sandbox):
    r = usage(http, sandbox.key("agency"), {"startDate": "2026-11-23", "extra": 1})
    assert r.status_code == 200
    # before defaults to 30 days after the start and stops at today (2026-11-24)
    assert [x["date"] for x in r.json()["results"]] == ["2026-11-23", "2026-11-24"]


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"{not json", "Request body is not valid JSON."),
        (b"[1, 2]", "Request body must be a JSON object."),
        (b'"2026-11-01"', "Request body must be a JSON object."),
    ],
)
def test_body_that_is_not_a_json_object_is_400(http, sandbox, raw, error):
    r = http.post(
        "/v1/organization/usage",
        headers={**headers(sandbox.key("agency")), "Content-Type": "application/json"},
        content=raw,
    )
    assert r.status_code == 400
    assert r.json()["error"] == error


def test_empty_body_uses_defaults(http, sandbox):
    r = http.post("/v1/organization/usage", headers=headers(sandbox.key("agency")))
    assert r.status_code == 200
    assert r.json()["results"][0]["date"] == "2026-10-25"


def test_unknown_path_and_wrong_method_are_json_errors(http, sandbox):
    r = http.get("/v1/nope", headers=headers(sandbox.key("agency")))
    assert r.status_code == 404
    assert r.json()["error"] == "Not found: GET /v1/nope"
    r = http.get("/v1/organization/usage", headers=headers(sandbox.key("agency")))
    assert r.status_code == 405
    assert r.json()["error"] == "Method not allowed: GET /v1/organization/usage"
