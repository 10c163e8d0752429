"""Config, rate and tier files: a wrong type or a number that is not finite, not positive
where it divides, or out of bounds is one clear line naming the file and the key, exit 2,
no traceback and nothing written (issue #10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from runway_costs.analytics.rates import RateError, load_rates
from runway_costs.analytics.tiertable import TierError, load_tiers
from runway_costs.cli.main import app
from runway_costs.core.config import ConfigError, load_settings

runner = CliRunner()
ORG = '[[orgs]]\nname = "studio"\napi_key_env = "RC_BOUNDS_KEY"\n'


def run(tmp_path: Path, text: str, *args: str):
    config = tmp_path / "c.toml"
    config.write_text(text, encoding="utf-8")
    db = tmp_path / "x.duckdb"
    done = runner.invoke(
        app,
        [*args, "--config", str(config), "--db", str(db)],
        env={"COLUMNS": "300", "RC_BOUNDS_KEY": "key_x", "RUNWAY_COSTS_CONFIG": ""},
    )
    return done, config, db


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("db = 5\n", "db: must be a file path (a string), got 5"),
        ("rates = 7\n", "rates: must be a file path (a string), got 7"),
        ('rates = ""\n', "rates: must be a file path (a string), got ''"),
        ("credit_usd = 0\n", "credit_usd: Input should be greater than 0"),
        ("credit_usd = nan\n", "credit_usd: Input should be a finite number"),
        (
            ORG + '[[budgets]]\norg = "studio"\nusd = inf\n',
            "budgets.0.usd: Input should be a finite number",
        ),
        (
            ORG + '[[budgets]]\norg = "studio"\nusd = 1e30\n',
            "budgets[0]: usd 1e+30 is more than the 1,000,000,000,000,000 credits a budget "
            "may hold",
        ),
        (
            ORG + '[[budgets]]\norg = "studio"\nusd = 0.001\n',
            "budgets[0]: usd 0.001 is less than one credit (USD 0.01)",
        ),
        (
            ORG + '[[budgets]]\norg = "studio"\ncredits = 99999999999999999999\n',
            "budgets.0.credits: Input should be less than or equal to 1000000000000000",
        ),
        (
            "[alerts.thresholds]\nstale_hours = nan\n",
            "alerts.thresholds.stale_hours: Input should be a finite number",
        ),
        (
            "[alerts.thresholds]\nstale_hours = 1e9\n",
            "alerts.thresholds.stale_hours: Input should be less than or equal to 8784",
        ),
        (
            "[collection]\nbackoff_max_seconds = inf\n",
            "collection.backoff_max_seconds: Input should be a finite number",
        ),
        (
            "[collection]\nsnapshot_minutes = 1e300\n",
            "collection.snapshot_minutes: Input should be less than or equal to 10080",
        ),
        (
            '[collection]\ntimeout_seconds = "fast"\n',
            "collection.timeout_seconds: Input should be a valid number, unable to parse "
            "string as a number",
        ),
        (
            '[[orgs]]\nname = "studio"\napi_key_env = 5\n',
            "orgs[0].api_key_env: must be a non-empty string, got 5",
        ),
        (
            '[[orgs]]\nname = "studio"\napi_key_file = 5\n',
            "orgs[0].api_key_file: must be a non-empty string, got 5",
        ),
        (
            ORG + '[[budgets]]\norg = "stuido"\ncredits = 100\n',
            "budgets[0].org: 'stuido' is not an organization in [[orgs]] (configured: studio)",
        ),
    ],
)
def test_bad_config_values_are_one_line_exit_2(tmp_path: Path, text: str, message: str):
    for args in (["forecast"], ["alerts", "check"]):
        done, config, db = run(tmp_path, text, *args)
        assert done.exit_code == 2, (args, done.output)
        assert done.stderr.strip() == f"error: {config}: {message}", done.stderr
        assert "Traceback" not in done.output
        assert not db.exists()  # nothing read or written


def test_a_budget_for_a_configured_org_is_accepted(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text(ORG + '[[budgets]]\norg = "studio"\nusd = 1000.0\n', encoding="utf-8")
    settings = load_settings(config_path=path, env={"RC_BOUNDS_KEY": "key_x"})
    assert settings.budgets[0].monthly_credits(settings.credit_usd) == 100_000


def test_without_orgs_in_the_file_budgets_are_not_matched_to_them(tmp_path: Path):
    """With no [[orgs]] the org comes from RUNWAYML_API_SECRET ("default") or the database:
    nothing to match a budget against."""
    path = tmp_path / "c.toml"
    path.write_text('[[budgets]]\norg = "studio"\ncredits = 5\n', encoding="utf-8")
    assert load_settings(config_path=path, env={}).budgets[0].org == "studio"


def test_a_5000_digit_number_in_the_config_is_a_config_error(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text("[collection]\nrefresh_days = " + "9" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(config_path=path, env={})
    assert str(info.value) == f"{path}: invalid TOML: a number has too many digits"
    path.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(config_path=path, env={})
    assert str(info.value) == f"{path}: invalid TOML: nested too deeply"


RATES = """credit_usd = {credit_usd}
[models.m]
endpoints = ["text_to_video"]
per = "second"
typical_seconds = {typical}
[[models.m.prices]]
effective_from = "2025-01-01"
credits = {credits}
block = {block}
"""


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"credit_usd": "inf"}, "credit_usd: must be positive, at most 1000, got inf"),
        ({"credit_usd": "nan"}, "credit_usd: must be positive, at most 1000, got nan"),
        ({"block": "inf"}, "models.'m'.prices[0].block: must be a positive number, got inf"),
        ({"typical": "inf"}, "models.'m'.typical_seconds: must be a positive number"),
        (
            {"credits": "99999999999999999999"},
            "models.'m'.prices[0].credits: must be a whole number of credits or [min, max] "
            "with min <= max (at most 1,000,000,000,000,000)",
        ),
    ],
)
def test_rate_file_numbers_are_finite_and_bounded(tmp_path: Path, values: dict, message: str):
    text = RATES.format(**{"credit_usd": 0.01, "typical": 60, "credits": 5, "block": 1, **values})
    path = tmp_path / "rates.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RateError) as info:
        load_rates(path)
    assert str(info.value) == f"{path}: {message}"
    plan = tmp_path / "plan.csv"
    plan.write_text("model,seconds\nm,5\n", encoding="utf-8")
    done = runner.invoke(app, ["price", str(plan), "--rates", str(path)])
    assert done.exit_code == 2 and done.stdout == ""
    assert f"error: {path}: {message}" in done.stderr


TIERS = """[[tiers]]
tier = 1
concurrency = [1, 2]
daily_generations = [50, 200]
purchase_cap_credits = {cap}
unlock_days = 0
unlock_spend_usd = {spend}
"""


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"spend": "nan"},
            "tiers[0].unlock_spend_usd: must be a number from 0 to 1,000,000,000,000,000 (USD)",
        ),
        (
            {"cap": "99999999999999999999"},
            "tiers[0].purchase_cap_credits: must be a whole number from 0 to "
            "1,000,000,000,000,000, got 99999999999999999999",
        ),
    ],
)
def test_tier_file_numbers_are_finite_and_bounded(tmp_path: Path, values: dict, message: str):
    path = tmp_path / "tiers.toml"
    path.write_text(TIERS.format(**{"cap": 10_000, "spend": 0, **values}), encoding="utf-8")
    with pytest.raises(TierError) as info:
        load_tiers(path)
    assert str(info.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rates = 7\n", "rates: must be a file path (a string), got 7"),
        ("db = 5\n", "db: must be a file path (a string), got 5"),
        (
            "[alerts.thresholds]\nstale_hours = nan\n",
            "alerts.thresholds.stale_hours: Input should be a finite number",
        ),
        (
            '[[orgs]]\nname = "studio"\napi_key_env = 5\n',
            "orgs[0].api_key_env: must be a non-empty string, got 5",
        ),
        ("[collection\n", "invalid TOML: Expected ']' at the end of a table declaration"),
    ],
)
def test_price_checks_the_whole_config_file(tmp_path: Path, text: str, message: str):
    """``price`` needs only the file paths from the settings, but a config file it is
    given is checked whole, as every command checks it: the same line, exit 2."""
    plan = tmp_path / "plan.csv"
    plan.write_text("model,count\ngen4_image_turbo,2\n", encoding="utf-8")
    done, config, db = run(tmp_path, text, "price", str(plan))
    assert done.exit_code == 2, done.output
    assert done.stderr.strip().startswith(f"error: {config}: {message}"), done.stderr
    assert "Traceback" not in done.output
