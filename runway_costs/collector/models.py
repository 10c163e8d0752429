"""What the collector learns from one organization, parsed from the wire format.

These are the only types that cross from ``client`` (HTTP) to ``store`` (DuckDB).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class ModelState:
    """One model's tier limits and rolling-24h generations at snapshot time.

    Limits are None for a model that shows usage but is absent from ``tier.models``.
    """

    model: str
    max_concurrent_generations: int | None
    max_daily_generations: int | None
    daily_generations: int


@dataclass(frozen=True, slots=True)
class OrgSnapshot:
    """``GET /v1/organization`` at ``taken_at`` (naive UTC)."""

    taken_at: datetime
    credit_balance: int
    max_monthly_credit_spend: int
    models: tuple[ModelState, ...]


@dataclass(frozen=True, slots=True)
class UsageRow:
    date: date
    model: str
    credits: int


@dataclass(frozen=True, slots=True)
class KeyUsageRow:
    """Net credits of one API key on one day (``resultsByApiKey``); ``model`` is "" when
    the API does not split the key's day by model."""

    date: date
    api_key_id: str
    credits: int
    model: str = ""


@dataclass(frozen=True, slots=True)
class UsageWindow:
    """``POST /v1/organization/usage`` for [start, before): every (date, model) the API
    reported in that window. Days in the window that are absent had no usage.

    ``key_rows``: the per-API-key figures when the response carried ``resultsByApiKey``
    (absent or null: None, and what is stored per key is left as it is)."""

    start: date
    before: date
    rows: tuple[UsageRow, ...]
    key_rows: tuple[KeyUsageRow, ...] | None = None


@dataclass(slots=True)
class CallStats:
    """HTTP accounting for one organization's cycle, recorded in collection_runs."""

    http_calls: int = 0
    retries: int = 0
    notes: list[str] = field(default_factory=list)
