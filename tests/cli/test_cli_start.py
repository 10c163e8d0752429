"""The CLI starts light: its top level lists commands without importing them, and the
table it lists them from says what the command modules define."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys

import typer

from runway_costs.cli.main import COMMANDS, build_app
from runway_costs.core.files import package_data

# Imported by some command, never needed to list the commands or show --help. Ours too:
# the typed settings (pydantic models, ~0.05 s to build).
HEAVY = (
    "polars",
    "duckdb",
    "numpy",
    "apprise",
    "pydantic",
    "streamlit",
    "httpx",
    "altair",
    "runway_costs.core.config",
)


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


def test_the_table_lists_every_command_with_its_own_help_line() -> None:
    defined: dict[str, str] = {}
    for module in dict.fromkeys(e.module for e in COMMANDS.values()):
        holder = typer.Typer()
        holder.callback()(lambda: None)
        importlib.import_module(module).register(holder)
        group = typer.main.get_group(holder)
        defined |= {name: _first_paragraph(cmd.help) for name, cmd in group.commands.items()}
    assert set(defined) == set(COMMANDS)
    for name, entry in COMMANDS.items():
        assert entry.help == defined[name], name


def test_a_command_runs_with_only_its_own_module_built() -> None:
    group = typer.main.get_group(build_app(["runway_costs.cli.report_cmd"]))
    assert set(group.commands) == set(COMMANDS)  # every command listed
    assert group.commands["status"].callback.__module__ == "runway_costs.cli.report_cmd"
    assert group.commands["price"].callback.__name__ == "_listed_only"


def heavy_imported_by(args: list[str], shows: str) -> list[str]:
    """The heavy libraries a fresh interpreter has imported after ``runway-costs ARGS``
    (run in-process there), which must print ``shows``."""
    code = (
        "import contextlib, io, sys\n"
        "from runway_costs.cli.main import run\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    run({args!r})\n"
        f"assert {shows!r} in out.getvalue(), out.getvalue()\n"
        f"print(sorted({{h for h in {HEAVY!r} for m in sys.modules\n"
        f"              if m == h or m.startswith(h + '.')}}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "RUNWAY_COSTS_CONFIG": ""},  # no config file
    )
    return ast.literal_eval(done.stdout.strip())


def test_listing_the_commands_imports_none_of_the_heavy_libraries() -> None:
    assert heavy_imported_by(["--help"], "Price a plan") == []


def test_pricing_a_plan_imports_only_what_pricing_needs() -> None:
    """``price`` of a plan (no --org, no config file) needs polars, never DuckDB, the alert
    machinery, the HTTP client, Streamlit or the typed settings (it needs only file paths:
    ``core.configfile``). pydantic is Typer's: it converts the options' values with it."""
    plan = str(package_data("sample-plan.csv"))
    assert heavy_imported_by(["price", plan], "Total:") == ["polars", "pydantic"]
