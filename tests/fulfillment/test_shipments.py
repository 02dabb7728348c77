"""Shipments through the real services: built from reservations, moved, packed by scan, shipped, delivered,
cancelled with their order; on ship the stock, the platform push-back and the buyer notice follow."""

import threading
from decimal import Decimal

import pytest
from django.core import mail
from django.db import close_old_connections, connection
from django.utils import translation

from connectors.models import ShipmentPush
from fulfillment import services
from fulfillment.exceptions import MoveRefused, PackingRefused, ScanRefused
from fulfillment.models import (
    CustomerNotification,
    DecisionKind,
    NotificationStatus,
    RoutingDecision,
    Shipment,
    ShipmentEvent,
    ShipmentEventType,
    ShipmentStatus,
)
from fulfillment.notifications import notification_send
from inventory.models import MovementKind, Reservation, StockLevel, StockMovement
from oms.exceptions import ValidationFailed
from orders.models import Order, OrderStatus
from pipeline import orders as order_flows
from pipeline import shipping
from tests.conftest import order_input
from tests.fulfillment.helpers import parcel_of, scan_all, ship_parcel

pytestmark = pytest.mark.django_db


def test_a_ready_order_becomes_one_parcel_with_its_reserved_units_and_the_reasons(make_order, manual_carrier):
    order = make_order()
    assert order.status == OrderStatus.READY
    parcel = parcel_of(order)
    assert parcel.status == ShipmentStatus.TO_PICK and parcel.warehouse.code == "SH"
    assert parcel.order_numbers == order.number and parcel.platform == "taobao"
    lines = {(line.sku.code, line.quantity) for line in parcel.lines.select_related("sku")}
    assert lines == {("TEA-LJ-250G", 2), ("CUP-CER-350", 1)}
    assert set(parcel.lines.values_list("reservation_id", flat=True)) == set(
        Reservation.objects.filter(order=order).values_list("pk", flat=True))
    assert parcel.carrier == manual_carrier
    warehouse_decision = RoutingDecision.objects.get(order=order, kind=DecisionKind.WAREHOUSE)
    assert "上海仓" in warehouse_decision.reason and warehouse_decision.warehouse_ids == [parcel.warehouse_id]
    carrier_decision = RoutingDecision.objects.get(order=order, kind=DecisionKind.CARRIER)
    assert carrier_decision.carrier == manual_carrier and carrier_decision.reason
    assert list(parcel.events.values_list("type", flat=True)) == [ShipmentEventType.CREATED, ShipmentEventType.ROUTED]
    # Ship by: paid time + the store's promise (48 h by default).
    assert (parcel.sla_due_at - order.paid_at).total_seconds() == 48 * 3600


def test_the_order_follows_its_parcel_from_picking_to_delivered(make_order, manual_carrier):
    order = make_order()
    parcel = parcel_of(order)
    shipping.shipment_start_picking(shipment_id=parcel.pk)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.IN_FULFILMENT
    scan_all(parcel)
    shipping.shipment_pack(shipment_id=parcel.pk)
    before = {lv.sku.code: (lv.on_hand, lv.reserved) for lv in StockLevel.objects.select_related("sku")}
    shipping.shipment_ship(shipment_id=parcel.pk, tracking_number="yt 1000-0000-01")
    parcel.refresh_from_db()
    assert parcel.status == ShipmentStatus.SHIPPED and parcel.tracking_number == "YT1000000001"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED
    after = {lv.sku.code: (lv.on_hand, lv.reserved) for lv in StockLevel.objects.select_related("sku")}
    assert after["TEA-LJ-250G"] == (before["TEA-LJ-250G"][0] - 2, before["TEA-LJ-250G"][1] - 2)
    assert after["CUP-CER-350"] == (before["CUP-CER-350"][0] - 1, before["CUP-CER-350"][1] - 1)
    shipped = StockMovement.objects.filter(kind=MovementKind.SHIPMENT, reference=f"shipment:{parcel.number}")
    assert sorted(shipped.values_list("on_hand_delta", flat=True)) == [-2, -1]
    assert not Reservation.objects.filter(order=order, status="active").exists()
    # The platform confirmation is queued in the same transaction, keyed by the parcel.
    push = ShipmentPush.objects.get(order=order)
    assert (push.carrier_code, push.tracking_number, push.shipment_key, push.line_ids) == (
        "YTO", "YT1000000001", parcel.number, [])
    shipping.shipment_deliver(shipment_id=parcel.pk)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED


