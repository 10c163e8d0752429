"""The sandbox's ground truth: organizations, their daily usage, purchases and balances.

Every day of a generated organization is derived from hash(seed, org, reference day) alone,
and the balance is simulated forward from a fixed origin (150 days before the anchor, the
date the world was created). So the figure for a given date never depends on the clock:
moving "now" forward only reveals more days and more of today.

The same story on any date: a generated world is the reference world (anchored on
``REFERENCE_ANCHOR``) moved by whole weeks to the anchor's week (``week_aligned``). Its days
come in the same order with the same amounts, and weekdays stay weekdays, so indie is near
its cap and an alert is open whatever day the demo starts on; only the calendar months the
days fall in differ. A world anchored on the reference day is the reference world itself.

Balance bookkeeping, per UTC day d:
    opening(d) = closing(d-1)                       (opening balance before the origin)
    closing(d) = opening(d) + purchase(d) - sum(amounts(d))
Purchases happen at 00:00 when the balance is low, never beyond the tier's cap over the
rolling 30 days [d-29, d]; when the cap is spent, charges are clipped so that the balance
reaches zero and never goes below it (generation stops).

Today's served figure is floor(full-day amount x fraction of the UTC day elapsed).
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from runway_costs.core.clock import Clock, system_clock
from runway_costs.sandbox.catalog import MODELS, PROFILES, TIERS, ModelInfo, Profile

REFERENCE_ANCHOR = date(2026, 11, 24)  # the world every generated world is a week-shift of
ORIGIN_DAYS = 150  # generated history starts this many days before the anchor
LATE_MODEL_DAYS = 45  # a profile's "late" models first appear this many days before the anchor
MIN_PURCHASE = 1_000  # USD 10
WEEKDAY_FACTOR = (1.16, 1.16, 1.16, 1.16, 1.16, 0.6, 0.5)  # Monday..Sunday
_FALLBACK_MODEL = ModelInfo("video", 1, 100)
# How a day's net credits are split across an org's API keys (tenths; the last key takes
# the remainder, so the keys always add up to the day): 1, 2 or 3 keys.
KEY_SPLITS = {1: (), 2: (6,), 3: (5, 3)}
LIMIT_FIELDS = ("maxConcurrentGenerations", "maxDailyGenerations")


def model_info(model: str) -> ModelInfo:
    """Catalog entry for a model, with a neutral default for open (unknown) names."""
    return MODELS.get(model, _FALLBACK_MODEL)


def parse_now(value: str | datetime | None) -> datetime | None:
    """Accept an ISO timestamp (``Z`` allowed) or datetime; naive means UTC."""
    if value is None:
        return None
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def api_key_for(seed: int, name: str) -> str:
    """Deterministic, recognisable key: same seed and name, same key."""
    digest = hashlib.blake2b(f"runway-sandbox|{seed}|{name}".encode(), digest_size=24)
    return "key_" + digest.hexdigest()


def api_key_ids(seed: int, name: str, n: int) -> list[str]:
    """The ids of an organization's ``n`` API keys, as ``resultsByApiKey`` names them
    (deterministic, UUID-shaped; ids, not secrets)."""
    out = []
    for i in range(n):
        h = hashlib.blake2b(f"runway-sandbox-key-id|{seed}|{name}|{i}".encode(), digest_size=16)
        x = h.hexdigest()
        out.append(f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}")
    return out


def split_across_keys(total: int, n: int) -> list[int]:
    """``total`` credits split across ``n`` keys by ``KEY_SPLITS`` (floor division of the
    tenths, the last key the remainder): e.g. 1,000 over 3 keys is 500, 300, 200."""
    parts = [total * tenths // 10 for tenths in KEY_SPLITS[n]]
    return [*parts, total - sum(parts)]


def week_aligned(anchor: date) -> date:
    """The day of ``anchor``'s week-shift of the reference world that plays the reference
    anchor's part: ``REFERENCE_ANCHOR`` moved by the whole weeks to ``anchor`` (at most six
    days before it)."""
    weeks = (anchor - REFERENCE_ANCHOR).days // 7
    return REFERENCE_ANCHOR + timedelta(weeks=weeks)


def _day_rng(seed: int, name: str, day: date) -> random.Random:
    digest = hashlib.blake2b(f"{seed}|{name}|{day.isoformat()}".encode(), digest_size=8)
    return random.Random(int.from_bytes(digest.digest(), "big"))


@dataclass(frozen=True)
class OrgSpec:
    """An organization to serve.

    With ``script`` (date -> {model: net full-day credits}) and ``purchases``
    (date -> credits, applied at 00:00) the history is exactly what is written, so
    scenario tests can compute expectations by hand. Without a script the history is
    generated from ``profile`` (default: the built-in profile of that tier).
    """

    name: str
    tier: int
    opening_balance: int | None = None
    script: Mapping[date | str, Mapping[str, int]] | None = None
    purchases: Mapping[date | str, int] | None = None
    api_key: str | None = None
    profile: Profile | None = None
    # Fill ``apiKeys`` / ``resultsByApiKey``: each day's net credits split across this many
    # API key ids (``KEY_SPLITS``); 0 serves them as null, as the API does today.
    api_keys: int = 0

    @property
    def scripted(self) -> bool:
        return self.script is not None or self.purchases is not None


@dataclass(frozen=True)
class DayRecord:
    """One simulated UTC day of an organization (full-day figures)."""

    day: date
    opening: int
    purchase: int
    amounts: dict[str, int]
    closing: int

    @property
    def spend(self) -> int:
        return sum(self.amounts.values())


@dataclass
class Org:
    """One organization's history, simulated lazily day by day and cached."""

    spec: OrgSpec
    seed: int
    anchor: date
    api_key: str
    origin: date = field(init=False)
    _records: dict[date, DayRecord] = field(default_factory=dict, init=False)
    _last: date | None = field(default=None, init=False)
    _script: dict[date, dict[str, int]] = field(default_factory=dict, init=False)
    _planned: dict[date, int] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        spec = self.spec
        if spec.tier not in TIERS:
            raise ValueError(f"org {spec.name!r}: tier must be 1..5, got {spec.tier}")
        if spec.api_keys and spec.api_keys not in KEY_SPLITS:
            raise ValueError(f"org {spec.name!r}: api_keys must be 0..3, got {spec.api_keys}")
        if spec.scripted:
            self._script = {
                _as_date(d): {m: int(a) for m, a in amounts.items()}
                for d, amounts in (spec.script or {}).items()
            }
            self._planned = {_as_date(d): int(c) for d, c in (spec.purchases or {}).items()}
            days = [*self._script, *self._planned]
            self.origin = min(days) if days else self.anchor
            if days:  # fail early, naming the day, if the script overdraws
                self.record(max(days))
        else:
            self.origin = self.anchor - timedelta(days=ORIGIN_DAYS)

    # --- static facts -------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def tier(self) -> int:
        return self.spec.tier

    @property
    def profile(self) -> Profile:
        if self.spec.profile is not None:
            return self.spec.profile
        return next(p for p in PROFILES if p.tier == self.spec.tier)

    @property
    def opening_balance(self) -> int:
        if self.spec.opening_balance is not None:
            return self.spec.opening_balance
        return 0 if self.spec.scripted else self.profile.opening_balance

    @property
    def purchase_cap(self) -> int:
        return TIERS[self.tier].purchase_cap

    def models(self, today: date) -> list[str]:
        """Models this organization uses (launched by ``today``)."""
        if self.spec.scripted:
            return sorted({m for amounts in self._script.values() for m in amounts})
        launch = self.anchor - timedelta(days=LATE_MODEL_DAYS)
        return [m for m, _ in self.profile.mix if m not in self.profile.late or today >= launch]

    @property
    def key_ids(self) -> list[str]:
        """The ids ``resultsByApiKey`` reports for this organization ([] when not served)."""
        return api_key_ids(self.seed, self.name, self.spec.api_keys)

    def served_by_key(self, day: date, now: datetime) -> dict[str, int]:
        """Net credits per API key id for ``day`` at ``now``: the day's served total split
        by ``split_across_keys`` (zeros dropped)."""
        if not self.spec.api_keys:
            return {}
        total = sum(self.served_amounts(day, now).values())
        parts = split_across_keys(total, self.spec.api_keys)
        return {k: a for k, a in zip(self.key_ids, parts, strict=True) if a != 0}

    # --- simulation ---------------------------------------------------------------
    def record(self, day: date) -> DayRecord:
        """The full-day record for ``day`` (simulating forward to it if needed)."""
        if day < self.origin:
            bal = self.opening_balance
            return DayRecord(day, bal, 0, {}, bal)
        with self._lock:
            if self._last is None or day > self._last:
                self._simulate_until(day)
            return self._records[day]

    def records(self, start: date, end: date) -> list[DayRecord]:
        """Records for start <= day <= end."""
        return [self.record(start + timedelta(days=i)) for i in range((end - start).days + 1)]

    def _simulate_until(self, day: date) -> None:
        d = self.origin if self._last is None else self._last + timedelta(days=1)
        balance = self.opening_balance if self._last is None else self._records[self._last].closing
        while d <= day:
            purchase = self._purchase(d, balance)
            available = balance + purchase
            amounts = self._desired(d)
            if not self.spec.scripted:
                amounts = _clip(amounts, available)
            closing = available - sum(amounts.values())
            if closing < 0:
                raise ValueError(
                    f"org {self.name!r}: scripted balance goes negative on {d} ({closing})"
                )
            self._records[d] = DayRecord(d, balance, purchase, amounts, closing)
            balance = closing
            self._last = d
            d += timedelta(days=1)

    def _purchase(self, day: date, balance: int) -> int:
        if self.spec.scripted:
            return self._planned.get(day, 0)
        p = self.profile
        if balance >= 3 * p.daily_mean:
            return 0
        used = sum(
            self._records[day - timedelta(days=i)].purchase
            for i in range(1, 30)
            if day - timedelta(days=i) in self._records
        )
        room = self.purchase_cap - used
        want = math.ceil((12 * p.daily_mean - balance) / MIN_PURCHASE) * MIN_PURCHASE
        buy = min(want, room)
        return buy if buy >= MIN_PURCHASE else 0

    def _desired(self, day: date) -> dict[str, int]:
        if self.spec.scripted:
            return dict(self._script.get(day, {}))
        return generated_day(self.seed, self.name, self.profile, self.anchor, day)

    # --- what the API serves at a given instant ------------------------------------
    def served_amounts(self, day: date, now: datetime) -> dict[str, int]:
        """Net credits per model for ``day`` as seen at ``now`` (zeros dropped)."""
        today = now.date()
        if day > today:
            return {}
        amounts = self.record(day).amounts
        if day == today:
            frac = day_fraction(now)
            amounts = {m: math.floor(a * frac) for m, a in amounts.items()}
        return {m: a for m, a in amounts.items() if a != 0}

    def balance(self, now: datetime) -> int:
        """creditBalance at ``now``: today's opening + today's purchase - today so far."""
        rec = self.record(now.date())
        frac = day_fraction(now)
        spent = sum(math.floor(a * frac) for a in rec.amounts.values())
        return rec.opening + rec.purchase - spent

    def daily_generations(self, now: datetime) -> dict[str, int]:
        """Creations in the rolling 24 hours: credits in that window / credits per
        generation, capped by the tier's daily limit (creation past it is refused)."""
        today = now.date()
        frac = day_fraction(now)
        yesterday = self.record(today - timedelta(days=1)).amounts
        current = self.record(today).amounts
        out: dict[str, int] = {}
        for m in self.models(today):
            credits = math.floor(current.get(m, 0) * frac) + math.floor(
                yesterday.get(m, 0) * (1 - frac)
            )
            gens = max(0, credits) // model_info(m).per_generation
            out[m] = min(gens, tier_limits(self.tier, m)[1])
        return out


