"""Small presentation helpers shared by the pages: states, numbers, downloads, sidebar."""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, TypeVar

import polars as pl
import streamlit as st

from runway_costs.dashboard import views
from runway_costs.dashboard.context import (
    ALL_ORGS,
    SELECTION_KEY,
    Selection,
    get_settings,
    selection,
    utc_now,
)
from runway_costs.dashboard.data import FALLBACK_KEY, fetch
from runway_costs.dashboard.views import DataUnavailable, Scope

T = TypeVar("T")
UNAVAILABLE_KEY = "unavailable"
DEFAULT_DAYS = 90


# The ASCII punctuation that can open Markdown or HTML inside a line: links and images
# ([, ], !), emphasis (*, _, ~), code (`), HTML tags and entities (<, &), tables (|),
# math ($), Streamlit directives and emoji codes (:, {, }) and escapes (\\).
# Backslash-escaped (CommonMark), each shows as itself.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<!|~$&:{}])")
# Bare URLs and e-mail addresses become links after parsing (GFM autolink literals work on
# the text, escapes or not): an invisible WORD JOINER before the ':' of a scheme, the '.'
# after 'www' and the '@' of an address keeps them text.
_AUTOLINK = re.compile(r"(?i)(?<=https)(?=:)|(?<=http)(?=:)|(?<=ftp)(?=:)|(?<=www)(?=\.)|(?=@)")
WORD_JOINER = "\u2060"
# What opens a block only at the start of the text: a heading, a quote, a list marker.
_MD_BLOCK_START = re.compile(r"^(\s*)([#>+-]|\d+(?=[.)]))")


def md(value: object) -> str:
    """Text from outside (an organization or model name, an alert message, an error)
    made literal for every Streamlit element that renders Markdown: st.markdown, write,
    caption, info, warning, error, success, metric labels and values, progress text.
    Control characters become visible escapes and line breaks spaces, so the text stays
    on its line; URLs and addresses stay unlinked. Dataframes need none of this: their
    cells are plain text."""
    text = "" if value is None else str(value)
    if not text.isprintable():
        text = "".join(
            " "
            if ch in "\n\r\t"
            else (f"\\x{ord(ch):02x}" if unicodedata.category(ch) == "Cc" else ch)
            for ch in text
        )
    text = _AUTOLINK.sub(WORD_JOINER, text)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _MD_BLOCK_START.sub(_escape_marker, text, count=1)


def _escape_marker(match: re.Match[str]) -> str:
    lead, marker = match.group(1), match.group(2)
    if marker in "#>+-":
        return f"{lead}\\{marker}"
    return f"{lead}{marker}\\"  # 1. -> 1\. once the dot follows


def num(value: float | int | None, decimals: int = 0) -> str:
    """A figure with thousands separators; "n/a" when unknown."""
    return "n/a" if value is None else f"{value:,.{decimals}f}"


def credits(value: float | int | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} credits"


def usd(value: float | int | None) -> str:
    return "n/a" if value is None else f"USD {value:,.2f}"


def show_unavailable(exc: DataUnavailable) -> None:
    """Explain why there is nothing to show and what to do; never a traceback."""
    if exc.kind == "bad":
        st.error("The database file cannot be read.", icon="🛑")
    elif exc.kind == "busy":
        st.warning(
            "The database is being written by a collection right now. "
            "Reload this page in a few seconds.",
            icon="⏳",
        )
    else:
        st.info(
            "No data yet: nothing has been collected into this database. "
            "Run `runway-costs collect` (or `runway-costs up`) and reload.",
            icon="ℹ️",
        )
    st.caption(md(exc))


def show_reader_note() -> None:
    """Say so when the pages read the live file because the snapshot is damaged."""
    note = st.session_state.get(FALLBACK_KEY)
    if note:
        st.caption(f"⚠️ {md(note)}")


def load(fn: Callable[..., T], *args: Any) -> T:
    """fetch() for a page: an unavailable database shows its state and ends the page."""
    try:
        return fetch(fn, *args)
    except DataUnavailable as exc:
        show_unavailable(exc)
        st.stop()
        raise  # unreachable: st.stop() raises


