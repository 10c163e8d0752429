"""Can the organization (or a tier) actually run a priced plan, and how soon?

Per model: generations needed (sum of ``count``), the daily generation limit, days needed
to submit them all, the concurrency limit and the minimum wall-clock time at it. For the
money: the plan's maximum against the balance, and buying what is missing against what is
left of the rolling 30-day purchase cap.

Days needed counts today's rolling-24h usage as already occupying the first window:
``ceil((generations + used_today) / daily_limit)`` (0 when nothing is planned). Minimum
wall-clock is ``ceil(generations / concurrency) * typical_seconds`` (the rate table's
per-model estimate). A tier's limits are ranges ("differs by model"), so a tier gives
``*_min`` / ``*_max`` values (an organization's are equal).

Public API:
- ``feasibility_for_org(con, org: str, priced: pl.DataFrame, rates: RateTable, *,
  as_of: datetime) -> Feasibility``  (con: ``analytics.db.connect_reader``)
- ``feasibility_for_tier(tiers: TierTable, tier: int, priced: pl.DataFrame,
  rates: RateTable) -> Feasibility``
- ``FeasibilityError``: the organization has no snapshot in the database.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import cast

import duckdb
import polars as pl

from runway_costs.analytics.limits import latest_models_query
from runway_costs.analytics.purchases import PurchasesWindow, purchase_headroom
from runway_costs.analytics.rates import RateTable
from runway_costs.analytics.tiertable import TierTable


class FeasibilityError(Exception):
    """The organization cannot be assessed (no snapshot of it in the database)."""


@dataclass(frozen=True)
class Feasibility:
    """Everything ``price --org/--tier`` reports; ``models`` is one row per planned model."""

    source: str
    models: pl.DataFrame
    plan_credits_max: int
    balance: int | None
    fits_balance: bool | None
    missing_credits: int
    purchase_cap: int
    purchased_30d: int | None
    cap_available: int
    fits_cap: bool
    cap_shortfall: int
    notes: tuple[str, ...]
    # the span purchased_30d covers (analytics.purchases); None for a tier
    window: PurchasesWindow | None = None

    @property
    def purchases_window(self) -> str | None:
        """The window in words: "in the last 30 days", "since ... UTC (n of 30 days
        known)", "unknown: ..."."""
        return None if self.window is None else self.window.text

    @property
    def purchases_observed_since(self) -> str | None:
        """Start of the window's known days, ISO UTC ("...Z"), None if none."""
        since = None if self.window is None else self.window.since
        return None if since is None else f"{since:%Y-%m-%dT%H:%M:%S}Z"


LIMIT_SCHEMA = pl.Schema(
    {
        "model": pl.String,
        "used_today": pl.Int64,
        "daily_limit_min": pl.Int64,
        "daily_limit_max": pl.Int64,
        "concurrency_min": pl.Int64,
        "concurrency_max": pl.Int64,
    }
)


def feasibility_for_org(
    con: duckdb.DuckDBPyConnection,
    org: str,
    priced: pl.DataFrame,
    rates: RateTable,
    *,
    as_of: datetime,
) -> Feasibility:
    """Assess the plan against the org's latest snapshot at or before ``as_of`` (naive UTC)."""
    found = con.execute(
        """SELECT taken_at, credit_balance, max_monthly_credit_spend FROM org_snapshots
           WHERE org = ? AND taken_at <= ? ORDER BY taken_at DESC LIMIT 1""",
        [org, as_of],
    ).fetchall()
    if not found:
        rows = con.execute("SELECT DISTINCT org FROM org_snapshots ORDER BY 1").fetchall()
        known = [r[0] for r in rows]
        raise FeasibilityError(
            f"no snapshot of organization {org!r} in the database "
            f"(known: {', '.join(known) or 'none'}); run `runway-costs collect` first"
        )
    taken_at, balance, cap = found[0]
    latest, params = latest_models_query(con, org, as_of)  # model_latest when it answers
    limits_arrow = con.sql(
        f"""SELECT model, daily_generations AS used_today,
                  max_daily_generations AS daily_limit_min,
                  max_daily_generations AS daily_limit_max,
                  max_concurrent_generations AS concurrency_min,
                  max_concurrent_generations AS concurrency_max
           FROM ({latest})""",
        params=params,
    ).to_arrow_table()
    limits = cast(pl.DataFrame, pl.from_arrow(limits_arrow))  # a Table gives a DataFrame
    head = purchase_headroom(con, as_of.date(), [org], credit_usd=rates.credit_usd)
    notes = [f"limits and balance from the snapshot taken {taken_at:%Y-%m-%d %H:%M} UTC"]
    purchased: int | None = None
    row = head.row(0, named=True) if head.height else {}
    observed = int(row.get("observed_days") or 0)
    since, began = row.get("purchases_observed_since"), row.get("balances_observed_since")
    window = PurchasesWindow.of(observed, since, began)
    if not window.known:
        notes.append(
            f"purchases in the last 30 days are {window.text}; the full cap is treated as available"
        )
    else:
        purchased = int(row["purchases_30d_credits"])
        if not window.complete:
            notes.append(
                f"purchases reconstructed {window.text}; any bought before are unknown and "
                "not counted against the cap"
            )
    feas = _assess(
        f"organization {org!r}",
        priced,
        rates,
        limits.cast(LIMIT_SCHEMA),
        balance=int(balance),
        cap=int(cap),
        purchased=purchased,
        notes=notes,
    )
    return replace(feas, window=window)


