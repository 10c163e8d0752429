"""Start and stop the Streamlit server that shows the dashboard.

The dashboard runs as a child ``streamlit run`` process so that ``up`` can run the
scheduler in the foreground next to it and stop both on Ctrl-C. Binding anywhere but
loopback exposes spend data to the network, so it is refused unless a password is
configured (environment variable or Streamlit secrets); the app then asks for it.

Public API::

    check_bind(host, env=None, app_dir=APP_DIR) -> None          # raises DashboardError
    start(db_path, config_path=None, host="127.0.0.1", port=8501, env=None) -> DashboardServer
    DashboardServer.url, .wait_ready(timeout, stop=None), .running(), .wait(), .stop()
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from runway_costs.core.config import ENV_PASSWORD
from runway_costs.dashboard.launch import PARENT_ENV

APP_DIR = Path(__file__).resolve().parent
APP_FILE = APP_DIR / "app.py"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
PASSWORD_ENV = ENV_PASSWORD
SECRETS_KEY = "dashboard_password"
# Set for the child process when it binds a non-loopback address: the app then
# insists on the password even if someone edits its Streamlit options.
AUTH_ENV = "RUNWAY_COSTS_DASHBOARD_AUTH"
DEFAULT_PORT = 8501


class DashboardError(Exception):
    """The dashboard cannot be served as asked; the message says why and what to do."""


def is_local(host: str) -> bool:
    return host.strip("[]") in LOCAL_HOSTS


def secrets_files(app_dir: Path = APP_DIR) -> list[Path]:
    """Where Streamlit looks for secrets.toml when run from ``app_dir`` (its defaults)."""
    return [Path.home() / ".streamlit" / "secrets.toml", app_dir / ".streamlit" / "secrets.toml"]


def secrets_password(app_dir: Path = APP_DIR) -> str | None:
    """The ``dashboard_password`` from Streamlit secrets files, later files winning."""
    found: str | None = None
    for path in secrets_files(app_dir):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise DashboardError(f"cannot read Streamlit secrets {path}: {exc}") from None
        value = data.get(SECRETS_KEY)
        if isinstance(value, str) and value:
            found = value
    return found


def password_configured(env: dict[str, str] | None = None, app_dir: Path = APP_DIR) -> bool:
    env = dict(os.environ) if env is None else env
    return bool(env.get(PASSWORD_ENV)) or secrets_password(app_dir) is not None


def check_bind(host: str, env: dict[str, str] | None = None, app_dir: Path = APP_DIR) -> None:
    """Refuse a non-loopback address unless a password protects the dashboard."""
    if is_local(host):
        return
    if not password_configured(env, app_dir):
        raise DashboardError(
            f"refusing to serve the dashboard on {host}: set {PASSWORD_ENV} or "
            f"{SECRETS_KEY} in {app_dir / '.streamlit' / 'secrets.toml'} "
            "(only 127.0.0.1 is served without a password)"
        )


@dataclass
class DashboardServer:
    """A running ``streamlit run`` child process."""

    process: subprocess.Popen
    host: str
    port: int

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def running(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = 60.0, stop: threading.Event | None = None) -> None:
        """Block until Streamlit answers its health check; raise if it died or timed out.
        Returns early, without raising, once ``stop`` is set (a stop asked while starting)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if stop is not None and stop.is_set():
                return
            if not self.running():
                raise DashboardError(
                    f"the dashboard server exited with code {self.process.returncode} "
                    f"before it was ready (is port {self.port} already in use?)"
                )
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise DashboardError(f"the dashboard did not start within {timeout:.0f} s")

    def wait(self) -> int:
        return self.process.wait()

    def terminate(self) -> None:
        """Ask Streamlit to shut down without waiting (safe in a signal handler)."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask Streamlit to shut down (SIGTERM), then kill it if it does not."""
        if not self.running():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def streamlit_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "runway_costs.dashboard.launch",
        "run",
        str(APP_FILE),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
    ]


def start(
    db_path: Path,
    config_path: Path | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    env: dict[str, str] | None = None,
) -> DashboardServer:
    """Start the dashboard on ``host:port`` reading ``db_path``; returns without waiting.

    The child gets absolute paths through the same environment variables the CLI
    reads, so the app loads exactly the settings the command resolved.
    """
    base_env = dict(os.environ) if env is None else dict(env)
    check_bind(host, base_env)
    child_env = {**base_env, "RUNWAY_COSTS_DB": str(Path(db_path).resolve())}
    if config_path is not None:
        child_env["RUNWAY_COSTS_CONFIG"] = str(Path(config_path).resolve())
    else:
        child_env.pop("RUNWAY_COSTS_CONFIG", None)
    if is_local(host):
        child_env.pop(AUTH_ENV, None)
    else:
        child_env[AUTH_ENV] = "1"
    child_env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    child_env[PARENT_ENV] = str(os.getpid())
    process = subprocess.Popen(
        streamlit_command(host, port),
        cwd=APP_DIR,
        env=child_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        # Its own session: Ctrl-C reaches only the parent, which stops the scheduler
        # first and then this server, instead of both racing to exit. (dashboard.launch
        # makes it die with the parent, even a parent killed with SIGKILL.)
        start_new_session=True,
    )
    return DashboardServer(process=process, host=host, port=port)


def port_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound right now (Streamlit would fail late otherwise)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", preferred: int = DEFAULT_PORT) -> int:
    """``preferred`` when it is free, else any free port the OS hands out."""
    if port_free(host, preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def demo_step(ctx: Any) -> None:  # the CLI's DemoContext (the CLI is the layer above)
    """``make demo``: serve the dashboard on the demo database and print its URL.

    Runs after the backfill so the first page view already has data; the server is
    stopped with the demo's other resources (Ctrl-C).
    """
    port = free_port("127.0.0.1", DEFAULT_PORT)
    server = start(ctx.db_path, ctx.config_path, host="127.0.0.1", port=port)
    ctx.resources.callback(server.stop)
    server.wait_ready()
    ctx.extras["dashboard"] = server
    ctx.out.print(f"[bold]dashboard:[/] {server.url}  (open it in a browser)", highlight=False)
