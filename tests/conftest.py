"""Root fixtures shared by every test folder: a running sandbox and a fresh DuckDB path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from runway_costs.core.clock import NOW_ENV, fixed_clock
from runway_costs.sandbox.server import SandboxServer

SANDBOX_SEED = 7
SANDBOX_NOW = "2026-11-24T12:00:00Z"
SANDBOX_AT = datetime(2026, 11, 24, 12, 0)  # SANDBOX_NOW as naive UTC
SANDBOX_CLOCK = fixed_clock(SANDBOX_AT)  # the collector's clock against the `sandbox` fixture


@pytest.fixture(scope="session", autouse=True)
def pinned_clock() -> Iterator[None]:
    """Every process the suite starts (CLI runs, schedulers, dashboard servers) reads its
    clock from RUNWAY_COSTS_NOW: the suite's outcome never depends on the real date.
    A test that needs another instant sets the variable itself."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(NOW_ENV, SANDBOX_NOW)
        yield


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """The default 3-org sandbox (seed 7) with its clock frozen at SANDBOX_NOW.
    Shared by the session: tests that move the clock or set faults must restore them."""
    with SandboxServer(seed=SANDBOX_SEED, now=SANDBOX_NOW, faults="none") as sb:
        yield sb


@pytest.fixture
def tmp_db(tmp_path: Path) -> Path:
    """Path of a DuckDB file that does not exist yet."""
    return tmp_path / "runway.duckdb"
