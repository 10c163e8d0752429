"""Options, exit codes and error reporting shared by every command."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from runway_costs.config import ConfigError, Settings, load_settings

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_PARTIAL = 1  # some organizations failed / some work did not complete
EXIT_USAGE = 2  # bad arguments, config or input file
EXIT_BUDGET = 3  # `price --budget`: the plan's maximum exceeds the budget

console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB file [env RUNWAY_COSTS_DB, default data/runway.duckdb]"),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file [env RUNWAY_COSTS_CONFIG]"),
]

F = TypeVar("F", bound=Callable)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print a one-line error to stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def settings_from(config: Path | None, db: Path | None, *, require_orgs: bool = False) -> Settings:
    """Load settings at the edge, turning a ConfigError into exit code 2."""
    try:
        return load_settings(config_path=config, db_path=db, require_orgs=require_orgs)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def handle_errors(func: F) -> F:
    """Turn known error types into clean messages and documented exit codes."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
