"""When to retry an API call and how long to wait: pure functions, so tests can pin them.

Policy (Runway's guidance plus AWS's "full jitter"): 429 and 502/503/504, timeouts and
connection failures are transient; everything else is an answer. The wait before retry
number ``n`` (0-based) is ``uniform(0, min(cap, base * 2**n))`` unless the server sent
``Retry-After``, which wins (capped at ``cap`` so a hostile header cannot park a cycle).
"""

from __future__ import annotations

import email.utils
import math
import random
from datetime import UTC, datetime

import httpx

RETRYABLE_STATUSES: frozenset[int] = frozenset({429, 502, 503, 504})

# Transport errors that come from our own request, not the network: retrying repeats them.
_NOT_TRANSIENT = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES


def is_retryable_exception(exc: BaseException) -> bool:
    """Timeouts and connection/protocol failures (incl. a dropped connection) are transient."""
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, _NOT_TRANSIENT)


def backoff_delay(retry_index: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff for retry number ``retry_index`` (0 = first retry)."""
    ceiling = min(cap, base * math.pow(2, min(retry_index, 64)))
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    ``now`` is naive UTC. A date in the past means "now" (0). Unparseable values are
    ignored (None) so the normal backoff applies.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return max(0.0, seconds)
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return max(0.0, (when - now).total_seconds())


def retry_wait(
    retry_index: int,
    retry_after: float | None,
    base: float,
    cap: float,
    rng: random.Random,
) -> float:
    """The wait before the next attempt: the server's Retry-After if given, else backoff."""
    if retry_after is not None:
        return min(cap, retry_after)
    return backoff_delay(retry_index, base, cap, rng)


def describe_exception(exc: BaseException) -> str:
    """A short cause for messages and logs: the exception type and its text, if any."""
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
