"""Collection cycles against the real sandbox over HTTP into a real DuckDB file."""

from __future__ import annotations

import json
import threading
from contextlib import closing
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from runway_costs.analytics.db import connect_reader
from runway_costs.collector.cycle import plan_usage, run_cycle_sync
from runway_costs.core.clock import fixed_clock
from runway_costs.core.config import OrgConfig
from runway_costs.core.files import snapshot_path
from runway_costs.sandbox.server import SandboxServer
from tests.collector.support import (
    consistency_problems,
    dump,
    settings_for,
    truth,
    usage_rows,
)
from tests.conftest import SANDBOX_CLOCK

pytestmark = pytest.mark.integration

TODAY = date(2026, 11, 24)  # the sandbox fixture's frozen clock: 2026-11-24T12:00Z
FIRST = date(2026, 8, 26)  # TODAY - 90 days: the oldest day the API serves


def test_plan_usage_backfill_refresh_and_gap():
    assert plan_usage(TODAY, None, 3) == (date(2026, 8, 26), date(2026, 11, 25))
    assert plan_usage(TODAY, date(2026, 11, 24), 3) == (date(2026, 11, 22), date(2026, 11, 25))
    # collector was down since 11-10: reach back to cover the gap, refresh included
    assert plan_usage(TODAY, date(2026, 11, 10), 3) == (date(2026, 11, 8), date(2026, 11, 25))
    # down for months: clamp to the API's 90-day limit
    assert plan_usage(TODAY, date(2026, 5, 1), 3) == (date(2026, 8, 26), date(2026, 11, 25))


def test_backfill_lands_90_days_equal_to_the_world(sandbox, tmp_db):
    result = run_cycle_sync(settings_for(sandbox, tmp_db), clock=SANDBOX_CLOCK)
    assert [(r.org, r.status, r.http_calls) for r in result.orgs] == [
        ("studio", "ok", 3),  # organization + usage [08-26, 11-24) + usage [11-24, 11-25)
        ("agency", "ok", 3),
        ("indie", "ok", 3),
    ]
    for org in ("studio", "agency", "indie"):
        got = usage_rows(tmp_db, org)
        assert got == truth(sandbox, org, FIRST, TODAY)
        assert got[0][0] == FIRST and got[-1][0] == TODAY
    studio = {(d, m): c for d, m, c in usage_rows(tmp_db, "studio")}
    assert studio[(date(2026, 11, 23), "gen4.5")] == 720
    assert studio[(date(2026, 11, 23), "veo3.1")] == 1460
    assert studio[(date(2026, 11, 24), "gen4.5")] == 516  # half of the day at 12:00
    agency = {(d, m): c for d, m, c in usage_rows(tmp_db, "agency")}
    assert agency[(date(2026, 9, 4), "gen4.5")] == -108  # refunds won that day
    assert agency[(date(2026, 8, 26), "gen4.5")] == -24
    with closing(connect_reader(tmp_db)) as con:
        assert con.execute(
            "SELECT org, credit_balance, max_monthly_credit_spend FROM org_snapshots ORDER BY org"
        ).fetchall() == [("agency", 5482, 50000), ("indie", 3254, 10000), ("studio", 27748, 200000)]
        assert con.execute(
            "SELECT max_concurrent_generations, max_daily_generations, daily_generations "
            "FROM model_snapshots WHERE org = 'indie' AND model = 'gen4_image_turbo'"
        ).fetchall() == [(2, 200, 16)]  # tier 1: image models run 2 at once
        assert consistency_problems(con) == []


def test_idempotent_then_revised_day_replaced(tmp_db):
    with SandboxServer(seed=7, now="2026-11-24T12:00:00Z") as sb:
        settings = settings_for(sb, tmp_db)
        run_cycle_sync(settings, clock=SANDBOX_CLOCK)
        first = dump(tmp_db)
        first_snapshot = dump(snapshot_path(tmp_db))
        sb.reset_stats()
        second_result = run_cycle_sync(settings, clock=SANDBOX_CLOCK)
        assert dump(tmp_db) == first
        assert dump(snapshot_path(tmp_db)) == first_snapshot == first
        assert [r.rows_changed for r in second_result.orgs] == [0, 0, 0]
        runs = dump(tmp_db, ["collection_runs"])["collection_runs"]
        assert [(r[1], r[2], r[5]) for r in runs] == [
            (org, "full", "ok") for org in ("studio", "agency", "indie") * 2
        ]
        # steady state: 2 calls per org, seen by the collector and by the server
        assert [r.http_calls for r in second_result.orgs] == [2, 2, 2]
        assert [r[7] for r in runs[3:]] == [2, 2, 2]  # http_calls column
        requests = sb.stats()["requests"]
        for org in ("studio", "agency", "indie"):
            assert requests[org] == {"/v1/organization": 1, "/v1/organization/usage": 1}

        # the next morning: yesterday's half day is revised to the full day, today appears
        sb.set_now("2026-11-25T06:00:00Z")
        run_cycle_sync(settings, clock=fixed_clock(datetime(2026, 11, 25, 6, 0)))
        studio = {(d, m): c for d, m, c in usage_rows(tmp_db, "studio")}
        assert studio[(date(2026, 11, 24), "gen4.5")] == 1032  # was 516 at 12:00
        assert usage_rows(tmp_db, "studio") == truth(sb, "studio", FIRST, date(2026, 11, 25))
        with closing(connect_reader(tmp_db)) as con:
            (changed_at,) = con.execute(
                "SELECT collected_at FROM daily_usage "
                "WHERE org = 'studio' AND date = '2026-11-24' AND model = 'gen4.5'"
            ).fetchone()
            (untouched_at,) = con.execute(
                "SELECT collected_at FROM daily_usage "
                "WHERE org = 'studio' AND date = '2026-11-23' AND model = 'gen4.5'"
            ).fetchone()
            assert changed_at > untouched_at  # collected_at moves only when credits change
            assert consistency_problems(con) == []


