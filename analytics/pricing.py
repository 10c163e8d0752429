"""Price a plan as one vectorized polars operation, and total it.

Each row is joined to its model's price entries; the entries in force on the row's date
(the latest ``effective_from`` on or before it) and matching the row's variant (audio,
resolution; an open selector matches every variant) give a per-job charge: whole blocks
of the metered unit, rounded per job as the rate table says, times credits per block.
The row's range is the min and max over the matching entries, times ``count``. A row with
no price (unknown or unpriced model, no price in force on its date) keeps null credits
and ``priced = false``: never zero.

Public API (the dashboard's planner calls these; keep them stable):
- ``price_plan(plan: pl.DataFrame, rates: RateTable, on: date | None = None) -> pl.DataFrame``
  adds ``priced_on``, ``credits_min``, ``credits_max``, ``usd_min``, ``usd_max``, ``priced``,
  ``note`` to the plan's rows (missing plan columns are treated as empty).
- ``normalize_plan(plan: pl.DataFrame) -> pl.DataFrame``: every plan column, typed.
- ``summarize(priced: pl.DataFrame) -> PlanSummary`` with ``by_model``, ``by_label``
  (frames), ``total`` (PlanTotal) and ``unpriced_rows`` (frame: line, model, note).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import polars as pl

from analytics.plan import PLAN_SCHEMA
from analytics.rates import RateTable

NO_LABEL = "(no label)"
USD_DECIMALS = 6


@dataclass(frozen=True, slots=True)
class PlanTotal:
    rows: int
    unpriced_rows: int
    credits_min: int
    credits_max: int
    usd_min: float
    usd_max: float


@dataclass(frozen=True)
class PlanSummary:
    by_model: pl.DataFrame
    by_label: pl.DataFrame
    total: PlanTotal
    unpriced_rows: pl.DataFrame


def today_utc() -> date:
    return datetime.now(UTC).date()


def normalize_plan(plan: pl.DataFrame) -> pl.DataFrame:
    """The plan with every plan column present and typed (the dashboard may send fewer)."""
    cols = []
    for name, dtype in PLAN_SCHEMA.items():
        if name in plan.columns:
            cols.append(pl.col(name).cast(dtype))
        elif name == "count":
            cols.append(pl.lit(1, pl.Int64).alias(name))
        elif name == "row":
            cols.append(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(name))
        else:
            cols.append(pl.lit(None, dtype).alias(name))
    return plan.select(cols).with_columns(pl.col("count").fill_null(1))


def _model_units(rates: RateTable) -> pl.DataFrame:
    infos = list(rates.models.values())
    return pl.DataFrame(
        {"model": [m.name for m in infos], "_per": [m.per for m in infos], "_known": True},
        schema={"model": pl.String, "_per": pl.String, "_known": pl.Boolean},
    )


def price_plan(plan: pl.DataFrame, rates: RateTable, on: date | None = None) -> pl.DataFrame:
    """Priced rows: the plan's rows, in order, with credit and USD ranges per row."""
    c = pl.col
    on = on or today_utc()
    df = normalize_plan(plan).with_row_index("_i").with_columns(priced_on=c("date").fill_null(on))
    units = _model_units(rates)
    prices = rates.prices
    matched = (
        df.select("_i", "model", "priced_on", "seconds", "characters", "audio", "resolution")
        .join(units.drop("_known"), on="model", how="inner")
        .join(prices, on="model", how="inner", suffix="_p")
        .filter(c("effective_from") <= c("priced_on"))
        .filter(c("effective_from") == c("effective_from").max().over("_i"))
        .filter(
            (c("audio_p").is_null() | c("audio").is_null() | (c("audio_p") == c("audio")))
            & (
                c("resolution_p").is_null()
                | c("resolution").is_null()
                | (c("resolution_p") == c("resolution"))
            )
        )
        .with_columns(
            _units=pl.when(c("_per") == "second")
            .then(c("seconds"))
            .when(c("_per") == "character")
            .then(c("characters").cast(pl.Float64))
            .otherwise(pl.lit(1.0))
        )
        .with_columns(_ratio=(c("_units") / c("block")).round(9))
        .with_columns(
            _blocks=pl.when(c("rounding") == "floor")
            .then(c("_ratio").floor())
            .otherwise(c("_ratio").ceil())
            .cast(pl.Int64)
        )
        .group_by("_i")
        .agg(
            _job_min=(c("_blocks") * c("credits_min")).min(),
            _job_max=(c("_blocks") * c("credits_max")).max(),
        )
    )
    first_price = prices.group_by("model").agg(_first=c("effective_from").min())
    usd = rates.credit_usd
    out = (
        df.join(matched, on="_i", how="left")
        .join(units, on="model", how="left")
        .join(first_price, on="model", how="left")
        .sort("_i")
        .with_columns(
            credits_min=c("_job_min") * c("count"),
            credits_max=c("_job_max") * c("count"),
        )
        .with_columns(
            usd_min=(c("credits_min") * usd).round(USD_DECIMALS),
            usd_max=(c("credits_max") * usd).round(USD_DECIMALS),
            priced=c("credits_min").is_not_null(),
            note=_unpriced_note(),
        )
    )
    return out.drop("_i", "_job_min", "_job_max", "_per", "_known", "_first")


