"""``runway-costs metrics``: Prometheus ``/metrics`` from the published snapshot.

A ``prometheus_client`` custom collector, registered in a fresh ``CollectorRegistry`` (no
process or platform metrics), reads the snapshot (``analytics.db.connect_reader``,
read-only, no API key) on a scrape and keeps the answer for ``CACHE_SECONDS``, so several
Prometheus servers scraping at once cost one read. The families themselves are computed by
``analytics.metrics``. A small threaded WSGI server serves them; ``up`` starts the same
server beside the dashboard (``start_metrics``).

Binding follows the dashboard's rule: 127.0.0.1 (or localhost, ::1) is served without a
password; any other address needs ``RUNWAY_COSTS_DASHBOARD_PASSWORD``, and every request
must then carry it as HTTP basic auth (any user name), compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import typer

from runway_costs.cli.common import (
    DEFAULT_METRICS_PORT,
    EXIT_OK,
    EXIT_USAGE,
    ConfigOption,
    DbOption,
    HostOption,
    PortOption,
    cli_clock,
    console,
    fail,
    handle_errors,
    settings_from,
)
from runway_costs.core.clock import Clock
from runway_costs.core.config import Settings
from runway_costs.dashboard.serve import PASSWORD_ENV, is_local
from runway_costs.dashboard.throttle import Throttle

log = logging.getLogger(__name__)

CACHE_SECONDS = 10.0
REALM = "runway-costs metrics"


class MetricsError(Exception):
    """The metrics endpoint cannot be served as asked; the message says why."""


def check_metrics_bind(host: str, env: dict[str, str] | None = None) -> str | None:
    """The password that must guard ``host`` (None: loopback, served open). A non-local
    host without ``RUNWAY_COSTS_DASHBOARD_PASSWORD`` is refused."""
    if is_local(host):
        return None
    password = (dict(os.environ) if env is None else env).get(PASSWORD_ENV)
    if not password:
        raise MetricsError(
            f"refusing to serve /metrics on {host}: set {PASSWORD_ENV} (scrapers then send "
            "it as HTTP basic auth); only 127.0.0.1 is served without a password"
        )
    return password


class SnapshotCollector:
    """A ``prometheus_client`` collector: the published snapshot read on a scrape, the
    answer cached for ``ttl`` seconds (of the monotonic clock; ``clock`` dates the figures)."""

    def __init__(self, settings: Settings, clock: Clock, ttl: float = CACHE_SECONDS) -> None:
        self.settings = settings
        self.clock = clock
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Any]] | None = None

    def describe(self) -> list[Any]:
        return []  # no fixed description: register() must not call collect() at startup

    def collect(self) -> Iterator[Any]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.ttl:
                self._cached = (now, self._read())
            families = self._cached[1]
        yield from families

    def _read(self) -> list[Any]:
        import duckdb

        from runway_costs.analytics.db import NoDataError, connect_reader
        from runway_costs.analytics.metrics import collect_metrics, unreadable_families

        try:
            con = connect_reader(self.settings.db_path)
            try:
                families = collect_metrics(con, self.settings, self.clock())
            finally:
                con.close()
        except (NoDataError, duckdb.Error, OSError) as exc:
            log.warning("metrics: cannot read %s: %s", self.settings.db_path, exc)
            families = unreadable_families(str(exc))
        return [_to_prometheus(f) for f in families]


def _to_prometheus(family: Any) -> Any:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    cls = CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily
    out = cls(family.name, family.help, labels=list(family.label_names))
    for sample in family.samples:
        out.add_metric([value for _, value in sample.labels], sample.value)
    return out


def registry_for(settings: Settings, clock: Clock, ttl: float = CACHE_SECONDS) -> Any:
    """A fresh CollectorRegistry holding only the snapshot collector."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(settings, clock, ttl))
    return registry


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _authorized(header: str, password: str) -> bool:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    _, _, given = decoded.partition(":")
    return hmac.compare_digest(given.encode("utf-8"), password.encode("utf-8"))


