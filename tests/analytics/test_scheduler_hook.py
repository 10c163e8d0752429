"""The scheduler runs the alerts check after a collection, and the hook never raises."""

from __future__ import annotations

import logging
import threading

import pytest
from pydantic import SecretStr

from runway_costs.analytics.alert_store import alert_history
from runway_costs.analytics.alerts import alerts_after_cycle
from runway_costs.analytics.db import connect_reader
from runway_costs.collector.scheduler import run_scheduler
from runway_costs.core.config import AlertsConfig, Settings
from tests.analytics.receivers import webhook
from tests.collector.support import settings_for
from tests.conftest import SANDBOX_CLOCK


def test_hook_logs_and_swallows_errors(tmp_path, caplog):
    settings = Settings(db_path=tmp_path / "missing" / "x.duckdb")
    with caplog.at_level(logging.ERROR, logger="runway_costs.analytics.alerts"):
        alerts_after_cycle(settings, SANDBOX_CLOCK)  # no database: must not raise
    assert "alerts check failed: NoDataError: no data yet" in caplog.text


@pytest.mark.integration
def test_scheduled_collection_is_followed_by_an_alerts_check(sandbox, tmp_db):
    stop = threading.Event()
    with webhook() as hook:
        base = settings_for(sandbox, tmp_db)
        settings = base.model_copy(update={"alerts": AlertsConfig(urls=[SecretStr(hook.url)])})
        run_scheduler(
            settings,
            clock=SANDBOX_CLOCK,
            stop_event=stop,
            on_result=lambda _r: stop.set(),
            after_cycle=alerts_after_cycle,
        )
    with connect_reader(tmp_db) as con:
        events = alert_history(con)
    # Whatever the rules found on the sandbox, each announced event reached the webhook.
    assert events.height >= 1
    assert events.height == len(hook.received)
    assert events["delivered"].to_list() == [1] * events.height
    assert all(m["title"].startswith("[") for m in hook.received)
