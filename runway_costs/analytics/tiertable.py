"""The usage-tier table (``runway_costs/data/tiers.toml``) as typed data.

Tier limits are published as defaults with ranges ("differs by model"); an organization's
real limits come from the API. Planning against a tier (``price --tier N``) and tier
progress (issue 4) both read this table, so the API below is kept stable:

- ``load_tiers(path: Path | None = None) -> TierTable``     (None: the shipped tiers.toml)
- ``TierTable.tiers -> tuple[Tier, ...]``                   sorted by number
- ``TierTable.tier(n: int) -> Tier``                        KeyError-free: raises TierError
- ``TierTable.limits_for(tier: int, model: str) -> TierLimits``
- ``Tier``: ``number``, ``concurrency_min/max``, ``daily_generations_min/max``,
  ``purchase_cap_credits``, ``unlock_days``, ``unlock_spend_usd``, ``models`` (overrides)
- ``TierLimits``: ``concurrency_min/max``, ``daily_generations_min/max`` (equal when a
  per-model override pins them)
- ``TierError``: the file is unusable or the tier does not exist (message names file/key).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from runway_costs.core.files import package_data
from runway_costs.core.money import MAX_CREDITS
from runway_costs.core.tomlfile import read_toml

DEFAULT_TIERS = package_data("tiers.toml")
MAX_LIMIT = 10**9  # generations, concurrency, days: far above any tier, within Int64 sums


class TierError(Exception):
    """The tier file is unusable, or a tier number does not exist."""


@dataclass(frozen=True, slots=True)
class TierLimits:
    """Per-model limits at a tier: a range unless the table pins the model."""

    concurrency_min: int
    concurrency_max: int
    daily_generations_min: int
    daily_generations_max: int


@dataclass(frozen=True)
class Tier:
    number: int
    concurrency_min: int
    concurrency_max: int
    daily_generations_min: int
    daily_generations_max: int
    purchase_cap_credits: int
    unlock_days: int
    unlock_spend_usd: float
    models: MappingProxyType[str, TierLimits] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class TierTable:
    source: Path
    tiers: tuple[Tier, ...]

    def tier(self, n: int) -> Tier:
        """The tier numbered ``n``; TierError naming the known numbers otherwise."""
        for t in self.tiers:
            if t.number == n:
                return t
        known = ", ".join(str(t.number) for t in self.tiers)
        raise TierError(f"tier {n} does not exist in {self.source} (known: {known})")

    def limits_for(self, tier: int, model: str) -> TierLimits:
        """A model's limits at a tier: its override if the table has one, else the range."""
        t = self.tier(tier)
        if model in t.models:
            return t.models[model]
        return TierLimits(
            t.concurrency_min, t.concurrency_max, t.daily_generations_min, t.daily_generations_max
        )


def load_tiers(path: Path | None = None) -> TierTable:
    """Read and check a tier file; raise TierError naming the file and key on any problem."""
    path = Path(path) if path is not None else DEFAULT_TIERS
    data = read_toml(path, "tier file", TierError)
    raw = data.get("tiers")
    if not isinstance(raw, list) or not raw:
        raise TierError(f"{path}: tiers: must be a non-empty array of tables ([[tiers]])")
    tiers = tuple(sorted((_tier(path, i, t) for i, t in enumerate(raw)), key=lambda t: t.number))
    numbers = [t.number for t in tiers]
    if len(set(numbers)) != len(numbers):
        raise TierError(f"{path}: tiers: tier numbers must be unique, got {numbers}")
    return TierTable(source=path, tiers=tiers)


def _tier(path: Path, index: int, raw: Any) -> Tier:
    key = f"tiers[{index}]"

    def fail(k: str, message: str) -> TierError:
        return TierError(f"{path}: {key}.{k}: {message}")

    if not isinstance(raw, dict):
        raise TierError(f"{path}: {key}: must be a table")
    number = _int(raw, "tier", fail, minimum=1)
    conc = _range(raw, "concurrency", fail)
    daily = _range(raw, "daily_generations", fail)
    cap = _int(raw, "purchase_cap_credits", fail, minimum=0, maximum=MAX_CREDITS)
    days = _int(raw, "unlock_days", fail, minimum=0)
    spend = raw.get("unlock_spend_usd")
    if (
        isinstance(spend, bool)
        or not isinstance(spend, int | float)
        or not math.isfinite(spend)
        or not 0 <= spend <= MAX_CREDITS
    ):
        raise fail("unlock_spend_usd", f"must be a number from 0 to {MAX_CREDITS:,} (USD)")
    models_raw = raw.get("models", {})
    if not isinstance(models_raw, dict):
        raise fail("models", 'must be a table of [tiers.models."NAME"]')
    models = {}
    for name, m in models_raw.items():

        def mfail(k: str, message: str, _n: str = name) -> TierError:
            return fail(f"models.{_n!r}.{k}", message)

        if not isinstance(m, dict):
            raise mfail("", "must be a table")
        c = _int(m, "concurrency", mfail, minimum=1)
        d = _int(m, "daily_generations", mfail, minimum=1)
        models[name] = TierLimits(c, c, d, d)
    return Tier(
        number=number,
        concurrency_min=conc[0],
        concurrency_max=conc[1],
        daily_generations_min=daily[0],
        daily_generations_max=daily[1],
        purchase_cap_credits=cap,
        unlock_days=days,
        unlock_spend_usd=float(spend),
        models=MappingProxyType(models),
    )


def _int(raw: dict, key: str, fail: Any, *, minimum: int, maximum: int = MAX_LIMIT) -> int:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise fail(key, f"must be a whole number from {minimum} to {maximum:,}, got {value!r}")
    return value


def _range(raw: dict, key: str, fail: Any) -> tuple[int, int]:
    value = raw.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_LIMIT:
        return value, value
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_LIMIT for v in value
        )
        and value[0] <= value[1]
    ):
        return value[0], value[1]
    raise fail(
        key,
        f"must be a positive whole number (at most {MAX_LIMIT:,}) or [min, max], got {value!r}",
    )
