"""The Planner page: a plan edited in a table, priced live, cheaper alternatives, and
whether an organization's balance and limits (or a usage tier) can run it."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from runway_costs.analytics import compare as compare_mod
from runway_costs.analytics import feasibility as feasibility_mod
from runway_costs.analytics import plan as plan_mod
from runway_costs.analytics import pricing as pricing_mod
from runway_costs.analytics import rates as rates_mod
from runway_costs.analytics import tiertable as tiertable_mod
from runway_costs.core.config import Settings
from runway_costs.dashboard.views.common import cursor

# The planner's editable columns: the plan fields without free text, label first, date last.
EDIT_COLUMNS = (
    "label",
    *(f for f in plan_mod.PLAN_FIELDS if f not in ("label", "text", "date")),
    "date",
)


@dataclass(frozen=True)
class PlannerData:
    """A plan priced live: either ``errors`` (nothing priced) or the priced rows and totals."""

    errors: tuple[str, ...] = ()
    priced: pl.DataFrame | None = None
    summary: pricing_mod.PlanSummary | None = None
    cheaper: pl.DataFrame | None = None  # rows whose cheapest alternative saves credits


@functools.lru_cache(maxsize=4)
def _rates(path: Path) -> rates_mod.RateTable:
    return rates_mod.load_rates(path)


def rate_table(settings: Settings) -> rates_mod.RateTable:
    """The configured rate file (``rates = ...``), else the shipped rate table."""
    return _rates(rates_mod.resolve_rates_path(None, settings.rates_path))


def plan_rows_from_file(settings: Settings, name: str, data: bytes) -> list[dict]:
    """Rows of an uploaded plan file, checked like ``runway-costs price`` checks a file.

    Raises ``PlanError`` listing every problem with the file's own line numbers.
    """
    frame = plan_mod.plan_from_bytes(data, name, Path(name).suffix, rate_table(settings))
    return frame.select(EDIT_COLUMNS).to_dicts()


def clean_records(records: list[dict]) -> list[dict]:
    """Drop empty cells (None, NaN, blank) and fully empty rows from edited table rows."""
    out = []
    for rec in records:
        row = {}
        for key, value in rec.items():
            if value is None or (isinstance(value, float) and value != value):
                continue
            if isinstance(value, str) and not value.strip():
                continue
            row[key] = value.isoformat() if isinstance(value, date) else value
        if row:
            out.append(row)
    return out


def price_records(settings: Settings, records: list[dict], on: date) -> PlannerData:
    """Validate and price table rows (``analytics.plan`` + ``analytics.pricing``) at the
    prices in effect ``on``."""
    rates = rate_table(settings)
    rows = clean_records(records)
    if not rows:
        return PlannerData(errors=("the plan has no rows: add a row or upload a plan file",))
    try:
        plan = plan_mod.plan_from_records(rows, rates, source="the table")
    except plan_mod.PlanError as exc:
        return PlannerData(errors=tuple(exc.lines()))
    priced = pricing_mod.price_plan(plan, rates, on)
    cheaper = compare_mod.cheapest(priced, compare_mod.alternatives(plan, rates, on)).filter(
        pl.col("saving_credits") > 0
    )
    return PlannerData(priced=priced, summary=pricing_mod.summarize(priced), cheaper=cheaper)


def plan_feasibility(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    records_json: str,
    org: str,
    as_of: datetime,
) -> feasibility_mod.Feasibility | None:
    """Feasibility of the plan (rows as JSON) against ``org``'s latest snapshot at ``as_of``."""
    data = price_records(settings, json.loads(records_json), as_of.date())
    if data.priced is None:
        return None
    try:
        return feasibility_mod.feasibility_for_org(
            cursor(con), org, data.priced, rate_table(settings), as_of=as_of
        )
    except feasibility_mod.FeasibilityError:
        return None


def tier_feasibility(
    settings: Settings, records: list[dict], tier: int, on: date
) -> feasibility_mod.Feasibility | None:
    """Feasibility of the plan at a usage tier (no database needed), at ``on``'s prices."""
    data = price_records(settings, records, on)
    if data.priced is None:
        return None
    return feasibility_mod.feasibility_for_tier(
        tiertable_mod.load_tiers(), tier, data.priced, rate_table(settings)
    )
