"""Real parts for the browser and service tests: a sandbox-collected database, a
``runway-costs`` subprocess on a free port, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx
from pydantic import SecretStr

from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.core.config import CollectionConfig, OrgConfig, Settings
from tests.conftest import SANDBOX_CLOCK

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("runway-costs")
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SANDBOX_TODAY = date(2026, 11, 24)  # the root `sandbox` fixture's frozen clock


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def collect_sandbox(sandbox, db: Path) -> None:
    """One full cycle (a 90-day backfill) of every sandbox organization into ``db``."""
    orgs = tuple(
        OrgConfig(name=o["name"], api_key=SecretStr(o["api_key"]), base_url=sandbox.base_url)
        for o in sandbox.orgs
    )
    settings = Settings(db_path=db, orgs=orgs, collection=CollectionConfig(timeout_seconds=10))
    result = run_cycle_sync(settings, clock=SANDBOX_CLOCK)
    assert result.ok, result.failed


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited with {process.returncode}"
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not healthy after {timeout} s")


@contextmanager
def cli_server(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``runway-costs <args> --port P`` as a subprocess; yields (url, process); stops it."""
    port = free_port()
    process = subprocess.Popen(
        [str(CLI), *args, "--port", str(port)],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
