"""Following the platform's status through the ordinary order services; older updates change nothing."""

from datetime import UTC, datetime, timedelta

import pytest

from inventory.models import Reservation
from orders import services
from orders.models import OrderEvent, OrderEventType, OrderStatus
from pipeline import orders as flows

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def follow(order, target, minutes):
    return flows.order_follow_channel(order_id=order.pk, target=target,
                                         platform_updated_at=T0 + timedelta(minutes=minutes), raw_status=target)


def test_paid_then_shipped_then_completed_walks_every_state_once(make_order):
    order = make_order(paid=False)
    order, applied = follow(order, "paid", 1)
    assert applied and order.status == OrderStatus.READY
    order, _ = follow(order, "shipped", 2)
    assert order.status == OrderStatus.SHIPPED
    assert not Reservation.objects.filter(order=order, status="active").exists()  # shipped stock left the pool
    order, _ = follow(order, "completed", 3)
    assert order.status == OrderStatus.COMPLETED
    transitions = list(order.events.filter(type=OrderEventType.STATUS_CHANGED).values_list("data__transition", flat=True))
    assert transitions == ["pay", "approve", "start_fulfilment", "ship", "complete"]


def test_older_or_equal_update_changes_nothing(make_order):
    order = make_order(paid=False)
    order, _ = follow(order, "cancelled", 10)
    assert order.status == OrderStatus.CANCELLED
    events = OrderEvent.objects.filter(order=order).count()
    order, applied = follow(order, "paid", 5)  # arrives late: older than the cancel
    assert not applied and order.status == OrderStatus.CANCELLED
    order, applied = follow(order, "paid", 10)  # same instant again
    assert not applied
    assert OrderEvent.objects.filter(order=order).count() == events


def test_group_pending_holds_and_is_released_when_the_group_forms(make_order):
    order = make_order(paid=False)
    order, _ = follow(order, "group_pending", 1)
    assert order.status == OrderStatus.HELD and order.hold_reasons == ["group_pending"]
    assert Reservation.objects.filter(order=order, status="active").exists()  # paid: its stock is held
    order, _ = follow(order, "paid", 2)
    assert order.status == OrderStatus.READY and order.hold_reasons == []


def test_cancel_after_fulfilment_started_becomes_close(make_order):
    order = make_order()
    services.order_start_fulfilment(order_id=order.pk)
    order, _ = follow(order, "cancelled", 1)
    assert order.status == OrderStatus.CLOSED


def test_unreachable_platform_status_is_recorded_not_forced(make_order):
    from decimal import Decimal

    from orders.services import LineInput
    order = make_order(paid=False, lines=[LineInput(sku_code="TEA-LJ-250G", quantity=5000, unit_price=Decimal("1"))])
    order, _ = follow(order, "shipped", 1)
    assert order.status == OrderStatus.AWAITING_STOCK
    mismatch = order.events.get(type=OrderEventType.CHANNEL_MISMATCH)
    assert mismatch.data["platform_status"] == "shipped"


def test_a_person_hold_is_not_lifted_by_the_platform(make_order):
    order = make_order()
    services.order_hold(order_id=order.pk, hold_reason="risk")
    order, _ = follow(order, "paid", 1)
    assert order.status == OrderStatus.HELD and order.hold_reasons == ["risk"]


def test_shipped_on_the_platform_cancels_the_open_parcel_so_it_is_not_shipped_twice(make_order):
    from fulfillment.models import Shipment, ShipmentStatus
    from inventory.models import StockLevel

    order = make_order(paid=False)
    order, _ = follow(order, "paid", 1)
    parcel = Shipment.objects.filter(lines__order=order).distinct().get()
    before = StockLevel.objects.get(sku__code="TEA-LJ-250G").on_hand
    order, _ = follow(order, "shipped", 2)  # the seller shipped it from the platform's back office
    assert order.status == OrderStatus.SHIPPED
    parcel.refresh_from_db()
    assert parcel.status == ShipmentStatus.CANCELLED  # off the kanban: the warehouse will not ship it again
    assert StockLevel.objects.get(sku__code="TEA-LJ-250G").on_hand == before - 2  # shipped once
