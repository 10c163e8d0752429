"""Entry point: the command groups, each defined in its own module and imported only when used.

A command module imports what its commands need (polars, DuckDB, Apprise, Streamlit's
launcher, ...), and together they take a second or more to import. So ``runway-costs``
(``run``) looks at the command it was asked for and imports that command's module alone;
with no command, ``--help`` or an unknown one, it imports none and lists the commands from
the table below by their one-line help. ``app`` holds every command, for tests and
``python -m runway_costs.cli.main``. ``tests/cli/test_cli_start.py`` holds the table to the
modules (same commands, same help) and the start to its imports.
"""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import typer


@dataclass(frozen=True)
class Entry:
    """A top-level command: the module whose ``register(app)`` defines it, and its help line."""

    module: str
    help: str


# In the order ``--help`` lists them. ``help`` is the first paragraph of the command's own
# help (its docstring), which the test keeps equal.
COMMANDS: dict[str, Entry] = {
    "sandbox": Entry(
        "runway_costs.cli.sandbox_cmd",
        "Serve a local Runway API. Prints one JSON line {base_url, orgs} then serves.",
    ),
    "collect": Entry(
        "runway_costs.cli.collect_cmd",
        "Collect every configured organization once (backfills 90 days the first time).",
    ),
    "schedule": Entry(
        "runway_costs.cli.collect_cmd",
        "Collect on a clock until Ctrl-C / SIGTERM: a full cycle now, then snapshots and usage.",
    ),
    "demo": Entry(
        "runway_costs.cli.demo",
        "Start an embedded sandbox, backfill 90 days into data/demo.duckdb, show status, "
        "then keep collecting on a schedule until Ctrl-C.",
    ),
    "status": Entry(
        "runway_costs.cli.report_cmd",
        "Per organization: balance, monthly cap, last collection, model limits and 24h usage.",
    ),
    "price": Entry(
        "runway_costs.cli.price_cmd",
        "Price a plan of generations: per row, by model, by label, in credits and USD.",
    ),
    "dashboard": Entry(
        "runway_costs.cli.dashboard_cmd",
        "Serve the dashboard on an existing database (read-only; needs no API key).",
    ),
    "up": Entry(
        "runway_costs.cli.dashboard_cmd",
        "Run the scheduler and the dashboard together; Ctrl-C (or SIGTERM) stops both.",
    ),
    "metrics": Entry(
        "runway_costs.cli.metrics_cmd",
        "Serve Prometheus /metrics from the published snapshot (read-only; needs no API key).",
    ),
    "export": Entry("runway_costs.cli.report_cmd", "Export collected data."),
    "statement": Entry(
        "runway_costs.cli.statement_cmd",
        "Write a month's spend statement (xlsx or CSV zip) for finance: orgs, tags, models, days.",
    ),
    "forecast": Entry(
        "runway_costs.cli.forecast_cmd", "Forecast month-end spend, run-out and 30-day-cap dates."
    ),
    "alerts": Entry(
        "runway_costs.cli.alerts_cmd", "Spend, cap, budget, balance, limit and collection alerts."
    ),
}
HELP = "Runway API credit spend: collect, report, price plans, forecast, alert, dashboard."


def _new_app() -> typer.Typer:
    return typer.Typer(
        name="runway-costs",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )


def _listed_only() -> None:
    """Stands in for a command in the listing; never runs (``run`` loads the real one)."""


def build_app(modules: Sequence[str] | None = None) -> typer.Typer:
    """The CLI with the commands of ``modules`` (None: every module) and every other
    command listed by its help line only."""
    app = _new_app()
    wanted = list(dict.fromkeys(e.module for e in COMMANDS.values()))
    if modules is not None:
        wanted = [m for m in wanted if m in modules]
    for module in wanted:
        importlib.import_module(module).register(app)
    for name, entry in COMMANDS.items():
        if entry.module not in wanted:
            app.command(name, help=entry.help, add_help_option=False)(_listed_only)
    return app


def _command_asked(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not an option), if known."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def run(argv: Sequence[str] | None = None) -> None:
    """The ``runway-costs`` console script: import only the module of the command asked for."""
    args = list(sys.argv[1:] if argv is None else argv)
    name = _command_asked(args)
    app = _build_without_collecting([COMMANDS[name].module] if name else [])
    app(args=args, prog_name="runway-costs")


def _build_without_collecting(modules: Sequence[str]) -> typer.Typer:
    """``build_app`` with the cyclic garbage collector paused.

    Importing a command's libraries (polars, Rich, ...) creates tens of thousands of
    objects that live as long as the process, and the collector would walk them ~90 times
    while they load: 0.02-0.04 s of the ~0.3 s ``price`` of a small plan takes to start.
    They are then frozen (``gc.freeze``: left out of every later collection) and the
    collector runs as usual for whatever the command does, long-running ones included."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return build_app(modules)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def __getattr__(name: str) -> typer.Typer:
    """``app``, every command (built on first use: tests, ``python -m``)."""
    if name == "app":
        app = build_app()
        globals()["app"] = app
        return app
    raise AttributeError(name)


if __name__ == "__main__":
    build_app()()
