"""/metrics basic auth slows guessing like the dashboard's gate: after three wrong
passwords from one address, an attempt made before the delay is refused unchecked (429
with Retry-After), even with the right password. The throttle's clock is the test's."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any

from runway_costs.cli.metrics_cmd import with_basic_auth
from runway_costs.dashboard.throttle import Throttle


class FakeClock:
    def __init__(self) -> None:
        self.t = 500.0

    def __call__(self) -> float:
        return self.t


def _ok(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"metrics\n"]


def _call(app: Any, password: str, address: str = "10.0.0.7") -> tuple[str, dict[str, str]]:
    token = base64.b64encode(f"prom:{password}".encode()).decode()
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    b"".join(app({"HTTP_AUTHORIZATION": f"Basic {token}", "REMOTE_ADDR": address}, start_response))
    return seen["status"], seen["headers"]


def test_wrong_passwords_from_one_address_are_slowed_down() -> None:
    clock = FakeClock()
    app = with_basic_auth(_ok, "s3cret", Throttle(clock=clock))
    assert [_call(app, "guess")[0] for _ in range(3)] == ["401 Unauthorized"] * 3
    status, headers = _call(app, "s3cret")  # too soon: refused without being checked
    assert (status, headers["Retry-After"]) == ("429 Too Many Requests", "1")
    assert _call(app, "s3cret", address="10.0.0.8")[0] == "200 OK"  # another client
    clock.t += 1.0
    assert _call(app, "guess")[0] == "401 Unauthorized"  # the 4th failure: 2 s now
    clock.t += 1.0
    assert _call(app, "s3cret")[0] == "429 Too Many Requests"
    clock.t += 1.0
    assert _call(app, "s3cret")[0] == "200 OK"  # waited: checked, right, and forgiven
    assert _call(app, "guess")[0] == "401 Unauthorized"
