"""Waybills and tracking against the SF-like sandbox over real HTTP: a parcel gets its number from the
carrier, is delivered when the carrier says so, and raises the stale alert when its tracking stalls."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fulfillment.models import Carrier, CarrierKind, Shipment, ShipmentEventType, ShipmentStatus
from fulfillment.selectors import customer_tracking_of, stale_shipments
from fulfillment.tracking import shipments_flag_stale_tracking
from orders.models import Order, OrderStatus
from orders.services import ReceiverInput
from pipeline import orders as order_flows
from pipeline import shipping
from pipeline.shipping import shipments_pull_tracking
from tests.fulfillment.helpers import parcel_of, scan_all, sf_carrier

pytestmark = pytest.mark.django_db


@pytest.fixture
def sf(warehouse):
    with sf_carrier(warehouse, seed=3) as running:
        yield running


def shipped_with_sf(make_order, **order) -> Shipment:
    parcel = parcel_of(make_order(**order))
    shipping.shipment_start_picking(shipment_id=parcel.pk)
    scan_all(parcel)
    shipping.shipment_pack(shipment_id=parcel.pk)
    return shipping.shipment_ship(shipment_id=parcel.pk)  # no number given: the carrier's API is asked


def test_shipping_asks_the_carrier_for_a_waybill_once(make_order, sf):
    sandbox, carrier = sf
    parcel = shipped_with_sf(make_order)
    assert parcel.carrier == carrier and parcel.status == ShipmentStatus.SHIPPED
    assert parcel.tracking_number.startswith("SF") and len(parcel.tracking_number) == 15
    assert parcel.handover_code and parcel.label_data
    assert [w["orderId"] for w in sandbox.waybills()] == [parcel.number]
    display, url = customer_tracking_of(parcel)
    assert display.replace(" ", "") == parcel.tracking_number and parcel.tracking_number in url
    assert parcel.handover_code not in display
    assert parcel.events.filter(type=ShipmentEventType.WAYBILL).count() == 1


def test_tracking_events_deliver_the_parcel_and_the_order(make_order, sf):
    sandbox, _carrier = sf
    parcel = shipped_with_sf(make_order)
    sandbox.set_clock(sandbox.now() + timedelta(hours=35))
    stats = shipments_pull_tracking(now=sandbox.now())
    assert stats["delivered"] == 1
    parcel.refresh_from_db()
    assert parcel.status == ShipmentStatus.DELIVERED
    assert list(parcel.tracking_events.values_list("code", flat=True))[-1] == "delivered"
    assert Order.objects.get(pk=parcel.lines.first().order_id).status == OrderStatus.DELIVERED
    assert shipments_pull_tracking(now=sandbox.now())["checked"] == 0  # delivered parcels are not asked again


def test_a_parcel_whose_tracking_stalls_for_seven_days_raises_the_alert(make_order, sf):
    sandbox, _carrier = sf
    moving = shipped_with_sf(make_order)
    stalled = shipped_with_sf(make_order, platform_order_id="TB-STALL",
                              receiver=ReceiverInput(name="赵六", phone="13700000000", province="北京市",
                                                     city="北京市", address="长安街 1 号"))
    sandbox.faults.stall = [stalled.tracking_number]
    shipped_at = stalled.shipped_at
    # Day 6: both have news or not yet silent long enough.
    sandbox.set_clock(sandbox.now() + timedelta(days=6))
    shipments_pull_tracking(now=shipped_at + timedelta(days=6))
    assert shipments_flag_stale_tracking(now=shipped_at + timedelta(days=6)) == 0
    # Day 8: the stalled parcel's last event (accepted, +1 h) is more than 7 days old.
    sandbox.set_clock(sandbox.now() + timedelta(days=2))
    shipments_pull_tracking(now=shipped_at + timedelta(days=8))
    assert shipments_flag_stale_tracking(now=shipped_at + timedelta(days=8)) == 1
    stalled.refresh_from_db()
    moving.refresh_from_db()
    assert stalled.tracking_stale_since is not None and stalled.status == ShipmentStatus.SHIPPED
    assert moving.status == ShipmentStatus.DELIVERED and moving.tracking_stale_since is None
    assert list(stale_shipments()) == [stalled]
    assert stalled.events.filter(type=ShipmentEventType.TRACKING_STALE).count() == 1
    assert shipments_flag_stale_tracking(now=shipped_at + timedelta(days=9)) == 0  # alerted once per silence


def test_a_carrier_with_broken_settings_is_a_clear_error_and_does_not_stop_the_others(make_order, sf):
    from fulfillment.exceptions import RoutingInvalid
    from fulfillment.tracking import shipment_request_waybill

    _sandbox, carrier = sf
    good = shipped_with_sf(make_order)
    broken = Carrier.objects.create(code="ZTO", name="中通", kind=CarrierKind.SF, config={})
    parcel = parcel_of(make_order(platform_order_id="TB-BROKEN", receiver=ReceiverInput(
        name="钱七", phone="13600000000", province="江苏省", city="南京市", address="中山路 1 号")))
    Shipment.objects.filter(pk=parcel.pk).update(carrier=broken)
    with pytest.raises(RoutingInvalid):
        shipment_request_waybill(shipment_id=parcel.pk)
    # The broken carrier's parcel is asked about first (least recently checked), the good one after it.
    now = timezone.now()
    Shipment.objects.filter(pk=parcel.pk).update(status=ShipmentStatus.SHIPPED, tracking_number="ZT123456789",
                                                 tracking_checked_at=now - timedelta(days=1))
    Shipment.objects.filter(pk=good.pk).update(tracking_checked_at=now - timedelta(hours=1))
    stats = shipments_pull_tracking()
    assert stats["errors"] == 1 and stats["checked"] == 1  # the SF parcel was still asked about
    assert Shipment.objects.get(pk=good.pk).tracking_checked_at > now - timedelta(minutes=1)


def test_a_cancelled_parcels_waybill_is_voided_at_the_carrier_by_the_sweeper(make_order, sf):
    from fulfillment.tracking import shipment_cancel_waybill, shipment_request_waybill, waybills_to_void

    sandbox, _carrier = sf
    order = make_order()
    shipment = parcel_of(order)
    number = shipment_request_waybill(shipment_id=shipment.pk).tracking_number
    order_flows.order_cancel(order_id=order.pk, reason="buyer cancelled")  # its void task may be lost
    assert waybills_to_void() == [shipment.pk]  # so the sweeper finds it
    assert shipment_cancel_waybill(shipment_id=shipment.pk)
    assert {w["waybillNo"]: w["status"] for w in sandbox.waybills()}[number] == "cancelled"
    assert waybills_to_void() == []
