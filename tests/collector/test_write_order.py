"""The cycle's write order: plan order, except that a finished org waits at most
ORDER_GRACE_SECONDS (1 s) for slower ones ahead of it."""

from __future__ import annotations

from datetime import datetime

import pytest

from runway_costs.collector import cycle
from runway_costs.collector.cycle import _Fetched, _WriteOrder
from tests.collector.support import settings_for
from tests.conftest import SANDBOX_CLOCK

AT = datetime(2026, 11, 24, 12, 0)


def _done(order: _WriteOrder, index: int, at: float) -> None:
    order.finish(index, _Fetched(plan=None, started_at=AT), at)  # type: ignore[arg-type]


def test_the_finished_prefix_is_written_in_plan_order():
    order = _WriteOrder(4)
    _done(order, 1, 10.0)
    assert order.ready(10.0) == []  # org 0 is still fetching
    assert order.next_due(10.0) == 1.0
    _done(order, 0, 10.2)
    assert order.ready(10.2) == [0, 1]
    order.take([0, 1])
    assert order.unwritten == {} and order.next_due(10.2) is None


def test_an_org_waits_one_second_at_most_for_one_ahead():
    order = _WriteOrder(3)
    _done(order, 2, 5.0)
    _done(order, 1, 5.5)
    assert order.ready(5.9) == []
    assert order.ready(6.0) == [2]  # 1 s after it finished; org 1 waits 0.5 s more
    order.take([2])
    assert order.ready(6.5) == [1]
    assert order.ready(6.0, everything=True) == [1]  # a stop writes whatever finished


def test_ready_orgs_gather_two_seconds_for_a_shared_session():
    order = _WriteOrder(3)
    _done(order, 0, 7.0)
    _done(order, 2, 7.5)
    assert order.ready(7.5) == [0]
    assert order.gather_left([0], 7.5) == 1.5  # 2 s after org 0 finished
    assert order.next_due(7.5, [0]) == 1.0  # org 2's grace (org 1 still fetching)
    assert order.ready(8.5) == [0, 2]
    assert order.gather_left([0, 2], 9.0) == 0.0


@pytest.mark.integration
def test_the_fetch_waits_for_the_writer_when_far_ahead(sandbox, tmp_db, monkeypatch):
    monkeypatch.setattr(cycle, "MAX_UNWRITTEN_ORGS", 1)
    sessions: list[list[str]] = []
    write = cycle._write

    def counted(settings, kind, fetched, clock, **kwargs):
        sessions.append([f.plan.org.name for f in fetched])
        return write(settings, kind, fetched, clock, **kwargs)

    monkeypatch.setattr(cycle, "_write", counted)
    result = cycle.run_cycle_sync(settings_for(sandbox, tmp_db, concurrency=1), clock=SANDBOX_CLOCK)
    assert [(r.org, r.status) for r in result.orgs] == [
        ("studio", "ok"),
        ("agency", "ok"),
        ("indie", "ok"),
    ]
    # one org waits for the writer at most: each session writes the one just fetched
    assert sessions == [["studio"], ["agency"], ["indie"]]
