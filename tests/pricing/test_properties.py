"""Property tests: totals are sums of rows, splitting/merging rows changes no total,
and every range is ordered."""

from __future__ import annotations

from datetime import date

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from runway_costs.analytics.plan import plan_from_records
from runway_costs.analytics.pricing import price_plan, summarize
from runway_costs.analytics.rates import load_rates

RATES = load_rates()
ON = date(2026, 11, 24)


@st.composite
def job(draw) -> dict:
    """A valid job for a random model of the default rate table."""
    model = draw(st.sampled_from(sorted(RATES.models)))
    info = RATES.models[model]
    row: dict = {"model": model}
    if info.durations:
        row["seconds"] = draw(st.sampled_from(info.durations))
    elif info.per == "second":
        row["seconds"] = draw(st.integers(1, 600))
    if info.per == "character":
        row["characters"] = draw(st.integers(1, 5000))
    if info.audio == "optional":
        row["audio"] = draw(st.sampled_from([True, False, None]))
    if model == "gen4_image":
        row["resolution"] = draw(st.sampled_from(["720p", "1080p", None]))
    row["label"] = draw(st.sampled_from(["a", "b", None]))
    return {k: v for k, v in row.items() if v is not None}


jobs = st.lists(st.tuples(job(), st.integers(1, 50)), min_size=1, max_size=12)


def total(rows: list[dict]) -> tuple[int, int]:
    s = summarize(price_plan(plan_from_records(rows, RATES), RATES, ON))
    return s.total.credits_min, s.total.credits_max


@settings(max_examples=40, deadline=None)
@given(jobs)
def test_total_is_sum_of_rows_priced_alone(items: list[tuple[dict, int]]) -> None:
    rows = [{**j, "count": n} for j, n in items]
    alone = [total([r]) for r in rows]
    assert total(rows) == (sum(a for a, _ in alone), sum(b for _, b in alone))


@settings(max_examples=40, deadline=None)
@given(jobs, st.data())
def test_splitting_or_merging_rows_changes_no_total(items, data) -> None:
    merged = [{**j, "count": n} for j, n in items]
    split = []
    for j, n in items:
        k = data.draw(st.integers(0, n))
        parts = [k, n - k] if 0 < k < n else [n]
        split.extend({**j, "count": p} for p in parts)
    assert total(split) == total(merged)
    ones = [{**j} for j, n in items for _ in range(min(n, 5))]
    fives = [{**j, "count": min(n, 5)} for j, n in items]
    assert total(ones) == total(fives)


@settings(max_examples=40, deadline=None)
@given(jobs)
def test_min_never_exceeds_max(items) -> None:
    priced = price_plan(plan_from_records([{**j, "count": n} for j, n in items], RATES), RATES, ON)
    p = priced.filter(pl.col("priced"))
    assert (p["credits_min"] <= p["credits_max"]).all()
    assert (p["usd_min"] <= p["usd_max"]).all()
    s = summarize(priced)
    assert s.total.credits_min <= s.total.credits_max
    assert (
        s.by_model.drop_nulls("credits_min")["credits_min"]
        <= s.by_model.drop_nulls("credits_min")["credits_max"]
    ).all()
