"""The forecast and alerts commands: output, exit codes, and no secret anywhere."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runway_costs.cli.main import app
from tests.analytics.conftest import add_run, add_snapshot, add_usage, new_db

runner = CliRunner()
SECRET = "TOKEN_SECRET_CANARY_42"


def flat_db(path: Path) -> Path:
    """100 credits a day 21 Sep - 15 Nov; balance 1,000 (cap 2,000) seen 15 Nov 23:00."""
    con = new_db(path)
    for i in range(56):
        add_usage(con, "acme", date(2026, 11, 15) - timedelta(days=i), "gen4.5", 100)
    add_snapshot(con, "acme", datetime(2026, 11, 15, 23), 1000, cap=2000)
    add_run(con, "acme", datetime(2026, 11, 15, 23, 30))
    con.close()
    return path


def test_forecast_json_carries_the_documented_fields(tmp_path):
    db = flat_db(tmp_path / "f.duckdb")
    result = runner.invoke(
        app, ["forecast", "--json", "--as-of", "2026-11-16T00:00Z", "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    (org,) = json.loads(result.stdout)
    assert {
        k: org[k]
        for k in (
            "org",
            "as_of",
            "balance_credits",
            "cap_credits",
            "spend_mtd_credits",
            "spend_30d_credits",
            "purchases_30d_credits",
            "purchases_observed_days",
            "purchases_observed_since",
            "balances_observed_since",
            "month_end_forecast",
            "runout_date",
            "cap_bound_date",
        )
    } == {
        "org": "acme",
        "as_of": "2026-11-16T00:00:00Z",
        "balance_credits": 1000,
        "cap_credits": 2000,
        "spend_mtd_credits": 1500,
        "spend_30d_credits": 2900,
        "purchases_30d_credits": 0,
        # Only 15 Nov was observed (a run at 23:30): a day's purchases need the day
        # before's balance too, so none is known: the 0 above is not "nothing bought".
        "purchases_observed_days": 0,
        "purchases_observed_since": None,
        "balances_observed_since": "2026-11-15T23:30:00Z",
        "month_end_forecast": {"low": 3000, "mid": 3000, "high": 3000},
        "runout_date": "2026-11-25",
        # The balance lasts 16-25 Nov; then 100 a day must be bought: a 30-day window holds
        # 21 such days (2,100 > 2,000) first on 16 Dec.
        "cap_bound_date": "2026-12-16",
    }


def test_forecast_table_and_backtest(tmp_path):
    db = flat_db(tmp_path / "f.duckdb")
    table = runner.invoke(app, ["forecast", "--as-of", "2026-11-16", "--db", str(db)])
    assert table.exit_code == 0
    assert "acme" in table.stdout and "2026-11-25" in table.stdout
    # Not a bare 0: nothing is known about purchases before collection began.
    assert "unknown: balances collected only since 2026-11-15 23:30 UTC" in table.stdout
    bt = runner.invoke(app, ["forecast", "backtest", "--db", str(db)])
    assert bt.exit_code == 0, bt.output
    assert "MAPE: forecast 0.00%, naive baseline 0.00% (3 forecasts)" in bt.stdout  # October


def test_usage_errors_exit_2(tmp_path):
    db = flat_db(tmp_path / "f.duckdb")
    bad = runner.invoke(app, ["forecast", "--as-of", "yesterday", "--db", str(db)])
    assert bad.exit_code == 2
    assert "--as-of: 'yesterday' is not an ISO date or time" in bad.stderr
    unknown = runner.invoke(app, ["forecast", "--org", "nope", "--db", str(db)])
    assert unknown.exit_code == 2
    assert "unknown organization 'nope' (known: acme)" in unknown.stderr
    empty = runner.invoke(app, ["alerts", "check", "--db", str(tmp_path / "none.duckdb")])
    assert empty.exit_code == 2
    assert "no data yet" in empty.stderr


@pytest.mark.integration
def test_failed_delivery_exits_1_and_never_shows_the_url(tmp_path):
    db = flat_db(tmp_path / "f.duckdb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "c.toml"
    config.write_text('[alerts]\nurls = ["env:HOOK_URL"]\ndelivery_attempts = 1\n')
    env = {"HOOK_URL": f"json://127.0.0.1:{port}/{SECRET}"}
    args = [
        "alerts",
        "check",
        "--json",
        "--as-of",
        "2026-11-16T00:00",
        "--db",
        str(db),
        "--config",
        str(config),
    ]
    dry = runner.invoke(app, [*args, "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 1, result.output
    alerts = json.loads(result.stdout)
    # 1,000 credits at 100 a day: runs out 25 Nov, 9 days away -> no runout alert yet;
    # buying 100 a day from 26 Nov, the window ending 15 Dec holds 2,000: 100% of the cap.
    assert [(a["rule"], a["severity"], a["status"]) for a in alerts] == [
        ("cap_forecast", "critical", "fired")
    ]
    assert alerts[0]["value"] == 1.0 and alerts[0]["threshold"] == 1.0
    assert (
        "delivery of '[CRITICAL] acme: 30-day purchase cap forecast to be reached' to json#1"
        in result.stderr
    )
    assert SECRET not in result.output + result.stderr
    history = runner.invoke(app, ["alerts", "history", "--json", "--db", str(db)])
    (event,) = json.loads(history.stdout)
    assert (event["delivered"], event["undelivered"]) == (0, 1)
    again = runner.invoke(app, [*args[:4], "2026-11-16T00:10", *args[5:]], env=env)
    assert json.loads(again.stdout)[0]["status"] == "ongoing"
    assert again.exit_code == 1  # the undelivered notice was retried, and failed again
    for path in tmp_path.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.integration
def test_installed_entry_point(tmp_path):
    db = flat_db(tmp_path / "f.duckdb")
    exe = Path(sys.executable).with_name("runway-costs")
    done = subprocess.run(
        [str(exe), "forecast", "--json", "--as-of", "2026-11-16", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["runout_date"] == "2026-11-25"


@pytest.mark.integration
def test_forecast_says_when_the_cap_bound_date_assumes_unknown_purchases(sandbox, tmp_path):
    """Right after the first backfill no purchase of the last 30 days is known: the
    cap-bound date counts them as none, and the JSON and the table say so."""
    from runway_costs.collector.cycle import run_cycle_sync
    from tests.collector.support import settings_for
    from tests.conftest import SANDBOX_CLOCK

    db = tmp_path / "r.duckdb"
    assert run_cycle_sync(settings_for(sandbox, db), clock=SANDBOX_CLOCK).ok
    env = {"RUNWAY_COSTS_CONFIG": "", "COLUMNS": "200"}
    done = CliRunner().invoke(app, ["forecast", "--json", "--db", str(db)], env=env)
    assert done.exit_code == 0, done.output
    expected = (
        "purchases in the last 30 days are unknown (balances collected only since "
        "2026-11-24 12:00 UTC): counted as none, so this is a best case"
    )
    by_org = {o["org"]: o for o in json.loads(done.stdout)}
    assert by_org["indie"]["cap_bound_date"] == "2026-12-31"
    assert {o: f["cap_bound_assumption"] for o, f in by_org.items()} == {
        "agency": expected,
        "indie": expected,
        "studio": expected,
    }
    table = CliRunner().invoke(app, ["forecast", "--db", str(db)], env=env)
    assert "2026-12-31*" in table.stdout
    assert f"* indie: {expected}" in table.stdout