def test_failing_org_does_not_stop_the_others(sandbox, tmp_db):
    bad = OrgConfig(name="x", api_key=SecretStr("key_wrong"), base_url=sandbox.base_url)
    result = run_cycle_sync(
        settings_for(sandbox, tmp_db, ["indie"], extra=[bad]), clock=SANDBOX_CLOCK
    )
    assert [(r.org, r.status, r.error) for r in result.orgs] == [
        ("indie", "ok", None),
        ("x", "failed", "organization 'x': API key rejected (401)"),
    ]
    assert result.failed[0].http_calls == 1  # 401 is not retried
    assert usage_rows(tmp_db, "indie") == truth(sandbox, "indie", FIRST, TODAY)
    runs = dump(tmp_db, ["collection_runs"])["collection_runs"]
    assert [(r[1], r[5], r[6]) for r in runs] == [
        ("indie", "ok", None),
        ("x", "failed", "organization 'x': API key rejected (401)"),
    ]


class _MissingBalance(BaseHTTPRequestHandler):
    """A Runway look-alike whose organization response lacks creditBalance."""

    def _json(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._json(
            {"tier": {"maxMonthlyCreditSpend": 10000, "models": {}}, "usage": {"models": {}}}
        )

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._json(
            {
                "results": [
                    {"date": "2026-11-24", "usedCredits": [{"model": "gen4.5", "amount": 5}]}
                ],
                "models": ["gen4.5"],
                "apiKeys": None,
                "resultsByApiKey": None,
            }
        )

    def log_message(self, *args: object) -> None:
        pass


def test_missing_required_field_fails_that_org_and_writes_nothing(sandbox, tmp_db):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MissingBalance)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        broken = OrgConfig(
            name="broken",
            api_key=SecretStr("key_broken"),
            base_url=f"http://127.0.0.1:{server.server_address[1]}",
        )
        result = run_cycle_sync(
            settings_for(sandbox, tmp_db, ["agency"], extra=[broken]), clock=SANDBOX_CLOCK
        )
    finally:
        server.shutdown()
        server.server_close()
    by_org = {r.org: r for r in result.orgs}
    assert by_org["agency"].status == "ok"
    assert by_org["broken"].status == "failed"
    assert "creditBalance" in by_org["broken"].error
    assert by_org["broken"].error.startswith("organization 'broken': ")
    with closing(connect_reader(tmp_db)) as con:
        for table in ("org_snapshots", "model_snapshots", "daily_usage"):
            assert con.execute(f"SELECT count(*) FROM {table} WHERE org = 'broken'").fetchone() == (
                0,
            )
        assert con.execute(
            "SELECT status, usage_rows FROM collection_runs WHERE org = 'broken'"
        ).fetchall() == [("failed", None)]
    assert usage_rows(tmp_db, "agency") == truth(sandbox, "agency", FIRST, TODAY)


def test_snapshot_and_usage_kinds_call_only_their_endpoint(tmp_db):
    with SandboxServer(seed=7, now="2026-11-24T12:00:00Z") as sb:
        settings = settings_for(sb, tmp_db, ["indie"])
        run_cycle_sync(settings, "snapshot", clock=SANDBOX_CLOCK)
        assert sb.stats()["requests"]["indie"] == {"/v1/organization": 1}
        assert usage_rows(tmp_db, "indie") == []
        sb.reset_stats()
        result = run_cycle_sync(settings, "usage", clock=SANDBOX_CLOCK)
        assert result.orgs[0].backfill  # no usage yet: the usage job backfills
        assert sb.stats()["requests"]["indie"] == {"/v1/organization/usage": 2}
        assert usage_rows(tmp_db, "indie") == truth(sb, "indie", FIRST, TODAY)
