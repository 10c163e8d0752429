"""Daily usage as a flat table for other tools: org, date, model, credits.

Public API:
    usage_export(con, org=None, start=None, end=None) -> pl.DataFrame
    render(frame, fmt) -> str                     (csv / json text for stdout)
    write_atomic(frame, fmt, path) -> None        (csv / json / parquet file)
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb
import polars as pl

Format = Literal["csv", "json", "parquet"]


def usage_export(
    con: duckdb.DuckDBPyConnection,
    org: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> pl.DataFrame:
    """Usage rows sorted by org, date, model; ``start`` and ``end`` are inclusive."""
    return con.sql(
        """
        SELECT org, date, model, credits FROM daily_usage
        WHERE ($org IS NULL OR org = $org)
          AND ($start IS NULL OR date >= $start)
          AND ($end IS NULL OR date <= $end)
        ORDER BY org, date, model
        """,
        params={"org": org, "start": start, "end": end},
    ).pl()


def render(frame: pl.DataFrame, fmt: Format) -> str:
    """The frame as CSV (header + rows) or a JSON array of objects."""
    if fmt == "csv":
        return frame.write_csv()
    if fmt == "json":
        return frame.write_json() + "\n"
    raise ValueError(f"format {fmt} cannot be written as text; give an output file")


def write_atomic(frame: pl.DataFrame, fmt: Format, path: Path) -> None:
    """Write to a temp file beside ``path`` and rename it: never a half-written export."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if fmt == "parquet":
            frame.write_parquet(tmp)
        else:
            tmp.write_text(render(frame, fmt), encoding="utf-8")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
