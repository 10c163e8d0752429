"""Finance (issue #13) end to end on the sandbox over HTTP and real DuckDB files: tags,
tag budgets, per-API-key usage, revisions of a closed month, the monthly statement.

The world is scripted so every figure is hand-computed (2026-10-01 .. 2026-11-24):
    acme   gen4.5 120 + veo3.1 40 = 160 a day, 3 API keys (split 5/3/2 tenths: 80/48/32)
    beta   gen4_image 30 a day
    gamma  gen4.5 12 a day
Collected first at 2026-10-31 23:00 (server "before"), then at 2026-11-24 12:00 from a
server whose script restates acme's 2026-10-30 gen4.5 from 120 to 90 (a late refund).
Tags: acme team=growth cost_center=CC-104; beta team=growth; gamma team=core.
"""

from __future__ import annotations

import io
import zipfile
from contextlib import closing
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from runway_costs.analytics.budgets import budget_status
from runway_costs.analytics.db import connect_reader
from runway_costs.analytics.revisions import restated_months
from runway_costs.cli.main import app
from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.core.clock import fixed_clock
from runway_costs.core.config import Settings, load_settings
from runway_costs.sandbox.server import SandboxServer
from runway_costs.sandbox.world import OrgSpec

pytestmark = pytest.mark.integration
runner = CliRunner()

FIRST = datetime(2026, 10, 31, 23, 0)
LATER = datetime(2026, 11, 24, 12, 0)
DAYS = [date(2026, 10, 1) + timedelta(days=i) for i in range(55)]  # .. 2026-11-24


def specs(revised: bool) -> list[OrgSpec]:
    acme = {d: {"gen4.5": 120, "veo3.1": 40} for d in DAYS}
    if revised:
        acme[date(2026, 10, 30)] = {"gen4.5": 90, "veo3.1": 40}
    return [
        OrgSpec("acme", 1, 20_000, acme, {}, api_key="key_acme", api_keys=3),
        OrgSpec("beta", 1, 5_000, {d: {"gen4_image": 30} for d in DAYS}, {}, api_key="key_beta"),
        OrgSpec("gamma", 1, 1_000, {d: {"gen4.5": 12} for d in DAYS}, {}, api_key="key_gamma"),
    ]


CONFIG = """
[collection]
refresh_days = 40

[[orgs]]
name = "acme"
api_key_env = "FIN_KEY_ACME"
base_url = "{url}"
tags = {{ team = "growth", cost_center = "CC-104" }}
keys = {{ "{key0}" = "render farm", "{key1}" = "web app" }}

[[orgs]]
name = "beta"
api_key_env = "FIN_KEY_BETA"
base_url = "{url}"
tags = {{ team = "growth" }}

[[orgs]]
name = "gamma"
api_key_env = "FIN_KEY_GAMMA"
base_url = "{url}"
tags = {{ team = "core" }}

[[budgets]]
org = "acme"
credits = 5000

[[budgets]]
tag = "team=growth"
credits = 6000
"""
ENV = {"FIN_KEY_ACME": "key_acme", "FIN_KEY_BETA": "key_beta", "FIN_KEY_GAMMA": "key_gamma"}


def settings_at(url: str, db: Path, config: Path) -> Settings:
    loaded = load_settings(config_path=config, db_path=db, env=ENV, require_orgs=True)
    orgs = tuple(o.model_copy(update={"base_url": url}) for o in loaded.orgs)
    return loaded.model_copy(update={"orgs": orgs})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The database after both collections, the config, and the two servers' worlds."""
    tmp = tmp_path_factory.mktemp("finance")
    db, config = tmp / "runway.duckdb", tmp / "config.toml"
    with (
        SandboxServer(orgs=specs(False), now=FIRST.isoformat() + "Z") as before,
        SandboxServer(orgs=specs(True), now=LATER.isoformat() + "Z") as after,
    ):
        ids = before.world.org("acme").key_ids
        config.write_text(
            CONFIG.format(url=before.base_url, key0=ids[0], key1=ids[1]), encoding="utf-8"
        )
        first = run_cycle_sync(settings_at(before.base_url, db, config), clock=fixed_clock(FIRST))
        assert first.ok, first.failed
        later_settings = settings_at(after.base_url, db, config)
        second = run_cycle_sync(later_settings, clock=fixed_clock(LATER))
        assert second.ok, second.failed
        yield {
            "db": db,
            "config": config,
            "ids": ids,
            "before": before.world,
            "after": after.world,
            "settings": later_settings,
            "after_server": after,
        }


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200", **ENV})


def rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_per_key_usage_is_stored_exactly_as_served(world):
    db, ids, truth = world["db"], world["ids"], world["after"].org("acme")
    stored = rows(db, "SELECT date, api_key_id, model, credits FROM key_usage ORDER BY ALL")
    expected = sorted(
        (d, k, "", c) for d in DAYS for k, c in truth.served_by_key(d, truth_now(world)).items()
    )
    assert stored == expected
    # hand-computed: a full day of 160 splits 80 / 48 / 32; the restated 10-30 (130) 65/39/26
    by_day = {(d, k): c for d, k, _, c in stored}
    assert [by_day[(date(2026, 10, 29), k)] for k in ids] == [80, 48, 32]
    assert [by_day[(date(2026, 10, 30), k)] for k in ids] == [65, 39, 26]
    assert [by_day[(date(2026, 11, 24), k)] for k in ids] == [40, 24, 16]  # 80 by noon
    # only acme's responses carry resultsByApiKey
    assert rows(db, "SELECT DISTINCT org FROM key_usage") == [("acme",)]


