"""Text from outside is never markup: API error bodies, model names, plan labels and
config strings with Rich markup (``[/]``) and terminal escapes reach the terminal inert,
through the real ``runway-costs`` entry point, and never cost a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import duckdb
import pytest

from runway_costs.sandbox.server import SandboxServer
from runway_costs.sandbox.world import OrgSpec
from tests.conftest import SANDBOX_NOW

pytestmark = pytest.mark.integration

CLI = Path(sys.executable).with_name("runway-costs")
# Rich markup that crashes (``[/]``) or styles (``[bold]``), an OSC retitle, a screen clear
HOSTILE = "evil[/]\x1b]0;pwned\x07\x1b[2J[bold]x"
SHOWN = "evil[/]\\x1b]0;pwned\\x07\\x1b[2J[bold]x"  # what the terminal must show
TOML_HOSTILE = "evil[/]\\u001b]0;pwned\\u0007\\u001b[2J[bold]x"
API_ERROR = "bad [/] request \x1b]0;pwned\x07 [bold]x"


class _Rejecting(BaseHTTPRequestHandler):
    """An API that answers every request 400 with a hostile error text."""

    def _reject(self) -> None:
        body = json.dumps({"error": API_ERROR}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _reject

    def log_message(self, *args: object) -> None:
        pass


def _clean(text: str) -> None:
    """Nothing a terminal would act on, and no traceback."""
    assert "\x1b" not in text and "\x07" not in text
    assert "Traceback" not in text and "MarkupError" not in text


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("outside")
    spec = OrgSpec(
        name="scripted",
        tier=1,
        opening_balance=1_000,
        script={"2026-11-22": {HOSTILE: 100, "gen4.5": 50}},
        api_key="key_scripted",
    )
    bad = HTTPServer(("127.0.0.1", 0), _Rejecting)
    threading.Thread(target=bad.serve_forever, daemon=True).start()
    with SandboxServer(orgs=[spec], now=SANDBOX_NOW) as sb:
        config = tmp / "config.toml"
        config.write_text(
            f'[[orgs]]\nname = "scripted"\napi_key_env = "K1"\nbase_url = "{sb.base_url}"\n'
            f'[[orgs]]\nname = "badorg"\napi_key_env = "K2"\n'
            f'base_url = "http://127.0.0.1:{bad.server_port}"\n'
            f'[[budgets]]\norg = "scripted"\nmodel = "{TOML_HOSTILE}"\ncredits = 10\n',
            encoding="utf-8",
        )
        db = tmp / "runway.duckdb"
        env = {
            **os.environ,
            "K1": "key_scripted",
            "K2": "key_other",
            "COLUMNS": "250",
            "RUNWAY_COSTS_CONFIG": str(config),
            "RUNWAY_COSTS_DB": str(db),
        }
        collected = run("collect", env=env)
        yield {"env": env, "db": db, "collect": collected, "tmp": tmp}
    bad.shutdown()


def test_collect_prints_the_api_error_and_model_literally(world) -> None:
    done = world["collect"]
    assert done.returncode == 1, done.stderr  # badorg failed, scripted was collected
    _clean(done.stdout + done.stderr)
    assert "bad [/] request \\x1b]0;pwned\\x07 [bold]x" in done.stdout  # the table's error cell
    assert "bad [/] request \\x1b]0;pwned\\x07 [bold]x" in done.stderr  # the log line
    with closing(duckdb.connect(str(world["db"]), read_only=True)) as con:
        models = con.execute("SELECT model FROM daily_usage ORDER BY model").fetchall()
    assert models == [(HOSTILE,), ("gen4.5",)]  # stored as the API sent it


def test_status_shows_hostile_model_and_error_literally(world) -> None:
    done = run("status", env=world["env"])
    assert done.returncode == 0, done.stderr
    _clean(done.stdout + done.stderr)
    assert SHOWN in done.stdout
    assert "last run failed: organization 'badorg'" in done.stdout
    assert "bad [/] request \\x1b]0;pwned\\x07 [bold]x" in done.stdout


def test_alerts_check_open_and_history_show_hostile_budget_model(world) -> None:
    check = run("alerts", "check", env=world["env"])
    assert check.returncode == 0, check.stderr
    _clean(check.stdout + check.stderr)
    flat = check.stdout.replace("\n", "").replace("│", "").replace(" ", "")
    assert "evil[/]\\x1b]0;pwned\\x07\\x1b[2J[bold]x".replace(" ", "") in flat
    for cmd in (("alerts", "open"), ("alerts", "history")):
        done = run(*cmd, env=world["env"])
        assert done.returncode == 0, done.stderr
        _clean(done.stdout + done.stderr)
        assert "budget_used" in done.stdout


def test_forecast_runs_on_hostile_data(world) -> None:
    done = run("forecast", env=world["env"])
    assert done.returncode == 0, done.stderr
    _clean(done.stdout + done.stderr)
    assert "scripted" in done.stdout


def test_price_shows_hostile_plan_label_literally(world) -> None:
    plan = world["tmp"] / "plan.csv"
    plan.write_text(f"label,model,count,seconds\n{HOSTILE},gen4.5,2,5\n", encoding="utf-8")
    done = run("price", str(plan), env=world["env"])
    assert done.returncode == 0, done.stderr
    _clean(done.stdout + done.stderr)
    assert SHOWN in done.stdout