def sidebar_selection() -> None:
    """Organization and date range in the sidebar, kept in session_state across pages."""
    st.session_state.pop(UNAVAILABLE_KEY, None)
    st.session_state.pop(FALLBACK_KEY, None)
    settings = get_settings()
    try:
        orgs = fetch(views.known_orgs)
        if orgs:
            status = fetch(views.collection_status, Scope(tuple(orgs), True), _minute())
    except DataUnavailable as exc:
        st.session_state[SELECTION_KEY] = None
        st.session_state[UNAVAILABLE_KEY] = exc
        return
    if not orgs:
        st.session_state[SELECTION_KEY] = None
        st.session_state[UNAVAILABLE_KEY] = DataUnavailable(
            "missing", f"{settings.db_path} has no organizations yet"
        )
        return
    with st.sidebar:
        choice = st.selectbox("Organization", [ALL_ORGS, *orgs], key="org_choice")
        if "date_range" not in st.session_state:
            st.session_state["date_range"] = (
                status.as_of - timedelta(days=DEFAULT_DAYS - 1),
                status.as_of,
            )
        picked = st.date_input("Date range (UTC)", key="date_range", format="YYYY-MM-DD")
    start, end = _range(picked, status.as_of)
    scope = Scope(tuple(orgs), True) if choice == ALL_ORGS else Scope((choice,))
    st.session_state[SELECTION_KEY] = Selection(
        scope=scope, start=start, end=end, orgs_available=tuple(orgs)
    )


def _range(picked: Any, as_of: date) -> tuple[date, date]:
    """A half-picked range (one date clicked so far) keeps a sensible window."""
    if isinstance(picked, tuple | list) and len(picked) == 2:
        return picked[0], picked[1]
    if isinstance(picked, tuple | list) and len(picked) == 1:
        return picked[0], as_of
    return as_of - timedelta(days=DEFAULT_DAYS - 1), as_of


def _minute():
    """Now, to the minute: a cache key that changes only once a minute."""
    return utc_now().replace(second=0, microsecond=0)


def require_selection() -> Selection:
    """The selection, or the 'no data yet' state and the end of the page."""
    sel = selection()
    if sel is None:
        exc = st.session_state.get(UNAVAILABLE_KEY) or DataUnavailable("missing", "no data")
        show_unavailable(exc)
        st.stop()
    return sel


def now_minute():
    return _minute()


def download_buttons(frame: pl.DataFrame, name: str, key: str) -> None:
    """CSV and Parquet downloads of exactly the table shown."""
    left, right = st.columns(2)
    left.download_button(
        "Download CSV",
        frame.write_csv().encode("utf-8"),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"{key}_csv",
    )
    buf = io.BytesIO()
    frame.write_parquet(buf)
    right.download_button(
        "Download Parquet",
        buf.getvalue(),
        file_name=f"{name}.parquet",
        mime="application/vnd.apache.parquet",
        key=f"{key}_parquet",
    )


def freshness(status: views.CollectionStatus) -> None:
    """The last successful collection, with a visible warning when it is stale."""
    if status.last_success is None:
        st.warning("No successful collection yet for this selection.", icon="⚠️")
        return
    text = f"Last successful collection: {status.last_success:%Y-%m-%d %H:%M} UTC"
    if status.stale:
        st.warning(
            f"{text}: older than {status.stale_hours:g} hours, figures may be out of date.",
            icon="⚠️",
        )
    else:
        st.success(text)
    if status.failed_since:
        st.warning(f"{status.failed_since} collection run(s) failed since then.")


# Headers a finance reader understands; other columns get their name with spaces.
COLUMN_LABELS = {
    "org": "Organization",
    "balance_credits": "Balance (credits)",
    "mtd_credits": "Month to date (credits)",
    "month_end_mid": "Month-end forecast (credits)",
    "runout_date": "Runs out",
    "cap_bound_date": "30-day cap binds",
    "credits": "Credits",
    "usd": "USD",
    "daily_generations": "Generations (24 h)",
    "max_daily_generations": "Daily limit",
    "max_concurrent_generations": "Concurrency",
    "usage_ratio": "Share of limit",
    "peak_7d": "Peak (7 days)",
    "days_at_limit_30d": "Days at limit (30 days)",
    "credits_min": "Credits (min)",
    "credits_max": "Credits (max)",
    "usd_min": "USD (min)",
    "usd_max": "USD (max)",
}


def _column_config(frame: pl.DataFrame) -> dict[str, Any]:
    """Display labels and number formats only: the frame (and CSV/Parquet downloads)
    keep their machine column names."""
    config: dict[str, Any] = {}
    for name, dtype in frame.schema.items():
        label = COLUMN_LABELS.get(name, name.replace("_", " "))
        if dtype.is_integer():
            config[name] = st.column_config.NumberColumn(label, format="localized")
        elif dtype.is_float() and (name == "usd" or name.startswith("usd_")):
            config[name] = st.column_config.NumberColumn(label, format="%.2f")
        else:
            config[name] = st.column_config.Column(label)
    return config


def table(frame: pl.DataFrame, key: str, container: Any = None) -> None:
    """st.dataframe with dates shown as dates (not midnight timestamps), readable headers
    and thousands separators."""
    shown = frame.with_columns(pl.col(pl.Date).cast(pl.String))
    (container or st).dataframe(
        shown, hide_index=True, key=key, column_config=_column_config(shown)
    )
