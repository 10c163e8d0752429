"""Every listed bad-input case: exit 2, every problem listed with file line and field,
nothing priced (stdout stays empty)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from runway_costs.analytics.plan import PlanError, read_plan
from runway_costs.analytics.rates import RateError, RateTable, load_rates
from runway_costs.analytics.tiertable import TierError, load_tiers
from runway_costs.cli.main import app


def run_price(runner: CliRunner, *args: str):
    return runner.invoke(app, ["price", *args])


def assert_rejected(runner: CliRunner, path: Path, *expected: str) -> str:
    result = run_price(runner, str(path))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""  # nothing priced
    for text in expected:
        assert f"{path}: {text}" in result.stderr, result.stderr
    return result.stderr


def test_all_row_errors_are_listed_at_once(runner: CliRunner, write) -> None:
    path = write(
        "plan.csv",
        "model,count,seconds,label\n"
        "gen4.5,2,10,ok\n"  # line 2: fine
        "gen45,1,5,typo\n"  # line 3
        "veo3,1,5,\n"  # line 4
        "gen4.5,-2,5,\n"  # line 5
        "gen4.5,0,5,\n"  # line 6
        "gen4.5,1,,\n"  # line 7
        "gen4.5,1,ten,\n"  # line 8
        "gen4.5,two,12,\n",  # line 9: two problems
    )
    stderr = assert_rejected(
        runner,
        path,
        "line 3: model 'gen45' is unknown; did you mean 'gen4.5'?",
        "line 4: seconds: veo3 accepts only 8 s, got 5",
        "line 5: count: must be at least 1, got -2",
        "line 6: count: must be at least 1, got 0",
        "line 7: seconds: missing duration; gen4.5 needs seconds (2–10 s)",
        "line 8: seconds: 'ten' is not a number",
        "line 9: count: 'two' is not a number",
        "line 9: seconds: gen4.5 accepts 2–10 s, got 12",
    )
    assert "8 problem(s), nothing priced" in stderr
    assert "line 2:" not in stderr


def test_other_field_errors(runner: CliRunner, write) -> None:
    path = write(
        "plan.csv",
        "model,seconds,resolution,ratio,audio,characters,text,date,endpoint\n"
        "gen4_image,,1080,,,,,,\n"
        "gen4_image,,,1920:1088,,,,,\n"
        "gen4_image,,720p,1920:1080,,,,,\n"
        "gen4.5,5,,,true,,,,\n"
        "veo3,8,,,false,,,,\n"
        "veo3.1,8,,,maybe,,,,\n"
        "eleven_multilingual_v2,,,,,,,,\n"
        "eleven_multilingual_v2,,,,,12,hello,,\n"
        "gen4.5,5,,,,,,2026-13-01,\n"
        "gen4_turbo,5,,,,,,,text_to_video\n",
    )
    assert_rejected(
        runner,
        path,
        "line 2: resolution '1080' is unknown; did you mean '1080p'?",
        "line 3: ratio '1920:1088' is unknown; did you mean '1920:1080'?",
        "line 4: ratio: 1920:1080 is 1080p, but resolution says 720p",
        "line 5: audio: gen4.5 does not generate audio",
        "line 6: audio: veo3 always generates audio",
        "line 7: audio: must be true or false, got 'maybe'",
        "line 8: characters: missing; eleven_multilingual_v2 needs characters or text",
        "line 9: characters: give characters or text, not both",
        "line 10: date: '2026-13-01' is not a date (YYYY-MM-DD)",
        "line 11: endpoint: gen4_turbo serves image_to_video, got 'text_to_video'",
    )


def test_empty_file(runner: CliRunner, write) -> None:
    assert_rejected(runner, write("empty.csv", ""), "the plan is empty (no header, no rows)")
    assert_rejected(runner, write("blank.csv", "\n  \n"), "the plan is empty")


def test_header_without_rows(runner: CliRunner, write) -> None:
    assert_rejected(runner, write("header.csv", "model,count\n"), "the plan has no rows")


def test_wrong_delimiter(runner: CliRunner, write) -> None:
    path = write("semi.csv", "model;count;seconds\ngen4.5;1;5\n")
    assert_rejected(
        runner,
        path,
        "line 1: the header is ';'-separated, not comma-separated; save the plan as CSV with "
        "commas",
    )


def test_bad_encoding(runner: CliRunner, write) -> None:
    path = write("latin1.csv", "model,label\ngen4_image,ok\ngen4_image,caf\xe9\n".encode("latin-1"))
    assert_rejected(runner, path, "line 3: not UTF-8 text (byte 0xe9); save the plan as UTF-8")


def test_unknown_column_with_suggestion(runner: CliRunner, write) -> None:
    path = write("cols.csv", "model,secnds,qty,colour\ngen4.5,5,1,red\n")
    assert_rejected(
        runner,
        path,
        "line 1: column 'secnds' is unknown; did you mean 'seconds'?",
        "line 1: column 'qty' is unknown; did you mean 'count'?",
        "line 1: column 'colour' is unknown (plan fields: model, count, seconds",
    )


def test_missing_model_column(runner: CliRunner, write) -> None:
    path = write("nomodel.csv", "count,seconds\n1,5\n")
    assert_rejected(runner, path, "line 1: no 'model' column: every row needs a model")


def test_ragged_row(runner: CliRunner, write) -> None:
    path = write("ragged.csv", "model,count\ngen4_image,1\ngen4_image,1,extra\n")
    assert_rejected(runner, path, "line 3: has 3 fields but the header has 2")


def test_json_rows_are_named_by_index_and_line(runner: CliRunner, write) -> None:
    path = write(
        "plan.json",
        '[\n  {"model": "gen4.5", "seconds": 5},\n'
        '  {"model": "veo3",\n   "seconds": 4},\n'
        '  {"model": "gen4_image", "count": -1, "secs": 3}\n]\n',
    )
    assert_rejected(
        runner,
        path,
        "row 2 (line 3): seconds: veo3 accepts only 8 s, got 4",
        "row 3 (line 5): count: must be at least 1, got -1",
        "row 3 (line 5): field 'secs' is unknown; did you mean 'seconds'?",
    )


def test_invalid_json(runner: CliRunner, write) -> None:
    path = write("broken.json", '[\n {"model": "gen4.5",}\n]\n')
    assert_rejected(runner, path, "line 2: invalid JSON (column 21)")


def test_missing_plan_file(runner: CliRunner, tmp_path: Path) -> None:
    assert_rejected(runner, tmp_path / "nope.csv", "file does not exist")


def test_error_list_is_capped(rates: RateTable, write) -> None:
    path = write("many.csv", "model,seconds\n" + "veo3,5\n" * 60)
    with pytest.raises(PlanError) as info:
        read_plan(path, rates)
    lines = info.value.lines()
    assert len(lines) == 51
    assert lines[0] == f"{path}: line 2: seconds: veo3 accepts only 8 s, got 5"
    assert lines[49] == f"{path}: line 51: seconds: veo3 accepts only 8 s, got 5"
    assert lines[50] == f"{path}: ... and 10 more problems"
    assert info.value.total == 60


# ------------------------------------------------------------------- rate and tier files


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "credit_usd = 0.01\n[models.x]\nendpoints = ['a']\nper = 'minute'\n",
            "models.'x'.per: must be one of second, character, job, got 'minute'",
        ),
        (
            "credit_usd = 0.01\n[models.x]\nendpoints = ['a']\nper = 'job'\n"
            "[[models.x.prices]]\neffective_from = '2025-13-01'\ncredits = 1\n",
            "models.'x'.prices[0].effective_from: not an ISO date: '2025-13-01'",
        ),
        (
            "credit_usd = 0.01\n[models.x]\nendpoints = ['a']\nper = 'job'\n"
            "[[models.x.prices]]\neffective_from = '2025-01-01'\ncredits = [3, 1]\n",
            "models.'x'.prices[0].credits: must be a whole number of credits or [min, max]",
        ),
        (
            "credit_usd = 0.01\n[models.x]\nendpoints = ['a']\nper = 'job'\n"
            "[[models.x.prices]]\neffective_from = '2025-01-01'\ncredits = 1\nrounding = 'up'\n",
            "models.'x'.prices[0].rounding: must be one of ceil, floor",
        ),
        (
            "credit_usd = 0.01\n[models.x]\nendpoints = ['a']\n"
            "[[models.x.prices]]\neffective_from = '2025-01-01'\ncredits = 1\n",
            "models.'x'.per: is required when the model has prices",
        ),
        (
            "credit_usd = 'cheap'\n[models.x]\nendpoints = ['a']\n",
            "credit_usd: must be a positive number",
        ),
        (
            "credit_usd = 0.01\n[models.x]\nendpoints = ['a']\ndurations = [0]\n",
            "models.'x'.durations: must be a non-empty list of positive seconds",
        ),
        ("credit_usd = 0.01\nmodels = [\n", "invalid TOML"),
        (
            "credit_usd = 0.01\n[models.x]\nendpoints = ['a']\nper = 'second'\n"
            "[[models.x.prices]]\neffective_from = 2025-01-01\ncredits = 1\naudio = true\n"
            "[[models.x.prices]]\neffective_from = 2025-01-01\ncredits = 1\naudio = false\n"
            "block = 2\n",
            "models.'x'.prices[1]: entries from 2025-01-01 must share block and rounding",
        ),
    ],
)
def test_bad_rate_file_names_file_and_key(write, text: str, message: str) -> None:
    path = write("rates.toml", text)
    with pytest.raises(RateError) as info:
        load_rates(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_bad_rate_file_exits_2(runner: CliRunner, write) -> None:
    rates = write("rates.toml", "credit_usd = 0.01\n[models.x]\nendpoints = []\n")
    plan = write("plan.csv", "model\nx\n")
    result = run_price(runner, str(plan), "--rates", str(rates))
    assert result.exit_code == 2
    assert f"{rates}: models.'x'.endpoints: must be a non-empty list" in result.stderr
    assert result.stdout == ""


def test_missing_rate_file_exits_2(runner: CliRunner, write, tmp_path: Path) -> None:
    plan = write("plan.csv", "model\ngen4_image\n")
    result = run_price(runner, str(plan), "--rates", str(tmp_path / "none.toml"))
    assert result.exit_code == 2
    assert f"rate file {tmp_path / 'none.toml'} does not exist" in result.stderr


def test_bad_tier_file(write) -> None:
    path = write("tiers.toml", "[[tiers]]\ntier = 1\nconcurrency = [2, 1]\n")
    with pytest.raises(TierError) as info:
        load_tiers(path)
    assert str(info.value).startswith(f"{path}: tiers[0].concurrency: must be a positive")


def test_flag_conflicts_and_bad_date_exit_2(runner: CliRunner, write) -> None:
    plan = write("plan.csv", "model\ngen4_image\n")
    for args, message in (
        (["--json", "--csv"], "--json and --csv cannot be used together"),
        (["--budget", "5", "--budget-usd", "1"], "--budget and --budget-usd cannot be used"),
        (["--org", "a", "--tier", "1"], "--org and --tier cannot be used together"),
        (["--date", "24/11/2026"], "--date: '24/11/2026' is not a date (expected YYYY-MM-DD)"),
    ):
        result = run_price(runner, str(plan), *args)
        assert result.exit_code == 2, args
        assert message in result.stderr
        assert result.stdout == ""
    result = run_price(runner, str(plan), "--tier", "6")
    assert result.exit_code == 2
