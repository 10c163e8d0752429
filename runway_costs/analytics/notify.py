"""Send alert notices through Apprise, without ever letting a channel URL out.

Channel URLs (``[alerts] urls``: Slack, ``mailto://``, ``json://`` webhooks, anything
Apprise reaches) carry tokens and passwords, so they are held as ``SecretStr`` and only
unwrapped here. A channel is named everywhere else by its scheme and position
(``json#1``). Apprise logs through the ``apprise`` logger, sometimes with URL parts: while
we send, its records are captured instead of propagated, every secret part of the URL is
redacted from them, and what remains becomes the recorded error text.

A delivery is tried ``attempts`` times with a short exponential backoff; it never raises
(the scheduler calls this), it returns what happened.

Public API:

- ``channel_label(url: SecretStr, index: int) -> str``          e.g. ``"mailto#2"``
- ``deliver(url, title, body, severity, attempts=3, backoff=0.5) -> Delivery``
- ``redact(text, secrets) -> str``; ``url_secrets(url) -> list[str]``
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise
from pydantic import SecretStr

__all__ = ["Delivery", "channel_label", "deliver", "redact", "url_secrets"]

log = logging.getLogger("runway_costs.analytics.notify")

_TYPES = {
    "critical": apprise.NotifyType.FAILURE,
    "warning": apprise.NotifyType.WARNING,
    "info": apprise.NotifyType.INFO,
    "resolved": apprise.NotifyType.SUCCESS,
}
MAX_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class Delivery:
    ok: bool
    attempts: int
    error: str | None  # redacted; never contains the URL or its parts


def channel_label(url: SecretStr, index: int) -> str:
    """A name for a channel that is safe to log and store: scheme and 1-based position."""
    scheme = url.get_secret_value().split("://", 1)[0].lower()
    scheme = scheme if scheme.isalnum() and len(scheme) <= 16 else "url"
    return f"{scheme}#{index}"


def url_secrets(url: str) -> list[str]:
    """Every part of a URL that could be a secret (longest first, for redaction)."""
    parts = {url}
    try:
        split = urlsplit(url)
        for piece in (split.netloc, split.username, split.password, split.hostname, split.path):
            if piece:
                parts.add(piece)
                parts.add(unquote(piece))
        for segment in split.path.split("/"):
            if len(segment) >= 4:
                parts.add(segment)
        for _, value in parse_qsl(split.query):
            if len(value) >= 4:
                parts.add(value)
        if split.query:
            parts.add(split.query)
    except ValueError:
        pass
    return sorted((p for p in parts if p and len(p) >= 3), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            try:
                self.messages.append(record.getMessage())
            except Exception:  # a malformed record must not break delivery
                self.messages.append(record.msg if isinstance(record.msg, str) else "?")


@contextmanager
def _captured_apprise_logs() -> Iterator[_Capture]:
    """Keep Apprise's records (which may quote the URL) out of every other handler."""
    logger = logging.getLogger("apprise")
    handler = _Capture()
    saved = (logger.propagate, logger.handlers[:], logger.level)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        logger.propagate, logger.handlers, _ = saved
        logger.setLevel(saved[2])


def deliver(
    url: SecretStr,
    title: str,
    body: str,
    severity: str,
    attempts: int = 3,
    backoff: float = 0.5,
) -> Delivery:
    """Send one notice to one channel; retry; never raise; never reveal the URL."""
    raw = url.get_secret_value()
    secrets = url_secrets(raw)
    error: str | None = None
    for attempt in range(1, attempts + 1):
        with _captured_apprise_logs() as captured:
            try:
                app = apprise.Apprise()
                if not app.add(raw):
                    return Delivery(False, attempt, "Apprise does not accept this URL")
                ok = bool(
                    app.notify(
                        title=title, body=body, notify_type=_TYPES.get(severity, _TYPES["info"])
                    )
                )
            except Exception as exc:  # any plugin failure is a failed attempt
                ok = False
                captured.messages.append(f"{type(exc).__name__}: {exc}")
        if ok:
            return Delivery(True, attempt, None)
        detail = "; ".join(captured.messages[-2:]) or "the channel did not accept the notice"
        error = redact(detail, secrets)[:MAX_ERROR_CHARS]
        if attempt < attempts:
            time.sleep(backoff * 2 ** (attempt - 1))
    return Delivery(False, attempts, error)


@dataclass(frozen=True)
class ChannelCheck:
    """The outcome of a test notice on one channel."""

    channel: str  # label, never the URL
    ok: bool
    error: str | None  # redacted like every delivery error


def send_test_notification(urls: Sequence[SecretStr], attempts: int) -> list[ChannelCheck]:
    """Send one test notice to every channel, so a user can check a channel works before an
    alert depends on it."""
    out = []
    for i, url in enumerate(urls):
        delivery = deliver(
            url,
            "[TEST] runway-costs",
            "A test notification from the runway-costs dashboard: this channel works.",
            "info",
            attempts=attempts,
        )
        out.append(ChannelCheck(channel_label(url, i + 1), delivery.ok, delivery.error))
    return out
