"""Root fixtures shared by every test folder: a running sandbox and a fresh DuckDB path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.server import SandboxServer

SANDBOX_SEED = 7
SANDBOX_NOW = "2026-11-24T12:00:00Z"


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
