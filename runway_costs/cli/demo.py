"""``runway-costs demo``: the whole product on an embedded sandbox, no key, no internet.

The steps run in order on one ``DemoContext``; each is a small function so a later
capability (the dashboard) can add its own step to ``DEMO_STEPS`` before ``schedule``:

    start_sandbox -> write_config -> backfill -> show_status -> schedule (until Ctrl-C)

The sandbox follows the demo's clock (the system clock, or RUNWAY_COSTS_NOW), so the
scheduler keeps collecting a "live" world whose story is the same on any start date.
Its API keys go into this process's environment only: the config file written to
``data/demo.toml`` names the variables, never the keys.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.console import Console

from runway_costs.cli.common import cli_clock, console, handle_errors
from runway_costs.collector.scheduler import AfterCycle, run_scheduler
from runway_costs.core.clock import Clock, system_clock
from runway_costs.core.config import Settings, load_settings

if TYPE_CHECKING:
    from runway_costs.collector.cycle import CycleResult
    from runway_costs.sandbox.server import SandboxServer

DEMO_SEED = 7
DEMO_DB = "demo.duckdb"
DEMO_CONFIG = "demo.toml"
# A livelier clock than production defaults, so the demo visibly keeps collecting.
DEMO_SNAPSHOT_MINUTES = 1
DEMO_USAGE_MINUTES = 5


def key_env_name(org: str) -> str:
    """The environment variable holding a demo org's key (RUNWAY_COSTS_DEMO_KEY_STUDIO)."""
    return "RUNWAY_COSTS_DEMO_KEY_" + "".join(c if c.isalnum() else "_" for c in org.upper())


@dataclass
class DemoContext:
    """What the steps share; ``resources`` closes whatever a step started, in reverse."""

    data_dir: Path
    out: Console
    stop_event: threading.Event
    seed: int = DEMO_SEED
    clock: Clock = system_clock
    resources: ExitStack = field(default_factory=ExitStack)
    sandbox: SandboxServer | None = None
    config_path: Path | None = None
    settings: Settings | None = None
    extras: dict[str, object] = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return self.data_dir / DEMO_DB


def start_sandbox(ctx: DemoContext) -> None:
    """A local Runway API with seeded organizations, on the demo's clock."""
    from runway_costs.sandbox.server import SandboxServer

    ctx.sandbox = ctx.resources.enter_context(SandboxServer(seed=ctx.seed, clock=ctx.clock))
    names = ", ".join(o["name"] for o in ctx.sandbox.orgs)
    ctx.out.print(f"sandbox Runway API at {ctx.sandbox.base_url} (organizations: {names})")


def write_config(ctx: DemoContext) -> None:
    """A config whose orgs point at the sandbox; keys only in this process's environment."""
    lines = [
        "# Written by `runway-costs demo`: organizations of the embedded sandbox.",
        "# Keys live in environment variables set inside the demo process only.",
        f'db = "{DEMO_DB}"',
        "",
        "[collection]",
        f"snapshot_minutes = {DEMO_SNAPSHOT_MINUTES}",
        f"usage_minutes = {DEMO_USAGE_MINUTES}",
    ]
    assert ctx.sandbox is not None, "start_sandbox runs first"
    for org in ctx.sandbox.orgs:
        env_name = key_env_name(org["name"])
        os.environ[env_name] = org["api_key"]
        lines += [
            "",
            "[[orgs]]",
            f'name = "{org["name"]}"',
            f'api_key_env = "{env_name}"',
            f'base_url = "{ctx.sandbox.base_url}"',
        ]
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    ctx.config_path = ctx.data_dir / DEMO_CONFIG
    tmp = ctx.config_path.with_suffix(".toml.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, ctx.config_path)
    ctx.settings = load_settings(config_path=ctx.config_path, db_path=ctx.db_path, need_keys=True)
    ctx.out.print(f"demo config {ctx.config_path}, database {ctx.db_path}")


def backfill(ctx: DemoContext) -> None:
    """Collect once: 90 days of history the first time (progress bar on a terminal)."""
    from runway_costs.cli.collect_cmd import collect_once, result_table

    assert ctx.settings is not None, "write_config runs first"
    result = collect_once(ctx.settings, ctx.out, ctx.clock)
    ctx.out.print(result_table(result))
    ctx.extras["backfill"] = result


def show_status(ctx: DemoContext) -> None:
    from runway_costs.cli.report_cmd import show_status as print_status

    assert ctx.settings is not None, "write_config runs first"
    print_status(ctx.db_path, ctx.settings.credit_usd, ctx.out)


def schedule(ctx: DemoContext) -> None:
    """Keep collecting until Ctrl-C (or ``stop_event``), storing the outlooks once per
    cycle as `schedule` does."""
    from runway_costs.analytics.outlook import outlook_step
    from runway_costs.cli.collect_cmd import result_table

    ctx.out.print(
        f"collecting every {DEMO_SNAPSHOT_MINUTES} min (snapshots) and "
        f"{DEMO_USAGE_MINUTES} min (usage); press Ctrl-C to stop"
    )
    assert ctx.settings is not None, "write_config runs first"
    run_scheduler(
        ctx.settings,
        clock=ctx.clock,
        stop_event=ctx.stop_event,
        on_result=lambda r: ctx.out.print(result_table(r)),
        after_cycle=cast("AfterCycle | None", ctx.extras.get("after_cycle")),
        after_write=outlook_step(ctx.settings),
    )


def check_alerts(ctx: DemoContext) -> None:
    """Check alerts once now and after every scheduled cycle, as `schedule` does."""
    from runway_costs.analytics.alerts import alerts_after_cycle

    assert ctx.settings is not None, "write_config runs first"
    alerts_after_cycle(ctx.settings, ctx.clock)
    ctx.extras["after_cycle"] = alerts_after_cycle


def serve_dashboard(ctx: DemoContext) -> None:
    """Serve the dashboard on the demo database and print its URL (dashboard.serve)."""
    from runway_costs.dashboard.serve import demo_step

    demo_step(ctx)


Step = Callable[[DemoContext], None]
DEMO_STEPS: list[Step] = [
    start_sandbox,
    write_config,
    backfill,
    show_status,
    check_alerts,
    serve_dashboard,
    schedule,
]


def run_demo(
    data_dir: Path = Path("data"),
    *,
    out: Console | None = None,
    stop_event: threading.Event | None = None,
    steps: Sequence[Step] | None = None,
    seed: int = DEMO_SEED,
    clock: Clock = system_clock,
) -> int:
    """Run the demo steps; return the exit code (0 after a clean stop, 1 if the
    first collection had failures)."""
    ctx = DemoContext(
        data_dir=Path(data_dir),
        out=out or Console(),
        stop_event=stop_event or threading.Event(),
        seed=seed,
        clock=clock,
    )
    with ctx.resources:
        for step in DEMO_STEPS if steps is None else steps:
            if ctx.stop_event.is_set():
                break
            step(ctx)
    backfilled = cast("CycleResult | None", ctx.extras.get("backfill"))
    return 0 if backfilled is None or backfilled.ok else 1


@handle_errors
def demo(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the demo database and config go")
    ] = Path("data"),
) -> None:
    """Start an embedded sandbox, backfill 90 days into data/demo.duckdb, show status,
    then keep collecting on a schedule until Ctrl-C."""
    from runway_costs.cli.collect_cmd import configure_logging

    configure_logging()
    raise typer.Exit(run_demo(data_dir, out=console, clock=cli_clock()))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
