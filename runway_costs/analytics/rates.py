"""The rate table: published prices loaded from a commented TOML file into a typed object.

Prices change, so they are data (``runway_costs/data/rates.toml``, format documented at its
top), never code. A user's own file (``--rates`` / ``rates = "..."`` in the config) replaces
the default.

Public API:
- ``load_rates(path: Path | None = None) -> RateTable``   (None: the shipped rates.toml)
- ``resolve_rates_path(cli: Path | None, configured: Path | None) -> Path``
- ``RateTable``: ``credit_usd``, ``resolutions``, ``ratios``, ``models`` (name -> ModelInfo),
  ``prices`` (a polars frame, one row per price entry, used by ``analytics.pricing``).
- ``RateError``: the file is unusable; the message names the file and the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeGuard

import polars as pl

from runway_costs.core.files import package_data
from runway_costs.core.money import MAX_CREDITS
from runway_costs.core.tomlfile import read_toml

DEFAULT_RATES = package_data("rates.toml")
PER_UNITS = ("second", "character", "job")
AUDIO_MODES = ("never", "optional", "always")
ROUNDINGS = ("ceil", "floor")

PRICE_SCHEMA = {
    "model": pl.String,
    "effective_from": pl.Date,
    "audio": pl.Boolean,
    "resolution": pl.String,
    "credits_min": pl.Int64,
    "credits_max": pl.Int64,
    "block": pl.Float64,
    "rounding": pl.String,
}


class RateError(Exception):
    """The rate file is unusable; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a plan row for this model may say, and how the model is metered."""

    name: str
    endpoints: tuple[str, ...]
    per: str | None  # None: no price published (the model is unpriced)
    durations: tuple[float, ...] | None  # None: any positive length
    audio: str
    typical_seconds: float | None
    priced: bool


@dataclass(frozen=True, eq=False)
class RateTable:
    """Every price with its effective date, plus what validation and feasibility need.

    ``credit_usd`` is the USD price of a credit *as published with these prices*: plans
    priced from this table are converted at it. It is the rate file's own statement, not
    a setting: spend, balances and budgets are converted at ``Settings.credit_usd``, and
    both default to ``core.money.CREDIT_USD`` (the shipped rates.toml must equal it).
    """

    source: Path
    credit_usd: float
    resolutions: tuple[str, ...]
    ratios: MappingProxyType[str, str]
    models: MappingProxyType[str, ModelInfo]
    prices: pl.DataFrame

    def model(self, name: str) -> ModelInfo | None:
        return self.models.get(name)


def resolve_rates_path(cli: Path | None, configured: Path | None) -> Path:
    """``--rates`` wins over the config's ``rates``, which wins over the repo default."""
    return cli or configured or DEFAULT_RATES


def load_rates(path: Path | None = None) -> RateTable:
    """Read and check a rate file; raise RateError naming the file and key on any problem."""
    path = Path(path) if path is not None else DEFAULT_RATES
    data = read_toml(path, "rate file", RateError)
    return _Parser(path).table(data)


