"""``run_demo``: sandbox, config without keys, 90-day backfill, status, scheduler, stop."""

from __future__ import annotations

import threading
import time
from contextlib import closing
from datetime import timedelta

import pytest
from rich.console import Console

from runway_costs.analytics.db import connect_reader
from runway_costs.cli.demo import key_env_name, run_demo
from tests.conftest import SANDBOX_AT, SANDBOX_CLOCK

pytestmark = pytest.mark.integration


def test_demo_backfills_every_org_then_schedules_until_stopped(tmp_path):
    out = Console(record=True, width=200, force_terminal=False)
    stop = threading.Event()
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(
            run_demo(tmp_path, out=out, stop_event=stop, clock=SANDBOX_CLOCK)
        ),
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 120
    while "collecting every" not in out.export_text(clear=False):
        assert thread.is_alive() and time.monotonic() < deadline, out.export_text(clear=False)
        time.sleep(0.2)
    stop.set()
    thread.join(timeout=60)
    assert not thread.is_alive() and codes == [0]

    text = out.export_text()
    assert "indie  balance" in text and "monthly cap 10,000 credits ($100.00)" in text
    config = (tmp_path / "demo.toml").read_text()
    assert 'api_key_env = "RUNWAY_COSTS_DEMO_KEY_STUDIO"' in config
    assert "key_" not in config.replace("api_key_env", "")  # names the variables, not keys
    assert key_env_name("studio-2") == "RUNWAY_COSTS_DEMO_KEY_STUDIO_2"
    today = SANDBOX_AT.date()
    with closing(connect_reader(tmp_path / "demo.duckdb")) as con:
        spans = con.execute(
            "SELECT org, min(date), max(date), count(DISTINCT date) FROM daily_usage "
            "GROUP BY org ORDER BY org"
        ).fetchall()
    assert [s[0] for s in spans] == ["agency", "indie", "studio"]
    for _, first, last, _days in spans:
        assert first == today - timedelta(days=90)
        assert last in (today, today - timedelta(days=1))  # today may have no usage yet
