"""Wire compatibility: the official runwayml SDK talks to the sandbox, and the raw JSON
validates against the SDK's own response models."""

from __future__ import annotations

import pytest
import runwayml
from runwayml.types import OrganizationRetrieveResponse, OrganizationRetrieveUsageResponse

pytestmark = pytest.mark.integration


@pytest.fixture
def client(sandbox):
    key = sandbox.key("studio")
    with runwayml.RunwayML(api_key=key, base_url=sandbox.base_url, max_retries=0) as c:
        yield c


def test_organization_validates_with_sdk_model_and_matches_ground_truth(client, sandbox):
    raw = client.organization.with_raw_response.retrieve().http_response

    org = OrganizationRetrieveResponse.model_validate(raw.json())
    strict = OrganizationRetrieveResponse.model_validate_json(raw.text, strict=True)

    assert org == strict
    assert org.model_extra == {}  # no field the SDK does not know
    assert org.credit_balance == 27748  # seed 7 at 2026-11-24T12:00Z
    world = sandbox.world
    assert org.credit_balance == world.org("studio").balance(world.now())
    assert org.tier.max_monthly_credit_spend == 200_000  # tier 3: USD 2,000
    assert org.tier.models["gen4.5"].max_concurrent_generations == 5
    assert org.tier.models["gen4.5"].max_daily_generations == 1_000
    assert org.tier.models["gen4_image"].max_daily_generations == 2_000
    assert "gwm1_avatars" in org.usage.models
    for name, usage in org.usage.models.items():
        assert 0 <= usage.daily_generations <= org.tier.models[name].max_daily_generations


def test_sdk_typed_call_parses_the_same_values(client):
    org = client.organization.retrieve()
    assert org.credit_balance == 27748
    assert org.tier.max_monthly_credit_spend == 200_000


def test_usage_validates_with_sdk_model_and_covers_the_window(client):
    raw = client.organization.with_raw_response.retrieve_usage(
        start_date="2026-09-01", before_date="2026-11-25"
    ).http_response

    usage = OrganizationRetrieveUsageResponse.model_validate(raw.json())
    strict = OrganizationRetrieveUsageResponse.model_validate_json(raw.text, strict=True)

    assert usage == strict
    assert usage.model_extra == {}
    dates = [r.date.isoformat() for r in usage.results]
    assert len(dates) == 85  # 2026-09-01 .. 2026-11-24 (before is exclusive, today included)
    assert dates[0] == "2026-09-01"
    assert dates[-1] == "2026-11-24"
    assert dates == sorted(dates)
    assert "gwm1_avatars" in usage.models  # no published price
    assert "kling3.0_pro" in usage.models  # no published price either
    assert "seedance2" in usage.models
    used = {c.model for r in usage.results for c in r.used_credits}
    assert used == set(usage.models)
    assert usage.api_keys is None
    assert usage.results_by_api_key is None


def test_usage_defaults_to_the_last_30_days_before_today(client):
    usage = client.organization.retrieve_usage()
    dates = [r.date.isoformat() for r in usage.results]
    # start = today - 30 = 2026-10-25, before = start + 30 = 2026-11-24 (exclusive)
    assert dates[0] == "2026-10-25"
    assert dates[-1] == "2026-11-23"
    assert len(dates) == 30


def test_sdk_raises_its_own_errors_for_sandbox_errors(sandbox):
    bad_key = runwayml.RunwayML(api_key="key_nope", base_url=sandbox.base_url, max_retries=0)
    with bad_key as c, pytest.raises(runwayml.AuthenticationError) as auth:
        c.organization.retrieve()
    assert auth.value.status_code == 401
    assert "Invalid API key" in auth.value.body["error"]

    key = sandbox.key("indie")
    good_key = runwayml.RunwayML(api_key=key, base_url=sandbox.base_url, max_retries=0)
    with good_key as c, pytest.raises(runwayml.BadRequestError) as bad:
        c.organization.retrieve_usage(start_date="2026-01-01")
    assert bad.value.status_code == 400
    assert bad.value.body["error"] == "Validation of body failed"
    assert bad.value.body["issues"][0]["path"] == ["startDate"]


def test_per_api_key_fields_validate_with_sdk_model_and_add_up():
    """--api-keys: apiKeys and resultsByApiKey filled in the SDK's own shape (its types
    still call them reserved), each day's keys adding up to the day's results."""
    from runway_costs.sandbox.server import SandboxServer

    with (
        SandboxServer(seed=7, now="2026-11-24T12:00:00Z", api_keys=3) as sb,
        runwayml.RunwayML(api_key=sb.key("studio"), base_url=sb.base_url, max_retries=0) as c,
    ):
        raw = c.organization.with_raw_response.retrieve_usage(
            start_date="2026-11-01", before_date="2026-11-25"
        ).http_response
        ids = sb.world.org("studio").key_ids
        agency_ids = sb.world.org("agency").key_ids
    usage = OrganizationRetrieveUsageResponse.model_validate_json(raw.text, strict=True)
    assert usage.model_extra == {}
    assert len(ids) == 3 and len(agency_ids) == 2  # every other org one key fewer
    assert usage.api_keys == sorted(ids)
    assert usage.results_by_api_key is not None
    assert [r.date for r in usage.results_by_api_key] == [r.date for r in usage.results]
    for day, keys in zip(usage.results, usage.results_by_api_key, strict=True):
        total = sum(c.amount for c in day.used_credits)
        parts = {c.api_key_id: c.amount for c in keys.used_credits}
        assert sum(parts.values()) == total
        # the split: 5/10 and 3/10 of the day (floored), the last key the rest
        assert parts.get(ids[0], 0) == total * 5 // 10
        assert parts.get(ids[1], 0) == total * 3 // 10
