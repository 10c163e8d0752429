"""Text from outside (the API, a plan, a rate table, a config, the database) made inert
for the terminal.

Every string the CLI did not write itself goes through ``safe`` before it reaches a Rich
console or a Rich table cell (both parse markup): control characters (ESC, BEL, C1 codes,
bidirectional overrides) are shown as visible escapes such as ``\\x1b``, so they cannot
move the cursor, retitle the window or clear the screen, and Rich markup such as ``[/]``
or ``[bold]`` is escaped so it prints literally and never raises ``MarkupError``.
"""

from __future__ import annotations

import logging
import unicodedata

from rich.markup import escape

# Format characters that reorder or hide text (Trojan-source style) are shown too.
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _visible(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def plain(value: object) -> str:
    """``value`` as one line of text without control characters (shown as escapes)."""
    text = "" if value is None else str(value)
    if text.isprintable():  # the common case: nothing to replace
        return text
    return "".join(
        _visible(ch) if ch in _BIDI or (unicodedata.category(ch) == "Cc" and ch != " ") else ch
        for ch in text
    )


def safe(value: object) -> str:
    """``value`` ready to be printed by Rich: no control characters, markup escaped."""
    return escape(plain(value))


class SafeLogFilter(logging.Filter):
    """Makes a log record's text inert for a terminal (a handler's filter: it sees every
    record the handler prints, whichever logger it came from)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = plain(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def warnings_to_stderr() -> None:
    """Warnings and errors logged while a one-shot command runs: to stderr as bare lines
    (as Python prints them when nothing is configured), control characters shown as
    escapes. Leaves an already configured root logger alone."""
    root = logging.getLogger()
    if root.handlers:
        for handler in root.handlers:
            if not any(isinstance(f, SafeLogFilter) for f in handler.filters):
                handler.addFilter(SafeLogFilter())
        return
    handler = logging.StreamHandler()  # stderr
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(SafeLogFilter())
    root.addHandler(handler)
