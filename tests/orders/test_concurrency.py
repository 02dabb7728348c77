"""Concurrent transitions on one order, with real threads on PostgreSQL: exactly one wins."""

import threading

import pytest
from django.db import connection, connections

from orders import services
from orders.exceptions import TransitionNotAllowed
from orders.models import Order, OrderEvent, OrderEventType, OrderStatus
from pipeline import orders as flows

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks need PostgreSQL"),
]


def race(calls) -> list:
    """Start every call at the same instant in its own thread (own DB connection); return results."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except TransitionNotAllowed as refused:
            results[index] = refused
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def status_change_count(order_id: int) -> int:
    return OrderEvent.objects.filter(order_id=order_id, type=OrderEventType.STATUS_CHANGED).count()


@pytest.mark.parametrize("first, second", [
    (flows.order_cancel, services.order_start_fulfilment),
    (flows.order_cancel, flows.order_cancel),
    (services.order_start_fulfilment, services.order_start_fulfilment),
])
def test_two_concurrent_transitions_apply_exactly_once(make_order, first, second):
    assert connection.vendor == "postgresql"
    for _round in range(5):
        order = make_order()
        events_before = status_change_count(order.pk)
        order_id = order.pk
        results = race([lambda: first(order_id=order_id, actor_label="t1"),  # noqa: B023 (joined in race)
                        lambda: second(order_id=order_id, actor_label="t2")])  # noqa: B023
        winners = [r for r in results if isinstance(r, Order)]
        losers = [r for r in results if isinstance(r, TransitionNotAllowed)]
        assert len(winners) == 1 and len(losers) == 1, results
        order.refresh_from_db()
        assert order.status == winners[0].status
        assert order.status in {OrderStatus.CANCELLED, OrderStatus.IN_FULFILMENT}
        assert status_change_count(order.pk) == events_before + 1


def test_concurrent_holds_with_different_reasons_both_land(make_order):
    order = make_order()
    results = race([lambda: services.order_hold(order_id=order.pk, hold_reason="risk"),
                    lambda: services.order_hold(order_id=order.pk, hold_reason="address")])
    assert all(isinstance(r, Order) for r in results), results
    order.refresh_from_db()
    assert order.status == OrderStatus.HELD
    assert sorted(order.hold_reasons) == ["address", "risk"]
    # One move into "held", two hold reasons recorded.
    assert OrderEvent.objects.filter(order=order, type=OrderEventType.HOLD_ADDED).count() == 2
    assert OrderEvent.objects.filter(order=order, type=OrderEventType.STATUS_CHANGED, to_status="held").count() == 1
