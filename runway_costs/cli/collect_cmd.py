"""Commands that fill the database: ``collect``, ``schedule`` and ``demo``."""

from __future__ import annotations

import logging
from typing import Annotated

import duckdb
import typer
from pydantic import ValidationError
from rich.console import Console, JustifyMethod
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from runway_costs.analytics.alerts import alerts_after_cycle
from runway_costs.analytics.outlook import outlook_step
from runway_costs.cli.common import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    ConfigOption,
    DbOption,
    cli_clock,
    console,
    db_problem,
    err_console,
    fail,
    handle_errors,
    settings_from,
)
from runway_costs.cli.text import SafeLogFilter, safe, warnings_to_stderr
from runway_costs.collector.cycle import (
    CycleResult,
    Kind,
    backfill_orgs,
    prepare,
    run_cycle_sync,
)
from runway_costs.collector.locks import LockError, SchedulerAlreadyRunning
from runway_costs.collector.scheduler import run_scheduler
from runway_costs.collector.store import adopt_database
from runway_costs.core.clock import Clock
from runway_costs.core.config import CollectionConfig, Settings


def with_collection(settings: Settings, **changes: object) -> Settings:
    """Settings with some ``[collection]`` values overridden by flags (validated)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return settings
    try:
        collection = CollectionConfig.model_validate(
            {**settings.collection.model_dump(), **changes}
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
            for e in exc.errors()
        )
        raise fail(problems) from None
    return settings.model_copy(update={"collection": collection})


def result_table(result: CycleResult) -> Table:
    """One line per organization: what the cycle did and why it failed."""
    table = Table(title=f"{result.kind} collection", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("org", "left"),
        ("status", "left"),
        ("rows changed", "right"),
        ("http calls", "right"),
        ("retries", "right"),
        ("error", "left"),
    )
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold")
    for r in result.orgs:
        status = "[green]ok[/]" if r.status == "ok" else "[red]failed[/]"
        table.add_row(
            safe(r.org),  # names and API error text are outside text (cli.text)
            status,
            str(r.rows_changed),
            str(r.http_calls),
            str(r.retries),
            safe(r.error or ""),
        )
    return table


def collect_once(
    settings: Settings, out: Console, clock: Clock, kind: Kind = "full"
) -> CycleResult:
    """One cycle, with a progress bar on a terminal while backfilling history; each
    organization's outlook is computed and stored before the cycle publishes."""
    plans = prepare(settings, kind, clock().date())
    backfilling = backfill_orgs(plans)
    step = outlook_step(settings)
    if not (backfilling and out.is_terminal):
        return run_cycle_sync(settings, kind, clock=clock, plans=plans, after_write=step)
    label = f"backfilling 90 days for {len(backfilling)} organization(s)"
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=out, transient=False) as bar:
        task = bar.add_task(label, total=sum(p.requests for p in plans))

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return run_cycle_sync(
            settings, kind, clock=clock, plans=plans, progress=advance, after_write=step
        )


def configure_logging() -> None:
    """Warnings (retries, failures) and scheduler events to stderr, no secrets in them."""
    handler = RichHandler(console=err_console, show_path=False, markup=False)
    handler.addFilter(SafeLogFilter())  # API text in log lines: no control characters
    logging.basicConfig(level=logging.INFO, handlers=[handler], format="%(message)s", force=True)
    for noisy in ("httpx", "httpcore", "apscheduler", "uvicorn", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@handle_errors
def collect(
    db: DbOption = None,
    config: ConfigOption = None,
    refresh_days: Annotated[
        int | None,
        typer.Option("--refresh-days", help="Days to re-read each cycle (default 3)"),
    ] = None,
    adopt: Annotated[
        bool,
        typer.Option(
            "--adopt",
            help="Add the collector's tables to a DuckDB file that already holds other "
            "tables (refused otherwise)",
        ),
    ] = False,
) -> None:
    """Collect every configured organization once (backfills 90 days the first time).

    Exit 0 when every organization was collected, 1 when some failed, 2 on bad config.
    """
    settings = settings_from(config, db, require_orgs=True)
    settings = with_collection(settings, refresh_days=refresh_days)
    warnings_to_stderr()
    try:
        if adopt:
            adopt_database(settings.db_path)
        result = collect_once(settings, console, cli_clock())
    except LockError as exc:
        raise fail(str(exc), EXIT_PARTIAL) from None
    except (duckdb.Error, OSError) as exc:
        raise db_problem(settings.db_path, exc) from None
    console.print(result_table(result))
    raise typer.Exit(EXIT_OK if result.ok else EXIT_PARTIAL)


@handle_errors
def schedule(
    db: DbOption = None,
    config: ConfigOption = None,
    snapshot_minutes: Annotated[
        float | None,
        typer.Option("--snapshot-minutes", help="Organization snapshot interval (default 15)"),
    ] = None,
    usage_minutes: Annotated[
        float | None,
        typer.Option("--usage-minutes", help="Usage refresh interval (default 60)"),
    ] = None,
) -> None:
    """Collect on a clock until Ctrl-C / SIGTERM: a full cycle now, then snapshots and usage.

    Exit 0 after a clean stop, 2 on bad config or when a scheduler already runs on the DB.
    """
    settings = settings_from(config, db, require_orgs=True)
    settings = with_collection(
        settings, snapshot_minutes=snapshot_minutes, usage_minutes=usage_minutes
    )
    configure_logging()
    try:
        run_scheduler(
            settings,
            clock=cli_clock(),
            on_result=lambda r: console.print(result_table(r)),
            after_cycle=alerts_after_cycle,  # alerts check after each job (never raises)
            after_write=outlook_step(settings),  # outlooks stored once per cycle
        )
    except SchedulerAlreadyRunning as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    except (duckdb.Error, OSError) as exc:
        raise db_problem(settings.db_path, exc) from None


def register(app: typer.Typer) -> None:
    app.command("collect")(collect)
    app.command("schedule")(schedule)
