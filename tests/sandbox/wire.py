"""Shared bits of the sandbox tests: the version header and request headers."""

from __future__ import annotations

VERSION = "2024-11-06"
NOW = "2026-11-24T12:00:00Z"


def headers(key: str | None, version: str | None = VERSION) -> dict[str, str]:
    """Runway request headers; None leaves a header out."""
    out = {}
    if key is not None:
        out["Authorization"] = f"Bearer {key}"
    if version is not None:
        out["X-Runway-Version"] = version
    return out
