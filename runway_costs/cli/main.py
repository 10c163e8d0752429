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

# Each module defines ``register(app)`` and owns the commands it registers.
COMMAND_MODULES = (
    "runway_costs.cli.sandbox_cmd",
    "runway_costs.cli.collect_cmd",
    "runway_costs.cli.demo",
    "runway_costs.cli.report_cmd",
    "runway_costs.cli.price_cmd",
    "runway_costs.cli.forecast_cmd",
    "runway_costs.cli.alerts_cmd",
    "runway_costs.cli.dashboard_cmd",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)

if __name__ == "__main__":
    app()
