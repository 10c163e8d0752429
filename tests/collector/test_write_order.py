"""The cycle's write order: plan order, except that a finished org waits at most
ORDER_GRACE_SECONDS (1 s) for slower ones ahead of it."""

from __future__ import annotations

from datetime import datetime

from runway_costs.collector.cycle import _Fetched, _WriteOrder

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
