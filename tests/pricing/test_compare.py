"""`--compare`: the same job on every other capable model, and the cheapest one.

Hand-worked: gen4.5 4 x 10 s = 480. Other text/image-to-video models accepting 10 s:
veo3.1_fast 400-600, veo3.1 800-1600, seedance2 1440 (veo3 takes only 8 s, gen4_turbo
serves image_to_video only). veo3.1 2 x 8 s with audio = 640: audio-capable models only:
veo3.1_fast 240, veo3 640.
"""

from __future__ import annotations

import json
from datetime import date

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
