"""The price of a credit and the one rule for turning credits into USD.

Runway bills in credits; the API reference publishes their price: a credit costs
USD 0.01. ``CREDIT_USD`` is that published price and the default everywhere a price is
needed:

- ``Settings.credit_usd`` (``core.config``) defaults to it; analytics convert spend,
  balances and caps at the settings' value, passed in explicitly.
- The rate file (``runway_costs/data/rates.toml``, ``analytics.rates``) states the price its
  credit prices were published at (``credit_usd``); a plan is priced at the rate file's
  value. The shipped file must agree with ``CREDIT_USD`` (a test checks it).

``usd`` is the one conversion: credits times the price, rounded to cents, for a number or
a polars column expression alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    import polars as pl

__all__ = ["CREDIT_USD", "MAX_CREDITS", "usd"]

CREDIT_USD = 0.01  # USD per credit (Runway API reference)

# The largest credit amount the product handles (a plan's total, a budget): 10^15 credits,
# USD 10 trillion at the published price. Far beyond any real figure, and small enough that
# every figure up to it is exact in an Int64 and in a float64 (below 2^53), with room to
# spare: a plan is refused when its worst case could pass it, so its sums cannot wrap.
# Inputs that could go past it are refused (plan files, config), never priced or stored
# as a wrapped number.
MAX_CREDITS = 10**15


@overload
def usd(credits: pl.Expr, credit_usd: float) -> pl.Expr: ...
@overload
def usd(credits: float, credit_usd: float) -> float: ...
def usd(credits: pl.Expr | float, credit_usd: float) -> pl.Expr | float:
    """USD value of credits, rounded to cents (display and JSON use it as is).

    A number gives a float (Python rounding); a polars expression gives an expression
    (a Float64 column rounded by polars), so frames and scalars use the same rule.
    """
    if isinstance(credits, int | float):
        return round(credits * credit_usd, 2)
    import polars as pl  # core stays importable without polars (the sandbox needs none)

    return (credits.cast(pl.Float64) * credit_usd).round(2)
