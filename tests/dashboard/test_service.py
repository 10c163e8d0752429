"""`runway-costs up` (scheduler + dashboard, Ctrl-C stops both) and the demo's dashboard
step, on real processes, real HTTP and a real DuckDB file."""

from __future__ import annotations

import io
import re
import signal
import time
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from runway_costs.cli import demo
from runway_costs.core.files import snapshot_path
from tests.dashboard.live import cli_server

pytestmark = pytest.mark.integration


def _up_config(sandbox, path: Path) -> dict[str, str]:
    """A config whose orgs are the sandbox's (keys in env vars); returns those vars."""
    env, lines = {}, ["[collection]", "snapshot_minutes = 0.05", "usage_minutes = 0.1", ""]
    for org in sandbox.orgs:
        var = f"UP_TEST_KEY_{org['name'].upper()}"
        env[var] = org["api_key"]
        lines += [
            "[[orgs]]",
            f'name = "{org["name"]}"',
            f'api_key_env = "{var}"',
            f'base_url = "{sandbox.base_url}"',
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return env


def test_up_serves_collects_and_stops_both_on_ctrl_c(sandbox, tmp_path: Path) -> None:
    config, db = tmp_path / "up.toml", tmp_path / "up.duckdb"
    env = _up_config(sandbox, config)
    with cli_server("up", "--config", str(config), "--db", str(db), env=env) as (url, proc):
        deadline = time.monotonic() + 60
        while not snapshot_path(db).exists():  # the scheduler's first full cycle published
            assert time.monotonic() < deadline, "no collection published"
            assert proc.poll() is None
            time.sleep(0.2)
        assert httpx.get(f"{url}/_stcore/health", timeout=5).status_code == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert f"dashboard: {url}" in out
        for key in env.values():
            assert key not in out and key not in err
        with pytest.raises(httpx.ConnectError):  # the dashboard went down with the scheduler
            httpx.get(f"{url}/_stcore/health", timeout=2)


def test_demo_serves_the_dashboard_and_prints_its_url(tmp_path: Path) -> None:
    seen: dict[str, int] = {}

    def probe(ctx: demo.DemoContext) -> None:
        server = ctx.extras["dashboard"]
        seen["health"] = httpx.get(f"{server.url}/_stcore/health", timeout=5).status_code
        seen["alerts_checked"] = ctx.extras.get("after_cycle") is not None

    buf = io.StringIO()
    steps = [
        demo.start_sandbox,
        demo.write_config,
        demo.backfill,
        demo.check_alerts,
        demo.serve_dashboard,
        probe,
    ]
    code = demo.run_demo(tmp_path, out=Console(file=buf, width=200), steps=steps)
    assert code == 0
    assert seen == {"health": 200, "alerts_checked": True}
    url = re.search(r"dashboard: (http://127\.0\.0\.1:\d+)", buf.getvalue())
    assert url, buf.getvalue()
    with pytest.raises(httpx.ConnectError):  # stopped with the demo's other resources
        httpx.get(f"{url.group(1)}/_stcore/health", timeout=2)


def test_server_does_not_outlive_a_killed_command(tmp_path: Path) -> None:
    with cli_server("dashboard", "--db", str(tmp_path / "none.duckdb")) as (url, proc):
        proc.kill()  # SIGKILL: no chance to stop its server itself
        proc.wait()
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/_stcore/health", timeout=1)
            except httpx.HTTPError:
                break  # the server went down with its parent
            assert time.monotonic() < deadline, "the server outlived its parent"
            time.sleep(0.2)
