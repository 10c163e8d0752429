"""Every published price and variant, rounding per job, ranges, dates, unpriced models.

Expected credits are worked out by hand from the published table (runway-api.md).
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from runway_costs.analytics.plan import plan_from_records
from runway_costs.analytics.pricing import price_plan, summarize
from runway_costs.analytics.rates import RateTable, load_rates

ON = date(2026, 11, 24)


def price_one(rates: RateTable, **row: object) -> tuple[int | None, int | None]:
    priced = price_plan(plan_from_records([row], rates), rates, ON)
    r = priced.row(0, named=True)
    return r["credits_min"], r["credits_max"]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        # video, per second of output
        ({"model": "gen4.5", "seconds": 5}, (60, 60)),
        ({"model": "gen4_turbo", "seconds": 5}, (25, 25)),
        ({"model": "gen4_aleph", "seconds": 4}, (60, 60)),
        ({"model": "act_two", "seconds": 10}, (50, 50)),
        ({"model": "veo3", "seconds": 8}, (320, 320)),
        ({"model": "veo3.1", "seconds": 6, "audio": False}, (120, 120)),
        ({"model": "veo3.1", "seconds": 6, "audio": True}, (240, 240)),
        ({"model": "veo3.1", "seconds": 6}, (120, 240)),  # audio open: a range
        ({"model": "veo3.1_fast", "seconds": 4, "audio": "no"}, (40, 40)),
        ({"model": "veo3.1_fast", "seconds": 4, "audio": "yes"}, (60, 60)),
        ({"model": "veo3.1_fast", "seconds": 4}, (40, 60)),
        ({"model": "seedance2", "seconds": 15}, (540, 540)),
        # images, per image, by resolution or the ratio it follows from
        ({"model": "gen4_image", "resolution": "720p"}, (5, 5)),
        ({"model": "gen4_image", "resolution": "1080p"}, (8, 8)),
        ({"model": "gen4_image", "ratio": "1280:720"}, (5, 5)),
        ({"model": "gen4_image", "ratio": "1920:1080"}, (8, 8)),
        ({"model": "gen4_image"}, (5, 8)),
        ({"model": "gen4_image_turbo", "ratio": "1920:1080"}, (2, 2)),
        ({"model": "gemini_2.5_flash"}, (5, 5)),
        # audio, per block, rounded up per job
        ({"model": "eleven_multilingual_v2", "characters": 130}, (3, 3)),
        ({"model": "eleven_multilingual_v2", "characters": 50}, (1, 1)),
        ({"model": "eleven_multilingual_v2", "characters": 51}, (2, 2)),
        ({"model": "eleven_multilingual_v2", "text": "Hello there, world"}, (1, 1)),
        ({"model": "eleven_text_to_sound_v2"}, (1, 2)),
        ({"model": "eleven_text_to_sound_v2", "seconds": 3}, (1, 2)),
        ({"model": "eleven_voice_isolation", "seconds": 20}, (4, 4)),
        ({"model": "eleven_voice_isolation", "seconds": 6}, (1, 1)),
        ({"model": "eleven_voice_isolation", "seconds": 6.5}, (2, 2)),
        ({"model": "eleven_voice_dubbing", "seconds": 5}, (3, 3)),
        ({"model": "eleven_multilingual_sts_v2", "seconds": 10}, (4, 4)),
    ],
)
def test_published_price(rates: RateTable, row: dict, expected: tuple[int, int]) -> None:
    assert price_one(rates, **row) == expected


def test_count_multiplies_whole_job_charges(rates: RateTable) -> None:
    # 7 jobs of 130 characters: 3 credits each (rounded per job), not ceil(910 / 50) = 19
    assert price_one(rates, model="eleven_multilingual_v2", characters=130, count=7) == (21, 21)
    assert price_one(rates, model="eleven_text_to_sound_v2", count=12) == (12, 24)
    assert price_one(rates, model="gen4.5", seconds=10, count=3) == (360, 360)


def test_usd_and_totals(rates: RateTable) -> None:
    plan = plan_from_records(
        [
            {"model": "gen4.5", "seconds": 10, "count": 4, "label": "teaser"},
            {"model": "veo3.1", "seconds": 8, "label": "teaser"},
            {"model": "eleven_text_to_sound_v2", "count": 3, "label": "sfx"},
            {"model": "gwm1_avatars", "label": "sfx"},
        ],
        rates,
    )
    priced = price_plan(plan, rates, ON)
    assert priced["usd_min"].to_list() == [4.8, 1.6, 0.03, None]
    assert priced["usd_max"].to_list() == [4.8, 3.2, 0.06, None]
    s = summarize(priced)
    assert (s.total.credits_min, s.total.credits_max) == (643, 806)
    assert (s.total.usd_min, s.total.usd_max) == (6.43, 8.06)
    assert (s.total.rows, s.total.unpriced_rows) == (4, 1)
    by_label = {r["label"]: r for r in s.by_label.iter_rows(named=True)}
    assert (by_label["teaser"]["credits_min"], by_label["teaser"]["credits_max"]) == (640, 800)
    assert (by_label["sfx"]["credits_min"], by_label["sfx"]["credits_max"]) == (3, 6)
    assert by_label["sfx"]["unpriced_rows"] == 1
    by_model = {r["model"]: r for r in s.by_model.iter_rows(named=True)}
    assert by_model["gwm1_avatars"]["credits_max"] is None  # unpriced, never 0
    assert by_model["gen4.5"]["count"] == 4


def test_unpriced_model_is_reported_not_zero(rates: RateTable) -> None:
    priced = price_plan(plan_from_records([{"model": "gwm1_avatars"}], rates), rates, ON)
    row = priced.row(0, named=True)
    assert row["priced"] is False
    assert row["credits_min"] is None and row["credits_max"] is None
    assert row["note"] == "no published price for this model"
    s = summarize(priced)
    assert s.unpriced_rows["model"].to_list() == ["gwm1_avatars"]
    assert (s.total.credits_min, s.total.credits_max) == (0, 0)


def test_price_plan_accepts_a_bare_frame(rates: RateTable) -> None:
    """The dashboard may pass only the columns it has; count defaults to 1."""
    frame = pl.DataFrame({"model": ["gen4.5", "gen4_image"], "seconds": [5.0, None]})
    priced = price_plan(frame, rates, ON)
    assert priced["credits_min"].to_list() == [60, 5]
    assert priced["credits_max"].to_list() == [60, 8]
    assert priced["row"].to_list() == [1, 2]


HISTORY = """
credit_usd = 0.01