def test_the_buyer_notice_is_queued_on_ship_and_sent_once(make_order, manual_carrier, taobao_store):
    from orders.services import BuyerInput

    order = make_order(buyer=BuyerInput(id="buyer-9", name="李雷", email="lilei@example.com"))
    ship_parcel(parcel_of(order))
    notice = CustomerNotification.objects.get(order=order)
    assert notice.status == NotificationStatus.QUEUED and notice.recipient == "lilei@example.com"
    assert "YT1000000001" in notice.body
    assert notification_send(notification_id=notice.pk) == NotificationStatus.SENT
    assert notification_send(notification_id=notice.pk) == NotificationStatus.SENT  # not sent twice
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["lilei@example.com"]


def test_a_buyer_without_an_address_is_recorded_as_skipped(make_order, manual_carrier):
    order = make_order()
    ship_parcel(parcel_of(order))
    assert CustomerNotification.objects.get(order=order).status == NotificationStatus.SKIPPED


def test_cancelling_a_ready_order_cancels_its_parcel_and_releases_the_stock(make_order):
    order = make_order()
    parcel = parcel_of(order)
    order_flows.order_cancel(order_id=order.pk, reason="buyer changed their mind")
    parcel.refresh_from_db()
    assert parcel.status == ShipmentStatus.CANCELLED
    assert StockLevel.objects.get(sku__code="TEA-LJ-250G").reserved == 0


def test_illegal_moves_are_refused_with_the_reason_and_change_nothing(make_order):
    parcel = parcel_of(make_order())
    with pytest.raises(MoveRefused) as refused, translation.override("en"):
        shipping.shipment_move(shipment_id=parcel.pk, to_status=ShipmentStatus.SHIPPED)
    assert refused.value.message == "A parcel cannot go from “To pick” to “Shipped”."
    shipping.shipment_move(shipment_id=parcel.pk, to_status=ShipmentStatus.PICKING)
    with pytest.raises(PackingRefused) as missing:
        shipping.shipment_move(shipment_id=parcel.pk, to_status=ShipmentStatus.PACKED)
    assert missing.value.code == "items_missing" and "TEA-LJ-250G × 2" in missing.value.message
    parcel.refresh_from_db()
    assert parcel.status == ShipmentStatus.PICKING
    assert parcel.events.filter(type=ShipmentEventType.STATUS_CHANGED).count() == 1


def test_a_packed_parcel_of_a_manual_carrier_needs_its_number_before_shipping(make_order, manual_carrier):
    parcel = parcel_of(make_order())
    shipping.shipment_start_picking(shipment_id=parcel.pk)
    scan_all(parcel)
    shipping.shipment_pack(shipment_id=parcel.pk)
    with pytest.raises(MoveRefused) as refused:
        shipping.shipment_move(shipment_id=parcel.pk, to_status=ShipmentStatus.SHIPPED)
    assert refused.value.code == "tracking_required"
    assert Shipment.objects.get(pk=parcel.pk).status == ShipmentStatus.PACKED


# --- Scan-to-verify packing -----------------------------------------------------------------------

def test_packing_refuses_a_wrong_item_an_extra_one_and_a_missing_one(make_order):
    parcel = parcel_of(make_order())
    shipping.shipment_start_picking(shipment_id=parcel.pk)
    with pytest.raises(ScanRefused) as wrong:
        services.shipment_scan_item(shipment_id=parcel.pk, barcode="6901234567915")  # the gift bag: not ordered
    assert wrong.value.code == "scan_wrong_item" and "6901234567915" in wrong.value.message
    services.shipment_scan_item(shipment_id=parcel.pk, barcode="6901234567908")
    with pytest.raises(ScanRefused) as extra:
        services.shipment_scan_item(shipment_id=parcel.pk, barcode="6901234567908")
    assert extra.value.code == "scan_extra"
    result = services.shipment_scan_item(shipment_id=parcel.pk, barcode="6901234567892")
    assert (result.sku_code, result.verified, result.quantity, result.complete) == ("TEA-LJ-250G", 1, 2, False)
    with pytest.raises(PackingRefused) as missing:
        shipping.shipment_pack(shipment_id=parcel.pk)
    assert missing.value.data["missing"] == [{"sku": "TEA-LJ-250G", "missing": 1}]
    assert services.shipment_scan_item(shipment_id=parcel.pk, barcode="TEA-LJ-250G").complete  # the SKU code works too
    shipping.shipment_pack(shipment_id=parcel.pk)
    assert Shipment.objects.get(pk=parcel.pk).status == ShipmentStatus.PACKED
    refused = list(ShipmentEvent.objects.filter(shipment=parcel, type=ShipmentEventType.SCAN_REFUSED)
                   .values_list("data__problem", flat=True))
    assert refused == ["wrong_item", "extra"]


