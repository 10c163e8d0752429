"""Each alert rule on a small hand-written history, and the alert lifecycle planner."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl

from runway_costs.analytics.alert_rules import Condition, evaluate_org
from runway_costs.analytics.alerts import plan_alerts
from runway_costs.core.config import AlertsConfig, AlertThresholds, Settings
from tests.analytics.conftest import add_model, add_run, add_snapshot, add_usage, new_db

AS_OF = datetime(2026, 11, 16, 12)


def rules(conditions: list[Condition]) -> dict[str, Condition]:
    return {c.rule: c for c in conditions}


def quiet_org(tmp_path, daily: int = 100):
    """28 days of ``daily`` credits before 15 Nov, a big balance, collected an hour ago."""
    con = new_db(tmp_path / "r.duckdb")
    for i in range(1, 31):
        add_usage(con, "acme", date(2026, 11, 16) - timedelta(days=i), "gen4.5", daily)
    add_snapshot(con, "acme", datetime(2026, 11, 16, 11), 1_000_000, cap=10_000_000)
    add_run(con, "acme", datetime(2026, 11, 16, 11))
    return con


def test_a_quiet_org_raises_nothing(tmp_path):
    con = quiet_org(tmp_path)
    assert evaluate_org(con, Settings(), "acme", AS_OF) == []


def test_spend_anomaly_against_the_robust_norm(tmp_path):
    con = quiet_org(tmp_path)
    # Yesterday 15 Nov: replace 100 by 700. Norm: median 100, MAD 0 -> floor 10% of the
    # median = 10 credits * 5 = 50, but at least 100 credits more: alert level 200.
    con.execute("UPDATE daily_usage SET credits = 700 WHERE date = '2026-11-15'")
    (c,) = evaluate_org(con, Settings(), "acme", AS_OF)
    assert (c.rule, c.key, c.severity, c.value, c.threshold) == (
        "spend_anomaly",
        "2026-11-15",
        "warning",
        700.0,
        200,
    )
    assert c.message == (
        "acme spent 700 credits (USD 7.00) on 2026-11-15, far above its usual 100 credits a "
        "day over the previous 28 days (alert level 200 credits)."
    )
    con.execute("UPDATE daily_usage SET credits = 199 WHERE date = '2026-11-15'")
    assert evaluate_org(con, Settings(), "acme", AS_OF) == []


def test_daily_generations_near_and_at_the_limit(tmp_path):
    con = quiet_org(tmp_path)
    add_model(con, "acme", datetime(2026, 11, 16, 10), "gen4.5", 180, 200)  # 90%
    add_model(con, "acme", datetime(2026, 11, 16, 10), "veo3.1", 50, 50)  # 100%
    add_model(con, "acme", datetime(2026, 11, 16, 10), "gen4_turbo", 179, 200)  # 89.5%
    found = sorted(
        (c.target, c.key, c.severity, c.value) for c in evaluate_org(con, Settings(), "acme", AS_OF)
    )
    assert found == [
        ("gen4.5", "gen4.5:2026-11-16", "warning", 0.9),
        ("veo3.1", "veo3.1:2026-11-16", "critical", 1.0),
    ]


def test_collection_stale_after_two_hours(tmp_path):
    con = quiet_org(tmp_path)
    add_run(con, "acme", datetime(2026, 11, 16, 11, 30), status="failed")
    late = datetime(2026, 11, 16, 13, 30)  # last success 11:00, 2.5 hours before
    c = rules(evaluate_org(con, Settings(), "acme", late))["collection_stale"]
    assert (c.key, c.value, c.threshold) == ("2026-11-16T11:00:00", 2.5, 2.0)
    lenient = Settings(alerts=AlertsConfig(thresholds=AlertThresholds(stale_hours=3)))
    assert "collection_stale" not in rules(evaluate_org(con, lenient, "acme", late))


def test_cap_used_levels(tmp_path):
    con = new_db(tmp_path / "r.duckdb")
    # Observed each evening; 600 bought on 15 Nov (cap 1,000): 60% -> info.
    add_snapshot(con, "acme", datetime(2026, 11, 14, 22), 1_000_000, cap=1000)
    add_run(con, "acme", datetime(2026, 11, 14, 23))
    add_snapshot(con, "acme", datetime(2026, 11, 15, 22), 1_000_600, cap=1000)
    add_run(con, "acme", datetime(2026, 11, 15, 23))
    add_run(con, "acme", datetime(2026, 11, 16, 11))
    c = rules(evaluate_org(con, Settings(), "acme", AS_OF))["cap_used"]
    assert (c.severity, c.value, c.threshold, c.key) == ("info", 0.6, 0.5, "2026-11")
    assert c.message == (
        "acme has bought 600 credits (USD 6.00) in the last 30 days, 60% of its 30-day "
        "purchase cap of 1,000 credits (USD 10.00); 400 credits (USD 4.00) can still be bought."
    )


def condition(rule="runout", key="2026-11", severity="warning", target="") -> Condition:
    return Condition("acme", rule, target, key, severity, 5.0, 7.0, "msg")


def state(rows: list[tuple]) -> pl.DataFrame:
    cols = ["org", "rule", "target", "key", "status", "severity", "notified_severity"]
    frame = pl.DataFrame(rows, schema=cols, orient="row")
    return frame.with_columns(
        value=pl.lit(1.0), threshold=pl.lit(1.0), message=pl.lit("old message")
    )


def test_plan_new_ongoing_escalated_resolved_superseded_and_reopened():
    stored = state(
        [
            ("acme", "runout", "", "2026-11", "open", "warning", "warning"),
            ("acme", "cap_used", "", "2026-11", "open", "critical", "critical"),
            (
                "acme",
                "daily_generations",
                "gen4.5",
                "gen4.5:2026-11-15",
                "open",
                "warning",
                "warning",
            ),
            ("acme", "budget_used", "", "2026-11", "resolved", "warning", "warning"),
            ("acme", "spend_anomaly", "", "2026-11-10", "open", "warning", "warning"),
            ("other", "runout", "", "2026-11", "open", "warning", "warning"),
        ]
    )
    now = [
        condition("runout", severity="critical"),  # rises: announced again
        condition("cap_used", severity="warning"),  # falls: stays quiet
        condition("daily_generations", "gen4.5:2026-11-16", target="gen4.5"),  # new day
        condition("budget_used"),  # came back after resolving
        condition("cap_forecast"),  # new
    ]
    plan = {(a.rule, a.key): (a.status, a.severity) for a in plan_alerts(stored, now, ["acme"])}
    assert plan == {
        ("runout", "2026-11"): ("fired", "critical"),
        ("cap_used", "2026-11"): ("ongoing", "warning"),
        ("daily_generations", "gen4.5:2026-11-16"): ("fired", "warning"),
        ("daily_generations", "gen4.5:2026-11-15"): ("superseded", "warning"),
        ("budget_used", "2026-11"): ("fired", "warning"),
        ("cap_forecast", "2026-11"): ("fired", "warning"),
        ("spend_anomaly", "2026-11-10"): ("resolved", "warning"),
        # "other" was not evaluated: untouched.
    }
