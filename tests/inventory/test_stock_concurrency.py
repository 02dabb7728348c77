"""Reservations under real concurrency (threads, PostgreSQL): no oversell, no deadlock, counters = ledger."""

import random
import threading
from decimal import Decimal

import pytest
from django.db import OperationalError, connection, connections
from django.db.models import Sum

from inventory import services as stock
from inventory.models import Reservation, ReservationStatus, StockLevel, StockMovement
from orders import services
from orders.exceptions import TransitionNotAllowed
from orders.models import Order, OrderStatus
from orders.services import LineInput
from pipeline import orders as flows

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]


def run_threads(workers: int, work) -> list[BaseException]:
    """Run ``work(index)`` in ``workers`` threads started together; return every unexpected exception."""
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def body(index):
        try:
            barrier.wait(timeout=10)
            work(index)
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def assert_counters_equal_ledger():
    for row in StockLevel.objects.all():
        sums = StockMovement.objects.filter(warehouse=row.warehouse, sku=row.sku).aggregate(
            on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta"))
        assert (row.on_hand, row.reserved) == (sums["on_hand"] or 0, sums["reserved"] or 0), row
        active = Reservation.objects.filter(warehouse=row.warehouse, sku=row.sku,
                                            status=ReservationStatus.ACTIVE).aggregate(q=Sum("quantity"))["q"] or 0
        assert active == row.reserved, row
        assert 0 <= row.reserved <= row.on_hand, row


def line(code: str, quantity: int) -> LineInput:
    return LineInput(sku_code=code, quantity=quantity, unit_price=Decimal("10"))


def test_concurrent_buyers_never_oversell(warehouse, skus, make_order):
    tea = skus["TEA-LJ-250G"]
    stock.stock_take(warehouse_id=warehouse.pk, sku_id=tea.pk, counted=50)
    rng = random.Random(1)
    orders = [make_order(paid=False, lines=[line("TEA-LJ-250G", rng.randint(1, 3))]) for _ in range(80)]
    wanted = {o.pk: o.lines.get().quantity for o in orders}
    ids = [o.pk for o in orders]

    def buyer(index):
        for order_id in ids[index::16]:
            flows.order_pay(order_id=order_id, actor_label=f"buyer{index}")

    assert run_threads(16, buyer) == []
    ready = list(Order.objects.filter(status=OrderStatus.READY).values_list("pk", flat=True))
    waiting = Order.objects.filter(status=OrderStatus.AWAITING_STOCK).count()
    assert len(ready) + waiting == 80
    sold = sum(wanted[pk] for pk in ready)
    row = StockLevel.objects.get(warehouse=warehouse, sku=tea)
    assert row.reserved == sold <= 50  # never more than there is
    assert row.on_hand - row.reserved < 3  # what is left cannot serve any waiting order of 3
    assert_counters_equal_ledger()


def test_multi_line_orders_in_opposite_sku_order_never_deadlock(warehouse, skus, make_order):
    forward = [line("TEA-LJ-250G", 1), line("CUP-CER-350", 1), line("GIFT-BAG", 1)]
    backward = list(reversed(forward))
    orders = [make_order(paid=False, lines=forward if i % 2 else backward) for i in range(120)]
    ids = [o.pk for o in orders]

    def churn(index):
        for order_id in ids[index::12]:
            flows.order_pay(order_id=order_id)
            if order_id % 3 == 0:
                flows.order_cancel(order_id=order_id, reason="churn")

    errors = run_threads(12, churn)
    assert not [e for e in errors if isinstance(e, OperationalError)], errors  # deadlocks surface as these
    assert errors == []
    assert Order.objects.filter(status=OrderStatus.READY).count() == 80
    assert Order.objects.filter(status=OrderStatus.CANCELLED).count() == 40
    assert_counters_equal_ledger()


def test_counters_equal_ledger_after_mixed_concurrent_work(warehouse, skus, make_order):
    codes = ["TEA-LJ-250G", "CUP-CER-350", "GIFT-BAG"]
    for sku in skus.values():
        stock.stock_take(warehouse_id=warehouse.pk, sku_id=sku.pk, counted=40)
    rng = random.Random(5)
    orders = [make_order(paid=False, lines=[line(code, rng.randint(1, 4)) for code in rng.sample(codes, rng.randint(1, 3))])
              for _ in range(90)]
    ids = [o.pk for o in orders]
    sku_ids = [sku.pk for sku in skus.values()]

    def worker(index):
        local = random.Random(index)
        for order_id in ids[index::10]:
            flows.order_pay(order_id=order_id)
            roll = local.random()
            try:
                if roll < 0.3:
                    flows.order_cancel(order_id=order_id, reason="mixed")
                elif roll < 0.6:
                    services.order_start_fulfilment(order_id=order_id)
                    flows.order_ship(order_id=order_id)
            except TransitionNotAllowed:
                pass  # an order still awaiting stock can be cancelled but not shipped
            if local.random() < 0.3:
                stock.stock_receive(warehouse_id=warehouse.pk, sku_id=local.choice(sku_ids), quantity=local.randint(1, 5))

    assert run_threads(10, worker) == []
    assert_counters_equal_ledger()
    shipped_units = -(StockMovement.objects.filter(kind="shipment").aggregate(q=Sum("on_hand_delta"))["q"] or 0)
    received = StockMovement.objects.filter(kind__in=["receipt", "stock_take"]).aggregate(q=Sum("on_hand_delta"))["q"]
    assert StockLevel.objects.aggregate(q=Sum("on_hand"))["q"] == received - shipped_units