def test_a_weight_far_from_the_expected_one_is_refused(make_order, skus):
    for code, grams in [("TEA-LJ-250G", 300), ("CUP-CER-350", 400)]:
        skus[code].weight_grams = grams
        skus[code].save()
    parcel = parcel_of(make_order())
    assert parcel.expected_weight_grams == 1000
    shipping.shipment_start_picking(shipment_id=parcel.pk)
    scan_all(parcel)
    with pytest.raises(PackingRefused) as heavy:
        shipping.shipment_pack(shipment_id=parcel.pk, weight_grams=1400)
    assert heavy.value.code == "weight_mismatch"
    shipping.shipment_pack(shipment_id=parcel.pk, weight_grams=1060)  # within 10 %
    assert Shipment.objects.get(pk=parcel.pk).measured_weight_grams == 1060


@pytest.mark.django_db(transaction=True)
def test_two_stations_packing_one_parcel_at_once_end_with_one_success(make_order):
    parcel = parcel_of(make_order())
    shipping.shipment_start_picking(shipment_id=parcel.pk)
    scan_all(parcel)
    barrier, results = threading.Barrier(2), []

    def station():
        close_old_connections()
        barrier.wait()
        try:
            shipping.shipment_pack(shipment_id=parcel.pk)
            results.append("packed")
        except PackingRefused as exc:
            results.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=station) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["already_packed", "packed"]
    assert ShipmentEvent.objects.filter(shipment=parcel, to_status=ShipmentStatus.PACKED,
                                        type=ShipmentEventType.STATUS_CHANGED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_stations_scanning_the_last_unit_count_it_once(make_order):
    parcel = parcel_of(make_order())
    shipping.shipment_start_picking(shipment_id=parcel.pk)
    services.shipment_scan_item(shipment_id=parcel.pk, barcode="6901234567892")
    services.shipment_scan_item(shipment_id=parcel.pk, barcode="6901234567892")
    barrier, results = threading.Barrier(2), []

    def station():
        close_old_connections()
        barrier.wait()
        try:
            services.shipment_scan_item(shipment_id=parcel.pk, barcode="6901234567908")
            results.append("ok")
        except ScanRefused as exc:
            results.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=station) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["ok", "scan_extra"]
    assert parcel.lines.get(sku__code="CUP-CER-350").verified_quantity == 1


def test_a_paid_manual_order_in_another_store_gets_its_own_parcel(make_order, manual_store):
    first = make_order()
    other = order_flows.order_create(store=manual_store, data=order_input(platform_order_id="W-1", paid=True),
                                        actor_label="test")
    assert parcel_of(first) != parcel_of(other)
    assert parcel_of(other).amount == Decimal("420.90") == other.total_amount


def test_an_exception_is_resolved_back_to_where_it_belongs(make_order):
    parcel = parcel_of(make_order())
    shipping.shipment_move(shipment_id=parcel.pk, to_status=ShipmentStatus.PICKING)
    services.shipment_scan_item(shipment_id=parcel.pk, barcode="6901234567908")
    with pytest.raises(ValidationFailed):  # bad input (400), not a refused move
        services.shipment_raise_exception(shipment_id=parcel.pk, reason="  ")
    shipping.shipment_move(shipment_id=parcel.pk, to_status=ShipmentStatus.EXCEPTION, reason="box damaged")
    parcel.refresh_from_db()
    assert (parcel.status, parcel.exception_reason) == (ShipmentStatus.EXCEPTION, "box damaged")
    with pytest.raises(MoveRefused):
        shipping.shipment_move(shipment_id=parcel.pk, to_status=ShipmentStatus.SHIPPED)
    shipping.shipment_move(shipment_id=parcel.pk, to_status=ShipmentStatus.TO_PICK)
    parcel.refresh_from_db()
    assert parcel.status == ShipmentStatus.TO_PICK and parcel.exception_reason == ""
    assert not parcel.lines.filter(verified_quantity__gt=0).exists()  # scanned again from scratch
