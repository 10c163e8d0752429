"""Fault profiles: deterministic misbehaviour injected in front of the API routes.

Spec (``--faults``): ``none`` or a comma list of faults, each with optional parameters:

    rate_limit:n=3,retry_after=1     429 with ``Retry-After: <retry_after>`` (seconds)
    5xx_burst:n=3,codes=502+503+504  502/503/504, cycling through ``codes``
    slow:n=2,seconds=2               answer correctly but only after ``seconds``
    drop:n=2,at=body                 close the connection mid-body (at=start: before any
                                     byte of the response); the client sees a transport error
    chaos:p=0.2,kinds=rate_limit+5xx_burst+drop,seed=7
                                     each request faulted with probability ``p``

Faults count requests per API key. The listed faults take turns in order: with
``rate_limit:n=2,5xx_burst:n=3`` a key's requests 1-2 get 429, 3-5 get 5xx, then every
request succeeds (or, if ``chaos`` is listed, is faulted by a seeded coin per request
index, so the same run is faulted the same way every time).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import cast

KINDS = ("rate_limit", "5xx_burst", "slow", "drop")
ALIASES = {"429": "rate_limit", "5xx": "5xx_burst", "timeout": "slow", "disconnect": "drop"}
DEFAULTS: dict[str, dict[str, object]] = {
    "rate_limit": {"n": 3, "retry_after": 1},
    "5xx_burst": {"n": 3, "codes": (502, 503, 504)},
    "slow": {"n": 2, "seconds": 2.0},
    "drop": {"n": 2, "at": "body"},
    "chaos": {
        "p": 0.2,
        "kinds": ("rate_limit", "5xx_burst", "drop"),
        "seed": 0,
        "retry_after": 1,
        "seconds": 2.0,
        "codes": (502, 503, 504),
    },
}


class FaultSpecError(ValueError):
    """The ``--faults`` text is not understood; the message names the bad part."""


@dataclass(frozen=True)
class Fault:
    kind: str
    params: dict[str, object]

    @property
    def n(self) -> int:
        return cast(int, self.params.get("n", 0))


@dataclass(frozen=True)
class Action:
    """What to do with one request instead of (or before) answering it."""

    kind: str
    status: int | None = None
    retry_after: int | None = None
    seconds: float | None = None
    at: str | None = None


@dataclass(frozen=True)
class FaultPlan:
    spec: str
    faults: tuple[Fault, ...] = ()
    chaos: Fault | None = None

    def action(self, key: str, index: int) -> Action | None:
        """The fault for the ``index``-th (0-based) request of ``key``, if any."""
        start = 0
        for fault in self.faults:
            if index < start + fault.n:
                return _make_action(fault.kind, fault.params, index - start)
            start += fault.n
        if self.chaos is None:
            return None
        p = self.chaos.params
        h = hashlib.blake2b(f"{p['seed']}|{key}|{index}".encode(), digest_size=16).digest()
        if int.from_bytes(h[:8], "big") / 2**64 >= cast(float, p["p"]):
            return None
        kinds = cast(tuple[str, ...], p["kinds"])
        kind = kinds[h[8] % len(kinds)]
        return _make_action(kind, p, h[9])


def _make_action(kind: str, params: dict[str, object], turn: int) -> Action:
    if kind == "rate_limit":
        return Action(kind, status=429, retry_after=cast(int, params.get("retry_after", 1)))
    if kind == "5xx_burst":
        codes = cast(tuple[int, ...], params.get("codes", DEFAULTS["5xx_burst"]["codes"]))
        return Action(kind, status=codes[turn % len(codes)])
    if kind == "slow":
        return Action(kind, seconds=cast(float, params.get("seconds", 2.0)))
    return Action("drop", at=str(params.get("at", "body")))


def _convert(kind: str, name: str, raw: str) -> object:
    where = f"fault {kind!r} parameter {name!r}"
    try:
        if name in ("n", "retry_after", "seed"):
            count = int(raw)
            if count < 0:
                raise ValueError
            return count
        if name in ("seconds", "p"):
            number = float(raw)
            if number < 0 or (name == "p" and number > 1):
                raise ValueError
            return number
        if name == "codes":
            codes = tuple(int(c) for c in raw.split("+"))
            if not codes or any(c < 500 or c > 599 for c in codes):
                raise ValueError
            return codes
        if name == "at":
            if raw not in ("body", "start"):
                raise ValueError
            return raw
        if name == "kinds":
            kinds = tuple(ALIASES.get(k, k) for k in raw.split("+"))
            if not kinds or any(k not in KINDS for k in kinds):
                raise ValueError
            return kinds
    except ValueError:
        raise FaultSpecError(f"{where}: bad value {raw!r}") from None
    raise FaultSpecError(f"{where}: unknown parameter")


def parse_faults(spec: str | None, *, seed: int = 0) -> FaultPlan:
    """Parse a fault spec; ``seed`` is chaos's default seed (the world's seed)."""
    text = (spec or "none").strip()
    if text in ("", "none"):
        return FaultPlan("none")
    entries: list[tuple[str, dict[str, object]]] = []
    for raw_token in text.split(","):
        token = raw_token.strip()
        if not token:
            continue
        head, colon, rest = token.partition(":")
        if "=" in head and not colon:  # a parameter of the previous fault
            if not entries:
                raise FaultSpecError(f"parameter {token!r} before any fault name")
            name, _, value = head.partition("=")
            kind, params = entries[-1]
            params[name.strip()] = _convert(kind, name.strip(), value.strip())
            continue
        kind = ALIASES.get(head.strip(), head.strip())
        if kind not in DEFAULTS:
            known = ", ".join([*KINDS, "chaos", "none"])
            raise FaultSpecError(f"unknown fault {head.strip()!r} (known: {known})")
        params = dict(DEFAULTS[kind])
        if kind == "chaos":
            params["seed"] = seed
        entries.append((kind, params))
        if colon:
            name, eq, value = rest.partition("=")
            if not eq:
                raise FaultSpecError(f"expected name=value after {head!r}:, got {rest!r}")
            params[name.strip()] = _convert(kind, name.strip(), value.strip())
    faults = tuple(Fault(k, p) for k, p in entries if k != "chaos")
    chaos = [Fault(k, p) for k, p in entries if k == "chaos"]
    if len(chaos) > 1:
        raise FaultSpecError("chaos given more than once")
    return FaultPlan(text, faults, chaos[0] if chaos else None)


@dataclass
class FaultState:
    """A plan plus per-key request counters (thread-safe)."""

    plan: FaultPlan
    _counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next_action(self, key: str) -> Action | None:
        """Count one request for ``key`` and return its fault, if any."""
        with self._lock:
            index = self._counts.get(key, 0)
            self._counts[key] = index + 1
        return self.plan.action(key, index)
