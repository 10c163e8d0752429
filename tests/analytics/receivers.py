"""Real local receivers for alert notices: an HTTP webhook and an SMTP server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


@dataclass
class Webhook:
    """Collects JSON POST bodies; answers 500 to the first ``fail_first`` requests."""

    fail_first: int = 0
    received: list[dict] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    requests: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook/TOKEN_SECRET_CANARY"


@contextmanager
def webhook(fail_first: int = 0) -> Iterator[Webhook]:
    hook = Webhook(fail_first=fail_first)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hook.requests += 1
            if hook.requests <= hook.fail_first:
                self.send_response(500)
                self.end_headers()
                return
            hook.received.append(json.loads(body))
            hook.paths.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(envelope.content)
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[str, _Inbox]]:
    """(apprise mailto URL, inbox) for a plain SMTP server on 127.0.0.1."""
    inbox = _Inbox()
    with socket.socket() as probe:  # aiosmtpd's start() cannot use port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        url = f"mailto://127.0.0.1:{port}?mode=insecure&from=alerts@example.com&to=ops@example.com"
        yield url, inbox
    finally:
        controller.stop()