def tier_limits(tier: int, model: str) -> tuple[int, int]:
    """(maxConcurrentGenerations, maxDailyGenerations), open names treated as video."""
    if model in MODELS:
        return TIERS[tier].limits(model)
    t = TIERS[tier]
    return t.concurrency[0], t.daily[0]


def day_fraction(now: datetime) -> float:
    """Fraction of the UTC day elapsed at ``now``."""
    midnight = datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC)
    return (now - midnight).total_seconds() / 86_400


def _clip(amounts: dict[str, int], available: int) -> dict[str, int]:
    """Scale charges down so the day's net spend never exceeds the balance."""
    pos = sum(a for a in amounts.values() if a > 0)
    neg = sum(a for a in amounts.values() if a < 0)
    if pos + neg <= available:
        return amounts
    factor = (available - neg) / pos
    return {m: (math.floor(a * factor) if a > 0 else a) for m, a in amounts.items()}


def generated_day(
    seed: int, name: str, profile: Profile, anchor: date, day: date
) -> dict[str, int]:
    """Desired net credits per model for one day, from hash(seed, org, reference day) only
    (``anchor`` is week-aligned: the reference day is ``day`` moved back by whole weeks).
    Weekends are lower, ~6% of days burst, ~7% of (day, model) carry refunds."""
    rng = _day_rng(seed, name, REFERENCE_ANCHOR + (day - anchor))
    burst = 2.6 if rng.random() < 0.06 else 1.0
    level = profile.daily_mean * WEEKDAY_FACTOR[day.weekday()] * burst
    level *= rng.lognormvariate(0, 0.2)
    launch = anchor - timedelta(days=LATE_MODEL_DAYS)
    out: dict[str, int] = {}
    for model, share in profile.mix:
        skip_p = 0.08 if share >= 0.1 else 0.3
        skipped = rng.random() < skip_p
        noise = rng.lognormvariate(0, 0.35)
        refund_draw, refund_size = rng.random(), rng.uniform(0.2, 1.6)
        if skipped or (model in profile.late and day < launch):
            continue
        unit = model_info(model).unit
        amount = round(level * share / (1 - skip_p) * noise / unit) * unit
        if refund_draw < 0.07:
            amount -= round(amount * refund_size / unit) * unit
        if amount != 0:
            out[model] = amount
    return out


