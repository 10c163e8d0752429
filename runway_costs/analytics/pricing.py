"""Price a plan as one vectorized polars operation, and total it.

Each row is joined to its model's price entries; the entries in force on the row's date
(the latest ``effective_from`` on or before it) and matching the row's variant (audio,
resolution; an open selector matches every variant) give a per-job charge: whole blocks
of the metered unit, rounded per job as the rate table says, times credits per block.
The row's range is the min and max over the matching entries, times ``count``. A row with
no price (unknown or unpriced model, no price in force on its date) keeps null credits
and ``priced = false``: never zero.

Credits never wrap: a row's charge is checked in Float64 before its exact Int64 product is
kept, and one above ``core.money.MAX_CREDITS`` is unpriced ("more than ... credits"),
never a wrapped number. Validated plans (``analytics.plan``) never reach that: their
worst case is bounded there, with the row's line; the check guards the other callers
(``analytics.compare`` prices each row on other, dearer, models).

Public API (the dashboard's planner calls these; keep them stable):
- ``price_plan(plan: pl.DataFrame, rates: RateTable, on: date) -> pl.DataFrame``
  adds ``priced_on``, ``credits_min``, ``credits_max``, ``usd_min``, ``usd_max``, ``priced``,
  ``note`` to the plan's rows (missing plan columns are treated as empty).
- ``normalize_plan(plan: pl.DataFrame) -> pl.DataFrame``: every plan column, typed.
- ``summarize(priced: pl.DataFrame) -> PlanSummary`` with ``by_model``, ``by_label``
  (frames), ``total`` (PlanTotal) and ``unpriced_rows`` (frame: line, model, note).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from runway_costs.analytics.plan import PLAN_SCHEMA
from runway_costs.analytics.rates import RateTable
from runway_costs.core.money import MAX_CREDITS

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


# A row's price depends on (model, date, audio, resolution) through the price list, and on
# its metered units only through arithmetic. The four are packed into one integer key so
# the million-row side does one integer join; the price lists are resolved per distinct key.
_DAY_OFFSET = 1 << 24  # dates within +-45,000 years of 1970 fit in 25 bits
_UNKNOWN_RES = 15


def _model_codes(rates: RateTable) -> pl.DataFrame:
    infos = list(rates.models.values())
    return pl.DataFrame(
        {
            "model": [m.name for m in infos],
            "_mcode": list(range(1, len(infos) + 1)),
            "_per": [m.per for m in infos],
        },
        schema={"model": pl.String, "_mcode": pl.Int64, "_per": pl.String},
    )


def _res_code(rates: RateTable, column: str) -> pl.Expr:
    """0 for an open resolution, 1.. for a known one, _UNKNOWN_RES for anything else."""
    codes = {r: i + 1 for i, r in enumerate(rates.resolutions)}
    return (
        pl.when(pl.col(column).is_null())
        .then(pl.lit(0, pl.Int64))
        .otherwise(
            pl.col(column).replace_strict(codes, default=_UNKNOWN_RES, return_dtype=pl.Int64)
        )
    )


def _audio_code(column: str) -> pl.Expr:
    """0 for open audio, 1 without, 2 with."""
    return pl.col(column).cast(pl.Int64).add(1).fill_null(0)


def price_plan(plan: pl.DataFrame, rates: RateTable, on: date) -> pl.DataFrame:
    """Priced rows: the plan's rows, in order, with credit and USD ranges per row, at the
    prices in effect ``on`` (a UTC date: prices change on published dates)."""
    c = pl.col
    codes = _model_codes(rates)
    mcode = (
        c("model")
        .replace_strict(
            dict(zip(codes["model"], codes["_mcode"], strict=True)),
            default=0,
            return_dtype=pl.Int64,
        )
        .fill_null(0)
    )
    df = (
        normalize_plan(plan)
        .with_columns(priced_on=c("date").fill_null(on))
        .with_columns(
            _key=mcode * (1 << 40)
            + (c("priced_on").cast(pl.Int64) + _DAY_OFFSET) * (1 << 6)
            + _audio_code("audio") * (1 << 4)
            + _res_code(rates, "resolution")
        )
    )
    lists = _price_lists(df.select(c("_key").unique()), rates, codes)
    units = (
        pl.when(c("_per") == "second")
        .then(c("seconds"))
        .when(c("_per") == "character")
        .then(c("characters").cast(pl.Float64))
        .otherwise(pl.lit(1.0))
    )
    ratio = (units / c("_block")).round(9)
    blocks = pl.when(c("_floor")).then(ratio.floor()).otherwise(ratio.ceil())
    usd = rates.credit_usd
    fits = c("_blocks_f") * c("_cmax") * c("count").cast(pl.Float64) <= MAX_CREDITS
    return (
        df.join(lists, on="_key", how="left", maintain_order="left")
        .with_columns(_blocks_f=blocks)
        .with_columns(_fits=fits, _blocks=c("_blocks_f").cast(pl.Int64, strict=False))
        .with_columns(
            credits_min=pl.when(c("_fits")).then(c("_blocks") * c("_cmin") * c("count")),
            credits_max=pl.when(c("_fits")).then(c("_blocks") * c("_cmax") * c("count")),
            _note=pl.when(c("_fits").not_())
            .then(pl.lit(f"more than {MAX_CREDITS:,} credits"))
            .otherwise(c("_note")),
        )
        .with_columns(
            usd_min=(c("credits_min") * usd).round(USD_DECIMALS),
            usd_max=(c("credits_max") * usd).round(USD_DECIMALS),
            priced=c("credits_min").is_not_null(),
            note=pl.when(c("model").is_null())
            .then(pl.lit("no model"))
            .when(c("_note").is_not_null())
            .then(c("_note"))
            .when(c("_per") == "second")
            .then(pl.lit("seconds missing"))
            .when(c("_per") == "character")
            .then(pl.lit("characters missing"))
            .otherwise(pl.lit(None, pl.String))
            .cast(pl.String),
        )
        .with_columns(note=pl.when(c("priced")).then(pl.lit(None, pl.String)).otherwise(c("note")))
        .drop("_key", "_per", "_block", "_floor", "_cmin", "_cmax", "_note")
        .drop("_blocks", "_blocks_f", "_fits")
    )


def _price_lists(keys: pl.DataFrame, rates: RateTable, codes: pl.DataFrame) -> pl.DataFrame:
    """Per distinct job key: the price list in force, reduced over the matching variants to
    (block, rounding, min and max credits per block), or a note saying why there is none.

    The rate loader guarantees that one model's entries of one date share block and
    rounding, so only credits per block vary across variants."""
    c = pl.col
    keys = keys.with_columns(
        _mcode=c("_key") // (1 << 40),
        priced_on=((c("_key") // (1 << 6)) % (1 << 25) - _DAY_OFFSET).cast(pl.Date),
        _audio=(c("_key") // (1 << 4)) % 4,
        _res=c("_key") % 16,
    ).join(codes, on="_mcode", how="left")
    prices = rates.prices.with_columns(
        _audio_p=_audio_code("audio"), _res_p=_res_code(rates, "resolution")
    )
    matched = (
        keys.select("_key", "model", "priced_on", "_audio", "_res")
        .join(prices, on="model", how="inner")
        .filter(c("effective_from") <= c("priced_on"))
        .filter(c("effective_from") == c("effective_from").max().over("_key"))
        .filter(
            ((c("_audio_p") == 0) | (c("_audio") == 0) | (c("_audio_p") == c("_audio")))
            & ((c("_res_p") == 0) | (c("_res") == 0) | (c("_res_p") == c("_res")))
        )
        .group_by("_key")
        .agg(
            _block=c("block").first(),
            _floor=(c("rounding").first() == "floor"),
            _cmin=c("credits_min").min(),
            _cmax=c("credits_max").max(),
        )
    )
    first_price = rates.prices.group_by("model").agg(_first=c("effective_from").min())
    return (
        keys.join(matched, on="_key", how="left")
        .join(first_price, on="model", how="left")
        .with_columns(
            _note=pl.when(c("_cmin").is_not_null())
            .then(pl.lit(None, pl.String))
            .when(c("_mcode") == 0)
            .then(pl.lit("model not in the rate table"))
            .when(c("_first").is_null())
            .then(pl.lit("no published price for this model"))
            .when(c("priced_on") < c("_first"))
            .then(
                pl.format(
                    "no price in force on {} (first price from {})", c("priced_on"), c("_first")
                )
            )
            .otherwise(pl.lit("no price for this variant"))
        )
        .select("_key", "_per", "_block", "_floor", "_cmin", "_cmax", "_note")
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
