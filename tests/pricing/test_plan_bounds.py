"""Plan values outside the documented bounds are input errors (exit 2, the file's line,
nothing priced), never a wrapped, negative or silently defaulted price (issue #10).

Bounds (README "Bounds on plan values"): count 1..1,000,000 (absent means 1), seconds
above 0 up to 86,400, characters (or text length) 1..1,000,000, no inf/nan, and a row or
plan whose worst case could pass 10^15 credits is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from runway_costs.analytics.compare import alternatives
from runway_costs.analytics.plan import PlanError, read_plan
from runway_costs.analytics.pricing import price_plan
from runway_costs.analytics.rates import load_rates
from runway_costs.cli.main import app

ENTRY = Path(sys.executable).with_name("runway-costs")
ON = "2026-11-24"


def price(runner: CliRunner, *args: str):
    return runner.invoke(app, ["price", *args, "--date", ON], env={"COLUMNS": "300"})


def rejected(runner: CliRunner, path: Path, *args: str) -> str:
    """The plan is refused: exit 2, nothing on stdout (nothing priced), no traceback."""
    result = price(runner, str(path), *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr
    return result.stderr


def test_a_huge_count_cannot_pass_the_budget_gate_through_the_installed_cli(write):
    """The reported case: 10^18 jobs wrapped to -9,127,208,515,966,861,312 credits and
    `--budget 1500` said "within budget" (exit 0)."""
    plan = write("plan.csv", "model,count,seconds\ngen4.5,1000000000000000000,10\n")
    env = {**os.environ, "COLUMNS": "300", "RUNWAY_COSTS_CONFIG": ""}
    done = subprocess.run(
        [str(ENTRY), "price", str(plan), "--budget", "1500"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "1 problem(s), nothing priced" in done.stderr
    assert f"{plan}: line 2: count: must be at most 1,000,000, got 1000000000000000000" in (
        done.stderr
    )
    assert "within budget" not in done.stderr and "-9,127" not in done.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("inf", "count: must be at most 1,000,000, got inf"),
        ("-inf", "count: must be at least 1, got -inf"),
        ("nan", "count: 'nan' is not a number"),
        (
            "99999999999999999999999",
            "count: must be at most 1,000,000, got 99999999999999999999999",
        ),
        ("1000001", "count: must be at most 1,000,000, got 1000001"),
        ("1e400", "count: must be at most 1,000,000, got 1e400"),
    ],
)
def test_counts_that_are_not_a_bounded_whole_number_are_errors(runner, write, value, message):
    path = write("plan.csv", f"model,count,seconds\ngen4.5,2,10\ngen4.5,{value},10\n")
    stderr = rejected(runner, path, "--budget", "1500")
    assert f"{path}: line 3: {message}" in stderr
    assert "1 problem(s), nothing priced" in stderr


def test_a_very_long_bad_value_is_shown_cut_short(runner, write):
    path = write("plan.csv", f"model,count,seconds\ngen4.5,{'9' * 400},10\n")
    stderr = rejected(runner, path)
    assert f"{path}: line 2: count: must be at most 1,000,000, got {'9' * 23}…" in stderr


def test_seconds_and_characters_have_bounds_too(runner, write):
    path = write(
        "plan.csv",
        "model,count,seconds,characters,text\n"
        "eleven_voice_isolation,1,86401,,\n"  # line 2
        "eleven_voice_isolation,1,inf,,\n"  # line 3
        "eleven_voice_isolation,1,nan,,\n"  # line 4
        "eleven_multilingual_v2,1,,99999999999999999999999,\n"  # line 5: was "unpriced"
        "eleven_multilingual_v2,1,,1000001,\n"  # line 6
        "eleven_multilingual_v2,1,,inf,\n"  # line 7
        "gen4.5,1,100000,,\n",  # line 8: one message, not also "accepts 2–10 s"
    )
    stderr = rejected(runner, path)
    for expected in (
        "line 2: seconds: must be at most 86,400 (one day), got 86401",
        "line 3: seconds: must be at most 86,400 (one day), got inf",
        "line 4: seconds: 'nan' is not a number",
        "line 5: characters: must be at most 1,000,000, got 99999999999999999999999",
        "line 6: characters: must be at most 1,000,000, got 1000001",
        "line 7: characters: must be at most 1,000,000, got inf",
        "line 8: seconds: must be at most 86,400 (one day), got 100000",
    ):
        assert f"{path}: {expected}" in stderr, stderr
    assert "7 problem(s), nothing priced" in stderr
    # a CSV field stops at 131,072 characters (csv's limit); JSON can carry a longer text
    text = write(
        "plan.json",
        json.dumps([{"model": "eleven_multilingual_v2", "text": "a" * 1_000_001}]),
    )
    assert (
        f"{text}: row 1 (line 1): text: 1000001 characters, more than the 1,000,000 a row may have"
    ) in rejected(runner, text)


def test_values_at_the_bounds_are_priced_exactly(runner, write):
    """1,000,000 jobs of 10 s at 12 credits/s and 1,000,000 jobs of 1,000,000 characters at
    1 credit per 50 characters; a row with no count is one job (absent is not unreadable)."""
    path = write(
        "plan.csv",
        "model,count,seconds,characters\n"
        "gen4.5,1000000,10,\n"
        "eleven_multilingual_v2,1000000,,1000000\n"
        "gen4.5,,10,\n",
    )
    result = price(runner, str(path), "--json", "--budget", "1500")
    assert result.exit_code == 3, result.output
    doc = json.loads(result.stdout)
    assert [r["count"] for r in doc["rows"]] == [1_000_000, 1_000_000, 1]
    assert [r["credits_max"] for r in doc["rows"]] == [120_000_000, 20_000_000_000, 120]
    assert doc["total"]["credits_max"] == 20_120_000_120
    assert doc["budget"]["exceeded"] is True
    assert "the plan may cost up to 20,120,000,120 credits" in result.stderr


PRICEY_RATES = """credit_usd = 0.01
[models.pricey]
endpoints = ["text_to_video"]
per = "second"
[[models.pricey.prices]]
effective_from = "2025-01-01"
credits = 1000000000000000
[models.cheap]
endpoints = ["text_to_video"]
per = "second"
[[models.cheap.prices]]
effective_from = "2025-01-01"
credits = 1
"""


def test_a_row_or_plan_whose_worst_case_passes_10_to_the_15_credits_is_refused(runner, write):
    rates = write("rates.toml", PRICEY_RATES)
    ok = write("ok.csv", "model,count,seconds\npricey,1,1\n")
    result = price(runner, str(ok), "--rates", str(rates), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total"]["credits_max"] == 10**15  # the most, exactly

    row = write("row.csv", "model,count,seconds\ncheap,1,1\npricey,2,1\n")
    stderr = rejected(runner, row, "--rates", str(rates), "--budget", "1500")
    assert (
        f"{row}: line 3: count: this row may cost more than 1,000,000,000,000,000 credits, "
        "the most a plan may total; lower the count or check the rate table"
    ) in stderr

    total = write("total.csv", "model,count,seconds\npricey,1,1\ncheap,1,1\n")
    stderr = rejected(runner, total, "--rates", str(rates), "--budget", "1500")
    assert (
        f"{total}: the plan may cost more than 1,000,000,000,000,000 credits in all, the most "
        "a plan may total; split it into smaller plans"
    ) in stderr
    assert "1 problem(s), nothing priced" in stderr


def test_pricing_never_wraps_even_for_unvalidated_frames(write):
    """compare prices each row on other models; a charge beyond 10^15 is unpriced there,
    never a wrapped Int64."""
    rates = load_rates(write("rates.toml", PRICEY_RATES))
    plan = read_plan(write("plan.csv", "model,count,seconds\ncheap,1000000,10\n"), rates)
    alts = alternatives(plan, rates, date(2026, 11, 24))
    assert alts.height == 0  # pricey would cost 10^22: not an alternative
    frame = pl.DataFrame({"model": ["pricey"], "count": [1_000_000], "seconds": [10.0]})
    row = price_plan(frame, rates, date(2026, 11, 24)).row(0, named=True)
    assert (row["priced"], row["credits_max"]) == (False, None)
    assert row["note"] == "more than 1,000,000,000,000,000 credits"


def test_deep_json_and_huge_integers_are_input_errors(runner, write):
    deep = write("deep.json", "[" * 100_000 + "]" * 100_000)
    assert f"{deep}: invalid JSON: nested too deeply for a plan" in rejected(runner, deep)
    digits = write(
        "digits.json", '[{"model": "gen4.5", "seconds": 10, "count": ' + "9" * 5000 + "}]"
    )
    assert f"{digits}: invalid JSON: a number has too many digits" in rejected(runner, digits)
    special = write(
        "special.json",
        '[{"model": "gen4.5", "seconds": 10, "count": 1e400},\n'
        ' {"model": "gen4.5", "seconds": 10, "count": NaN}]',
    )
    stderr = rejected(runner, special)
    assert f"{special}: row 1 (line 1): count: must be at most 1,000,000, got inf" in stderr
    assert f"{special}: row 2 (line 2): count: 'nan' is not a number" in stderr


def test_read_plan_raises_plan_error_for_deep_json(write, rates):
    with pytest.raises(PlanError, match="nested too deeply"):
        read_plan(write("deep.json", '{"rows": ' + "[" * 50_000 + "]" * 50_000 + "}"), rates)
