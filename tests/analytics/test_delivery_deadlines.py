"""An alerts check against a channel that hangs: bounded by the delivery deadline."""

from __future__ import annotations

import time
from contextlib import closing

import pytest
from pydantic import SecretStr

from runway_costs.analytics.alert_store import alert_history
from runway_costs.analytics.alerts import check_alerts
from runway_costs.analytics.db import connect_reader
from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.core.config import AlertsConfig
from tests.analytics.receivers import webhook
from tests.collector.support import settings_for
from tests.collector.trickle import trickling_server
from tests.conftest import SANDBOX_AT, SANDBOX_CLOCK

pytestmark = pytest.mark.integration


def test_a_hanging_channel_costs_a_check_one_deadline_and_the_others_still_get_theirs(
    sandbox, tmp_db
):
    with trickling_server(interval=0.5) as slow, webhook() as good:
        base = settings_for(sandbox, tmp_db)
        urls = [SecretStr(slow.webhook_url), SecretStr(good.url)]
        settings = base.model_copy(
            update={"alerts": AlertsConfig(urls=urls, delivery_timeout_seconds=1.0)}
        )
        run_cycle_sync(settings, clock=SANDBOX_CLOCK)
        began = time.monotonic()
        first = check_alerts(settings, SANDBOX_AT)
        elapsed = time.monotonic() - began
        # the next check, while that attempt still hangs: the channel is skipped at once,
        # its notice left pending
        began = time.monotonic()
        second = check_alerts(settings, SANDBOX_AT)
        elapsed_second = time.monotonic() - began
        slow_requests = list(slow.requests)
    with closing(connect_reader(tmp_db)) as con:
        events = alert_history(con)
    assert events.height >= 1  # the sandbox fires alerts at this instant
    assert elapsed < 1.0 + 3, f"the check took {elapsed:.1f} s with a 1 s delivery deadline"
    assert elapsed_second < 3, f"the second check took {elapsed_second:.1f} s"
    assert slow_requests == ["POST /hook/TOKEN_SECRET_CANARY"]  # tried once, in all
    tried = [(channel, d.ok, d.error) for _, channel, d in first.deliveries]
    assert tried == [
        ("json#1", False, "no answer within the 1 s delivery deadline; gave up"),
        ("json#2", True, None),
    ] + [("json#2", True, None)] * (events.height - 1)
    assert second.deliveries == []
    # the healthy channel got every notice; the hanging one's wait for a later check
    assert len(good.received) == events.height
    assert events["delivered"].to_list() == [1] * events.height
    assert events["undelivered"].to_list() == [1] * events.height
