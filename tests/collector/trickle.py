"""A slow peer on 127.0.0.1: answers ``200`` at once, then trickles its body one byte at a
time, so every single read is quick and only a deadline on the whole response stops it.

Used as an API host (an org whose ``base_url`` points here) and as an alert webhook.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Trickle:
    interval: float
    port: int = 0
    requests: list[str] = field(default_factory=list)  # "GET /v1/organization", ...
    first_request: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook/TOKEN_SECRET_CANARY"


@contextmanager
def trickling_server(interval: float = 0.5, size: int = 100_000) -> Iterator[Trickle]:
    """Every request gets ``200`` and a ``size``-byte JSON-looking body, one byte per
    ``interval`` seconds (until the client leaves or the server stops)."""
    state = Trickle(interval=interval)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _trickle(self) -> None:
            state.requests.append(f"{self.command} {self.path}")
            state.first_request.set()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            try:
                for _ in range(size):
                    if state.stopping.is_set():
                        return
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(interval)
            except OSError:  # the client gave up: that is the point
                return

        def do_GET(self) -> None:  # noqa: N802
            self._trickle()

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._trickle()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        server.shutdown()
        server.server_close()
