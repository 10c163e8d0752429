"""Slowing down password guessing, for every password gate of ours (the dashboard's
sign-in, the metrics endpoint's basic auth). No Streamlit here: the metrics server uses it.

After ``FREE_ATTEMPTS`` wrong passwords from one client, each further attempt must wait
``BASE_DELAY * 2**(n - FREE_ATTEMPTS)`` seconds after the last failure (at most
``MAX_DELAY``); an attempt made sooner is refused without checking the password.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

FREE_ATTEMPTS = 3
BASE_DELAY = 1.0
MAX_DELAY = 60.0
_MAX_TRACKED = 10_000  # client addresses remembered at most


def delay_after(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive wrong passwords (0 at first)."""
    if failures < FREE_ATTEMPTS:
        return 0.0
    return min(MAX_DELAY, BASE_DELAY * 2 ** (failures - FREE_ATTEMPTS))


@dataclass
class Failures:
    """Consecutive wrong passwords and when the last one was entered (monotonic)."""

    count: int = 0
    last: float = 0.0

    def wait(self, now: float) -> float:
        """Seconds left before another attempt is checked."""
        return max(0.0, self.last + delay_after(self.count) - now)

    def failed(self, now: float) -> None:
        self.count += 1
        self.last = now


@dataclass
class Throttle:
    """Failures per key (a client address), shared by the sessions of one server."""

    clock: Callable[[], float] = time.monotonic
    by_key: dict[str, Failures] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, key: str | None) -> float:
        if key is None:
            return 0.0
        with self.lock:
            entry = self.by_key.get(key)
            return 0.0 if entry is None else entry.wait(self.clock())

    def failed(self, key: str | None) -> None:
        if key is None:
            return
        with self.lock:
            if key not in self.by_key and len(self.by_key) >= _MAX_TRACKED:
                self.by_key.pop(next(iter(self.by_key)))
            self.by_key.setdefault(key, Failures()).failed(self.clock())

    def succeeded(self, key: str | None) -> None:
        if key is None:
            return
        with self.lock:
            self.by_key.pop(key, None)