class _Parser:
    """Checks one rate file's structure, keeping the file name for every message."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, message: str) -> RateError:
        return RateError(f"{self.path}: {key}: {message}")

    def table(self, data: dict[str, Any]) -> RateTable:
        known = {"credit_usd", "resolutions", "ratios", "models"}
        for key in data:
            if key not in known:
                raise self.error(key, f"unknown key (expected one of {', '.join(sorted(known))})")
        credit_usd = data.get("credit_usd")
        if isinstance(credit_usd, bool) or not isinstance(credit_usd, int | float):
            raise self.error("credit_usd", "must be a positive number (USD per credit)")
        if not (math.isfinite(credit_usd) and 0 < credit_usd <= 1000):
            raise self.error("credit_usd", f"must be positive, at most 1000, got {credit_usd}")
        resolutions = data.get("resolutions", ["720p", "1080p"])
        if not isinstance(resolutions, list) or not all(isinstance(r, str) for r in resolutions):
            raise self.error("resolutions", "must be a list of strings")
        ratios = self.ratios(data.get("ratios", {}), tuple(resolutions))
        models_raw = data.get("models")
        if not isinstance(models_raw, dict) or not models_raw:
            raise self.error("models", "must be a table with at least one [models.NAME]")
        models: dict[str, ModelInfo] = {}
        price_rows: list[dict[str, Any]] = []
        for name, raw in models_raw.items():
            info, rows = self.model(name, raw, tuple(resolutions))
            models[name] = info
            price_rows.extend(rows)
        prices = pl.DataFrame(price_rows, schema=PRICE_SCHEMA)
        return RateTable(
            source=self.path,
            credit_usd=float(credit_usd),
            resolutions=tuple(resolutions),
            ratios=MappingProxyType(ratios),
            models=MappingProxyType(models),
            prices=prices,
        )

    def ratios(self, raw: object, resolutions: tuple[str, ...]) -> dict[str, str]:
        if not isinstance(raw, dict):
            raise self.error("ratios", 'must be a table of "W:H" = "resolution"')
        for ratio, res in raw.items():
            width, _, height = ratio.partition(":")
            if not (width.isdigit() and height.isdigit()):
                raise self.error(f"ratios.{ratio!r}", "a ratio must look like 1280:720")
            if res not in resolutions:
                raise self.error(f"ratios.{ratio!r}", f"unknown resolution {res!r}")
        return dict(raw)

    def model(
        self, name: str, raw: object, resolutions: tuple[str, ...]
    ) -> tuple[ModelInfo, list[dict[str, Any]]]:
        key = f"models.{name!r}"
        if not isinstance(raw, dict):
            raise self.error(key, "must be a table")
        allowed = {"endpoints", "per", "durations", "audio", "typical_seconds", "prices"}
        for k in raw:
            if k not in allowed:
                raise self.error(
                    f"{key}.{k}", f"unknown key (expected {', '.join(sorted(allowed))})"
                )
        endpoints = raw.get("endpoints")
        if (
            not isinstance(endpoints, list)
            or not endpoints
            or not all(isinstance(e, str) and e for e in endpoints)
        ):
            raise self.error(f"{key}.endpoints", "must be a non-empty list of endpoint names")
        per = raw.get("per")
        if per is not None and per not in PER_UNITS:
            raise self.error(f"{key}.per", f"must be one of {', '.join(PER_UNITS)}, got {per!r}")
        durations = raw.get("durations")
        if durations is not None and (
            not isinstance(durations, list)
            or not durations
            or not all(_positive_number(d) for d in durations)
        ):
            raise self.error(f"{key}.durations", "must be a non-empty list of positive seconds")
        audio = raw.get("audio", "never")
        if audio not in AUDIO_MODES:
            raise self.error(f"{key}.audio", f"must be one of {', '.join(AUDIO_MODES)}")
        typical = raw.get("typical_seconds")
        if typical is not None and not _positive_number(typical):
            raise self.error(f"{key}.typical_seconds", "must be a positive number")
        prices_raw = raw.get("prices", [])
        if not isinstance(prices_raw, list):
            raise self.error(f"{key}.prices", "must be an array of tables ([[...prices]])")
        if prices_raw and per is None:
            raise self.error(f"{key}.per", "is required when the model has prices")
        rows = [
            self.price(name, f"{key}.prices[{i}]", p, resolutions) for i, p in enumerate(prices_raw)
        ]
        metering: dict[date, tuple[float, str]] = {}
        for i, row in enumerate(rows):  # variants differ in credits only: pricing relies on it
            first = metering.setdefault(row["effective_from"], (row["block"], row["rounding"]))
            if first != (row["block"], row["rounding"]):
                raise self.error(
                    f"{key}.prices[{i}]",
                    f"entries from {row['effective_from']} must share block and rounding",
                )
        info = ModelInfo(
            name=name,
            endpoints=tuple(endpoints),
            per=per,
            durations=tuple(float(d) for d in durations) if durations else None,
            audio=audio,
            typical_seconds=float(typical) if typical is not None else None,
            priced=bool(rows),
        )
        return info, rows

    def price(
        self, model: str, key: str, raw: object, resolutions: tuple[str, ...]
    ) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.error(key, "must be a table")
        allowed = {"effective_from", "credits", "block", "rounding", "audio", "resolution"}
        for k in raw:
            if k not in allowed:
                raise self.error(
                    f"{key}.{k}", f"unknown key (expected {', '.join(sorted(allowed))})"
                )
        eff = raw.get("effective_from")
        if isinstance(eff, datetime):
            eff = eff.date()
        if isinstance(eff, str):
            try:
                eff = date.fromisoformat(eff)
            except ValueError:
                raise self.error(f"{key}.effective_from", f"not an ISO date: {eff!r}") from None
        if not isinstance(eff, date):
            raise self.error(f"{key}.effective_from", "is required (an ISO date, 2025-01-01)")
        credits = raw.get("credits")
        if _whole(credits) and 0 <= credits <= MAX_CREDITS:
            lo = hi = int(credits)
        elif (
            isinstance(credits, list)
            and len(credits) == 2
            and all(_whole(c) and 0 <= c <= MAX_CREDITS for c in credits)
            and credits[0] <= credits[1]
        ):
            lo, hi = int(credits[0]), int(credits[1])
        else:
            raise self.error(
                f"{key}.credits",
                "must be a whole number of credits or [min, max] with min <= max "
                f"(at most {MAX_CREDITS:,})",
            )
        block = raw.get("block", 1)
        if not _positive_number(block):
            raise self.error(f"{key}.block", f"must be a positive number, got {block!r}")
        rounding = raw.get("rounding", "ceil")
        if rounding not in ROUNDINGS:
            raise self.error(f"{key}.rounding", f"must be one of {', '.join(ROUNDINGS)}")
        audio = raw.get("audio")
        if audio is not None and not isinstance(audio, bool):
            raise self.error(f"{key}.audio", "must be true or false")
        resolution = raw.get("resolution")
        if resolution is not None and resolution not in resolutions:
            raise self.error(f"{key}.resolution", f"must be one of {', '.join(resolutions)}")
        return {
            "model": model,
            "effective_from": eff,
            "audio": audio,
            "resolution": resolution,
            "credits_min": lo,
            "credits_max": hi,
            "block": float(block),
            "rounding": rounding,
        }


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_number(value: object) -> bool:
    """A finite number above 0 (TOML's inf and nan are floats too)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