class World:
    """All organizations plus the clock. Thread-safe: the server thread reads while a
    test thread moves the clock."""

    def __init__(
        self,
        specs: Sequence[OrgSpec],
        *,
        seed: int = 7,
        now: str | datetime | None = None,
        anchor: date | None = None,
        clock: Clock = system_clock,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"organization names must be unique: {names}")
        self.seed = seed
        self._lock = threading.Lock()
        self._clock = clock
        self._now = parse_now(now)
        self.anchor = anchor or self.now().date()
        generated_anchor = week_aligned(self.anchor)
        self.orgs = [
            Org(s, seed, generated_anchor, s.api_key or api_key_for(seed, s.name)) for s in specs
        ]
        self._by_key = {o.api_key: o for o in self.orgs}
        self._by_name = {o.name: o for o in self.orgs}

    @classmethod
    def generated(
        cls,
        *,
        seed: int = 7,
        n_orgs: int | None = None,
        now: str | datetime | None = None,
        clock: Clock = system_clock,
        api_keys: int = 0,
    ) -> World:
        """Default 3 organizations (studio/agency/indie) or ``n_orgs`` cycling all 5 tiers;
        ``api_keys``: split each one's usage across that many API keys (0: not served)."""
        return cls(default_specs(n_orgs, api_keys), seed=seed, now=now, clock=clock)

    # --- clock -----------------------------------------------------------------------
    def now(self) -> datetime:
        """The world's instant (aware UTC): frozen by ``now``/``set_now``, else ``clock``."""
        with self._lock:
            fixed = self._now
        return fixed if fixed is not None else self._clock().replace(tzinfo=UTC)

    def set_now(self, value: str | datetime | None) -> None:
        """Freeze the clock at ``value`` (None: follow the world's clock again)."""
        parsed = parse_now(value)
        with self._lock:
            self._now = parsed

    @property
    def frozen(self) -> bool:
        return self._now is not None

    def warm(self) -> None:
        """Simulate every organization up to today (and yesterday, for dailyGenerations)."""
        today = self.now().date()
        for org in self.orgs:
            org.record(today)

    # --- lookup ----------------------------------------------------------------------
    def org(self, name: str) -> Org:
        return self._by_name[name]

    def by_key(self, key: str) -> Org | None:
        return self._by_key.get(key)

    def public_orgs(self) -> list[dict]:
        """name, api_key and tier of every organization (what the CLI prints)."""
        return [{"name": o.name, "api_key": o.api_key, "tier": o.tier} for o in self.orgs]

    # --- wire bodies --------------------------------------------------------------------
    def organization_body(self, org: Org, now: datetime | None = None) -> dict:
        """The ``GET /v1/organization`` response."""
        now = now or self.now()
        models = sorted(set(MODELS) | set(org.models(now.date())))
        limits = {m: dict(zip(LIMIT_FIELDS, tier_limits(org.tier, m), strict=True)) for m in models}
        usage = {m: {"dailyGenerations": g} for m, g in org.daily_generations(now).items()}
        return {
            "creditBalance": org.balance(now),
            "tier": {"maxMonthlyCreditSpend": org.purchase_cap, "models": limits},
            "usage": {"models": usage},
        }

    def usage_body(self, org: Org, start: date, before: date, now: datetime | None = None) -> dict:
        """The ``POST /v1/organization/usage`` response for [start, before)."""
        now = now or self.now()
        last = min(before - timedelta(days=1), now.date())
        results: list[dict] = []
        by_key: list[dict] = []
        seen: set[str] = set()
        keys_seen: set[str] = set()
        d = start
        while d <= last:
            amounts = org.served_amounts(d, now)
            seen.update(amounts)
            results.append(
                {
                    "date": d.isoformat(),
                    "usedCredits": [{"model": m, "amount": a} for m, a in sorted(amounts.items())],
                }
            )
            if org.spec.api_keys:
                keys = org.served_by_key(d, now)
                keys_seen.update(keys)
                by_key.append(
                    {
                        "date": d.isoformat(),
                        "usedCredits": [
                            {"apiKeyId": k, "amount": a} for k, a in sorted(keys.items())
                        ],
                    }
                )
            d += timedelta(days=1)
        return {
            "results": results,
            "models": sorted(seen),
            "apiKeys": sorted(keys_seen) if org.spec.api_keys else None,
            "resultsByApiKey": by_key if org.spec.api_keys else None,
        }


def default_specs(n_orgs: int | None = None, api_keys: int = 0) -> list[OrgSpec]:
    """The 3 default organizations, or ``n`` cycling the 5 tier profiles
    (studio, agency, indie, enterprise, network, studio-2, ...). ``api_keys`` (1..3; 0:
    none served): the 1st, 3rd, 5th ... org splits its usage across that many API keys,
    the others across one fewer (at least 1), so organizations differ in key count."""
    n = 3 if n_orgs is None else n_orgs
    if n < 1:
        raise ValueError(f"n_orgs must be at least 1, got {n}")
    specs = []
    for i in range(n):
        p = PROFILES[i % len(PROFILES)]
        lap = i // len(PROFILES)
        name = p.name if lap == 0 else f"{p.name}-{lap + 1}"
        keys = api_keys if i % 2 == 0 else max(1, api_keys - 1)
        specs.append(OrgSpec(name=name, tier=p.tier, profile=p, api_keys=keys if api_keys else 0))
    return specs
