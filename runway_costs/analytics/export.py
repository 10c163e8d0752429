"""Daily usage as a flat table for other tools: org, date, model, credits.

Public API:
    usage_export(con, org=None, start=None, end=None) -> pl.DataFrame
    usage_grouped(con, settings, by, org=None, start=None, end=None) -> pl.DataFrame
        (per day and organization, model, tag value (tags joined at read time) or API key)
    render(frame, fmt) -> str                     (csv / json text for stdout)
    write_atomic(frame, fmt, path) -> Path        (csv / json / parquet file)
    write_file_atomic(path, write) -> Path        (any file ``write(tmp_path)`` makes)
    export_target(path) -> Path                   (the regular file to replace)
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb
import polars as pl

from runway_costs.analytics.keys import key_usage
from runway_costs.analytics.tags import Grouping, with_tag
from runway_costs.core.config import Settings

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


def usage_grouped(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    by: Grouping,
    org: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> pl.DataFrame:
    """Net credits per group and day, sorted by group then date.

    ``org`` / ``model``: that column, date, credits. A tag: a column named by the tag key
    (``tag_<key>`` if the key is ``date`` or ``credits``) holding each organization's
    value (``(untagged)`` without one), date, credits: the tags in the config now apply to
    the whole history. ``key``: org, api_key_id, key_label, date, model, credits, the
    stored per-API-key rows (empty until the API reports ``resultsByApiKey``).
    """
    if by.kind == "key":
        orgs = None if org is None else [org]
        return key_usage(con, settings, orgs, start, end).select(
            "org", "api_key_id", "key_label", "date", "model", "credits"
        )
    rows = usage_export(con, org, start, end)
    if by.kind == "tag":
        assert by.tag_key is not None
        column = by.tag_key if by.tag_key not in ("date", "credits") else f"tag_{by.tag_key}"
        rows = with_tag(rows, settings, by.tag_key, column)
    else:
        column = by.kind
    return (
        rows.group_by(column, "date")
        .agg(pl.col("credits").sum().cast(pl.Int64))
        .sort(column, "date")
    )


def render(frame: pl.DataFrame, fmt: Format) -> str:
    """The frame as CSV (header + rows) or a JSON array of objects."""
    if fmt == "csv":
        return frame.write_csv()
    if fmt == "json":
        return frame.write_json() + "\n"
    raise ValueError(f"format {fmt} cannot be written as text; give an output file")


class ExportTargetError(Exception):
    """The output path cannot receive an export; the message says why."""


def export_target(path: Path) -> Path:
    """The regular file an export replaces: ``path``, or the file a symlink there points
    to. Devices, pipes, sockets and directories are refused, never replaced."""
    real = Path(os.path.realpath(path))
    try:
        st = os.stat(real)
    except FileNotFoundError:
        if not real.parent.is_dir():
            raise ExportTargetError(f"folder {real.parent} does not exist") from None
        return real
    if stat.S_ISDIR(st.st_mode):
        raise ExportTargetError("it is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise ExportTargetError(
            "it is not a regular file (a device, pipe or socket); exports only create or "
            "replace regular files"
        )
    return real


def write_atomic(frame: pl.DataFrame, fmt: Format, path: Path) -> Path:
    """Write to a temp file beside the target and rename it: never a half-written export,
    never a device or pipe replaced (ExportTargetError). A replaced file keeps its
    permissions; a new one is owner-only. Returns the file written."""

    def write(tmp: Path) -> None:
        if fmt == "parquet":
            frame.write_parquet(tmp)
        else:
            tmp.write_text(render(frame, fmt), encoding="utf-8")

    return write_file_atomic(path, write)


def write_file_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` makes the file at a temp path beside the target, which then replaces
    the target by rename (see ``write_atomic``). Returns the file written."""
    target = export_target(Path(path))
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o600
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(name)
    try:
        os.fchmod(fd, mode)
        os.close(fd)
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
