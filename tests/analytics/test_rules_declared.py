"""The alert rules are declared once (``alert_rules.RULES``); config, README, the rules
table and the stored values agree with that declaration."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from runway_costs.analytics.alert_rules import (
    RULES,
    SEVERITY_RANK,
    Alert,
    Condition,
    Severity,
    Status,
    rule_title,
    rules_table,
)
from runway_costs.core.config import AlertThresholds

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_thresholds() -> dict:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"^\[alerts\.thresholds\][^\n]*\n(.*?)^```", text, re.M | re.S)
    assert block, "README has no [alerts.thresholds] block"
    return tomllib.loads(block.group(1))


def test_every_threshold_setting_belongs_to_exactly_one_rule() -> None:
    settings = [t.setting for r in RULES for t in r.thresholds]
    assert sorted(settings) == sorted(AlertThresholds.model_fields)
    assert len({r.name for r in RULES}) == len(RULES)


def test_readme_thresholds_are_the_declared_defaults() -> None:
    declared = {
        t.setting: list(t.default) if isinstance(t.default, tuple) else t.default
        for r in RULES
        for t in r.thresholds
    }
    assert _readme_thresholds() == declared


def test_readme_names_the_visible_statuses() -> None:
    text = README.read_text(encoding="utf-8")
    shown = re.search(r"`status`\s*\(([^)]*)\)", text)
    assert shown
    assert shown.group(1).replace("`", "").split("/") == [
        s.value for s in Status if s is not Status.SUPERSEDED
    ]


def test_rules_table_lists_every_threshold_in_force() -> None:
    table = rules_table(AlertThresholds(runout_warn_days=9))
    rows = {(r["rule"], r["setting"]): r["value"] for r in table.iter_rows(named=True)}
    assert rows[("runout", "warning when run-out within (days)")] == "9"
    assert rows[("collection_stale", "no successful collection for (hours)")] == "2.0"
    assert rows[("cap_used", "levels (info, warning, critical)")] == "0.5, 0.8, 1.0"
    assert table.height == sum(len(r.thresholds) for r in RULES)


def test_severity_and_status_are_their_stored_strings() -> None:
    assert [s.value for s in sorted(Severity, key=lambda s: s.rank)] == [
        "info",
        "warning",
        "critical",
    ]
    assert SEVERITY_RANK["warning"] == Severity.WARNING.rank == 2
    alert = Alert("a", "runout", "", "2026-11", Severity.CRITICAL, Status.FIRED, 1.0, 2.0, "m")
    assert json.loads(json.dumps(alert.to_json()))["status"] == "fired"
    assert alert.title == "[CRITICAL] a: balance running out"
    assert rule_title("not_a_rule") == "not_a_rule"


def test_conditions_name_only_declared_rules() -> None:
    with pytest.raises(ValueError, match="undeclared alert rule"):
        Condition("a", "no_such_rule", "", "k", Severity.WARNING, 1.0, 1.0, "m")