def truth_now(world):
    return world["after"].now()


def test_collecting_again_changes_no_key_row_and_adds_no_revision(world):
    db = world["db"]
    tables = ("key_usage", "usage_revisions", "daily_usage")
    before = {t: rows(db, f"SELECT * FROM {t} ORDER BY ALL") for t in tables}
    again = run_cycle_sync(world["settings"], clock=fixed_clock(LATER))
    assert again.ok and again.orgs[0].rows_changed == 0
    assert {t: rows(db, f"SELECT * FROM {t} ORDER BY ALL") for t in tables} == before


def test_export_by_key_names_keys_from_the_config(world):
    done = invoke(
        "export",
        "usage",
        "--by",
        "key",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--db",
        str(world["db"]),
        "--config",
        str(world["config"]),
    )
    assert done.exit_code == 0, done.output
    frame = pl.read_csv(io.StringIO(done.stdout))
    totals = frame.group_by("key_label").agg(pl.col("credits").sum()).sort("key_label")
    ids = world["ids"]
    # October: 30 days of 160 and the restated 130 = 4,930 split per day
    assert dict(totals.iter_rows()) == {
        "render farm": 30 * 80 + 65,
        "web app": 30 * 48 + 39,
        ids[2]: 30 * 32 + 26,  # no label configured: the id
    }


def test_export_by_key_says_so_when_the_api_returned_nothing(world):
    done = invoke(
        "export",
        "usage",
        "--by",
        "key",
        "--org",
        "beta",
        "--db",
        str(world["db"]),
        "--config",
        str(world["config"]),
    )
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "org,api_key_id,key_label,date,model,credits"
    assert "no per-API-key figures" in done.stderr


def test_tag_rollup_export_against_hand_sums(world):
    done = invoke(
        "export",
        "usage",
        "--by",
        "tag:team",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--db",
        str(world["db"]),
        "--config",
        str(world["config"]),
    )
    assert done.exit_code == 0, done.output
    frame = pl.read_csv(io.StringIO(done.stdout))
    assert frame.columns == ["team", "date", "credits"]
    sums = dict(frame.group_by("team").agg(pl.col("credits").sum()).iter_rows())
    assert sums == {"growth": 4930 + 930, "core": 372}
    cc = invoke(
        "export",
        "usage",
        "--by",
        "tag:cost_center",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--db",
        str(world["db"]),
        "--config",
        str(world["config"]),
    )
    frame = pl.read_csv(io.StringIO(cc.stdout))
    sums = dict(frame.group_by("cost_center").agg(pl.col("credits").sum()).iter_rows())
    assert sums == {"CC-104": 4930, "(untagged)": 930 + 372}


def test_unknown_tag_key_is_one_line_exit_2(world):
    done = invoke(
        "export",
        "usage",
        "--by",
        "tag:region",
        "--db",
        str(world["db"]),
        "--config",
        str(world["config"]),
    )
    assert done.exit_code == 2
    assert "no organization has tag key 'region'" in done.stderr
    assert "cost_center, team" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_tag_budget_against_hand_computed_month_to_date(world):
    with closing(connect_reader(world["db"])) as con:
        frame = budget_status(con, world["settings"], LATER)
    growth = frame.filter(pl.col("tag") == "team=growth").row(0, named=True)
    # November to date: 23 full days + the half of the 24th (floors: acme 60+20, beta 15)
    assert growth["orgs"] == ["acme", "beta"]
    assert growth["spent_mtd_credits"] == (23 * 160 + 80) + (23 * 30 + 15)
    assert growth["budget_credits"] == 6000
    assert growth["org"] is None
    acme = frame.filter(pl.col("org") == "acme").row(0, named=True)
    assert acme["spent_mtd_credits"] == 23 * 160 + 80


def test_revision_of_a_closed_month_is_exported_and_flagged(world):
    done = invoke(
        "export",
        "revisions",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--db",
        str(world["db"]),
    )
    assert done.exit_code == 0, done.output
    frame = pl.read_csv(io.StringIO(done.stdout))
    restated = frame.filter(pl.col("restated"))
    assert restated.select("org", "date", "model", "old_credits", "new_credits").rows() == [
        ("acme", "2026-10-30", "gen4.5", 120, 90)
    ]
    assert restated["change_credits"].to_list() == [-30]
    # 10-31 was still running at 23:00 (23/24 of each figure, floored): it filled in later
    growth = frame.filter(~pl.col("restated")).select("org", "model", "old_credits", "new_credits")
    assert sorted(growth.rows()) == [
        ("acme", "gen4.5", 115, 120),
        ("acme", "veo3.1", 38, 40),
        ("beta", "gen4_image", 28, 30),
        ("gamma", "gen4.5", 11, 12),
    ]
    with closing(connect_reader(world["db"])) as con:
        months = restated_months(con, None, date(2026, 10, 1), date(2026, 11, 24))
    assert months.select("month", "change_credits", "changes").rows() == [
        (date(2026, 10, 1), -30, 1)
    ]


