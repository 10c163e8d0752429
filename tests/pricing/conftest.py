"""Fixtures for the pricing tests: the default rate table and plan-file writers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runway_costs.analytics.rates import RateTable, load_rates

REPO = Path(__file__).resolve().parents[2]
SAMPLE_PLAN = REPO / "data" / "sample-plan.csv"


@pytest.fixture(scope="session")
def rates() -> RateTable:
    return load_rates()


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write text (or bytes) to a file under tmp_path and return its path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
