"""Read-only commands need no API key; commands that call the API still name the missing
one. ``--as-of`` outside 1970..9000 is one line, exit 2, nothing stored (issue #10)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from runway_costs.cli.main import app
from runway_costs.core.config import load_settings
from tests.analytics.conftest import build_acme, new_db

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
KEY_VAR = "RC_UNSET_ACME_KEY"
CONFIG = f"""[[orgs]]
name = "acme"
api_key_env = "{KEY_VAR}"

[[budgets]]
org = "acme"
credits = 2000
"""
MISSING = f"orgs[0]: environment variable {KEY_VAR} is not set or empty"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "acme.duckdb"
    with contextlib.closing(new_db(db)) as con:
        build_acme(con)
    config = tmp_path / "c.toml"
    config.write_text(CONFIG, encoding="utf-8")
    return config, db


def invoke(*args: str):
    env = {
        "COLUMNS": "300",
        KEY_VAR: None,
        "RUNWAY_COSTS_CONFIG": None,
        "RUNWAY_COSTS_DASHBOARD_PASSWORD": None,
    }
    return runner.invoke(app, list(args), env=env)


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--json"],
        ["forecast", "--as-of", "2026-11-06T00:00"],
        ["export", "usage"],
        ["alerts", "open"],
        ["alerts", "history"],
        ["price", str(REPO / "data" / "sample-plan.csv"), "--date", "2026-11-24"],
    ],
    ids=lambda a: " ".join(a[:2]) if a[0] == "alerts" else a[0],
)
def test_read_only_commands_run_with_the_key_variable_unset(setup, args):
    config, db = setup
    done = invoke(*args, "--config", str(config), "--db", str(db))
    assert done.exit_code == 0, done.output
    assert KEY_VAR not in done.output


def test_dashboard_gets_past_the_settings_without_a_key(setup):
    """Served on 0.0.0.0 with no password it refuses (exit 2) for that reason, not the key:
    the settings loaded, and nothing was started."""
    config, db = setup
    done = invoke("dashboard", "--host", "0.0.0.0", "--config", str(config), "--db", str(db))
    assert done.exit_code == 2, done.output
    assert "password" in done.stderr
    assert KEY_VAR not in done.output


@pytest.mark.parametrize("args", [["collect"], ["schedule"], ["up"]], ids=lambda a: a[0])
def test_commands_that_call_the_api_still_need_the_key(setup, args):
    config, db = setup
    before = db.stat().st_mtime_ns
    done = invoke(*args, "--config", str(config), "--db", str(db))
    assert done.exit_code == 2, done.output
    assert done.stderr.strip() == f"error: {config}: {MISSING}"
    assert db.stat().st_mtime_ns == before  # nothing collected


def test_settings_keep_why_a_key_is_missing_and_leave_it_empty(setup):
    config, _ = setup
    (org,) = load_settings(config_path=config, env={}).orgs
    assert org.api_key.get_secret_value() == ""  # the API client refuses an empty key
    assert org.key_problem == f"{config}: {MISSING}"
    (org,) = load_settings(config_path=config, env={KEY_VAR: "key_x"}).orgs
    assert (org.api_key.get_secret_value(), org.key_problem) == ("key_x", None)


@pytest.mark.parametrize(
    "as_of",
    ["9999-12-31T23:59", "0001-01-01", "9999-12-31T23:59-01:00", "0001-01-01T00:00+01:00"],
)
@pytest.mark.parametrize("command", [["forecast"], ["alerts", "check"]], ids=" ".join)
def test_as_of_out_of_range_is_one_line_exit_2(setup, command, as_of):
    config, db = setup
    done = invoke(*command, "--as-of", as_of, "--config", str(config), "--db", str(db))
    assert done.exit_code == 2, done.output
    assert done.stdout == ""
    line = done.stderr.strip()
    assert line in (
        f"error: --as-of: '{as_of}' is out of range (1970-01-01 to 9000-01-01)",
        f"error: --as-of: '{as_of}' is not an ISO date or time (e.g. 2026-11-24T12:00)",
    )
    with contextlib.closing(duckdb.connect(str(db), read_only=True)) as con:
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
    assert not any(t.startswith("alert") for t in tables)  # no alert state stored