[models."gen4.5"]
endpoints = ["text_to_video"]
per = "second"
durations = [5, 10]

[[models."gen4.5".prices]]
effective_from = "2025-01-01"
credits = 10

[[models."gen4.5".prices]]
effective_from = "2026-03-01"
credits = 12

[[models."gen4.5".prices]]
effective_from = "2027-01-01"
credits = 15

[models."veo3.1"]
endpoints = ["text_to_video"]
per = "second"
durations = [8]
audio = "optional"

[[models."veo3.1".prices]]
effective_from = "2025-01-01"
credits = 30

[[models."veo3.1".prices]]
effective_from = "2025-06-01"
audio = false
credits = 20

[[models."veo3.1".prices]]
effective_from = "2025-06-01"
audio = true
credits = 40
"""


def test_effective_dates_pick_the_price_in_force(write) -> None:
    rates = load_rates(write("history.toml", HISTORY))
    plan = plan_from_records(
        [
            {"model": "gen4.5", "seconds": 10, "date": "2024-12-31"},  # before any price
            {"model": "gen4.5", "seconds": 10, "date": "2025-06-01"},  # 10/s
            {"model": "gen4.5", "seconds": 10, "date": "2026-02-28"},  # still 10/s
            {"model": "gen4.5", "seconds": 10, "date": "2026-03-01"},  # 12/s from that day
            {"model": "gen4.5", "seconds": 10},  # undated: priced on ON, 12/s
            {"model": "gen4.5", "seconds": 10, "date": "2027-02-01"},  # future: 15/s
            {"model": "veo3.1", "seconds": 8, "date": "2025-03-01"},  # flat 30/s then
            {"model": "veo3.1", "seconds": 8, "date": "2025-07-01"},  # variants replace it
        ],
        rates,
    )
    priced = price_plan(plan, rates, ON)
    assert priced["credits_min"].to_list() == [None, 100, 100, 120, 120, 150, 240, 160]
    assert priced["credits_max"].to_list() == [None, 100, 100, 120, 120, 150, 240, 320]
    assert priced["note"][0] == "no price in force on 2024-12-31 (first price from 2025-01-01)"
    assert priced["priced_on"][4] == ON


def test_rounding_rule_comes_from_the_table(write) -> None:
    text = """
credit_usd = 0.01
[models.tts]
endpoints = ["text_to_speech"]
per = "character"
[[models.tts.prices]]
effective_from = "2025-01-01"
credits = 2
block = 100
rounding = "floor"
"""
    rates = load_rates(write("floor.toml", text))
    # floor(250 / 100) = 2 blocks x 2 credits
    assert price_one(rates, model="tts", characters=250) == (4, 4)
