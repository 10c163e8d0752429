"""Static facts the sandbox world is built from: models, tier limits and org profiles.

These mirror the Runway API reference (runway-api.md, kept beside the repository). They
live in the sandbox only (the product reads prices and limits from data files and from the
API, never from here).
"""

from __future__ import annotations

from dataclasses import dataclass

API_VERSION = "2024-11-06"


@dataclass(frozen=True)
class ModelInfo:
    """How a model bills: `unit` is the price step (credits per second/image/...),
    `per_generation` a typical generation's cost, used to derive `dailyGenerations`."""

    kind: str  # "video" | "image" | "audio" | "avatar"
    unit: int
    per_generation: int


MODELS: dict[str, ModelInfo] = {
    "gen4.5": ModelInfo("video", 12, 84),
    "gen4_turbo": ModelInfo("video", 5, 40),
    "gen4_aleph": ModelInfo("video", 15, 120),
    "act_two": ModelInfo("video", 5, 40),
    "veo3.1": ModelInfo("video", 20, 200),
    "veo3.1_fast": ModelInfo("video", 10, 96),
    "seedance2": ModelInfo("video", 36, 288),
    "gen4_image": ModelInfo("image", 1, 6),
    "gen4_image_turbo": ModelInfo("image", 2, 2),
    "eleven_multilingual_v2": ModelInfo("audio", 1, 8),
    # No published price: an avatar session model and an open-ended third-party name.
    "gwm1_avatars": ModelInfo("avatar", 1, 60),
    "kling3.0_pro": ModelInfo("video", 1, 150),
}


@dataclass(frozen=True)
class Tier:
    """One usage tier: the rolling 30-day purchase cap and per-model limits.
    Video-like models get the low end of each published range, images/audio the high end."""

    number: int
    purchase_cap: int
    concurrency: tuple[int, int]  # (video/avatar, image/audio)
    daily: tuple[int, int]

    def limits(self, model: str) -> tuple[int, int]:
        """(maxConcurrentGenerations, maxDailyGenerations) for a model."""
        heavy = MODELS[model].kind in ("video", "avatar")
        i = 0 if heavy else 1
        return self.concurrency[i], self.daily[i]


TIERS: dict[int, Tier] = {
    1: Tier(1, 10_000, (1, 2), (50, 200)),
    2: Tier(2, 50_000, (3, 3), (500, 1_000)),
    3: Tier(3, 200_000, (5, 5), (1_000, 2_000)),
    4: Tier(4, 2_000_000, (10, 10), (5_000, 10_000)),
    5: Tier(5, 10_000_000, (20, 20), (25_000, 30_000)),
}


@dataclass(frozen=True)
class Profile:
    """How a generated organization spends: mean credits per day and a model mix
    (model -> share of spend). `late` models start `late_days` before the anchor."""

    name: str
    tier: int
    daily_mean: int
    opening_balance: int
    mix: tuple[tuple[str, float], ...]
    late: frozenset[str] = frozenset({"seedance2"})


PROFILES: tuple[Profile, ...] = (
    Profile(
        "studio",
        3,
        3_000,
        60_000,
        (
            ("gen4.5", 0.26),
            ("veo3.1", 0.20),
            ("veo3.1_fast", 0.10),
            ("gen4_turbo", 0.08),
            ("gen4_image", 0.06),
            ("gen4_image_turbo", 0.03),
            ("eleven_multilingual_v2", 0.03),
            ("gwm1_avatars", 0.08),
            ("kling3.0_pro", 0.08),
            ("seedance2", 0.08),
        ),
    ),
    Profile(
        "agency",
        2,
        1_100,
        15_000,
        (
            ("gen4_turbo", 0.25),
            ("gen4.5", 0.22),
            ("veo3.1_fast", 0.15),
            ("gen4_image", 0.10),
            ("eleven_multilingual_v2", 0.05),
            ("act_two", 0.08),
            ("kling3.0_pro", 0.07),
            ("seedance2", 0.08),
        ),
    ),
    Profile(
        "indie",
        1,
        345,
        3_000,
        (
            ("gen4.5", 0.35),
            ("gen4_turbo", 0.25),
            ("gen4_image_turbo", 0.10),
            ("veo3.1_fast", 0.12),
            ("gwm1_avatars", 0.08),
            ("seedance2", 0.10),
        ),
    ),
    Profile(
        "enterprise",
        4,
        30_000,
        400_000,
        (
            ("veo3.1", 0.30),
            ("gen4.5", 0.25),
            ("gen4_aleph", 0.10),
            ("gen4_image", 0.10),
            ("eleven_multilingual_v2", 0.05),
            ("gwm1_avatars", 0.10),
            ("seedance2", 0.10),
        ),
    ),
    Profile(
        "network",
        5,
        150_000,
        2_000_000,
        (
            ("veo3.1", 0.30),
            ("veo3.1_fast", 0.20),
            ("gen4.5", 0.20),
            ("gen4_image_turbo", 0.10),
            ("kling3.0_pro", 0.10),
            ("seedance2", 0.10),
        ),
    ),
)