def test_statement_xlsx_read_back_has_hand_computed_totals(world, tmp_path):
    out = tmp_path / "october.xlsx"
    done = invoke(
        "statement",
        "--month",
        "2026-10",
        "-o",
        str(out),
        "--db",
        str(world["db"]),
        "--config",
        str(world["config"]),
    )
    assert done.exit_code == 0, done.output
    assert "6,232 credits" in done.stdout
    book = load_workbook(out, data_only=True)
    assert book.sheetnames == ["Summary", "Tags", "Models", "Days", "Restatements", "Notes"]
    summary = sheet_dicts(book["Summary"])
    by_org = {r["org"]: r for r in summary}
    assert by_org["acme"]["credits"] == 4930 and by_org["acme"]["usd"] == 49.3
    assert by_org["beta"]["credits"] == 930 and by_org["gamma"]["credits"] == 372
    assert by_org["TOTAL"]["credits"] == 4930 + 930 + 372 == 6232
    assert by_org["TOTAL"]["usd"] == 62.32
    assert by_org["acme"]["budget_credits"] == 5000
    assert by_org["acme"]["variance_credits"] == -70
    assert by_org["acme"]["team"] == "growth" and by_org["acme"]["cost_center"] == "CC-104"
    # numbers are number cells
    acme_row = next(r for r in book["Summary"].iter_rows(min_row=2) if r[0].value == "acme")
    header = [c.value for c in book["Summary"][1]]
    assert acme_row[header.index("credits")].data_type == "n"
    # balances: the end of October is the balance the first collection saw (23:00)
    assert by_org["acme"]["balance_end_credits"] == world["before"].org("acme").balance(
        world["before"].now()
    )
    assert by_org["acme"]["balance_start_credits"] is None  # not observed: empty, not 0
    assert by_org["acme"]["purchases_credits"] is None  # no day of October known
    tags = sheet_dicts(book["Tags"])
    team = {r["tag_value"]: r for r in tags if r["tag_key"] == "team"}
    assert team["growth"]["credits"] == 5860 and team["growth"]["budget_credits"] == 6000
    assert team["growth"]["variance_credits"] == -140 and team["core"]["credits"] == 372
    assert team["growth"]["orgs"] == "acme, beta"
    models = sheet_dicts(book["Models"])
    assert {(r["org"], r["model"]): r["credits"] for r in models} == {
        ("acme", "gen4.5"): 30 * 120 + 90,
        ("acme", "veo3.1"): 31 * 40,
        ("beta", "gen4_image"): 930,
        ("gamma", "gen4.5"): 372,
        ("TOTAL", None): 6232,
    }
    days = sheet_dicts(book["Days"])
    assert len(days) == 31 * 3 + 1 and days[-1]["credits"] == 6232
    assert sum(r["credits"] for r in days[:-1]) == 6232
    restated = sheet_dicts(book["Restatements"])
    assert [(r["org"], r["model"], r["old_credits"], r["new_credits"]) for r in restated] == [
        ("acme", "gen4.5", 120, 90)
    ]


def test_statement_csv_zip_has_the_same_tables(world, tmp_path):
    out = tmp_path / "october.zip"
    done = invoke(
        "statement",
        "--month",
        "2026-10",
        "--format",
        "csv",
        "-o",
        str(out),
        "--org",
        "gamma",
        "--db",
        str(world["db"]),
        "--config",
        str(world["config"]),
    )
    assert done.exit_code == 0, done.output
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == [
            "days.csv",
            "models.csv",
            "notes.csv",
            "restatements.csv",
            "summary.csv",
            "tags.csv",
        ]
        summary = pl.read_csv(zf.read("summary.csv"))
    assert summary.select("org", "credits").rows() == [("gamma", 372), ("TOTAL", 372)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2026-13"], "is not a month"),
        (["--month", "2027-01"], "has not started yet"),
        (["--month", "2026-10", "--org", "nope"], "unknown organization 'nope'"),
    ],
)
def test_statement_bad_input_is_one_line_exit_2(world, tmp_path, args, message):
    done = invoke("statement", *args, "-o", str(tmp_path / "s.xlsx"), "--db", str(world["db"]))
    assert done.exit_code == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_statement_refuses_a_directory_or_device(world, tmp_path):
    for target in (str(tmp_path), "/dev/null"):
        done = invoke("statement", "--month", "2026-10", "-o", target, "--db", str(world["db"]))
        assert done.exit_code == 2 and "cannot write" in done.stderr
    assert Path("/dev/null").is_char_device()


def sheet_dicts(sheet) -> list[dict]:
    values = list(sheet.iter_rows(values_only=True))
    return [dict(zip(values[0], row, strict=True)) for row in values[1:]]
