"""Send alert notices through Apprise, without ever letting a channel URL out.

Channel URLs (``[alerts] urls``: Slack, ``mailto://``, ``json://`` webhooks, anything
Apprise reaches) carry tokens and passwords, so they are held as ``SecretStr`` and only
unwrapped here. A channel is named everywhere else by its scheme and position
(``json#1``). Apprise logs through the ``apprise`` logger, sometimes with URL parts: while
we send, its records are captured instead of propagated, every secret part of the URL is
redacted from them, and what remains becomes the recorded error text.

A delivery is tried ``attempts`` times with a short exponential backoff; it never raises
(the scheduler calls this), it returns what happened. The whole delivery (every attempt and
backoff) has a deadline, ``DELIVERY_DEADLINE_SECONDS`` unless given: each attempt runs in a
daemon thread that is waited for only until then, so a channel that accepts the request and
then trickles its answer, or never answers, costs at most the deadline. A thread left behind
that way keeps its channel marked as hanging: later deliveries to that channel fail at once
(``Delivery.hanging``) instead of leaving one more thread behind each time.

Public API:

- ``channel_label(url: SecretStr, index: int) -> str``          e.g. ``"mailto#2"``
- ``deliver(url, title, body, severity, attempts=3, backoff=0.5, deadline=...) -> Delivery``
- ``channel_hanging(url) -> bool``
- ``redact(text, secrets) -> str``; ``url_secrets(url) -> list[str]``
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import SecretStr

from runway_costs.core.config import DELIVERY_DEADLINE_SECONDS

__all__ = [
    "DELIVERY_DEADLINE_SECONDS",
    "Delivery",
    "channel_hanging",
    "channel_label",
    "deliver",
    "redact",
    "url_secrets",
]

log = logging.getLogger("runway_costs.analytics.notify")

# Apprise's notify types by severity (its NotifyType values); Apprise itself is imported
# only to deliver (a quarter of a second that `alerts check --dry-run` never needs)
_TYPES = {"critical": "failure", "warning": "warning", "info": "info", "resolved": "success"}
MAX_ERROR_CHARS = 300
_POLL_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class Delivery:
    ok: bool
    attempts: int
    error: str | None  # redacted; never contains the URL or its parts
    hanging: bool = False  # the channel did not answer within the deadline (or still hangs)


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


class _Capture:
    """The apprise records of one attempt (WARNING and above), as text."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            try:
                self.messages.append(record.getMessage())
            except Exception:  # a malformed record must not break delivery
                self.messages.append(record.msg if isinstance(record.msg, str) else "?")


class _Router(logging.Handler):
    """The only handler of the ``apprise`` logger (which propagates nowhere): a record
    goes to the capture of the attempt thread that logged it, or is dropped. Installed for
    good, not per send, because an attempt given up at its deadline may still log later."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.captures: dict[int, _Capture] = {}

    def emit(self, record: logging.LogRecord) -> None:
        capture = self.captures.get(record.thread or 0)
        if capture is not None:
            capture.add(record)


_router = _Router()
_router_lock = threading.Lock()
_hanging: dict[str, threading.Thread] = {}  # channel digest -> attempt given up on


def _install_router() -> None:
    with _router_lock:
        logger = logging.getLogger("apprise")
        if logger.handlers != [_router]:
            logger.handlers = [_router]
        logger.propagate = False
        logger.setLevel(logging.WARNING)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def channel_hanging(url: SecretStr) -> bool:
    """Whether an earlier delivery to this channel was given up at its deadline and its
    attempt is still running."""
    thread = _hanging.get(_digest(url.get_secret_value()))
    return thread is not None and thread.is_alive()


def _attempt(
    raw: str, title: str, body: str, severity: str, wait: float
) -> tuple[bool | None, list[str], threading.Thread]:
    """One send in a daemon thread, waited for at most ``wait`` seconds.

    (ok, apprise messages, thread); ok is None when the thread is still running."""
    capture = _Capture()
    outcome: list[bool] = []

    def send() -> None:
        _router.captures[threading.get_ident()] = capture
        try:
            # service_timeout=0: Apprise sends in this (daemon) thread instead of its own
            # worker pool, whose threads the interpreter waits for at exit; the deadline
            # is ours (``deliver``).
            import apprise  # imported by deliver already

            app = apprise.Apprise(asset=apprise.AppriseAsset(service_timeout=0))
            if not app.add(raw):
                capture.messages.append("Apprise does not accept this URL")
                outcome.append(False)
                return
            notify_type = _TYPES.get(severity, _TYPES["info"])
            outcome.append(bool(app.notify(title=title, body=body, notify_type=notify_type)))
        except Exception as exc:  # any plugin failure is a failed attempt
            capture.messages.append(f"{type(exc).__name__}: {exc}")
            outcome.append(False)
        finally:
            _router.captures.pop(threading.get_ident(), None)

    thread = threading.Thread(target=send, name="runway-costs-deliver", daemon=True)
    thread.start()
    end = time.monotonic() + wait
    while thread.is_alive() and time.monotonic() < end:  # polled: no timed wait to trust
        time.sleep(_POLL_SECONDS)
    if thread.is_alive():
        return None, capture.messages, thread
    return (outcome[0] if outcome else False), capture.messages, thread


def deliver(
    url: SecretStr,
    title: str,
    body: str,
    severity: str,
    attempts: int = 3,
    backoff: float = 0.5,
    deadline: float = DELIVERY_DEADLINE_SECONDS,
) -> Delivery:
    """Send one notice to one channel; retry; stop at ``deadline`` seconds whatever the
    channel does; never raise; never reveal the URL."""
    raw = url.get_secret_value()
    secrets = url_secrets(raw)
    if channel_hanging(url):
        return Delivery(
            False,
            0,
            "not sent: an earlier notice to this channel is still waiting for its answer",
            hanging=True,
        )
    import apprise  # only when delivering (see _TYPES)

    if not apprise.Apprise().add(raw):
        return Delivery(False, 1, "Apprise does not accept this URL")
    _install_router()
    end = time.monotonic() + deadline
    error: str | None = None
    for attempt in range(1, attempts + 1):
        ok, messages, thread = _attempt(raw, title, body, severity, end - time.monotonic())
        if ok is None:
            _hanging[_digest(raw)] = thread
            return Delivery(
                False,
                attempt,
                f"no answer within the {deadline:g} s delivery deadline; gave up",
                hanging=True,
            )
        if ok:
            return Delivery(True, attempt, None)
        detail = "; ".join(messages[-2:]) or "the channel did not accept the notice"
        error = redact(detail, secrets)[:MAX_ERROR_CHARS]
        if attempt < attempts:
            pause = backoff * 2 ** (attempt - 1)
            if time.monotonic() + pause >= end:
                return Delivery(False, attempt, error)
            time.sleep(pause)
    return Delivery(False, attempts, error)


@dataclass(frozen=True)
class ChannelCheck:
    """The outcome of a test notice on one channel."""

    channel: str  # label, never the URL
    ok: bool
    error: str | None  # redacted like every delivery error


def send_test_notification(
    urls: Sequence[SecretStr], attempts: int, deadline: float = DELIVERY_DEADLINE_SECONDS
) -> list[ChannelCheck]:
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
            deadline=deadline,
        )
        out.append(ChannelCheck(channel_label(url, i + 1), delivery.ok, delivery.error))
    return out
