"""Cached access to ``dashboard.views``: one connection per load, never held open.

Loads are cached with ``st.cache_data`` for the collection interval (the shortest
scheduler interval), and keyed by the published snapshot's modification time, so a
new cycle shows up at once while repeated page views cost nothing. Reads go through
``analytics.db.connect_reader`` (the published snapshot), so they never block the
scheduler.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import streamlit as st

from runway_costs.analytics.db import describe_error
from runway_costs.core.files import snapshot_path
from runway_costs.dashboard.context import get_settings
from runway_costs.dashboard.views import DataUnavailable, reader

T = TypeVar("T")
FALLBACK_KEY = "db_fallback_note"  # shown by ui.show_reader_note
UNREADABLE = (duckdb.IOException, duckdb.SerializationException, duckdb.InternalException)


def ttl_seconds() -> float:
    """The collection interval: cached data never outlives the next scheduled cycle."""
    c = get_settings().collection
    return 60.0 * min(c.snapshot_minutes, c.usage_minutes)


def db_stamp(db_path: Path) -> int:
    """Changes whenever the writer publishes a new snapshot (or writes the live file)."""
    for path in (snapshot_path(db_path), db_path):
        try:
            return path.stat().st_mtime_ns
        except FileNotFoundError:
            continue
    return 0


@functools.cache
def _loader(ttl: float) -> Callable[..., Any]:
    @st.cache_data(ttl=ttl, show_spinner=False, max_entries=256)
    def load(module: str, name: str, db: str, stamp: int, args: tuple) -> tuple[Any, str | None]:
        fn = getattr(importlib.import_module(module), name)
        notes: list[str] = []
        with reader(Path(db), on_fallback=notes.append) as con:
            try:
                return fn(con, get_settings(), *args), (notes[0] if notes else None)
            except duckdb.CatalogException as exc:
                raise DataUnavailable(
                    "missing", f"the database has no collected tables yet ({exc})"
                ) from None
            except UNREADABLE as exc:  # opened, but a block cannot be read through
                raise DataUnavailable(
                    "bad", f"database {db} cannot be read: {describe_error(exc)}"
                ) from None

    return load


def fetch(fn: Callable[..., T], *args: Any) -> T:
    """``fn(con, settings, *args)`` on a fresh read-only connection, cached. A load that
    had to read past a damaged snapshot leaves its note for ``ui.show_reader_note``."""
    db = get_settings().db_path
    result, note = _loader(ttl_seconds())(fn.__module__, fn.__name__, str(db), db_stamp(db), args)
    if note:
        st.session_state[FALLBACK_KEY] = note
    return result
