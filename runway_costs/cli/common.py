"""Options, exit codes and error reporting shared by every command."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import date, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from runway_costs.cli.text import safe
from runway_costs.core.clock import Clock, ClockError, clock_from_env, parse_instant
from runway_costs.core.configfile import (
    DEFAULT_DB,
    ENV_CONFIG,
    ENV_DB,
    ENV_KEY,
    ENV_PASSWORD,
    ConfigError,
    FilePaths,
    load_file_paths,
)

if TYPE_CHECKING:
    import duckdb

    from runway_costs.core.config import Settings

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_PARTIAL = 1  # some organizations failed / some work did not complete
EXIT_USAGE = 2  # bad arguments, config or input file
EXIT_BUDGET = 3  # `price --budget`: the plan's maximum exceeds the budget

console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help=f"DuckDB file (env {ENV_DB}; default {DEFAULT_DB})"),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help=f"TOML config file (env {ENV_CONFIG}; none: one org keyed by {ENV_KEY})",
    ),
]
# Serving (dashboard, up, metrics): loopback needs no password, any other address does.
HostOption = Annotated[
    str,
    typer.Option("--host", help=f"Address to bind; anything but 127.0.0.1 needs {ENV_PASSWORD}"),
]
PortOption = Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve on")]
DEFAULT_METRICS_PORT = 9464  # Prometheus /metrics: `metrics --port`, `up --metrics-port`
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")]
OrgOption = Annotated[str | None, typer.Option("--org", help="Only this organization")]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Evaluate at this UTC time (ISO, e.g. 2026-11-24T12:00; default now)"
    ),
]

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print a one-line error to stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {safe(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def settings_from(
    config: Path | None,
    db: Path | None,
    *,
    require_orgs: bool = False,
    need_keys: bool | None = None,
) -> Settings:
    """Load settings at the edge, turning a ConfigError into exit code 2.

    API keys must be readable only for commands that call the API (``need_keys``, by
    default ``require_orgs``: collect, schedule, up); read-only commands run without them.
    """
    from runway_costs.core.config import load_settings  # pydantic: only commands using it

    try:
        return load_settings(
            config_path=config, db_path=db, require_orgs=require_orgs, need_keys=need_keys
        )
    except ConfigError as exc:
        raise fail(str(exc)) from None


def paths_from(config: Path | None, db: Path | None) -> FilePaths:
    """The database and rate-table paths, for a command that needs nothing else from the
    settings (``price``): with no config file, without building them. A config file is
    checked whole, as by ``settings_from``; a ConfigError is exit code 2."""
    try:
        return load_file_paths(config_path=config, db_path=db)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def parse_date(value: str, flag: str) -> date:
    """A ``YYYY-MM-DD`` flag value; a bad one is a usage error (exit 2) naming the flag."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{flag}: {value!r} is not a date (expected YYYY-MM-DD)") from None


def cli_clock() -> Clock:
    """The CLI's clock: the system clock, or the instant pinned by RUNWAY_COSTS_NOW (a bad
    value is a usage error, exit 2). The one place the CLI asks what time it is."""
    try:
        return clock_from_env()
    except ClockError as exc:
        raise fail(str(exc)) from None


def parse_as_of(value: str | None) -> datetime:
    """``--as-of`` as naive UTC (the CLI's clock when not given); a bad value is a usage
    error (exit 2)."""
    if value is None:
        return cli_clock()()
    try:
        return parse_instant(value, "--as-of")
    except ClockError as exc:
        raise fail(str(exc)) from None


def warn(message: str) -> None:
    """A one-line warning on stderr (outside text escaped)."""
    err_console.print(f"[yellow]warning:[/] {safe(message)}", highlight=False, soft_wrap=True)


@contextmanager
def read_db(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, closed after. "Nothing collected yet" and a file that is
    not a readable runway-costs database are one line and exit 2; a damaged snapshot read
    past (the live file instead) is a warning line on stderr. DuckDB is imported here, so
    only the commands that read the database pay for it."""
    import duckdb

    from runway_costs.analytics.db import NoDataError, connect_reader, describe_error

    # failures of a file that opened but cannot be read through (a truncated block, say)
    unreadable = (duckdb.IOException, duckdb.SerializationException, duckdb.InternalException)
    try:
        with closing(connect_reader(db_path, on_fallback=warn)) as con:
            yield con
    except NoDataError as exc:
        raise fail(str(exc)) from None
    except unreadable as exc:
        raise fail(f"database {db_path} cannot be read: {describe_error(exc)}") from None


def db_problem(db_path: Path, exc: Exception) -> typer.Exit:
    """The exit (2) for a database file that cannot be opened or written."""
    return fail(f"cannot use database {db_path}: {exc}")


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn known error types into clean messages and documented exit codes."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper
