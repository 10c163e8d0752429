"""Run the sandbox with uvicorn on 127.0.0.1 in a background thread.

with SandboxServer(seed=7, now="2026-11-24T12:00:00Z") as sb:
    httpx.get(sb.base_url + "/v1/organization", headers=...)
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType

import httpx
import uvicorn

from runway_costs.core.clock import Clock, system_clock
from runway_costs.sandbox.app import SandboxState, build_app
from runway_costs.sandbox.world import OrgSpec, World, default_specs

HOST = "127.0.0.1"


class _HideDropNoise(logging.Filter):
    """uvicorn reports the deliberately cut responses of the ``drop`` fault as errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_HideDropNoise())


class SandboxServer:
    """A running sandbox; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        seed: int = 7,
        now: str | datetime | None = None,
        faults: str | None = "none",
        n_orgs: int | None = None,
        port: int = 0,
        orgs: Sequence[OrgSpec] | None = None,
        clock: Clock = system_clock,
        api_keys: int = 0,
    ) -> None:
        specs = list(orgs) if orgs is not None else default_specs(n_orgs, api_keys)
        self.world = World(specs, seed=seed, now=now, clock=clock)
        self.state = SandboxState(self.world, faults)
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> SandboxServer:
        """Bind 127.0.0.1:port (0 = any free port) and serve in a daemon thread."""
        self.world.warm()  # simulate up to today now, not inside the first requests
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so,
        # and without it every response waits ~40 ms on Nagle + delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, self._port))
        sock.listen(256)
        self._socket = sock
        config = uvicorn.Config(
            build_app(self.state),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
            http="h11",
            loop="asyncio",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="runway-sandbox", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("sandbox server failed to start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- facts and controls ---------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("sandbox server is not running")
        return self._socket.getsockname()[1]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def orgs(self) -> list[dict]:
        """[{name, api_key, tier}] for every organization."""
        return self.world.public_orgs()

    def key(self, name: str) -> str:
        """The API key of the organization called ``name``."""
        return self.world.org(name).api_key

    def set_now(self, value: str | datetime | None) -> None:
        """Move the clock (None: real time). Same as POST /_sandbox/clock."""
        self.world.set_now(value)

    def set_faults(self, spec: str | None) -> None:
        """Replace the fault profile; per-key fault counters restart at zero."""
        self.state.set_faults(spec)

    def stats(self) -> dict:
        """Request counts per org/key and path, statuses and faults (GET /_sandbox/stats)."""
        return httpx.get(f"{self.base_url}/_sandbox/stats", timeout=10).json()

    def reset_stats(self) -> None:
        self.state.stats.reset()
