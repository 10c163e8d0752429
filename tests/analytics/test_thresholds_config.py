"""Alert thresholds and budgets in the config file: defaults, overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from runway_costs.core.config import ConfigError, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "data" / "example-config.toml"


def test_the_committed_example_config_loads():
    env = {
        "RUNWAY_KEY_STUDIO": "key_a",
        "RUNWAY_KEY_INDIE": "key_b",
        "RUNWAY_ALERTS_SLACK": "slack://a/b/c",
        "RUNWAY_ALERTS_EMAIL": "mailtos://u:p@smtp.example.com",
    }
    settings = load_settings(EXAMPLE, env=env)
    assert [(b.org, b.model, b.monthly_credits()) for b in settings.budgets] == [
        ("studio", None, 100_000),
        ("studio", "veo3.1", 40_000),
        ("indie", None, 9_000),
    ]
    assert len(settings.alerts.urls) == 2
    assert "slack://" not in repr(settings)
    assert settings.alerts.thresholds.runout_warn_days == 7


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_thresholds_can_be_changed(tmp_path):
    path = write(tmp_path, "[alerts.thresholds]\nrunout_warn_days = 10\nstale_hours = 6\n")
    th = load_settings(path, env={}).alerts.thresholds
    assert (th.runout_warn_days, th.stale_hours, th.runout_critical_days) == (10, 6.0, 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "runout_warn_days = 1\n",
            "runout_critical_days (2) is above runout_warn_days (1)",
        ),
        ("cap_forecast_warn = 1.2\n", "cap_forecast_warn (1.2) is above cap_forecast_critical"),
        ("stale_hours = 0\n", "must be greater than 0: stale_hours"),
        ("cap_used_levels = [0.8, 0.5, 1.0]\n", "cap_used_levels must be ascending"),
        ("runout_days = 3\n", "alerts.thresholds.runout_days: Extra inputs are not permitted"),
    ],
)
def test_bad_thresholds_name_the_file_and_field(tmp_path, text, message):
    path = write(tmp_path, "[alerts.thresholds]\n" + text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_a_budget_takes_credits_or_usd_not_both(tmp_path):
    path = write(tmp_path, '[[budgets]]\norg = "a"\ncredits = 5\nusd = 1.0\n')
    with pytest.raises(ConfigError, match="set credits or usd, not both"):
        load_settings(path, env={})


def test_a_budget_needs_an_amount(tmp_path):
    path = write(tmp_path, '[[budgets]]\norg = "a"\nmodel = "veo3.1"\n')
    with pytest.raises(ConfigError, match="budget for 'a' needs credits or usd"):
        load_settings(path, env={})
