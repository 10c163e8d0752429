"""The `price` command: JSON/CSV content, the budget gate, rates from the config, and the
installed entry point run as a real subprocess."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runway_costs.cli.main import app
from tests.pricing.conftest import SAMPLE_PLAN

DATE = "2026-11-24"


def price(runner: CliRunner, *args: str):
    return runner.invoke(app, ["price", *args], env={"RUNWAY_COSTS_CONFIG": ""})


def test_json_has_rows_totals_and_unpriced(runner: CliRunner) -> None:
    result = price(runner, str(SAMPLE_PLAN), "--json", "--date", DATE)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["total"] == {
        "rows": 9,
        "unpriced_rows": 1,
        "credits_min": 1753,
        "credits_max": 1945,
        "usd_min": 17.53,
        "usd_max": 19.45,
    }
    rows = doc["rows"]
    assert [r["line"] for r in rows] == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert [(r["credits_min"], r["credits_max"]) for r in rows] == [
        (480, 480), (640, 640), (360, 540), (160, 160), (80, 80),
        (9, 9), (12, 12), (12, 24), (None, None),
    ]  # fmt: skip
    assert rows[2]["usd_min"] == 3.6 and rows[2]["usd_max"] == 5.4
    assert rows[0]["model"] == "gen4.5" and rows[0]["seconds"] == 10.0
    assert rows[0]["label"] == "launch-teaser" and rows[0]["resolution"] == "720p"
    assert rows[8]["priced"] is False
    labels = {r["label"]: (r["credits_min"], r["credits_max"]) for r in doc["by_label"]}
    assert labels == {
        "avatar-demo": (None, None),
        "launch-teaser": (1480, 1660),
        "product-stills": (240, 240),
        "sfx": (12, 24),
        "voiceover": (21, 21),
    }
    models = {r["model"]: r["credits_max"] for r in doc["by_model"]}
    assert models["veo3.1_fast"] == 540 and models["gwm1_avatars"] is None
    assert [(u["line"], u["model"]) for u in doc["unpriced_rows"]] == [(10, "gwm1_avatars")]
    assert "1 row(s) have no price" in result.stderr


def test_csv_has_the_same_content(runner: CliRunner) -> None:
    result = price(runner, str(SAMPLE_PLAN), "--csv", "--date", DATE)
    assert result.exit_code == 0, result.output
    records = list(csv.DictReader(io.StringIO(result.stdout)))
    sections = [r["section"] for r in records]
    assert sections.count("row") == 9 and sections.count("total") == 1
    total = next(r for r in records if r["section"] == "total")
    assert (total["credits_min"], total["credits_max"]) == ("1753", "1945")
    assert (total["usd_min"], total["usd_max"]) == ("17.53", "19.45")
    teaser = next(
        r for r in records if r["section"] == "by_label" and r["label"] == "launch-teaser"
    )
    assert (teaser["credits_min"], teaser["credits_max"]) == ("1480", "1660")
    fast = next(r for r in records if r["section"] == "row" and r["model"] == "veo3.1_fast")
    assert (fast["line"], fast["credits_min"], fast["credits_max"]) == ("4", "360", "540")


def test_human_output(runner: CliRunner) -> None:
    result = price(runner, str(SAMPLE_PLAN), "--date", DATE)
    assert result.exit_code == 0, result.output
    assert "Total: 1,753–1,945 credits ($17.53–$19.45) for 9 rows, 1 unpriced" in result.stdout
    assert "unpriced: line 10 gwm1_avatars: no published price for this model" in result.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--budget", "1945"], 0),  # the maximum equals the budget: fits
        (["--budget", "1944"], 3),
        (["--budget", "1800"], 3),  # within the range but below its maximum: fails
        (["--budget-usd", "19.45"], 0),
        (["--budget-usd", "19.44"], 3),
    ],
)
def test_budget_gate(runner: CliRunner, args: list[str], code: int) -> None:
    result = price(runner, str(SAMPLE_PLAN), "--json", "--date", DATE, *args)
    assert result.exit_code == code, result.output
    doc = json.loads(result.stdout)  # the content is still printed
    assert doc["budget"]["exceeded"] is (code == 3)
    if code == 3:
        assert "over budget: the plan may cost up to" in result.stderr


def test_rates_from_config_and_flag(runner: CliRunner, write, tmp_path: Path) -> None:
    cheap = (
        'credit_usd = 0.02\n[models."gen4.5"]\nendpoints = ["text_to_video"]\nper = "second"\n'
        '[[models."gen4.5".prices]]\neffective_from = "2020-01-01"\ncredits = 1\n'
    )
    write("mine.toml", cheap)
    config = write("config.toml", 'rates = "mine.toml"\n')
    plan = write("plan.csv", "model,seconds,count\ngen4.5,5,2\n")
    result = price(runner, str(plan), "--json", "--config", str(config))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["rates"] == str(tmp_path / "mine.toml")
    assert (doc["total"]["credits_max"], doc["total"]["usd_max"]) == (10, 0.2)
    # --rates wins over the config
    result = price(
        runner, str(plan), "--json", "--config", str(config), "--rates",
        str(Path(__file__).resolve().parents[2] / "runway_costs" / "data" / "rates.toml"),
    )  # fmt: skip
    assert json.loads(result.stdout)["total"]["credits_max"] == 120


@pytest.mark.integration
def test_installed_entry_point(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "runway-costs"
    ok = subprocess.run(
        [str(exe), "price", str(SAMPLE_PLAN), "--json", "--date", DATE, "--budget", "2000"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["total"]["credits_max"] == 1945
    over = subprocess.run(
        [str(exe), "price", str(SAMPLE_PLAN), "--budget", "1000", "--date", DATE],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "120"},
    )
    assert over.returncode == 3
    assert "over budget: the plan may cost up to 1,945 credits, the budget is 1,000" in over.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("model,seconds\nveo3,5\n", encoding="utf-8")
    rejected = subprocess.run(
        [str(exe), "price", str(bad)], capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "200"},
    )  # fmt: skip
    assert rejected.returncode == 2
    assert rejected.stdout == ""
    assert f"{bad}: line 2: seconds: veo3 accepts only 8 s, got 5" in rejected.stderr
