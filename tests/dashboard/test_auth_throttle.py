"""The password gate slows guessing: after three wrong passwords each further attempt
waits 1, 2, 4, ... s (at most 60) after the last failure, and an attempt made sooner is
refused without being checked. The clock is the test's, never the wall clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from runway_costs.dashboard import auth
from runway_costs.dashboard.throttle import Throttle, delay_after


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_delays_double_after_three_failures_and_are_bounded() -> None:
    assert [delay_after(n) for n in range(0, 10)] == [0, 0, 0, 1, 2, 4, 8, 16, 32, 60]
    assert delay_after(50) == 60


def test_throttle_per_client() -> None:
    clock = FakeClock()
    throttle = Throttle(clock=clock)
    for _ in range(3):
        assert throttle.wait("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
    assert throttle.wait("10.0.0.1") == 1.0
    assert throttle.wait("10.0.0.2") == 0  # another client is not slowed
    clock.t += 1.0
    assert throttle.wait("10.0.0.1") == 0
    throttle.failed("10.0.0.1")
    assert throttle.wait("10.0.0.1") == 2.0
    throttle.succeeded("10.0.0.1")
    assert throttle.wait("10.0.0.1") == 0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(auth.CLIENTS, "clock", fake)
    return fake


def test_gate_refuses_quick_retries_even_the_right_password(
    app_for, seeded_db: Path, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    at = app_for(seeded_db)
    monkeypatch.setenv("RUNWAY_COSTS_DASHBOARD_AUTH", "1")
    monkeypatch.setenv("RUNWAY_COSTS_DASHBOARD_PASSWORD", "s3cret")
    at.run()
    for _ in range(3):  # three free attempts
        at.text_input(key="_password").input("wrong").run()
        assert [e.value for e in at.error] == ["Wrong password."]
    at.text_input(key="_password").input("s3cret").run()  # too soon: not even checked
    assert [e.value for e in at.error] == ["Too many wrong passwords. Try again in 1 s."]
    assert not at.metric
    clock.t += 1.0
    at.text_input(key="_password").input("wrong").run()  # 4th failure: now 2 s
    assert [e.value for e in at.error] == ["Wrong password."]
    clock.t += 1.5
    at.text_input(key="_password").input("s3cret").run()
    assert [e.value for e in at.error] == ["Too many wrong passwords. Try again in 0 s."]
    clock.t += 0.5
    at.text_input(key="_password").input("s3cret").run()
    assert not at.error and at.metric  # in, and the count starts over
