"""SIGTERM at any moment stops `dashboard` cleanly, even right as it becomes ready."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from runway_costs.dashboard.serve import free_port
from tests.collector.support import REPO

pytestmark = pytest.mark.integration


def test_sigterm_the_moment_the_health_url_answers_exits_0(tmp_path):
    """User report: the health URL answers before the command installs its SIGTERM
    handler, so a SIGTERM in that gap killed `dashboard` with -15 instead of exiting 0."""
    port = free_port("127.0.0.1", 18631)
    exe = Path(sys.executable).with_name("runway-costs")
    proc = subprocess.Popen(
        [str(exe), "dashboard", "--db", str(tmp_path / "x.duckdb"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)  # as soon as it answers: before `ready` is printed
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (proc.returncode, err[-2000:])
    assert "Traceback" not in err
