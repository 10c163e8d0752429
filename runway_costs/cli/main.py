"""Entry point: assembles the command groups, each defined in its own module."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="runway-costs",
    help="Runway API credit spend: collect, report, price plans, forecast, alert, dashboard.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines ``register(app)``; a module listed here owns its commands.
COMMAND_MODULES = (
    "runway_costs.cli.sandbox_cmd",
    "runway_costs.cli.collect_cmd",
    "runway_costs.cli.report_cmd",
    "runway_costs.cli.price_cmd",
    "runway_costs.cli.forecast_cmd",
    "runway_costs.cli.alerts_cmd",
    "runway_costs.cli.dashboard_cmd",
)

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # a command group not built yet
        if exc.name != _name:
            raise
        continue
    _module.register(app)


if __name__ == "__main__":
    app()