def with_basic_auth(
    app: WsgiApp, password: str | None, throttle: Throttle | None = None
) -> WsgiApp:
    """``app`` behind HTTP basic auth (any user name, ``password``); None: open. Guessing
    is slowed down per client address as at the dashboard's gate (``dashboard.throttle``):
    an attempt made too soon after repeated failures is refused (429) unchecked."""
    if password is None:
        return app
    clients = throttle or Throttle()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        client = environ.get("REMOTE_ADDR")
        wait = clients.wait(client)
        if wait > 0:
            start_response(
                "429 Too Many Requests",
                [("Retry-After", str(math.ceil(wait))), ("Content-Type", "text/plain")],
            )
            return [b"429 Too Many Requests: too many wrong passwords, try again later\n"]
        header = environ.get("HTTP_AUTHORIZATION", "")
        if _authorized(header, password):
            clients.succeeded(client)
            return app(environ, start_response)
        if header:  # a request without credentials asks for the challenge: no guess
            clients.failed(client)
        start_response(
            "401 Unauthorized",
            [
                ("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'),
                ("Content-Type", "text/plain; charset=utf-8"),
            ],
        )
        return [b"401 Unauthorized: /metrics needs the password (HTTP basic auth)\n"]

    return guarded


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("metrics: " + format, *args)


class MetricsServer:
    """``/metrics`` served by a threaded WSGI server on a daemon thread; ``stop()`` shuts
    it down and closes the socket."""

    def __init__(self, server: WSGIServer, host: str) -> None:
        self._server = server
        self.host = host
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="metrics-http"
        )
        self._thread.daemon = True
        self._thread.start()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()


def start_metrics(
    settings: Settings,
    clock: Clock,
    host: str = "127.0.0.1",
    port: int = DEFAULT_METRICS_PORT,
    env: dict[str, str] | None = None,
    ttl: float = CACHE_SECONDS,
) -> MetricsServer:
    """Check the bind rule, then serve ``/metrics`` (port 0: any free port). Raises
    MetricsError for an unprotected non-local host or an address that cannot be bound."""
    from prometheus_client import make_wsgi_app

    password = check_metrics_bind(host, env)
    app = with_basic_auth(make_wsgi_app(registry_for(settings, clock, ttl)), password)
    server_class = _Server6 if ":" in host.strip("[]") else _Server
    try:
        server = make_server(
            host.strip("[]"), port, app, server_class=server_class, handler_class=_QuietHandler
        )
    except OSError as exc:
        raise MetricsError(f"cannot serve /metrics on {host}:{port}: {exc.strerror}") from None
    return MetricsServer(server, host)


@handle_errors
def metrics(
    db: DbOption = None,
    config: ConfigOption = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = DEFAULT_METRICS_PORT,
) -> None:
    """Serve Prometheus /metrics from the published snapshot (read-only; needs no API key).

    Gauges per organization (balance, cap, purchases, month-to-date, month-end forecast,
    run-out and cap-bound, model generations and limits, open alerts) and the collector's
    health. Exit 0 after Ctrl-C / SIGTERM, 2 on bad config, a busy port or a non-local
    host without RUNWAY_COSTS_DASHBOARD_PASSWORD.
    """
    settings = settings_from(config, db)
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server = start_metrics(settings, cli_clock(), host, port)
    except MetricsError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    console.print(f"[bold]metrics:[/] {server.url}  (Ctrl-C stops it)", highlight=False)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    raise typer.Exit(EXIT_OK)


def register(app: typer.Typer) -> None:
    app.command("metrics")(metrics)


__all__ = [
    "DEFAULT_METRICS_PORT",
    "MetricsError",
    "MetricsServer",
    "check_metrics_bind",
    "registry_for",
    "start_metrics",
    "with_basic_auth",
]