def _unpriced_note() -> pl.Expr:
    """Why a row has no price; null for priced rows."""
    c = pl.col
    return (
        pl.when(c("_job_min").is_not_null())
        .then(pl.lit(None, pl.String))
        .when(c("model").is_null())
        .then(pl.lit("no model"))
        .when(c("_known").is_null())
        .then(pl.lit("model not in the rate table"))
        .when(c("_first").is_null())
        .then(pl.lit("no published price for this model"))
        .when(c("priced_on") < c("_first"))
        .then(
            pl.format("no price in force on {} (first price from {})", c("priced_on"), c("_first"))
        )
        .when((c("_per") == "second") & c("seconds").is_null())
        .then(pl.lit("seconds missing"))
        .when((c("_per") == "character") & c("characters").is_null())
        .then(pl.lit("characters missing"))
        .otherwise(pl.lit("no price for this variant"))
    )


def summarize(priced: pl.DataFrame) -> PlanSummary:
    """Totals by model, by label and overall; unpriced rows are counted, never summed as 0."""
    c = pl.col
    sums = [
        pl.len().cast(pl.Int64).alias("rows"),
        c("count").sum().alias("count"),
        (~c("priced")).sum().cast(pl.Int64).alias("unpriced_rows"),
        c("credits_min").sum().alias("credits_min"),
        c("credits_max").sum().alias("credits_max"),
        c("usd_min").sum().round(USD_DECIMALS).alias("usd_min"),
        c("usd_max").sum().round(USD_DECIMALS).alias("usd_max"),
    ]
    money = ("credits_min", "credits_max", "usd_min", "usd_max")

    def grouped(key: pl.Expr, name: str) -> pl.DataFrame:
        frame = priced.group_by(key.alias(name)).agg(sums).sort(name)
        # a group with no priced row has no price, not a price of zero
        return frame.with_columns(
            [pl.when(c("rows") > c("unpriced_rows")).then(c(m)).alias(m) for m in money]
        )

    by_model = grouped(c("model").fill_null("(none)"), "model")
    by_label = grouped(c("label").fill_null(NO_LABEL), "label")
    tot = priced.select(sums).row(0, named=True)
    total = PlanTotal(
        rows=tot["rows"],
        unpriced_rows=tot["unpriced_rows"] or 0,
        credits_min=int(tot["credits_min"] or 0),
        credits_max=int(tot["credits_max"] or 0),
        usd_min=float(tot["usd_min"] or 0.0),
        usd_max=float(tot["usd_max"] or 0.0),
    )
    unpriced = priced.filter(~c("priced")).select("line", "row", "label", "model", "note")
    return PlanSummary(by_model=by_model, by_label=by_label, total=total, unpriced_rows=unpriced)
