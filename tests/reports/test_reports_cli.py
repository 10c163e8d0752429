"""``status`` and ``export usage`` on a database collected from the frozen sandbox."""

from __future__ import annotations

import json
from contextlib import closing
from datetime import date, datetime

import polars as pl
import pytest
from typer.testing import CliRunner

from runway_costs.analytics.db import NoDataError, connect_reader
from runway_costs.cli.main import app
from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.collector.models import UsageRow, UsageWindow
from runway_costs.collector.store import RunRecord, write_org_result, write_session
from tests.collector.support import settings_for
from tests.conftest import SANDBOX_CLOCK

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture(scope="module")
def db(sandbox, tmp_path_factory):
    path = tmp_path_factory.mktemp("reports") / "runway.duckdb"
    result = run_cycle_sync(settings_for(sandbox, path), clock=SANDBOX_CLOCK)
    assert result.ok
    return path


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200", "RUNWAY_COSTS_CONFIG": ""})


def test_status_json_values(db):
    done = invoke("status", "--json", "--db", str(db))
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    orgs = {o["org"]: o for o in doc["orgs"]}
    assert list(orgs) == ["agency", "indie", "studio"]
    indie = orgs["indie"]
    assert indie["credit_balance"] == 3254
    assert indie["balance_usd"] == 32.54
    assert indie["max_monthly_credit_spend"] == 10000
    assert indie["cap_usd"] == 100.0
    assert indie["last_status"] == "ok" and indie["last_success_at"].endswith("Z")
    models = {m["model"]: m for m in indie["models"]}
    assert models["gen4.5"] | {"taken_at": None} == {
        "model": "gen4.5",
        "max_concurrent_generations": 1,
        "max_daily_generations": 50,
        "daily_generations": 1,
        "taken_at": None,
    }
    assert models["gen4_image_turbo"]["daily_generations"] == 16
    assert orgs["studio"]["credit_balance"] == 27748
    assert orgs["agency"]["balance_usd"] == 54.82


def test_status_shows_the_90_days_of_history_held(db, sandbox):
    doc = json.loads(invoke("status", "--json", "--db", str(db)).stdout)
    assert [o["org"] for o in doc["orgs"]] == ["agency", "indie", "studio"]
    now = sandbox.world.now()
    for org in doc["orgs"]:
        # Backfill on 2026-11-24 reaches back the 90 days the API allows, today included.
        assert (org["usage_first_date"], org["usage_last_date"]) == ("2026-08-26", "2026-11-24")
        truth = sandbox.world.org(org["org"]).records(date(2026, 8, 26), date(2026, 11, 23))
        # Days with no generation at all (e.g. balance at zero) have no usage rows.
        assert org["usage_days"] == 1 + sum(1 for r in truth if any(r.amounts.values()))
        assert org["usage_days"] >= 85
        full_days = sum(sum(r.amounts.values()) for r in truth)
        today = sum(sandbox.world.org(org["org"]).served_amounts(date(2026, 11, 24), now).values())
        assert today > 0 and full_days > 0
        assert org["usage_credits"] == full_days + today  # plus today's partial figure


def test_status_human(db):
    done = invoke("status", "--db", str(db))
    assert done.exit_code == 0, done.output
    assert (
        "indie  balance 3,254 credits ($32.54)  monthly cap 10,000 credits ($100.00)" in done.stdout
    )
    assert (
        "studio  balance 27,748 credits ($277.48)  monthly cap 200,000 credits ($2,000.00)"
        in done.stdout
    )
    assert "usage held: 91 days with usage from 2026-08-26 to 2026-11-24" in done.stdout


def test_export_filtered_csv_exact(db):
    done = invoke(
        "export",
        "usage",
        "--db",
        str(db),
        "--org",
        "indie",
        "--from",
        "2026-11-23",
        "--to",
        "2026-11-23",
    )
    assert done.exit_code == 0, done.output
    assert done.stdout == (
        "org,date,model,credits\n"
        "indie,2026-11-23,gen4.5,144\n"
        "indie,2026-11-23,gen4_image_turbo,36\n"
        "indie,2026-11-23,veo3.1_fast,60\n"
    )