def feasibility_for_tier(
    tiers: TierTable, tier: int, priced: pl.DataFrame, rates: RateTable
) -> Feasibility:
    """Assess the plan against a tier's default limits (no balance: every credit is bought)."""
    t = tiers.tier(tier)
    models = priced["model"].drop_nulls().unique().sort().to_list()
    rows = []
    for m in models:  # one row per distinct model, not per plan row
        lim = tiers.limits_for(tier, m)
        rows.append(
            (
                m,
                0,
                lim.daily_generations_min,
                lim.daily_generations_max,
                lim.concurrency_min,
                lim.concurrency_max,
            )
        )
    limits = pl.DataFrame(rows, schema=LIMIT_SCHEMA, orient="row")
    notes = ["no balance is known for a tier: assumes every credit of the plan is bought"]
    return _assess(
        f"tier {tier}",
        priced,
        rates,
        limits,
        balance=None,
        cap=t.purchase_cap_credits,
        purchased=None,
        notes=notes,
    )


def _assess(
    source: str,
    priced: pl.DataFrame,
    rates: RateTable,
    limits: pl.DataFrame,
    *,
    balance: int | None,
    cap: int,
    purchased: int | None,
    notes: list[str],
) -> Feasibility:
    c = pl.col
    typical = pl.DataFrame(
        {
            "model": list(rates.models),
            "typical_seconds": [m.typical_seconds for m in rates.models.values()],
        },
        schema={"model": pl.String, "typical_seconds": pl.Float64},
    )
    per_model = (
        priced.filter(c("model").is_not_null())
        .group_by("model")
        .agg(generations=c("count").sum().cast(pl.Int64))
        .join(limits, on="model", how="left")
        .join(typical, on="model", how="left")
        .with_columns(c("used_today").fill_null(0))
        .with_columns(
            days_min=_days(c("generations"), c("used_today"), c("daily_limit_max")),
            days_max=_days(c("generations"), c("used_today"), c("daily_limit_min")),
            wall_clock_min_s=(c("generations") / c("concurrency_max")).ceil()
            * c("typical_seconds"),
            wall_clock_max_s=(c("generations") / c("concurrency_min")).ceil()
            * c("typical_seconds"),
            note=pl.when(c("daily_limit_min").is_null())
            .then(pl.lit("no limits known for this model"))
            .otherwise(pl.lit(None, pl.String)),
        )
        .sort("model")
    )
    plan_max = int(priced["credits_max"].sum() or 0)
    missing = max(0, plan_max - balance) if balance is not None else plan_max
    available = max(0, cap - (purchased or 0))
    return Feasibility(
        source=source,
        models=per_model,
        plan_credits_max=plan_max,
        balance=balance,
        fits_balance=None if balance is None else plan_max <= balance,
        missing_credits=missing,
        purchase_cap=cap,
        purchased_30d=purchased,
        cap_available=available,
        fits_cap=missing <= available,
        cap_shortfall=max(0, missing - available),
        notes=tuple(notes),
    )


def _days(generations: pl.Expr, used: pl.Expr, limit: pl.Expr) -> pl.Expr:
    """Rolling-24h windows needed, today's usage already counted in the first one."""
    return (
        pl.when(generations == 0)
        .then(pl.lit(0, pl.Int64))
        .when(limit > 0)
        .then(((generations + used) / limit).ceil().cast(pl.Int64))
        .otherwise(pl.lit(None, pl.Int64))
    )
