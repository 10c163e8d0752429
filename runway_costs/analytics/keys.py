"""Spend per API key: what the usage endpoint reports in ``resultsByApiKey``.

The collector stores those figures as served (``key_usage``: org, date, api key id, model
or "" when the API gives none, net credits); the names come from the config at read time
(``[[orgs]] keys = { "<apiKeyId>" = "label" }``), so renaming a key relabels its history.
Until the API fills ``resultsByApiKey`` (the official SDK still calls it "reserved for
future use") the table is empty, and every view says so rather than showing nothing.

Public API:

- ``has_key_usage_table(con) -> bool``: a database from before per-key usage has none.
- ``key_usage(con, settings, orgs, start, end) -> pl.DataFrame``: org, date, api_key_id,
  key_label (the configured name, else the id), model, credits, usd.
- ``key_totals(frame) -> pl.DataFrame``: org, api_key_id, key_label, credits, usd, share.
- ``NO_KEY_USAGE``: the one line a view shows when there is nothing per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb
import polars as pl

from runway_costs.analytics.spend import query
from runway_costs.core.config import Settings
from runway_costs.core.money import usd

__all__ = ["NO_KEY_USAGE", "has_key_usage_table", "key_totals", "key_usage", "table_exists"]

NO_KEY_USAGE = (
    "The usage endpoint returned no per-API-key figures (resultsByApiKey) for this "
    "selection: spend per key appears here once Runway reports it."
)

_SCHEMA = {
    "org": pl.String,
    "date": pl.Date,
    "api_key_id": pl.String,
    "key_label": pl.String,
    "model": pl.String,
    "credits": pl.Int64,
    "usd": pl.Float64,
}


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the (snapshot's) database has table ``name``: tables added by a later
    version appear in an older file only after its next collection."""
    rows = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND table_name = ?",
        [name],
    ).fetchall()
    return bool(rows[0][0])


def has_key_usage_table(con: duckdb.DuckDBPyConnection) -> bool:
    return table_exists(con, "key_usage")


def key_usage(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    orgs: Sequence[str] | None,
    start: date | None,
    end: date | None,
) -> pl.DataFrame:
    """The stored per-key rows in [start, end] (None: unbounded), named by the config."""
    if not has_key_usage_table(con):
        return pl.DataFrame(schema=_SCHEMA)
    frame = query(
        con,
        """
        SELECT org, date, api_key_id, model, credits FROM key_usage
        WHERE ($orgs IS NULL OR org = ANY($orgs::VARCHAR[]))
          AND ($start IS NULL OR date >= $start) AND ($end IS NULL OR date <= $end)
        ORDER BY org, date, api_key_id, model
        """,
        {"orgs": None if orgs is None else list(orgs), "start": start, "end": end},
    )
    labels = pl.DataFrame(
        {
            "org": [o.name for o in settings.orgs for _ in o.keys],
            "api_key_id": [k for o in settings.orgs for k in o.keys],
            "key_label": [v for o in settings.orgs for v in o.keys.values()],
        },
        schema={"org": pl.String, "api_key_id": pl.String, "key_label": pl.String},
    )
    return (
        frame.join(labels, on=["org", "api_key_id"], how="left")
        .with_columns(
            pl.col("key_label").fill_null(pl.col("api_key_id")),
            usd=usd(pl.col("credits"), settings.credit_usd),
        )
        .select(list(_SCHEMA))
    )


def key_totals(frame: pl.DataFrame) -> pl.DataFrame:
    """Per org and key: credits, USD and share of the keys' total, largest first."""
    totals = frame.group_by("org", "api_key_id", "key_label").agg(
        pl.col("credits").sum(), pl.col("usd").sum().round(2)
    )
    whole = int(totals["credits"].sum()) if totals.height else 0
    return totals.with_columns(
        share=(pl.col("credits") / whole).round(4) if whole else pl.lit(None, pl.Float64)
    ).sort(["credits", "org", "api_key_id"], descending=[True, False, False])
