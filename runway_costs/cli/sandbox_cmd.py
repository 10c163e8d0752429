"""`runway-costs sandbox`: serve the local Runway API until SIGINT/SIGTERM."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Annotated

import typer

from runway_costs.cli.common import EXIT_OK, cli_clock, fail


def register(app: typer.Typer) -> None:
    app.command("sandbox")(sandbox)


def sandbox(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (0: any free port)")] = 0,
    seed: Annotated[int, typer.Option(help="Seed for keys and histories")] = 7,
    faults: Annotated[
        str,
        typer.Option(help="Fault profile, e.g. 'rate_limit:n=3,retry_after=1,drop' or 'none'"),
    ] = "none",
    orgs: Annotated[
        int | None, typer.Option("--orgs", help="Number of organizations (default 3)")
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(
            help="Freeze the clock at this ISO time (default: the CLI clock, see RUNWAY_COSTS_NOW)"
        ),
    ] = None,
    api_keys: Annotated[
        int,
        typer.Option(
            "--api-keys",
            help="Fill apiKeys/resultsByApiKey: split each org's daily usage across 1-3 "
            "API keys (0: served as null, like the API today)",
        ),
    ] = 0,
) -> None:
    """Serve a local Runway API. Prints one JSON line {base_url, orgs} then serves."""
    from runway_costs.sandbox.faults import FaultSpecError
    from runway_costs.sandbox.server import SandboxServer
    from runway_costs.sandbox.world import parse_now

    if not 0 <= port <= 65535:
        raise fail(f"--port must be 0..65535, got {port}")
    if orgs is not None and orgs < 1:
        raise fail(f"--orgs must be at least 1, got {orgs}")
    if not 0 <= api_keys <= 3:
        raise fail(f"--api-keys must be 0..3, got {api_keys}")
    try:
        parse_now(now)
    except ValueError:
        raise fail(f"--now: not an ISO timestamp: {now!r}") from None
    try:
        server = SandboxServer(
            seed=seed,
            now=now,
            faults=faults,
            n_orgs=orgs,
            port=port,
            clock=cli_clock(),
            api_keys=api_keys,
        )
    except FaultSpecError as exc:
        raise fail(f"--faults: {exc}") from None
    try:
        server.start()
    except OSError as exc:
        raise fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sys.stdout.write(json.dumps({"base_url": server.base_url, "orgs": server.orgs}) + "\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    raise typer.Exit(EXIT_OK)
