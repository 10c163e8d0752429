"""The same job on every other model that can do it, and the cheapest alternative.

A model can do a row's job when it serves the row's endpoint (the row's ``endpoint``, or
else every endpoint the row's model serves, since the plan does not say which one is
meant), accepts the row's duration, can honour its audio choice, and has a price. That is
decided once per distinct job (a cross join of the plan's distinct jobs with the candidate
models), each row is joined to its job's candidates, and the pairs are priced by
``analytics.pricing.price_plan``, so comparing is as vectorized as pricing and never holds
rows x models in memory (a 1M-row plan: ~1.4M pairs, not 20M).

Public API:
- ``alternatives(plan: pl.DataFrame, rates: RateTable, on: date | None = None)
  -> pl.DataFrame``: one row per (plan row, alternative model) with its price.
- ``cheapest(priced: pl.DataFrame, alts: pl.DataFrame) -> pl.DataFrame``: one row per plan
  row: ``alt_model``, ``alt_credits_min/max``, ``saving_credits`` (max minus max; <= 0
  means the row's model is already the cheapest), ``saving_usd``.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from runway_costs.analytics.pricing import normalize_plan, price_plan
from runway_costs.analytics.rates import RateTable


def _candidates(rates: RateTable) -> pl.DataFrame:
    infos = [m for m in rates.models.values() if m.priced]
    return pl.DataFrame(
        {
            "alt_model": [m.name for m in infos],
            "_alt_endpoints": [list(m.endpoints) for m in infos],
            "_alt_durations": [list(m.durations) if m.durations else None for m in infos],
            "_alt_audio": [m.audio for m in infos],
            "_alt_per": [m.per for m in infos],
        },
        schema={
            "alt_model": pl.String,
            "_alt_endpoints": pl.List(pl.String),
            "_alt_durations": pl.List(pl.Float64),
            "_alt_audio": pl.String,
            "_alt_per": pl.String,
        },
    )


# Whether a model can do a row's job depends on these alone (``_chars``: the row says how
# many characters), so capability is decided once per distinct combination, a few
# thousand in a million-row plan, and the rows take their candidates by a join.
_JOB = ("model", "endpoint", "seconds", "audio", "_chars")
# What pricing reads of a row (``row`` ties the priced pair back to its plan row).
_PRICED = ("row", "model", "count", "seconds", "resolution", "audio", "characters", "date")


def alternatives(plan: pl.DataFrame, rates: RateTable, on: date) -> pl.DataFrame:
    """Every other model that can do each row's job, priced for the row's date."""
    c = pl.col
    own = pl.DataFrame(
        {
            "model": list(rates.models),
            "_endpoints": [list(m.endpoints) for m in rates.models.values()],
        },
        schema={"model": pl.String, "_endpoints": pl.List(pl.String)},
    )
    base = normalize_plan(plan)
    rows = base.select(*_PRICED, "endpoint", _chars=c("characters").is_not_null())
    able = (
        rows.select(_JOB)
        .unique()
        .join(own, on="model", how="inner")
        .with_columns(
            _needed=pl.when(c("endpoint").is_not_null())
            .then(pl.concat_list(c("endpoint")))
            .otherwise(c("_endpoints"))
        )
        .join(_candidates(rates), how="cross")
        .filter(
            (c("alt_model") != c("model"))
            & (c("_needed").list.set_difference(c("_alt_endpoints")).list.len() == 0)
            & (c("_alt_durations").is_null() | c("_alt_durations").list.contains(c("seconds")))
            & ~(c("audio").fill_null(False) & (c("_alt_audio") == "never"))
            & ~(~c("audio").fill_null(True) & (c("_alt_audio") == "always"))
            & ((c("_alt_per") != "second") | c("seconds").is_not_null())
            & ((c("_alt_per") != "character") | c("_chars"))
        )
        .select(*_JOB, "alt_model")
    )
    pairs = rows.join(able, on=list(_JOB), how="inner", nulls_equal=True).select(
        c("alt_model").alias("model"), *(n for n in _PRICED if n != "model")
    )
    priced = price_plan(pairs, rates, on).filter(c("priced"))
    return (
        priced.select(
            "row",
            c("model").alias("alt_model"),
            "credits_min",
            "credits_max",
            "usd_min",
            "usd_max",
        )
        .join(base.select("line", "row", "model"), on="row", how="left")
        .select("line", "row", "model", pl.exclude("line", "row", "model"))
        .sort("row", "credits_max", "credits_min", "alt_model")
    )


def cheapest(priced: pl.DataFrame, alts: pl.DataFrame) -> pl.DataFrame:
    """Per priced plan row, its cheapest alternative (by maximum, then minimum credits,
    then name) among ``alts`` as ``alternatives`` gives them: priced, one row per model."""
    c = pl.col
    best = (  # the least (credits_max, credits_min, alt_model) of each row, without a sort
        alts.filter(c("credits_max") == c("credits_max").min().over("row"))
        .filter(c("credits_min") == c("credits_min").min().over("row"))
        .filter(c("alt_model") == c("alt_model").min().over("row"))
        .select(
            "row",
            "alt_model",
            c("credits_min").alias("alt_credits_min"),
            c("credits_max").alias("alt_credits_max"),
            c("usd_max").alias("alt_usd_max"),
        )
    )
    return (
        priced.select("line", "row", "label", "model", "credits_min", "credits_max", "usd_max")
        .join(best, on="row", how="left")
        .with_columns(
            saving_credits=c("credits_max") - c("alt_credits_max"),
            saving_usd=(c("usd_max") - c("alt_usd_max")).round(6),
        )
        .drop("usd_max", "alt_usd_max")
        .sort("row")
    )