def test_export_all_sorted_and_counted(db):
    done = invoke("export", "usage", "--db", str(db))
    lines = done.stdout.splitlines()
    assert lines[0] == "org,date,model,credits"
    assert lines[1] == "agency,2026-08-26,act_two,95"
    assert "agency,2026-09-04,gen4.5,-108" in lines
    assert lines[-1].startswith("studio,2026-11-24,")
    keys = [tuple(x.split(",")[:3]) for x in lines[1:]]
    assert keys == sorted(keys)
    assert len(lines) - 1 == 550 + 412 + 673  # agency + indie + studio rows


def test_export_json_and_parquet_file(db, tmp_path):
    done = invoke(
        "export",
        "usage",
        "--db",
        str(db),
        "--org",
        "agency",
        "--from",
        "2026-11-24",
        "--format",
        "json",
    )
    assert json.loads(done.stdout)[:2] == [
        {"org": "agency", "date": "2026-11-24", "model": "act_two", "credits": 87},
        {"org": "agency", "date": "2026-11-24", "model": "eleven_multilingual_v2", "credits": 43},
    ]
    out = tmp_path / "usage.parquet"
    done = invoke(
        "export",
        "usage",
        "--db",
        str(db),
        "--to",
        "2026-08-26",
        "--format",
        "parquet",
        "-o",
        str(out),
    )
    assert done.exit_code == 0, done.output
    frame = pl.read_parquet(out)
    assert frame.columns == ["org", "date", "model", "credits"]
    assert frame.filter(pl.col("org") == "indie").rows() == [
        ("indie", date(2026, 8, 26), "gen4.5", -12),
        ("indie", date(2026, 8, 26), "gen4_image_turbo", 46),
        ("indie", date(2026, 8, 26), "gen4_turbo", 225),
        ("indie", date(2026, 8, 26), "veo3.1_fast", 30),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["usage.parquet"]  # no temp left


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-13-01"], "--from: '2026-13-01' is not a date (expected YYYY-MM-DD)"),
        (["--to", "yesterday"], "--to: 'yesterday' is not a date"),
        (
            ["--from", "2026-11-24", "--to", "2026-11-01"],
            "--from 2026-11-24 is after --to 2026-11-01",
        ),
        (["--org", "nope"], "unknown organization 'nope' (in the database: agency, indie, studio)"),
        (["--format", "parquet"], "--format parquet needs an output file (-o FILE)"),
    ],
)
def test_export_input_errors_exit_2(db, args, message):
    done = invoke("export", "usage", "--db", str(db), *args)
    assert done.exit_code == 2
    assert message in " ".join(done.output.split())


def test_no_data_yet(tmp_path):
    missing = tmp_path / "none.duckdb"
    for args in (["status"], ["export", "usage"]):
        done = invoke(*args, "--db", str(missing))
        assert done.exit_code == 2
        assert "no data yet: run `runway-costs collect`" in " ".join(done.output.split())
    with pytest.raises(NoDataError):
        connect_reader(missing)


def test_reader_falls_back_to_live_file_before_first_publish(tmp_path):
    db = tmp_path / "runway.duckdb"
    window = UsageWindow(
        date(2026, 11, 1), date(2026, 11, 2), (UsageRow(date(2026, 11, 1), "gen4.5", 12),)
    )
    at = datetime(2026, 11, 1, 9)
    with write_session(db, publish=False) as con:
        write_org_result(con, RunRecord("solo", "usage", at, at, 1, 0), None, [window])
    with closing(connect_reader(db)) as con:
        assert con.execute("SELECT org, date, model, credits FROM daily_usage").fetchall() == [
            ("solo", date(2026, 11, 1), "gen4.5", 12)
        ]
