"""`--compare`: the same job on every other capable model, and the cheapest one.

Hand-worked: gen4.5 4 x 10 s = 480. Other text/image-to-video models accepting 10 s:
veo3.1_fast 400-600, veo3.1 800-1600, seedance2 1440 (veo3 takes only 8 s, gen4_turbo
serves image_to_video only). veo3.1 2 x 8 s with audio = 640: audio-capable models only:
veo3.1_fast 240, veo3 640.
"""

from __future__ import annotations

import json
from datetime import date

import polars as pl
from typer.testing import CliRunner

from runway_costs.analytics.compare import alternatives, cheapest
from runway_costs.analytics.plan import plan_from_records
from runway_costs.analytics.pricing import price_plan
from runway_costs.analytics.rates import RateTable
from runway_costs.cli.main import app
from tests.pricing.conftest import SAMPLE_PLAN

ON = date(2026, 11, 24)


def test_alternatives_respect_endpoint_duration_and_audio(rates: RateTable) -> None:
    plan = plan_from_records(
        [
            {"model": "gen4.5", "count": 4, "seconds": 10},
            {"model": "veo3.1", "count": 2, "seconds": 8, "audio": True},
            {"model": "gen4.5", "seconds": 5, "endpoint": "image_to_video"},
            {"model": "eleven_voice_isolation", "seconds": 20},
        ],
        rates,
    )
    alts = alternatives(plan, rates, ON)
    got = {
        (r["row"], r["alt_model"]): (r["credits_min"], r["credits_max"])
        for r in alts.iter_rows(named=True)
    }
    assert got == {
        (1, "veo3.1_fast"): (400, 600),
        (1, "veo3.1"): (800, 1600),
        (1, "seedance2"): (1440, 1440),
        (2, "veo3.1_fast"): (240, 240),
        (2, "veo3"): (640, 640),
        (3, "gen4_turbo"): (25, 25),
        (3, "veo3.1_fast"): (50, 75),
        (3, "veo3.1"): (100, 200),
        (3, "seedance2"): (180, 180),
    }
    best = cheapest(price_plan(plan, rates, ON), alts)
    rows = {r["row"]: r for r in best.iter_rows(named=True)}
    assert (rows[1]["alt_model"], rows[1]["saving_credits"]) == ("veo3.1_fast", -120)
    assert (rows[2]["alt_model"], rows[2]["saving_credits"], rows[2]["saving_usd"]) == (
        "veo3.1_fast", 400, 4.0,
    )  # fmt: skip
    assert (rows[3]["alt_model"], rows[3]["saving_credits"]) == ("gen4_turbo", 35)
    assert rows[4]["alt_model"] is None  # nothing else isolates voices


def test_cli_compare(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["price", str(SAMPLE_PLAN), "--compare", "--json", "--date", "2026-11-24"],
        env={"RUNWAY_COSTS_CONFIG": ""},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {r["line"]: r for r in json.loads(result.stdout)["compare"]}
    # line 5: gen4_image 20 x 1080p = 160; gen4_image_turbo 20 x 2 = 40
    assert (rows[5]["alt_model"], rows[5]["alt_credits_max"], rows[5]["saving_credits"]) == (
        "gen4_image_turbo", 40, 120,
    )  # fmt: skip
    # line 4: veo3.1_fast 6 x 6 s, audio open = 360-540; gen4.5 6 x 6 x 12 = 432
    assert (rows[4]["alt_model"], rows[4]["saving_credits"]) == ("gen4.5", 108)
    human = runner.invoke(
        app, ["price", str(SAMPLE_PLAN), "--compare", "--date", "2026-11-24"],
        env={"RUNWAY_COSTS_CONFIG": "", "COLUMNS": "200"},
    )  # fmt: skip
    assert "Cheapest alternative per row" in human.stdout
    assert "120 ($1.20)" in human.stdout


def test_rows_with_the_same_job_get_the_same_alternatives(rates: RateTable) -> None:
    """Which models can do a job is decided once per distinct job (model, endpoint,
    seconds, audio, characters given); each row still gets its own, priced at its count
    (hand values as in the module docstring: per 10 s job veo3.1_fast 100-150, veo3.1
    200-400, seedance2 360)."""
    plan = plan_from_records(
        [
            {"model": "gen4.5", "count": 4, "seconds": 10},
            {"model": "gen4_image_turbo", "count": 3},  # no seconds: a null in the job
            {"model": "gen4.5", "count": 4, "seconds": 10},
            {"model": "gen4.5", "count": 2, "seconds": 10},
        ],
        rates,
    )
    alts = alternatives(plan, rates, ON)
    got = {
        (r["row"], r["alt_model"]): (r["credits_min"], r["credits_max"])
        for r in alts.iter_rows(named=True)
    }
    assert got == {
        (1, "veo3.1_fast"): (400, 600),
        (2, "gemini_2.5_flash"): (15, 15),  # 3 images x 5
        (2, "gen4_image"): (15, 24),  # 3 x 5 (720p) to 3 x 8 (1080p): resolution open
        (1, "veo3.1"): (800, 1600),
        (1, "seedance2"): (1440, 1440),
        (3, "veo3.1_fast"): (400, 600),
        (3, "veo3.1"): (800, 1600),
        (3, "seedance2"): (1440, 1440),
        (4, "veo3.1_fast"): (200, 300),
        (4, "veo3.1"): (400, 800),
        (4, "seedance2"): (720, 720),
    }
    assert alts["row"].to_list() == [1, 1, 1, 2, 2, 3, 3, 3, 4, 4, 4]


def test_cheapest_is_the_least_maximum_then_minimum_then_name() -> None:
    alts = pl.DataFrame(
        {
            "line": [2, 2, 2, 3, 3, 3],
            "row": [1, 1, 1, 2, 2, 2],
            "model": ["m"] * 6,
            "alt_model": ["b", "a", "c", "b", "a", "d"],
            "credits_min": [10, 10, 5, 10, 10, 1],
            "credits_max": [10, 10, 10, 10, 10, 11],
            "usd_min": [0.1, 0.1, 0.05, 0.1, 0.1, 0.01],
            "usd_max": [0.1, 0.1, 0.1, 0.1, 0.1, 0.11],
        }
    )
    priced = pl.DataFrame(
        {
            "line": [2, 3, 4],
            "row": [1, 2, 3],
            "label": [None, None, None],
            "model": ["m", "m", "m"],
            "credits_min": [12, 12, 12],
            "credits_max": [12, 12, 12],
            "usd_max": [0.12, 0.12, 0.12],
        }
    )
    best = cheapest(priced, alts)
    assert best.select("row", "alt_model", "alt_credits_min", "saving_credits").rows() == [
        (1, "c", 5, 2),  # max 10 three times: the least minimum
        (2, "a", 10, 2),  # max and min equal: by name
        (3, None, None, None),  # no alternative
    ]
