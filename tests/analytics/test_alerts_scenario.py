"""Day by day against the sandbox: the right alerts fire on the right day, once, escalate
and resolve, and a real webhook and a real SMTP server receive exactly those notices.

The scripted org ``shop`` (tier 1: 30-day purchase cap 10,000 credits) spends 500 credits
every day from 1 October with an opening balance of 26,000, and buys 9,000 credits on
20 November. Collection and the check run at 00:00 UTC each day, so the balance seen on
1-19 November d is 26,000 - 500 * (30 + d) = 11,000 - 500 d, and the flat history makes the
forecast exactly 500 a day. Budget: 12,000 credits for November.

Hand-worked expectations:
- budget_forecast: month end 15,000 = 125% of 12,000 -> warning from the first check (5 Nov).
- cap_forecast: the balance lasts through 21 Nov, then 500 a day must be bought; the window
  ending 29 days after day d holds (d + 8) such days: 8 Nov -> 16 * 500 = 8,000 = 80% (warning);
  12 Nov -> 20 * 500 = 10,000 = 100% (critical). Still critical after the top-up.
- runout: on d the balance lasts until 21 Nov, (21 - d) days away: 14 Nov -> 7 days
  (warning), 19 Nov -> 2 days (critical); 20 Nov the top-up (balance 10,000, 19 days):
  resolved.
- cap_used: 20 Nov, purchases = 10,000 - 1,500 (seen 19 Nov 00:00) + 0 spent yet = 8,500 =
  85% (warning); 21 Nov the day is complete: 9,000 = 90%, still warning (ongoing).
- budget_used: month-to-date at 00:00 on d is 500 (d - 1): 21 Nov 10,000 = 83% (warning).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from pydantic import SecretStr

from runway_costs.analytics.alert_store import alert_history, open_alerts
from runway_costs.analytics.alerts import check_alerts
from runway_costs.analytics.db import connect_reader
from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.core.clock import fixed_clock
from runway_costs.core.config import AlertsConfig, Budget, CollectionConfig, OrgConfig, Settings
from runway_costs.sandbox.server import SandboxServer
from runway_costs.sandbox.world import OrgSpec
from tests.analytics.receivers import smtp_server, webhook

pytestmark = pytest.mark.integration

SCRIPT = {
    date(2026, 10, 1) + timedelta(days=i): {"gen4.5": 500} for i in range(70)
}  # 1 Oct .. 9 Dec

EXPECTED = {
    5: [("budget_forecast", "warning", "fired")],
    8: [("cap_forecast", "warning", "fired")],
    12: [("cap_forecast", "critical", "fired")],
    14: [("runout", "warning", "fired")],
    19: [("runout", "critical", "fired")],
    20: [("cap_used", "warning", "fired"), ("runout", "critical", "resolved")],
    21: [("budget_used", "warning", "fired")],
}


def test_alerts_fire_once_escalate_and_resolve_day_by_day(tmp_path):
    spec = OrgSpec(
        name="shop",
        tier=1,
        opening_balance=26_000,
        script=SCRIPT,
        purchases={date(2026, 11, 20): 9_000},
    )
    db = tmp_path / "scenario.duckdb"
    announced: dict[int, list[tuple[str, str, str]]] = {}
    with (
        SandboxServer(now="2026-11-05T00:00:00Z", orgs=[spec]) as sb,
        webhook() as hook,
        smtp_server() as (mail_url, inbox),
    ):
        settings = Settings(
            db_path=db,
            orgs=(
                OrgConfig(
                    name="shop", api_key=SecretStr(sb.orgs[0]["api_key"]), base_url=sb.base_url
                ),
            ),
            collection=CollectionConfig(timeout_seconds=5.0),
            budgets=(Budget(org="shop", credits=12_000),),
            alerts=AlertsConfig(urls=[SecretStr(hook.url), SecretStr(mail_url)]),
        )
        for day in range(5, 22):
            now = datetime(2026, 11, day)
            sb.set_now(now.isoformat() + "Z")
            assert run_cycle_sync(settings, clock=fixed_clock(now)).ok
            result = check_alerts(settings, as_of=now)
            assert result.failed_deliveries == 0
            news = [(a.rule, a.severity, a.status) for a in result.alerts if a.status != "ongoing"]
            if news:
                announced[day] = sorted(news)
        # A second check the same day (or after a restart) announces nothing new.
        again = check_alerts(settings, as_of=datetime(2026, 11, 21, 0, 5))
        assert {a.status for a in again.alerts} == {"ongoing"}

    assert announced == {day: sorted(events) for day, events in EXPECTED.items()}
    titles = [m["title"] for m in hook.received]
    assert titles == [
        "[WARNING] shop: budget forecast to be exceeded",
        "[WARNING] shop: 30-day purchase cap forecast to be reached",
        "[CRITICAL] shop: 30-day purchase cap forecast to be reached",
        "[WARNING] shop: balance running out",
        "[CRITICAL] shop: balance running out",
        "[WARNING] shop: 30-day purchase cap used",
        "[RESOLVED] shop: balance running out",
        "[WARNING] shop: budget used",
    ]
    assert len(inbox.messages) == 8
    runout = hook.received[3]["message"]
    assert runout == (
        "shop has a balance of 4,000 credits (USD 40.00); at its forecast rate of 500 credits "
        "a day it runs out on 2026-11-21 (in 7 days) unless credits are bought."
    )
    cap_used = hook.received[5]["message"]
    assert cap_used.startswith(
        "shop has bought 8,500 credits (USD 85.00) in the last 30 days, 85% of its 30-day "
        "purchase cap of 10,000 credits (USD 100.00)"
    )

    with connect_reader(db) as con:
        still_open = open_alerts(con)
        history = alert_history(con)
    assert sorted(still_open.select("rule", "severity").rows()) == [
        ("budget_forecast", "warning"),
        ("budget_used", "warning"),
        ("cap_forecast", "critical"),
        ("cap_used", "warning"),
    ]
    assert history.height == 8
    assert history["delivered"].to_list() == [2] * 8
    cap_row = still_open.filter(still_open["rule"] == "cap_used").row(0, named=True)
    assert cap_row["value"] == 0.9  # 9,000 once 20 November was complete
