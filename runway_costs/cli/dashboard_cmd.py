"""Commands that serve the dashboard: ``dashboard`` (alone) and ``up`` (with the scheduler)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import duckdb
import typer

from runway_costs.analytics.alerts import alerts_after_cycle
from runway_costs.analytics.outlook import outlook_step
from runway_costs.cli.common import (
    DEFAULT_METRICS_PORT,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    ConfigOption,
    DbOption,
    HostOption,
    PortOption,
    cli_clock,
    console,
    db_problem,
    err_console,
    fail,
    handle_errors,
    settings_from,
)
from runway_costs.collector.locks import SchedulerAlreadyRunning
from runway_costs.collector.scheduler import run_scheduler
from runway_costs.core.config import Settings
from runway_costs.dashboard.serve import (
    DEFAULT_PORT,
    DashboardError,
    DashboardServer,
    check_bind,
    port_free,
    start,
)

MetricsPortOption = Annotated[
    int,
    typer.Option(
        "--metrics-port",
        min=0,
        max=65535,
        help="Port for Prometheus /metrics on the same host (0: do not serve it)",
    ),
]


class _Stop:
    """The command's SIGINT/SIGTERM handler, installed before anything starts, so a signal
    at any moment (even the instant the health URL first answers) is a clean stop."""

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event or threading.Event()
        self.server: DashboardServer | None = None

    def __call__(self, *_: object) -> None:
        self.event.set()
        if self.server is not None:
            self.server.terminate()  # only signal here: the command's wait() returns

    def install(self) -> None:  # set explicitly: a background job may inherit SIG_IGN
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)


def _start_checked(settings: Settings, host: str, port: int, stop: _Stop) -> DashboardServer | None:
    """Refuse bad bind requests before anything starts; then start and wait for it.
    None when a stop arrived while starting (the server is stopped again)."""
    try:
        check_bind(host)
    except DashboardError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    if not port_free(host, port):
        raise fail(f"cannot serve on {host}:{port}: the address is in use", EXIT_USAGE)
    if not settings.db_path.exists():
        err_console.print(
            f"[yellow]note:[/] no database at {settings.db_path} yet: the pages will say "
            "so until `runway-costs collect` (or `up`) has run",
            highlight=False,
        )
    if stop.event.is_set():
        return None
    server = start(settings.db_path, settings.config_path, host=host, port=port)
    stop.server = server
    try:
        server.wait_ready(stop=stop.event)
    except DashboardError as exc:
        server.stop()
        raise fail(str(exc), EXIT_PARTIAL) from None
    if stop.event.is_set():
        server.stop()
        return None
    console.print(f"[bold]dashboard:[/] {server.url}  (Ctrl-C stops it)", highlight=False)
    return server


@handle_errors
def dashboard(
    db: DbOption = None,
    config: ConfigOption = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = DEFAULT_PORT,
) -> None:
    """Serve the dashboard on an existing database (read-only; needs no API key).

    Exit 0 after Ctrl-C, 2 on bad config, a busy port or a non-local host without a
    password, 1 if the server dies.
    """
    settings = settings_from(config, db)
    stop = _Stop()
    stop.install()
    server = _start_checked(settings, host, port, stop)
    if server is None:
        raise typer.Exit(EXIT_OK)
    try:
        code = server.wait()
    finally:
        server.stop()
    raise typer.Exit(EXIT_OK if stop.event.is_set() or code == 0 else EXIT_PARTIAL)


@handle_errors
def up(
    db: DbOption = None,
    config: ConfigOption = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = DEFAULT_PORT,
    metrics_port: MetricsPortOption = DEFAULT_METRICS_PORT,
) -> None:
    """Run the scheduler and the dashboard together; Ctrl-C (or SIGTERM) stops both.

    Prometheus /metrics is served beside them on --metrics-port (see `metrics`).

    Exit 0 after a clean stop, 2 on bad config / busy port / unprotected host or when a
    scheduler already runs on the database, 1 if the dashboard dies on its own.
    """
    from runway_costs.cli.collect_cmd import configure_logging, result_table
    from runway_costs.cli.metrics_cmd import MetricsError, check_metrics_bind, start_metrics

    settings = settings_from(config, db, require_orgs=True)
    if metrics_port:
        try:  # refused before anything starts, like the dashboard's own bind check
            check_metrics_bind(host)
        except MetricsError as exc:
            raise fail(str(exc), EXIT_USAGE) from None
    stopper = _Stop()
    stopper.install()  # run_scheduler installs its own (setting the same event) later
    started = _start_checked(settings, host, port, stopper)
    if started is None:
        raise typer.Exit(EXIT_OK)
    server = started
    metrics = None
    if metrics_port:
        try:
            metrics = start_metrics(settings, cli_clock(), host, metrics_port)
        except MetricsError as exc:
            server.stop()
            raise fail(str(exc), EXIT_USAGE) from None
        console.print(f"[bold]metrics:[/] {metrics.url}", highlight=False)
    stop = stopper.event
    died = threading.Event()

    def watch() -> None:  # the dashboard dying on its own stops the scheduler too
        server.wait()
        if not stop.is_set():
            died.set()
            stop.set()

    threading.Thread(target=watch, name="dashboard-watch", daemon=True).start()
    configure_logging()
    try:
        run_scheduler(
            settings,
            clock=cli_clock(),
            stop_event=stop,
            on_result=lambda r: console.print(result_table(r)),
            after_cycle=alerts_after_cycle,  # the same alerts check as `schedule`
            after_write=outlook_step(settings),  # and the same stored outlooks
        )
    except SchedulerAlreadyRunning as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    except (duckdb.Error, OSError) as exc:
        raise db_problem(settings.db_path, exc) from None
    finally:
        stop.set()
        server.stop()
        if metrics is not None:
            metrics.stop()
    if died.is_set():
        raise fail("the dashboard server stopped unexpectedly", EXIT_PARTIAL)
    raise typer.Exit(EXIT_OK)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
    app.command("up")(up)
