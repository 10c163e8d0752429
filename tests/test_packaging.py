"""What the package ships: the data tables it reads at run time and the README's sample plan.

The wheel itself (its top-level entries, an install outside the checkout, the commands run
from there) is checked by ``python -m tests.release_check``, which ``make test`` runs after
this suite.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

import runway_costs
from runway_costs.core.files import package_data

REPO = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(runway_costs.__file__).resolve().parent

SHIPPED_DATA = ["rates.toml", "tiers.toml", "sample-plan.csv"]


def test_readme_sample_plan_is_the_shipped_one() -> None:
    """The README prices ``data/sample-plan.csv``; an installed package has only its own copy,
    so the two must be the same bytes."""
    example = REPO / "data" / "sample-plan.csv"
    shipped = REPO / "runway_costs" / "data" / "sample-plan.csv"
    assert example.read_bytes() == shipped.read_bytes(), (
        f"{example.relative_to(REPO)} and {shipped.relative_to(REPO)} differ: "
        "copy the shipped sample plan over the README's example (or the other way round)"
    )


@pytest.mark.parametrize("name", SHIPPED_DATA)
def test_package_data_exists(name: str) -> None:
    path = package_data(name)
    assert path.is_file(), f"package_data({name!r}) -> {path} is not a file"
    assert path.stat().st_size > 0, f"{path} is empty"
    assert path.resolve().is_relative_to(PACKAGE_DIR), f"{path} is outside {PACKAGE_DIR}"


@pytest.mark.parametrize(
    ("package", "name"),
    [
        ("runway_costs.collector", "schema.sql"),
        ("runway_costs.analytics", "alerts_schema.sql"),
        ("runway_costs.dashboard", ".streamlit/config.toml"),
    ],
)
def test_package_resources_exist(package: str, name: str) -> None:
    """The other non-Python files the package reads, found the way an installed copy finds them."""
    resource = resources.files(package).joinpath(*name.split("/"))
    assert resource.is_file(), f"{package}: {name} is missing"
