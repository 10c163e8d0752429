"""``runway-costs collect`` as a user runs it: real process, real sandbox, real file."""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import timedelta

import pytest
from pydantic import SecretStr

from runway_costs.analytics.db import connect_reader
from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.core.config import OrgConfig
from runway_costs.core.files import snapshot_path
from runway_costs.sandbox.server import SandboxServer
from runway_costs.sandbox.world import OrgSpec
from tests.collector.support import cli, settings_for, truth, usage_rows, write_config
from tests.conftest import SANDBOX_AT, SANDBOX_CLOCK, SANDBOX_NOW

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live_sandbox():
    """The default world at the instant the suite pins the CLI's clock to."""
    with SandboxServer(seed=7, now=SANDBOX_NOW) as sb:
        yield sb


def test_collect_all_ok_then_one_bad_org_exits_1(live_sandbox, tmp_path):
    db = tmp_path / "runway.duckdb"
    cfg = tmp_path / "orgs.toml"
    env = write_config(cfg, live_sandbox)
    done = cli("collect", "--config", str(cfg), "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    for org in ("studio", "agency", "indie"):
        assert f"│ {org}" in done.stdout
    assert done.stdout.count(" ok ") == 3
    today = SANDBOX_AT.date()
    first = today - timedelta(days=90)
    for org in ("studio", "agency", "indie"):  # today keeps growing: compare the full days
        got = [r for r in usage_rows(db, org) if r[0] < today]
        assert got == truth(live_sandbox, org, first, today - timedelta(days=1))
        assert got[0][0] == first

    with cfg.open("a") as fh:
        fh.write('\n[[orgs]]\nname = "x"\napi_key_env = "X_KEY"\n')
        fh.write(f'base_url = "{live_sandbox.base_url}"\n')
    again = cli("collect", "--config", str(cfg), "--db", str(db), env={**env, "X_KEY": "key_no"})
    assert again.returncode == 1
    assert "organization 'x': API key rejected (401)" in again.stdout
    assert again.stdout.count(" ok ") == 3
    (studio,) = [line for line in again.stdout.splitlines() if line.startswith("│ studio")]
    assert studio.split("│")[4].strip() == "2"  # steady state: 2 HTTP calls


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("bad_toml", ["--config", "{cfg}"], "invalid TOML"),
        ("missing_env", ["--config", "{cfg}"], "environment variable NOPE_KEY is not set"),
        ("no_orgs", [], "no organization configured"),
        ("ok", ["--config", "{cfg}", "--refresh-days", "0"], "--refresh-days"),
        ("ok", ["--config", "{cfg}", "--db", "{tmp}"], "cannot use database"),
    ],
)
def test_collect_usage_and_config_errors_exit_2(tmp_path, setup, args, message):
    cfg = tmp_path / "orgs.toml"
    text = {
        "bad_toml": "[[orgs]\nname = 'a'\n",
        "missing_env": '[[orgs]]\nname = "a"\napi_key_env = "NOPE_KEY"\n',
        "ok": '[[orgs]]\nname = "a"\napi_key_env = "A_KEY"\nbase_url = "http://127.0.0.1:9"\n',
        "no_orgs": None,
    }[setup]
    if text is not None:
        cfg.write_text(text)
    (tmp_path / "notadb").write_text("this is not a DuckDB file\n" * 100)
    argv = [a.format(cfg=cfg, tmp=tmp_path / "notadb") for a in args]
    done = cli(
        "collect",
        *argv,
        env={
            "A_KEY": "key_a",
            "RUNWAYML_API_SECRET": "",
            "RUNWAY_COSTS_CONFIG": "",
            "RUNWAY_COSTS_DB": str(tmp_path / "x.duckdb"),
        },
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    if setup == "bad_toml":
        assert str(cfg) in done.stderr


CANARY = "key_SECRET_CANARY_5f1e0c9a7b3d"
WRONG_CANARY = "key_SECRET_CANARY_WRONG_81d2"


def test_api_key_never_reaches_db_snapshot_logs_or_output(tmp_path, caplog):
    """Collect with recognizable keys, one of them rejected, with retries logged; then
    look for the key in every byte the product wrote or printed."""
    spec = OrgSpec(name="canary", tier=2, api_key=CANARY)
    with SandboxServer(
        seed=3, now=SANDBOX_NOW, orgs=[spec], faults="rate_limit:n=2,retry_after=1"
    ) as sb:
        db = tmp_path / "runway.duckdb"
        cfg = tmp_path / "orgs.toml"
        cfg.write_text(
            f"[collection]\nbackoff_base_seconds = 0.01\nbackoff_max_seconds = 0.05\n\n"
            f'[[orgs]]\nname = "canary"\napi_key_env = "CANARY_KEY"\nbase_url = "{sb.base_url}"\n\n'
            f'[[orgs]]\nname = "wrong"\napi_key_env = "WRONG_KEY"\nbase_url = "{sb.base_url}"\n'
        )
        env = {"CANARY_KEY": CANARY, "WRONG_KEY": WRONG_CANARY}
        outputs = [cli("collect", "--config", str(cfg), "--db", str(db), env=env)]
        assert outputs[0].returncode == 1
        assert "organization 'wrong': API key rejected (401)" in outputs[0].stdout
        assert "retrying" in outputs[0].stderr  # the retry warnings were logged
        outputs.append(cli("status", "--json", "--db", str(db)))
        outputs.append(cli("export", "usage", "--db", str(db)))
        assert outputs[2].stdout.count("\ncanary,") > 80

        # in-process too, with every logger captured at DEBUG
        caplog.set_level(logging.DEBUG)
        extra = [
            OrgConfig(name="canary", api_key=SecretStr(CANARY), base_url=sb.base_url),
            OrgConfig(name="wrong", api_key=SecretStr(WRONG_CANARY), base_url=sb.base_url),
        ]
        sb.set_faults("rate_limit:n=1,retry_after=1")
        result = run_cycle_sync(settings_for(sb, db, [], extra=extra), clock=SANDBOX_CLOCK)
        assert [r.status for r in result.orgs] == ["ok", "failed"]
        assert result.orgs[0].retries == 1
    assert caplog.records, "nothing was logged: the check below would prove nothing"
    for text in [caplog.text, repr(result), *(o.stdout + o.stderr for o in outputs)]:
        assert "SECRET_CANARY" not in text
    files = [p for p in tmp_path.iterdir() if p.is_file()]
    assert db in files and snapshot_path(db) in files
    for path in files:
        if path != cfg:
            assert b"SECRET_CANARY" not in path.read_bytes(), path
    with closing(connect_reader(db)) as con:
        errors = [
            r[0]
            for r in con.execute(
                "SELECT error FROM collection_runs WHERE error IS NOT NULL"
            ).fetchall()
        ]
    assert errors == ["organization 'wrong': API key rejected (401)"] * 2
